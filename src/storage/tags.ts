import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import type { Databases } from "./session";

/** A page of a repository's tags. */
export interface TagsPage {
  /** The tags in lexical order, as a JSON array's text. */
  names: string;
  /** The page's last tag, where the next page begins; null when the page is empty. */
  last: string | null;
  /** Whether tags follow the last one. */
  more: boolean;
}

const NO_TAGS: TagsPage = { names: "[]", last: null, more: false };

/*
 * The page as one row: SQLite writes the names as a JSON array (reading them
 * in the order the inner query sorts them) and looks for a tag after the last,
 * so the Worker turns no row into an object.
 */
const PAGE = `SELECT page.*, EXISTS (SELECT 1 FROM tags WHERE repository = ?1 AND name > page.last) AS more
  FROM (SELECT json_group_array(name) AS names, max(name) AS last FROM (SELECT name FROM tags WHERE repository = ?1 AND name > ?2 ORDER BY name LIMIT ?3)) page`;

/** Tag listing: a range scan of the (repository, name) key, as cheap deep in as at the start. */
export class TagIndex {
  constructor(private readonly databases: Databases) {}

  /** A page of the repository's tags; null when the repository does not exist (which the primary confirms). */
  async list(repository: RepositoryName, page: PageRequest): Promise<TagsPage | null> {
    const found = page.limit === 0 ? NO_TAGS : await this.#list(this.databases.db, repository, page);
    if (found.last !== null || page.last) return found;
    const { db, primary } = this.databases;
    // An empty first page: the repository does not exist, or the session lags behind its first push. The primary says which.
    const [confirmed, exists] = await Promise.all([
      primary && page.limit > 0 ? this.#list(primary, repository, page) : found,
      (primary ?? db).prepare("SELECT 1 AS found FROM repositories WHERE name = ?1").bind(repository).first(),
    ]);
    return exists ? confirmed : null;
  }

  async #list(db: Database, repository: RepositoryName, page: PageRequest): Promise<TagsPage> {
    const row = await db.prepare(PAGE).bind(repository, page.last ?? "", page.limit).first<{ names: string; last: string | null; more: number }>();
    return row ? { names: row.names, last: row.last, more: row.more === 1 } : NO_TAGS;
  }
}
