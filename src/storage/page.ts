export interface Page<T> {
  items: T[];
  /** Whether entries follow the last one returned. */
  more: boolean;
}

/** Turns rows read with LIMIT n+1 into a page of n and whether more follow. */
export function toPage<T>(rows: T[], limit: number): Page<T> {
  return { items: rows.slice(0, limit), more: rows.length > limit };
}
