import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import { namesPageOf, namesPageQuery, NO_NAMES, type NamesPage, type NamesPageRow } from "./page";
import type { Databases } from "./session";
import { versionedPageQuery, VersionedPages } from "./versioned-pages";

// Repository ?1's tag list's version; and with it, its page of at most ?3 tags after ?2.
const VERSION = "SELECT version FROM tag_lists WHERE repository = ?1";
const PAGE = versionedPageQuery(VERSION, namesPageQuery("SELECT name FROM tags WHERE repository = ?1 AND name > ?2 ORDER BY name LIMIT ?3 + 1"));

/** Tags pages this isolate listed: 4 MiB of names in all (ASCII: a character is a byte). */
const remembered = new VersionedPages<NamesPage>(4 * 1024 * 1024, (page) => page.names.length);

/** Tag listing: a range scan of the (repository, name) key, as cheap deep in as at the start, or one row when remembered. */
export class TagIndex {
  constructor(private readonly databases: Databases) {}

  /** A page of the repository's tags; null when the repository does not exist (which the primary confirms). */
  async list(repository: RepositoryName, page: PageRequest): Promise<NamesPage | null> {
    const found = page.limit === 0 ? NO_NAMES : await this.#list(this.databases.db, repository, page);
    if (found.last !== null || page.last) return found;
    const { db, primary } = this.databases;
    // An empty first page: the repository does not exist, or the session lags behind its first push. The primary says which.
    const [confirmed, exists] = await Promise.all([
      primary && page.limit > 0 ? this.#list(primary, repository, page) : found,
      (primary ?? db).prepare("SELECT 1 AS found FROM repositories WHERE name = ?1").bind(repository).first(),
    ]);
    return exists ? confirmed : null;
  }

  async #list(db: Database, repository: RepositoryName, page: PageRequest): Promise<NamesPage> {
    const found = await remembered.page(
      `${repository} ${page.last ?? ""} ${page.limit}`,
      { version: () => db.prepare(VERSION).bind(repository), page: () => db.prepare(PAGE).bind(repository, page.last ?? "", page.limit) },
      (row: NamesPageRow) => namesPageOf(row, page.limit),
    );
    return found ?? NO_NAMES;
  }
}
