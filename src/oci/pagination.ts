import { RegistryError } from "./errors";

export interface PageRequest {
  /** How many entries to return; 0 is a valid, empty page. */
  limit: number;
  /** Exclusive lower bound: entries sort strictly after it. */
  last?: string;
}

/**
 * Reads the spec's `n` and `last` query parameters. A request for more than
 * maxPage entries gets maxPage and a Link to the rest, as the spec allows.
 */
export function parsePageRequest(n: string | undefined, last: string | undefined, maxPage: number): PageRequest {
  let limit = maxPage;
  if (n !== undefined) {
    if (!/^\d{1,15}$/.test(n)) throw new RegistryError("PAGINATION_NUMBER_INVALID", `n must be a non-negative integer, got "${n.slice(0, 50)}"`);
    limit = Math.min(Number(n), maxPage);
  }
  return last === undefined ? { limit } : { limit, last };
}

/** `Link: <path?n=..&last=..>; rel="next"`, keeping the request's other parameters. */
export function nextLink(path: string, params: Record<string, string | undefined>, limit: number, last: string): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) query.set(key, value);
  query.set("n", String(limit));
  query.set("last", last);
  return `<${path}?${query}>; rel="next"`;
}
