import { Memo } from "../memo";
import type { PageRequest } from "../oci/pagination";
import type { RepositoryName } from "../oci/names";
import type { Database } from "./database";
import { namesPageOf, namesPageQuery, NO_NAMES, type NamesPage } from "./page";
import type { Databases } from "./session";

/*
 * The version of repository ?1's tag list (NULL if no tag was ever pushed to
 * it), and the page of at most ?3 tags after ?2 unless that version is ?4, the
 * one whose page the isolate remembers: only then does SQLite list the page.
 */
const PAGE = `SELECT version, CASE WHEN version = ?4 THEN NULL
    ELSE ${namesPageQuery("SELECT name FROM tags WHERE repository = ?1 AND name > ?2 ORDER BY name LIMIT ?3 + 1")} END AS page
  FROM (SELECT (SELECT version FROM tag_lists WHERE repository = ?1) AS version)`;

type PageRow = { version: number | null; page: string | null };

/** The most a remembered page may hold, in characters (and bytes: names are ASCII), and how many are remembered: 8 MiB in all. */
const REMEMBERED_PAGE_CHARS = 256 * 1024;
const REMEMBERED_PAGES = 32;

/**
 * Pages of tags this isolate listed, by repository, start and size, with the
 * version of the tag list they were listed at (migrations/0009). A page is
 * answered from here only when D1 says that version is still current, in the
 * query that would otherwise list it, so it is exactly as fresh as a listing.
 */
const remembered = new Memo<{ version: number; page: NamesPage }>(Infinity, REMEMBERED_PAGES);

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
    const key = `${repository} ${page.last ?? ""} ${page.limit}`;
    const known = remembered.get(key);
    const row = await db.prepare(PAGE).bind(repository, page.last ?? "", page.limit, known?.version ?? null).first<PageRow>();
    if (!row) return NO_NAMES;
    // No page: the version is the one the remembered page was listed at.
    if (row.page === null) return known!.page;
    const found = namesPageOf(row.page, page.limit);
    if (row.version !== null && found.names.length <= REMEMBERED_PAGE_CHARS) remembered.set(key, { version: row.version, page: found });
    return found;
  }
}
