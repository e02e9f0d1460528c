import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import { toPage, type Page } from "./page";

/** Repositories that have received content: the catalog. */
export class RepositoryIndex {
  constructor(private readonly db: D1Database) {}

  async exists(repository: RepositoryName): Promise<boolean> {
    return (await this.db.prepare("SELECT 1 AS found FROM repositories WHERE name = ?1").bind(repository).first()) !== null;
  }

  async list(page: PageRequest): Promise<Page<string>> {
    if (page.limit === 0) return { items: [], more: false };
    const { results } = await this.db
      .prepare("SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2")
      .bind(page.last ?? "", page.limit + 1)
      .all<{ name: string }>();
    return toPage(
      results.map((r) => r.name),
      page.limit,
    );
  }
}
