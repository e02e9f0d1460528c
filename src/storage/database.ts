/**
 * What stores query: the part D1Database and D1DatabaseSession (D1's
 * read replication) share, so a store runs over either, metered or not.
 */
export type Database = Pick<D1Database, "prepare" | "batch">;
