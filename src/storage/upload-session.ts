import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { algorithmOf, digestBytes, digestStream, Hasher, hexOf, type Algorithm, type Digest } from "../oci/digest";
import type { ErrorCode } from "../oci/errors";
import type { RepositoryName } from "../oci/names";
import { BlobStore } from "./blobs";
import { blobObjectKey } from "./keys";
import { putWhole } from "./object-writer";
import { cutIntoParts } from "./part-writer";

/** What a session method answers: a value, or an error for the route to raise. */
export type SessionResult<T> =
  | ({ ok: true } & T)
  | { ok: false; code: ErrorCode; detail: string; /** bytes received, for a Range header */ size?: number };

/**
 * Where a session's committed bytes are. "parts": an R2 multipart upload (its
 * parts recorded here) plus the tail in this object's SQLite. "object": one
 * complete R2 object, written by a first request that brought its length.
 */
type Layout = "parts" | "object";

type SessionRow = {
  repository: RepositoryName;
  algorithm: Algorithm;
  layout: Layout;
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

/** The bytes of a finished upload in R2, not yet verified or published. */
interface Assembled {
  key: string;
  size: number;
  /** Its digest, when a running hash of the asked algorithm covered every byte. */
  known: Digest | null;
}

/** A hash of the upload's first `through` bytes, still open for more. */
interface RunningHash {
  hasher: Hasher;
  through: number;
}

// Tail bytes are kept in rows of this size (a Durable Object row holds at most 2 MB).
const TAIL_ROW_BYTES = 1024 * 1024;

// R2's largest single put (5 GiB less 5 MiB); a longer first request goes to parts.
const MAX_OBJECT_BYTES = 5 * 1024 ** 3 - 5 * 1024 ** 2;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    repository TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    layout TEXT NOT NULL DEFAULT 'parts' CHECK (layout IN ('parts', 'object')),
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
 * One blob upload. A first request that announces its length and no range
 * (skopeo's PATCH, containerd's and oras's PUT) streams into a single R2
 * object: one write whatever the size. Otherwise, or once more bytes follow
 * such an object, the bytes go to an R2 multipart upload plus a tail after its
 * last full part.
 *
 * POST only draws the object's id, so the session begins with its first
 * request and binds to that request's repository; once completed or cancelled
 * it leaves a tombstone, so its id never opens a session again.
 *
 * Consistency: the object is single-threaded and `#busy` turns away a second
 * data request while one streams, so bytes never interleave; a request commits
 * its layout, parts, tail and size in one transaction when it ends, so one
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
      // A chunk with a Content-Range is one of several; without one, a first PATCH usually brings the whole blob.
      if (session.size === 0 && chunk.start === undefined && fitsOneObject(chunk.length)) {
        const put = await this.#putObject(session, body, chunk.length);
        if (put.received !== chunk.length) return sizeMismatch(chunk.length, put.received, session.size);
        if (!(await this.#commitObject(session, put.received))) return unknownUpload();
        this.#hash = put.hash;
        return { ok: true, size: put.received };
      }
      const written = await this.#write(session, body);
      if (chunk.length !== undefined && written.received !== chunk.length) return sizeMismatch(chunk.length, written.received, session.size);
      if (!(await this.#commit(session, written))) return unknownUpload();
      this.#hash = written.hash;
      return { ok: true, size: session.size + written.received };
    } finally {
      this.#busy = false;
    }
  }

  /** PUT ?digest=: takes an optional last chunk (`length` from its Content-Length), verifies the digest, and publishes the blob. */
  async complete(
    target: SessionTarget,
    digest: Digest,
    body: ReadableStream<Uint8Array> | null,
    length?: number,
  ): Promise<SessionResult<{ digest: Digest; size: number }>> {
    const session = this.#session(target);
    if (!session) return unknownUpload();
    if (this.#busy) return busy(session.size);
    this.#busy = true;
    try {
      const assembled = await this.#assemble(session, digest, body, length);
      if (!assembled.ok) return assembled;
      const { key, size, known } = assembled;
      const actual = known ?? (await this.#digestOf(key, algorithmOf(digest)));
      if (actual !== digest) {
        await this.env.BLOBS.delete(key);
        return this.#reject(session, digest, actual);
      }
      const storedKey = await this.#blobs.register(session.repository, { digest, size, objectKey: key });
      // Another upload published the same bytes first: keep one copy.
      if (storedKey !== key) await this.env.BLOBS.delete(key);
      // The parts took over a whole object (it was read into them under a new key).
      if (key !== session.object_key) await this.env.BLOBS.delete(session.object_key);
      this.#end();
      return { ok: true, digest, size };
    } finally {
      this.#busy = false;
    }
  }

  /** DELETE: abandons the upload and its bytes. */
  async cancel(target: SessionTarget): Promise<SessionResult<object>> {
    const session = this.#session(target);
    if (!session) return unknownUpload();
    await this.#discard(session);
    this.#end();
    return { ok: true };
  }

  /**
   * Puts every byte of the upload into one R2 object, taking the request's
   * body as its last chunk: the whole blob in one put when this request brings
   * all of it with its length; otherwise parts, completed. Verifies the digest
   * before writing when the running hash already tells it.
   */
  async #assemble(session: SessionRow, digest: Digest, body: ReadableStream<Uint8Array> | null, length?: number): Promise<SessionResult<Assembled>> {
    const algorithm = algorithmOf(digest);
    const settled = async (hash: RunningHash | null) => (hash?.hasher.algorithm === algorithm ? hash.hasher.digest() : null);
    if (session.size === 0 && fitsOneObject(length)) {
      const put = await this.#putObject(session, body, length);
      if (put.received !== length) return sizeMismatch(length, put.received, session.size);
      await this.#abortMultipart(session);
      return { ok: true, key: session.object_key, size: length, known: await settled(put.hash) };
    }
    if (session.layout === "object" && (body === null || length === 0)) {
      const hash = this.#hash?.through === session.size ? this.#hash : null;
      this.#hash = null;
      return { ok: true, key: session.object_key, size: session.size, known: await settled(hash) };
    }

    const written = await this.#write(session, body);
    if (length !== undefined && written.received !== length) return sizeMismatch(length, written.received, session.size);
    const key = this.#partsKey(session);
    const parts = [...this.#parts(), ...written.parts];
    const size = session.size + written.received;
    const known = await settled(written.hash);
    if (known && known !== digest) return this.#reject(session, digest, known);
    if (parts.length === 0) {
      const actual = known ?? (await digestBytes(algorithm, written.tail));
      if (actual !== digest) return this.#reject(session, digest, actual);
      // R2 checks the digest again as it stores the bytes.
      await this.env.BLOBS.put(key, written.tail, { [algorithm]: hexOf(digest) });
      // A multipart upload left by a request that failed before committing a part.
      await this.#abortMultipart(session);
      return { ok: true, key, size, known: actual };
    }
    const upload = this.env.BLOBS.resumeMultipartUpload(key, session.multipart_id!);
    if (written.tail.length > 0) parts.push(await upload.uploadPart(parts.length + 1, written.tail));
    await upload.complete(parts);
    return { ok: true, key, size, known };
  }

  /** Reads an assembled object once, when no running hash survived (eviction, a failed request). */
  async #digestOf(key: string, algorithm: Algorithm): Promise<Digest | null> {
    const object = await this.env.BLOBS.get(key);
    return object ? digestStream(algorithm, object.body) : null;
  }

  #session(target: SessionTarget): SessionRow | null {
    const row = this.#sql.exec<SessionRow>("SELECT * FROM session WHERE id = 1").toArray()[0];
    if (row) return row.repository === target.repository ? row : null;
    if (this.#sql.exec("SELECT 1 FROM ended").toArray().length > 0) return null;
    const session: SessionRow = {
      repository: target.repository,
      algorithm: target.algorithm,
      layout: "parts",
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

  /** Streams a request that brings the upload's first bytes, `length` of them, into one R2 object; commits nothing. */
  async #putObject(session: SessionRow, body: ReadableStream<Uint8Array> | null, length: number): Promise<{ received: number; hash: RunningHash | null }> {
    const hasher = new Hasher(session.algorithm);
    const received = await putWhole(this.env.BLOBS, session.object_key, body, length, hasher);
    return { received, hash: received === length ? { hasher, through: length } : null };
  }

  /**
   * Streams a request's bytes into parts after what the session holds (its
   * tail, or its whole object, which is read into parts under a new key: R2
   * takes about one write a second to a key); commits nothing.
   */
  async #write(session: SessionRow, body: ReadableStream<Uint8Array> | null): Promise<Written> {
    // Taken, not shared: only a commit hands the hash back, so a failed request leaves none behind.
    const hash = session.size === 0 ? { hasher: new Hasher(session.algorithm), through: 0 } : this.#hash?.through === session.size ? this.#hash : null;
    this.#hash = null;
    const converting = session.layout === "object";
    const prefix = converting ? await this.#read(session.object_key) : null;
    const carried = converting || session.size === 0 ? new Uint8Array() : this.#tail();
    // The session's bytes were hashed when they arrived: hash only what follows them.
    let hashedAhead = converting ? session.size : carried.length;
    const hashNew = async (bytes: Uint8Array) => {
      const skip = Math.min(hashedAhead, bytes.length);
      hashedAhead -= skip;
      await hash?.hasher.update(bytes.subarray(skip));
    };
    const parts: Part[] = [];
    let nextPart = session.part_count + 1;
    const cut = await cutIntoParts(concat(prefix, body), carried, async (part) => {
      await hashNew(part);
      const upload = await this.#multipart(session);
      parts.push(await upload.uploadPart(nextPart++, part));
    });
    await hashNew(cut.tail);
    const received = cut.received - (converting ? session.size : 0);
    return {
      parts,
      tail: cut.tail,
      received,
      hash: hash && { hasher: hash.hasher, through: session.size + received },
    };
  }

  async #read(key: string): Promise<ReadableStream<Uint8Array>> {
    const object = await this.env.BLOBS.get(key);
    if (!object) throw new Error(`upload object ${key} is missing from R2`);
    return object.body;
  }

  /** Where the session's parts go: its key, or a new one when they take over a whole object. */
  #partsKey(session: SessionRow): string {
    return session.layout === "object" ? blobObjectKey(this.ctx.id.toString(), 1) : session.object_key;
  }

  /** The session's multipart upload, created when its first part is ready. */
  async #multipart(session: SessionRow): Promise<R2MultipartUpload> {
    const key = this.#partsKey(session);
    if (session.multipart_id) return this.env.BLOBS.resumeMultipartUpload(key, session.multipart_id);
    const upload = await this.env.BLOBS.createMultipartUpload(key);
    // Recorded at once, so a failed request cannot orphan it.
    this.#sql.exec("UPDATE session SET multipart_id = ? WHERE id = 1", upload.uploadId);
    session.multipart_id = upload.uploadId;
    return upload;
  }

  /** Records a whole-object first chunk; false (and the object gone) when the session was cancelled meanwhile. */
  async #commitObject(session: SessionRow, size: number): Promise<boolean> {
    // A multipart upload left by a request that failed before committing a part.
    await this.#abortMultipart(session);
    const updated = this.#sql.exec("UPDATE session SET size = ?, layout = 'object', multipart_id = NULL WHERE id = 1", size);
    if (updated.rowsWritten > 0) return true;
    await this.env.BLOBS.delete(session.object_key);
    return false;
  }

  /** Records a chunk; false when the session was cancelled while the chunk streamed. */
  async #commit(session: SessionRow, written: Written): Promise<boolean> {
    if (written.received === 0) return true;
    const partsKey = this.#partsKey(session);
    const committed = this.ctx.storage.transactionSync(() => {
      const updated = this.#sql.exec(
        "UPDATE session SET size = size + ?, part_count = part_count + ?, layout = 'parts', object_key = ? WHERE id = 1",
        written.received,
        written.parts.length,
        partsKey,
      );
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
    // The parts now hold the bytes of the whole object they took over.
    if (committed && partsKey !== session.object_key) await this.env.BLOBS.delete(session.object_key);
    return committed;
  }

  async #reject(session: SessionRow, expected: Digest, actual: Digest | null): Promise<SessionResult<never>> {
    await this.#discard(session);
    this.#end();
    return { ok: false, code: "DIGEST_INVALID", detail: `expected ${expected}, the uploaded bytes are ${actual ?? "missing"}` };
  }

  /** Drops the session's unpublished bytes: its whole object, or its multipart upload. */
  async #discard(session: SessionRow): Promise<void> {
    if (session.layout === "object") await this.env.BLOBS.delete(session.object_key);
    await this.#abortMultipart(session);
  }

  async #abortMultipart(session: SessionRow): Promise<void> {
    if (!session.multipart_id) return;
    // Already completed or expired uploads cannot be aborted; R2 drops unfinished ones after 7 days anyway.
    await this.env.BLOBS.resumeMultipartUpload(this.#partsKey(session), session.multipart_id).abort().catch(() => {});
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

function sizeMismatch(announced: number, received: number, size: number): SessionResult<never> {
  return { ok: false, code: "SIZE_INVALID", detail: `the request announced ${announced} bytes and brought ${received}`, size };
}

/** Whether a first request of this announced length goes to R2 as one object. */
function fitsOneObject(length: number | undefined): length is number {
  return length !== undefined && length > 0 && length <= MAX_OBJECT_BYTES;
}

/** The session's bytes followed by the request's, as one source. */
async function* concat(...sources: (ReadableStream<Uint8Array> | null)[]): AsyncGenerator<Uint8Array> {
  for (const source of sources) if (source) yield* source;
}

function busy(size: number): SessionResult<never> {
  return { ok: false, code: "RANGE_INVALID", detail: "another request is writing to this upload", size };
}
