import type { Algorithm, Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import type { Meter } from "./meter";

/** What every state of an upload knows. */
interface Common {
  repository: RepositoryName;
  algorithm: Algorithm;
  /** Which of the upload's R2 keys holds its bytes: a new one each time they move (R2 takes about one write a second to a key). */
  revision: number;
  /** When the upload expires (milliseconds since the epoch), as its id says: the session's alarm is set for then. */
  expiresAt: number;
}

/**
 * Where an upload's bytes are. The session moves only along these arrows,
 * each a single transaction:
 *
 *   empty ──> object ──> publishing ──> (ended)
 *     │         │ ^          ▲
 *     │         v │          │
 *     └─────> parts ─────────┘
 *
 * empty: begun, no byte yet. object: every byte in one R2 object. parts: an
 * R2 multipart upload (none until the first full part) plus the tail, the
 * bytes after the last full part, kept in the session's SQLite. An object
 * takes more bytes by being read into parts under the next revision; parts
 * become an object when their multipart upload completes. publishing: the
 * object's digest is verified and it is being recorded in D1; from here on its
 * key may be what D1 points to, so D1 decides what happens to it.
 */
export type UploadState =
  | (Common & { kind: "empty"; size: 0 })
  | (Common & { kind: "object"; size: number })
  | (Common & { kind: "parts"; size: number; multipartId: string | null; partCount: number })
  | (Common & { kind: "publishing"; size: number; digest: Digest });

export interface Part {
  partNumber: number;
  etag: string;
}

// Tail bytes are kept in rows of this size (a Durable Object row holds at most 2 MB).
const TAIL_ROW_BYTES = 1024 * 1024;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS upload (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kind TEXT NOT NULL CHECK (kind IN ('empty', 'object', 'parts', 'publishing')),
    repository TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    revision INTEGER NOT NULL,
    size INTEGER NOT NULL,
    multipart_id TEXT,
    part_count INTEGER NOT NULL DEFAULT 0,
    digest TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS parts (number INTEGER PRIMARY KEY, etag TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS tail (seq INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS ended (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
`;

type Row = {
  kind: UploadState["kind"];
  repository: RepositoryName;
  algorithm: Algorithm;
  revision: number;
  size: number;
  multipart_id: string | null;
  part_count: number;
  digest: Digest | null;
  expires_at: number;
};

function toState(row: Row): UploadState {
  const common = { repository: row.repository, algorithm: row.algorithm, revision: row.revision, expiresAt: row.expires_at };
  switch (row.kind) {
    case "empty":
      return { ...common, kind: "empty", size: 0 };
    case "object":
      return { ...common, kind: "object", size: row.size };
    case "parts":
      return { ...common, kind: "parts", size: row.size, multipartId: row.multipart_id, partCount: row.part_count };
    case "publishing":
      return { ...common, kind: "publishing", size: row.size, digest: row.digest! };
  }
}

/** Creates the session's tables, once per object. */
export function createUploadTables(storage: DurableObjectStorage): void {
  storage.sql.exec(SCHEMA);
  // A session begun before uploads expired has no expiry: it expires now, and its alarm removes it.
  const columns = storage.sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('upload')").toArray();
  if (columns.some((column) => column.name === "expires_at")) return;
  storage.sql.exec("ALTER TABLE upload ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0");
  void storage.setAlarm(Date.now());
}

/**
 * An upload session's persisted state in its Durable Object's SQLite: one
 * row for the state, the parts committed so far, the tail, and a tombstone
 * once the upload has ended, so its id never begins a session again (until
 * the id expires and the session's alarm deletes everything). Every
 * statement counts the rows it read and wrote (SQLite storage bills them) on
 * `meter`.
 */
export class UploadStateStore {
  readonly #sql: SqlStorage;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly meter: Meter,
  ) {
    this.#sql = storage.sql;
  }

  /** The state, "ended" once the upload completed or was cancelled, or null before it began. */
  load(): UploadState | "ended" | null {
    const row = this.#exec<Row>("SELECT * FROM upload WHERE id = 1").rows[0];
    if (row) return toState(row);
    return this.#exec("SELECT 1 FROM ended").rows.length > 0 ? "ended" : null;
  }

  begin(repository: RepositoryName, algorithm: Algorithm, expiresAt: number): UploadState {
    this.#exec(
      "INSERT INTO upload (id, kind, repository, algorithm, revision, size, created_at, expires_at) VALUES (1, 'empty', ?, ?, 0, 0, ?, ?)",
      repository,
      algorithm,
      Date.now(),
      expiresAt,
    );
    return { kind: "empty", repository, algorithm, revision: 0, size: 0, expiresAt };
  }

  /**
   * Moves to `next` in one transaction, adding `newParts` and replacing the
   * tail when given. False when the upload ended meanwhile: nothing changes.
   */
  save(next: UploadState, newParts: Part[] = [], tail?: Uint8Array): boolean {
    return this.storage.transactionSync(() => {
      const updated = this.#exec(
        "UPDATE upload SET kind = ?, revision = ?, size = ?, multipart_id = ?, part_count = ?, digest = ? WHERE id = 1",
        next.kind,
        next.revision,
        next.size,
        next.kind === "parts" ? next.multipartId : null,
        next.kind === "parts" ? next.partCount : 0,
        next.kind === "publishing" ? next.digest : null,
      );
      if (updated.written === 0) return false;
      if (next.kind !== "parts") {
        this.#exec("DELETE FROM parts");
        this.#exec("DELETE FROM tail");
        return true;
      }
      for (const part of newParts) this.#exec("INSERT OR REPLACE INTO parts (number, etag) VALUES (?, ?)", part.partNumber, part.etag);
      if (tail) this.#replaceTail(tail);
      return true;
    });
  }

  parts(): Part[] {
    return this.#exec<{ number: number; etag: string }>("SELECT number, etag FROM parts ORDER BY number")
      .rows.map((p) => ({ partNumber: p.number, etag: p.etag }));
  }

  tail(): Uint8Array {
    const { rows } = this.#exec<{ bytes: ArrayBuffer }>("SELECT bytes FROM tail ORDER BY seq");
    const tail = new Uint8Array(rows.reduce((n, r) => n + r.bytes.byteLength, 0));
    let offset = 0;
    for (const { bytes } of rows) {
      tail.set(new Uint8Array(bytes), offset);
      offset += bytes.byteLength;
    }
    return tail;
  }

  /** Forgets the upload, leaving a tombstone. */
  end(): void {
    this.storage.transactionSync(() => {
      this.#exec("DELETE FROM upload");
      this.#exec("DELETE FROM parts");
      this.#exec("DELETE FROM tail");
      this.#exec("INSERT OR REPLACE INTO ended (id, at) VALUES (1, ?)", Date.now());
    });
  }

  #replaceTail(tail: Uint8Array): void {
    this.#exec("DELETE FROM tail");
    for (let offset = 0, seq = 0; offset < tail.length; offset += TAIL_ROW_BYTES, seq++) {
      this.#exec("INSERT INTO tail (seq, bytes) VALUES (?, ?)", seq, tail.slice(offset, offset + TAIL_ROW_BYTES));
    }
  }

  /** Runs a statement to its end (the cursor's counts are final only then) and counts its rows. */
  #exec<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): { rows: T[]; written: number } {
    const cursor = this.#sql.exec<T>(query, ...bindings);
    const rows = cursor.toArray();
    this.meter.count("doRowsRead", cursor.rowsRead);
    this.meter.count("doRowsWritten", cursor.rowsWritten);
    return { rows, written: cursor.rowsWritten };
  }
}
