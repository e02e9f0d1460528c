import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import { toPage, type Page } from "./page";

/** Tag listing: a range scan of the (repository, name) key, as cheap deep in as at the start. */
export class TagIndex {
  constructor(private readonly db: Database) {}

  async list(repository: RepositoryName, page: PageRequest): Promise<Page<string>> {
    if (page.limit === 0) return { items: [], more: false };
    const { results } = await this.db
      .prepare("SELECT name FROM tags WHERE repository = ?1 AND name > ?2 ORDER BY name LIMIT ?3")
      .bind(repository, page.last ?? "", page.limit + 1)
      .all<{ name: string }>();
    return toPage(
      results.map((r) => r.name),
      page.limit,
    );
  }
}
