import type { PageRequest } from "../oci/pagination";
import type { Database } from "./database";
import { toPage, type Page } from "./page";

/** SQL: the namespace of the repository in `repositories.name`, its first path component. */
export const NAMESPACE = "substr(repositories.name, 1, instr(repositories.name || '/', '/') - 1)";

/** Which repositories a catalog shows: all, or those whose namespace matches a pattern or is public. */
export type CatalogView = { all: true } | { all: false; patterns: string[]; publicNamespaces: boolean };

/** Repositories that have received content: the catalog. */
export class RepositoryIndex {
  constructor(private readonly db: Database) {}

  /** A page of the repositories `view` shows, in name order; the view is applied while scanning, so a page is full when it can be. */
  async list(page: PageRequest, view: CatalogView): Promise<Page<string>> {
    if (page.limit === 0) return { items: [], more: false };
    const { results } = await this.db
      .prepare(
        `SELECT name FROM repositories
         WHERE name > ?1 AND (?3 OR EXISTS (SELECT 1 FROM json_each(?4) WHERE ${NAMESPACE} GLOB value)
           OR (?5 AND EXISTS (SELECT 1 FROM public_namespaces p WHERE p.name = ${NAMESPACE})))
         ORDER BY name LIMIT ?2`,
      )
      .bind(page.last ?? "", page.limit + 1, view.all ? 1 : 0, JSON.stringify(view.all ? [] : view.patterns), !view.all && view.publicNamespaces ? 1 : 0)
      .all<{ name: string }>();
    return toPage(
      results.map((r) => r.name),
      page.limit,
    );
  }
}
