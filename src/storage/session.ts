import type { Database } from "./database";

/**
 * A request's way to D1 under read replication (the Sessions API). A read
 * begins on whichever replica is near, or on one at least as recent as the
 * bookmark the client brings; a write begins on the primary. Within a request,
 * each query sees what the ones before it saw or wrote.
 *
 * A replica can lag the primary, so what a read does not find is looked for
 * again on the primary before the registry says it does not exist (`confirmed`):
 * what was just pushed is there for everyone at once, for one more query on a
 * miss only. What a replica does find may be older than the primary's: a tag
 * moved a moment ago, unless the client carries the bookmark.
 */
export interface Session {
  /** Where the request's queries go. */
  db: Database;
  /** The primary, to confirm what `db` did not find, opened when first asked for; null when `db` began there. */
  primary: Database | null;
  /** The latest bookmark the request's queries reached: for the client to carry to its next request. Null when none ran. */
  bookmark(): string | null;
}

/** How a request's session begins: whether it writes, and the bookmark the client brought (ignored unless it looks like D1's). */
export interface SessionStart {
  writes: boolean;
  bookmark?: string;
}

// D1 bookmarks: three 8-digit hex fields and a hash. Anything else is not passed to D1.
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32,64}$/;

export function openSession(d1: D1Database, start: SessionStart): Session {
  const bookmark = start.bookmark !== undefined && BOOKMARK.test(start.bookmark) ? start.bookmark : undefined;
  const session = d1.withSession(start.writes ? "first-primary" : (bookmark ?? "first-unconstrained"));
  // Opened by the first miss to confirm, which most requests never have.
  let primary: D1DatabaseSession | null = null;
  return {
    db: session,
    get primary() {
      if (start.writes) return null;
      primary ??= d1.withSession("first-primary");
      return primary;
    },
    bookmark() {
      // Bookmarks sort in commit order, so the greater is the later.
      const reached = [session.getBookmark(), primary?.getBookmark()].filter((b): b is string => !!b);
      return reached.sort().at(-1) ?? null;
    },
  };
}

/** What a store that confirms its misses is given. */
export type Databases = Pick<Session, "db" | "primary">;

/** `find` on the request's session; when it finds nothing there and the session may lag, once more on the primary. */
export async function confirmed<T>(databases: Databases, find: (db: Database) => Promise<T | null>): Promise<T | null> {
  return (await find(databases.db)) ?? (databases.primary ? find(databases.primary) : null);
}
