/** A page of names (tags, repositories) in lexical order, as D1 answers it: in one row. */
export interface NamesPage {
  /** The names, as a JSON array's text. */
  names: string;
  /** The page's last name, where the next page begins; null when the page is empty. */
  last: string | null;
  /** Whether names follow the last one. */
  more: boolean;
}

export const NO_NAMES: NamesPage = { names: "[]", last: null, more: false };

/**
 * SQL answering a NamesPage's row: SQLite writes the names `listed` selects
 * (a query with a `name` column, in order, limited to the page) as a JSON
 * array, reading them in that order (as storage/referrers.ts explains), and
 * asks whether `following` (a query that may refer to the page's last name as
 * `page.last`) finds any row. So the Worker turns no row into an object.
 * The last name is the array's last element, so it relies on that order as
 * the array does (the tests walk pages to check both): max(name) would copy
 * every name, each the largest so far, and doubled SQLite's time for a page
 * of 10,000.
 */
export function namesPageQuery(listed: string, following: string): string {
  return `SELECT page.*, EXISTS (${following}) AS more FROM (SELECT names, names ->> '$[#-1]' AS last FROM (SELECT json_group_array(name) AS names FROM (${listed}))) page`;
}

export type NamesPageRow = { names: string; last: string | null; more: number };

export function namesPageOf(row: NamesPageRow | null): NamesPage {
  return row ? { names: row.names, last: row.last, more: row.more === 1 } : NO_NAMES;
}
