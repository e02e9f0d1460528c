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
  return new RequestSession(d1, start);
}

/** A class rather than an object literal with getters: V8 builds those slowly, and this is made for every request. */
class RequestSession implements Session {
  // Opened by the first query, which a request like GET /v2/ never makes.
  #session: D1DatabaseSession | null = null;
  // Opened by the first miss to confirm, which most requests never have.
  #primary: D1DatabaseSession | null = null;

  constructor(
    private readonly d1: D1Database,
    private readonly start: SessionStart,
  ) {}

  get db(): D1DatabaseSession {
    if (!this.#session) {
      const { bookmark, writes } = this.start;
      const valid = bookmark !== undefined && BOOKMARK.test(bookmark) ? bookmark : undefined;
      this.#session = this.d1.withSession(writes ? "first-primary" : (valid ?? "first-unconstrained"));
    }
    return this.#session;
  }

  get primary(): D1DatabaseSession | null {
    if (this.start.writes) return null;
    this.#primary ??= this.d1.withSession("first-primary");
    return this.#primary;
  }

  bookmark(): string | null {
    const reached = this.#session?.getBookmark();
    const confirmed = this.#primary?.getBookmark();
    // Bookmarks sort in commit order, so the greater is the later.
    if (!reached || !confirmed) return reached || confirmed || null;
    return reached > confirmed ? reached : confirmed;
  }
}

/** What a store that confirms its misses is given. */
export type Databases = Pick<Session, "db" | "primary">;

/** `find` on the request's session; when it finds nothing there and the session may lag, once more on the primary. */
export async function confirmed<T>(databases: Databases, find: (db: Database) => Promise<T | null>): Promise<T | null> {
  return (await find(databases.db)) ?? (databases.primary ? find(databases.primary) : null);
}
