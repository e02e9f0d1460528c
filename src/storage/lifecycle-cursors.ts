/** Where each step of the lifecycle pass stopped (migrations/0004_retention.sql), for the next run to resume there. */
export class LifecycleCursors {
  constructor(private readonly db: D1Database) {}

  /** The position `step` recorded; "" (the start) before its first run. */
  async get(step: string): Promise<string> {
    const row = await this.db.prepare("SELECT position FROM lifecycle_cursors WHERE step = ?1").bind(step).first<{ position: string }>();
    return row?.position ?? "";
  }

  async set(step: string, position: string): Promise<void> {
    await this.db
      .prepare("INSERT INTO lifecycle_cursors (step, position, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (step) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at")
      .bind(step, position, Date.now())
      .run();
  }
}
