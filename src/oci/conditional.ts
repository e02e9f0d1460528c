/*
 * Conditional requests (RFC 9110, section 13) on content addressed by digest:
 * its ETag is the quoted digest, which names the bytes for good, so a client
 * that holds them is answered 304 and a resumed download never mixes versions.
 */

/** Whether an If-None-Match header names `etag` (or is `*`): the client has these bytes, answer 304. */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  // Weak comparison, as the RFC asks for If-None-Match: W/"x" matches "x".
  return entityTags(header).some((tag) => opaque(tag) === opaque(etag));
}

/**
 * Whether a Range request applies, given its If-Range: always without one;
 * with an entity tag, only if it is strongly `etag`; with a date, only if it
 * is exactly `lastModified`. Otherwise the whole representation is served.
 */
export function ifRangeHolds(header: string | undefined, etag: string, lastModified: string): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return value === etag;
  return Date.parse(value) === Date.parse(lastModified);
}

/** An HTTP date (IMF-fixdate) for a time in milliseconds since the epoch. */
export function httpDate(milliseconds: number): string {
  return new Date(milliseconds).toUTCString();
}

function entityTags(header: string): string[] {
  return header.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

function opaque(tag: string): string {
  return tag.startsWith("W/") ? tag.slice(2) : tag;
}
