/**
 * Whether an If-None-Match header matches a representation's entity tag:
 * `*`, or any tag of its list compared weakly (RFC 9110 13.1.2), so `W/"x"`
 * matches `"x"`. A tag may hold commas, so the list is read tag by tag.
 * Call it only for a representation that exists: `*` matches any.
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  const opaque = etag.replace(/^W\//, "");
  for (const [, tag] of header.matchAll(/(?:W\/)?("[^"]*")/g)) if (tag === opaque) return true;
  return false;
}
