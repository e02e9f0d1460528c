import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { algorithmOf, digestBytes, digestStream, Hasher, hexOf, type Algorithm, type Digest } from "../oci/digest";
import type { ErrorCode } from "../oci/errors";
import type { RepositoryName } from "../oci/names";
import { BlobStore } from "./blobs";
import { blobObjectKey } from "./keys";
import { cutIntoParts } from "./part-writer";

/** What a session method answers: a value, or an error for the route to raise. */
export type SessionResult<T> =
  | ({ ok: true } & T)
  | { ok: false; code: ErrorCode; detail: string; /** bytes received, for a Range header */ size?: number };

type SessionRow = {
  repository: RepositoryName;
  algorithm: Algorithm;
  object_key: string;
  multipart_id: string | null;
  size: number;
  part_count: number;
};

/**
 * Who a request acts for: the repository in its path, and the algorithm to
 * hash with should this request be the session's first.
 */
export interface SessionTarget {
  repository: RepositoryName;
  algorithm: Algorithm;
}

/** What a chunk's headers say of it: where it starts (Content-Range) and how long it is. */
export interface ChunkBounds {
  start?: number;
  length?: number;
}

interface Part {
  partNumber: number;
  etag: string;
}

interface Written {
  parts: Part[];
  tail: Uint8Array;
  received: number;
  /** The running hash, now covering every byte of the upload, when one was carried. */
  hash: RunningHash | null;
}

/** A hash of the upload's first `through` bytes, still open for more. */
interface RunningHash {
  hasher: Hasher;
  through: number;
}

