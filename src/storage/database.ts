/** What the stores query D1 through: the binding, a session of it, or a wrapper around either. */
export type Database = Pick<D1Database, "prepare" | "batch">;
