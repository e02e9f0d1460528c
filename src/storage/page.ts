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
 * (a query with a `name` column, in order, limited to one name more than the
 * page holds) as a JSON array, reading them in that order (as
 * storage/referrers.ts explains), and counts them. So the Worker turns no
 * row into an object, and SQLite neither parses the array again for its last
 * name nor looks for a name after it: for a page of 10,000 that took a
 * quarter of the query's time.
 */
export function namesPageQuery(listed: string): string {
  return `SELECT json_group_array(name) AS names, count(*) AS count FROM (${listed})`;
}

export type NamesPageRow = { names: string; count: number };

/**
 * The page of at most `limit` names in a NamesPage's row. The array's
 * elements are found by their quotes, as names need no escaping in JSON
 * (their grammars allow no quote, backslash or control character): the name
 * past the page, which says more follow, is cut off, and the last one left
 * is where the next page begins.
 */
export function namesPageOf(row: NamesPageRow | null, limit: number): NamesPage {
  if (!row || row.count === 0) return NO_NAMES;
  const more = row.count > limit;
  const names = more ? `${row.names.slice(0, row.names.lastIndexOf(',"'))}]` : row.names;
  return { names, last: names.slice(names.lastIndexOf('"', names.length - 3) + 1, -2), more };
}