// Tail bytes are kept in rows of this size (a Durable Object row holds at most 2 MB).
const TAIL_ROW_BYTES = 1024 * 1024;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    repository TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    object_key TEXT NOT NULL,
    multipart_id TEXT,
    size INTEGER NOT NULL,
    part_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS parts (number INTEGER PRIMARY KEY, etag TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS tail (seq INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS ended (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
`;

/**
 * One blob upload: an R2 multipart upload plus the bytes after its last full
 * part. POST only draws the object's id, so the session begins with its first
 * request and binds to that request's repository; once completed or cancelled
 * it leaves a tombstone, so its id never opens a session again. Consistency: the object is single-threaded and `#busy` turns away a
 * second data request while one streams, so bytes never interleave; a request
 * commits its parts, tail and size in one transaction when it ends, so one
 * that fails midway leaves the session exactly as it found it. Digests are
 * verified before the blob is registered in D1, which is what makes it visible.
 *
 * The digest is computed as bytes stream in, and the running hash stays in
 * memory between requests while the object lives. It is trusted only while it
 * covers exactly the committed bytes; when the object was evicted or a request
 * failed, completion hashes the assembled object instead.
 */
export class UploadSession extends DurableObject<Env> {
  #busy = false;
  #hash: RunningHash | null = null;
  readonly #sql: SqlStorage;
  readonly #blobs: BlobStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#blobs = new BlobStore(env.DB, env.BLOBS);
    this.#sql.exec(SCHEMA);
  }

  async status(target: SessionTarget): Promise<SessionResult<{ size: number }>> {
    const session = this.#session(target);
    return session ? { ok: true, size: session.size } : unknownUpload();
  }

  /**
   * PATCH: appends a chunk. A chunk that says where it starts must start where
   * the upload ends; one that says its length must bring exactly that many bytes.
   */
  async append(target: SessionTarget, body: ReadableStream<Uint8Array> | null, chunk: ChunkBounds): Promise<SessionResult<{ size: number }>> {
    const session = this.#session(target);
    if (!session) return unknownUpload();
    if (this.#busy) return busy(session.size);
    if (chunk.start !== undefined && chunk.start !== session.size) {
      return { ok: false, code: "RANGE_INVALID", detail: `chunk starts at ${chunk.start} but the upload has ${session.size} bytes`, size: session.size };
    }
    this.#busy = true;
    try {
      const written = await this.#write(session, body);
      if (chunk.length !== undefined && written.received !== chunk.length) {
        return { ok: false, code: "SIZE_INVALID", detail: `the chunk announced ${chunk.length} bytes and brought ${written.received}`, size: session.size };
      }
      if (!this.#commit(written)) return unknownUpload();
      this.#hash = written.hash;
      return { ok: true, size: session.size + written.received };
    } finally {
      this.#busy = false;
    }
  }

  /** PUT ?digest=: takes an optional last chunk, verifies the digest, and publishes the blob. */
  async complete(target: SessionTarget, digest: Digest, body: ReadableStream<Uint8Array> | null): Promise<SessionResult<{ digest: Digest; size: number }>> {
    const session = this.#session(target);
    if (!session) return unknownUpload();
    if (this.#busy) return busy(session.size);
    this.#busy = true;
    try {
      const written = await this.#write(session, body);
      const parts = [...this.#parts(), ...written.parts];
      const size = session.size + written.received;
      // The digest computed while streaming settles it when its algorithm is the one asked for.
      const known = written.hash && written.hash.hasher.algorithm === algorithmOf(digest) ? await written.hash.hasher.digest() : null;
      if (known && known !== digest) return this.#reject(session, digest, known);

      if (parts.length === 0) {
        const actual = known ?? (await digestBytes(algorithmOf(digest), written.tail));
        if (actual !== digest) return this.#reject(session, digest, actual);
        // R2 checks the digest again as it stores the bytes.
        await this.env.BLOBS.put(session.object_key, written.tail, { [algorithmOf(digest)]: hexOf(digest) });
        // A multipart upload left by a request that failed before committing a part.
        await this.#abortMultipart(session);
      } else {
        const upload = this.env.BLOBS.resumeMultipartUpload(session.object_key, session.multipart_id!);
        if (written.tail.length > 0) parts.push(await upload.uploadPart(parts.length + 1, written.tail));
        await upload.complete(parts);
        if (!known) {
          // No running hash survived (eviction, a failed request): read the assembled object once.
          const object = await this.env.BLOBS.get(session.object_key);
          const actual = object ? await digestStream(algorithmOf(digest), object.body) : null;
          if (actual !== digest) {
            await this.env.BLOBS.delete(session.object_key);
            return this.#reject({ ...session, multipart_id: null }, digest, actual);
          }
        }
      }

      const storedKey = await this.#blobs.register(session.repository, { digest, size, objectKey: session.object_key });
      // Another upload published the same bytes first: keep one copy.
      if (storedKey !== session.object_key) await this.env.BLOBS.delete(session.object_key);
      this.#end();
      return { ok: true, digest, size };
    } finally {
      this.#busy = false;
    }
  }

  /** DELETE: abandons the upload and its parts. */
  async cancel(target: SessionTarget): Promise<SessionResult<object>> {
    const session = this.#session(target);
    if (!session) return unknownUpload();
    await this.#abortMultipart(session);
    this.#end();
    return { ok: true };
  }

  /** The session open for this repository; begun now if this is the first request, none once ended. */
  #session(target: SessionTarget): SessionRow | null {
    const row = this.#sql.exec<SessionRow>("SELECT * FROM session WHERE id = 1").toArray()[0];
    if (row) return row.repository === target.repository ? row : null;
    if (this.#sql.exec("SELECT 1 FROM ended").toArray().length > 0) return null;
    const session: SessionRow = {
      repository: target.repository,
      algorithm: target.algorithm,
      object_key: blobObjectKey(this.ctx.id.toString()),
      multipart_id: null,
      size: 0,
      part_count: 0,
    };
    this.#sql.exec(
      `INSERT INTO session (id, repository, algorithm, object_key, size, part_count, created_at)
       VALUES (1, ?, ?, ?, 0, 0, ?)`,
      session.repository,
      session.algorithm,
      session.object_key,
      Date.now(),
    );
    return session;
  }

  #parts(): Part[] {
    return this.#sql
      .exec<{ number: number; etag: string }>("SELECT number, etag FROM parts ORDER BY number")
      .toArray()
      .map((p) => ({ partNumber: p.number, etag: p.etag }));
  }

  #tail(): Uint8Array {
    const rows = this.#sql.exec<{ bytes: ArrayBuffer }>("SELECT bytes FROM tail ORDER BY seq").toArray();
    if (rows.length === 1) return new Uint8Array(rows[0]!.bytes);
    const tail = new Uint8Array(rows.reduce((n, r) => n + r.bytes.byteLength, 0));
    let offset = 0;
    for (const { bytes } of rows) {
      tail.set(new Uint8Array(bytes), offset);
      offset += bytes.byteLength;
    }
    return tail;
  }

  /** Streams a request's bytes after the carried tail into parts; commits nothing. */
  async #write(session: SessionRow, body: ReadableStream<Uint8Array> | null): Promise<Written> {
    // Taken, not shared: only a commit hands the hash back, so a failed request leaves none behind.
    const hash = session.size === 0 ? { hasher: new Hasher(session.algorithm), through: 0 } : this.#hash?.through === session.size ? this.#hash : null;
    this.#hash = null;
    const carried = session.size === 0 ? new Uint8Array() : this.#tail();
    // The carried bytes were hashed when they arrived: hash only what follows them.
    let hashedAhead = carried.length;
    const hashNew = async (bytes: Uint8Array) => {
      await hash?.hasher.update(bytes.subarray(hashedAhead));
      hashedAhead = 0;
    };
    const parts: Part[] = [];
    let nextPart = session.part_count + 1;
    const { tail, received } = await cutIntoParts(body, carried, async (part) => {
      await hashNew(part);
      const upload = await this.#multipart(session);
      parts.push(await upload.uploadPart(nextPart++, part));
    });
    await hashNew(tail);
    return { parts, tail, received, hash: hash && { hasher: hash.hasher, through: session.size + received } };
  }

  /** The session's multipart upload, created when its first part is ready. */
  async #multipart(session: SessionRow): Promise<R2MultipartUpload> {
    if (session.multipart_id) return this.env.BLOBS.resumeMultipartUpload(session.object_key, session.multipart_id);
    const upload = await this.env.BLOBS.createMultipartUpload(session.object_key);
    // Recorded at once, so a failed request cannot orphan it.
    this.#sql.exec("UPDATE session SET multipart_id = ? WHERE id = 1", upload.uploadId);
    session.multipart_id = upload.uploadId;
    return upload;
  }

  /** Records a chunk; false when the session was cancelled while the chunk streamed. */
  #commit(written: Written): boolean {
    if (written.received === 0) return true;
    return this.ctx.storage.transactionSync(() => {
      const updated = this.#sql.exec("UPDATE session SET size = size + ?, part_count = part_count + ? WHERE id = 1", written.received, written.parts.length);
      if (updated.rowsWritten === 0) return false;
      for (const part of written.parts) {
        this.#sql.exec("INSERT OR REPLACE INTO parts (number, etag) VALUES (?, ?)", part.partNumber, part.etag);
      }
      this.#sql.exec("DELETE FROM tail");
      for (let offset = 0, seq = 0; offset < written.tail.length; offset += TAIL_ROW_BYTES, seq++) {
        this.#sql.exec("INSERT INTO tail (seq, bytes) VALUES (?, ?)", seq, written.tail.slice(offset, offset + TAIL_ROW_BYTES));
      }
      return true;
    });
  }

  async #reject(session: SessionRow, expected: Digest, actual: Digest | null): Promise<SessionResult<never>> {
    await this.#abortMultipart(session);
    this.#end();
    return { ok: false, code: "DIGEST_INVALID", detail: `expected ${expected}, the uploaded bytes are ${actual ?? "missing"}` };
  }

  async #abortMultipart(session: SessionRow): Promise<void> {
    if (!session.multipart_id) return;
    // Already completed or expired uploads cannot be aborted; R2 drops unfinished ones after 7 days anyway.
    await this.env.BLOBS.resumeMultipartUpload(session.object_key, session.multipart_id).abort().catch(() => {});
  }

  #end(): void {
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM session");
      this.#sql.exec("DELETE FROM parts");
      this.#sql.exec("DELETE FROM tail");
      this.#sql.exec("INSERT OR REPLACE INTO ended (id, at) VALUES (1, ?)", Date.now());
    });
  }
}

function unknownUpload(): SessionResult<never> {
  return { ok: false, code: "BLOB_UPLOAD_UNKNOWN", detail: "no such upload in this repository" };
}

function busy(size: number): SessionResult<never> {
  return { ok: false, code: "RANGE_INVALID", detail: "another request is writing to this upload", size };
}
