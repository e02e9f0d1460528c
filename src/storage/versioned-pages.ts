/**
 * SQL answering a VersionedRow: the `version` of a list (`versionQuery`, a
 * query for one value: NULL for a list never written) and, unless it is
 * `known` (a parameter: the version whose page the isolate remembers), the
 * `page` (`pageQuery`, a query for one text value). SQLite computes the page
 * only then, so a remembered page costs one row read.
 */
export function versionedPageQuery(versionQuery: string, pageQuery: string, known: string): string {
  return `SELECT version, CASE WHEN version = ${known} THEN NULL ELSE (${pageQuery}) END AS page FROM (SELECT (${versionQuery}) AS version)`;
}

export type VersionedRow = { version: number | null; page: string | null };

/** A remembered page and the version of its list it was listed at. */
export type Remembered<P> = { version: number; page: P };

/**
 * Pages of lists that D1 versions (migrations/0009 and 0010: a list's
 * version changes with every entry added or removed, by triggers), remembered
 * in the isolate with the version they were listed at. A page is answered
 * from here only when D1 says, in the query that would otherwise list it,
 * that its version is still current: so it is exactly as fresh as a listing.
 * Bounded by their size: the oldest go first, and none is kept that would
 * take more than a quarter of the budget.
 */
export class VersionedPages<P> {
  readonly #pages = new Map<string, Remembered<P> & { size: number }>();
  #size = 0;

  /** `budget`: the most the pages may hold in all, as `sizeOf` counts a page (its text's characters, say). */
  constructor(
    private readonly budget: number,
    private readonly sizeOf: (page: P) => number,
  ) {}

  /** The page remembered under `key`, if any: its version is for the query to compare with the current one. */
  recall(key: string): Remembered<P> | undefined {
    return this.#pages.get(key);
  }

  /**
   * The page a VersionedRow answers for `key`, whose query compared the
   * version of `recalled`: that page when the row brought none, or else
   * `listed` of the row's page text, which is remembered under the row's version.
   */
  async answer(key: string, recalled: Remembered<P> | undefined, row: VersionedRow, listed: (text: string) => P | Promise<P>): Promise<P> {
    // No page only when the version is the recalled one.
    if (row.page === null) return recalled!.page;
    const page = await listed(row.page);
    if (row.version !== null) this.#remember(key, { version: row.version, page, size: this.sizeOf(page) });
    return page;
  }

  #remember(key: string, entry: Remembered<P> & { size: number }): void {
    this.#forget(key);
    if (entry.size > this.budget / 4) return;
    for (const oldest of this.#pages.keys()) {
      if (this.#size + entry.size <= this.budget) break;
      this.#forget(oldest);
    }
    this.#pages.set(key, entry);
    this.#size += entry.size;
  }

  #forget(key: string): void {
    this.#size -= this.#pages.get(key)?.size ?? 0;
    this.#pages.delete(key);
  }
}
