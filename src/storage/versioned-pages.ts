import { Memo } from "../memo";

/**
 * SQL answering a VersionedRow: the columns of the page `pageQuery` selects
 * (one row), and the `version` of its list (`versionQuery`, a query for one
 * value: NULL for a list never written), in one statement, so the page is
 * that version's.
 */
export function versionedPageQuery(versionQuery: string, pageQuery: string): string {
  return `SELECT (${versionQuery}) AS version, listing.* FROM (${pageQuery}) listing`;
}

export type VersionedRow<R> = R & { version: number | null };

/** A remembered page and the version of its list it was listed at. */
type Remembered<P> = { version: number; page: P };

/** How a page of a versioned list is read: both statements bound, made only when needed. */
export interface VersionedStatements {
  /** The list's version alone (a column `version`): one row read. */
  version: () => D1PreparedStatement;
  /** A VersionedRow of the page (versionedPageQuery). */
  page: () => D1PreparedStatement;
}

/**
 * Pages of lists that D1 versions (migrations/0009 and 0010: a list's
 * version changes with every entry added or removed, by triggers), remembered
 * in the isolate with the version they were listed at. A page is answered
 * from here only when D1 says, through the request's session, that its
 * version is still current: so it is exactly as fresh as a listing.
 * Bounded by their size: the oldest go first, and none is kept that would
 * take more than a quarter of the budget.
 */
export class VersionedPages<P> {
  readonly #pages: Memo<Remembered<P>>;

  /** `budget`: the most the pages may hold in all, as `sizeOf` counts a page (its text's characters, say). */
  constructor(
    private readonly budget: number,
    private readonly sizeOf: (page: P) => number,
  ) {
    this.#pages = new Memo(Infinity, budget, (entry) => sizeOf(entry.page));
  }

  /**
   * The page under `key`: the remembered one when D1 says its version is
   * still current (one statement reading one row), or else `listed` of the
   * row D1 lists the page in, remembered under the version it was listed
   * at. A page nobody remembers is listed at once, so only a page that went
   * stale costs a second statement. Null when D1 answers no row.
   */
  async page<R>(key: string, statements: VersionedStatements, listed: (row: R) => P | Promise<P>): Promise<P | null> {
    const recalled = this.#pages.get(key);
    if (recalled && (await statements.version().first<number>("version")) === recalled.version) return recalled.page;
    const row = await statements.page().first<VersionedRow<R>>();
    if (!row) return null;
    const page = await listed(row);
    if (row.version === null || this.sizeOf(page) > this.budget / 4) this.#pages.delete(key);
    else this.#pages.set(key, { version: row.version, page });
    return page;
  }
}
