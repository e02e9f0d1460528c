import type { PageRequest } from "../oci/pagination";
import type { Database } from "./database";
import { namesPageOf, namesPageQuery, NO_NAMES, type NamesPage, type NamesPageRow } from "./page";

/** SQL: the namespace of the repository in `repositories.name`, its first path component. */
export const NAMESPACE = "substr(repositories.name, 1, instr(repositories.name || '/', '/') - 1)";

/** Which repositories a catalog shows: all, or those whose namespace matches a pattern or is public. */
export type CatalogView = { all: true } | { all: false; patterns: string[]; publicNamespaces: boolean };

// Over ?3 (all), ?4 (a JSON array of namespace patterns) and ?5 (public namespaces too): the repositories a CatalogView shows.
const SHOWN = `(?3 OR EXISTS (SELECT 1 FROM json_each(?4) WHERE ${NAMESPACE} GLOB value)
  OR (?5 AND EXISTS (SELECT 1 FROM public_namespaces p WHERE p.name = ${NAMESPACE})))`;

const PAGE = namesPageQuery(`SELECT name FROM repositories WHERE name > ?1 AND ${SHOWN} ORDER BY name LIMIT ?2 + 1`);

/** Repositories that have received content: the catalog. */
export class RepositoryIndex {
  constructor(private readonly db: Database) {}

  /** A page of the repositories `view` shows, in name order; the view is applied while scanning, so a page is full when it can be. */
  async list(page: PageRequest, view: CatalogView): Promise<NamesPage> {
    if (page.limit === 0) return NO_NAMES;
    const row = await this.db
      .prepare(PAGE)
      .bind(page.last ?? "", page.limit, view.all ? 1 : 0, JSON.stringify(view.all ? [] : view.patterns), !view.all && view.publicNamespaces ? 1 : 0)
      .first<NamesPageRow>();
    return namesPageOf(row, page.limit);
  }
}
