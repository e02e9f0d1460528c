import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { algorithmOf, digestBytes, digestStream, Hasher, hexOf, type Algorithm, type Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import type { QuotaCaps } from "../oci/quotas";
import { BlobStore } from "./blobs";
import { BodyOverflow, ByteSource, IncompleteBody } from "./byte-source";
import type { Database } from "./database";
import { UPLOAD_INTENT_MARGIN_MS } from "./intents";
import { blobObjectKey } from "./keys";
import { leaseBuffers, type Lease } from "./memory-budget";
import { Meter, meterD1, meterR2, type Metered } from "./meter";
import { BLOCK_BYTES, MAX_OBJECT_BYTES, putWhole } from "./object-writer";
import { cutIntoParts, firstBufferBytes, MAX_UPLOAD_BYTES } from "./part-writer";
import { refused, type UploadFailure, type UploadResult } from "./upload-result";
import { createUploadTables, UploadStateStore, type Part, type UploadState } from "./upload-state";

/**
 * Who a request acts for: the repository in its path, the algorithm to hash
 * with should this request be the session's first, and when its upload id
 * expires (milliseconds since the epoch).
 */
export interface SessionTarget {
  repository: RepositoryName;
  algorithm: Algorithm;
  expiresAt: number;
  /**
   * The most bytes the upload may hold under its namespace's quotas, as the
   * Worker read them for this request. A request that would pass it
   * discards the whole upload: nothing partial is kept.
   */
  maxBytes?: number;
  /** What the namespace's usage must stay within when the blob is recorded, as the Worker read it for this request. */
  caps?: QuotaCaps;
}

/** What a chunk's headers say of it: where it starts (Content-Range) and how long it is. */
export interface ChunkBounds {
  start?: number;
  length?: number;
}

type Receiving = Exclude<UploadState, { kind: "publishing" }>;
type WholeObject = Extract<UploadState, { kind: "object" }>;
type Publishing = Extract<UploadState, { kind: "publishing" }>;

/** A hash of the upload's first `through` bytes, still open for more. */
interface RunningHash {
  hasher: Hasher;
  through: number;
}

/** What a request's bytes did to a session in the parts layout, not yet committed. */
interface Written {
  next: Extract<UploadState, { kind: "parts" }>;
  newParts: Part[];
  tail: Uint8Array;
  /** The running hash, now covering every byte of the upload, when one was carried. */
  hash: RunningHash | null;
}

/**
 * What one call reaches storage through, metered for that call alone: calls
 * to one object interleave while one of them waits for R2 or D1.
 */
interface Io {
  meter: Meter;
  bucket: R2Bucket;
  blobs: BlobStore;
  state: UploadStateStore;
}

/** The isolate's upload buffers are all in use. */
class BuffersExhausted extends Error {}

/**
 * One blob upload, its state a union whose transitions upload-state.ts draws.
 * A first request that announces its length and no range (skopeo's PATCH,
 * containerd's and oras's PUT) streams into a single R2 object: one write
 * whatever the size. Otherwise, or once more bytes follow such an object, the
 * bytes go to an R2 multipart upload plus a tail after its last full part.
 *
 * Consistency: the object is single-threaded and turns away a second data
 * request while one streams, so bytes never interleave. A request commits its
 * new state in one transaction when it ends, and only if the upload was not
 * cancelled meanwhile; one that fails midway leaves the session as it found
 * it and removes what it wrote. A blob becomes visible when it is recorded in
 * D1, after its digest is verified. The session says it is publishing before
 * it records the blob, and from then on asks D1 before deleting anything, so
 * bytes that D1 points to are never deleted, whatever fails when.
 *
 * Each R2 key the upload writes is named in D1 as a write intent before its
 * first byte (intents.ts), expiring an hour after the upload does: the batch
 * that records the blob clears it. The session expires when its upload id
 * does: its alarm, set when it begins, aborts and deletes what it wrote
 * (except bytes D1 points to), forgets those intents, and deletes all of its
 * storage, tombstone included; a request after then is refused, whatever id
 * it carries.
 *
 * The digest is computed as bytes stream in, and the running hash stays in
 * memory between requests while the object lives. It is trusted only while it
 * covers exactly the committed bytes; when the object was evicted or a request
 * failed, completion hashes the assembled object instead.
 *
 * Each call answers with what it cost here (R2 and D1 operations, SQLite
 * rows, body bytes read), which the Worker adds to its request's meter; a
 * call that throws reports none.
 */
export class UploadSession extends DurableObject<Env> {
  /** The data request under way, if any. */
  #writing: Promise<unknown> | null = null;
  #hash: RunningHash | null = null;
  /** Set once the alarm began deleting the session: its tables are gone with the rest. */
  #expired = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    createUploadTables(ctx.storage);
  }

  status(target: SessionTarget): Promise<Metered<UploadResult<{ size: number }>>> {
    return this.#metered(async (io) => {
      const state = await this.#current(io, target);
      return state ? { ok: true, size: state.size } : refused({ reason: "unknown" });
    });
  }

  /**
   * PATCH: appends a chunk. A chunk that says where it starts must start where
   * the upload ends; one that says its length must bring exactly that many bytes.
   */
  append(target: SessionTarget, body: ReadableStream<Uint8Array> | null, chunk: ChunkBounds): Promise<Metered<UploadResult<{ size: number }>>> {
    return this.#metered(async (io) => {
      const state = await this.#current(io, target);
      if (!state) return refused({ reason: "unknown" });
      if (state.kind === "publishing") return refused({ reason: "completing", size: state.size });
      const refusal = await this.#refuseChunk(io, state, chunk, target);
      if (refusal) return refused(refusal);
      return this.#exclusive(io, state, chunk.length, target, async () => {
        // A chunk with a Content-Range is one of several; without one, a first request with a length usually brings the whole blob.
        if (state.kind === "empty" && chunk.start === undefined && fitsOneObject(chunk.length)) {
          const object = await this.#putObject(io, state, body, chunk.length);
          return { ok: true, size: object.size };
        }
        const written = await this.#writeParts(io, state, body, chunk.length, target);
        if (!(await this.#commitParts(io, state, written))) return refused({ reason: "unknown" });
        return { ok: true, size: written.next.size };
      });
    });
  }

  /**
   * PUT ?digest=: takes an optional last chunk, verifies the digest, and
   * publishes the blob.
   */
  complete(
    target: SessionTarget,
    digest: Digest,
    body: ReadableStream<Uint8Array> | null,
    chunk: ChunkBounds,
  ): Promise<Metered<UploadResult<{ digest: Digest; size: number }>>> {
    return this.#metered(async (io) => {
      // A completion interrupted after its bytes were verified is finished again: recording a blob twice changes nothing.
      const interrupted = this.#load(io, target);
      if (interrupted?.kind === "publishing" && digest === interrupted.digest) {
        if (this.#writing) return refused({ reason: "busy", size: interrupted.size });
        return this.#exclusive(io, interrupted, undefined, {}, () => this.#publish(io, interrupted, target));
      }
      const state = await this.#current(io, target);
      if (!state) return refused({ reason: "unknown" });
      if (state.kind === "publishing") return refused({ reason: "digest-mismatch", expected: digest, actual: state.digest });
      const refusal = await this.#refuseChunk(io, state, chunk, target);
      if (refusal) return refused(refusal);
      return this.#exclusive(io, state, chunk.length, target, async () => {
        const assembled = await this.#assemble(io, state, digest, body, chunk, target);
        if (!assembled) return refused({ reason: "unknown" });
        const { object, known } = assembled;
        const actual = known ?? (await this.#digestOf(io, object, algorithmOf(digest)));
        if (actual !== digest) {
          await this.#discard(io, object);
          return refused({ reason: "digest-mismatch", expected: digest, actual });
        }
        const publishing: Publishing = { ...object, kind: "publishing", digest };
        if (!io.state.save(publishing)) {
          await io.bucket.delete(this.#key(object));
          return refused({ reason: "unknown" });
        }
        return this.#publish(io, publishing, target);
      });
    });
  }

  /** DELETE: abandons the upload and its bytes, except bytes that D1 already points to. */
  cancel(target: SessionTarget): Promise<Metered<UploadResult<object>>> {
    return this.#metered(async (io) => {
      for (;;) {
        const state = this.#load(io, target);
        if (!state) return refused({ reason: "unknown" });
        // A cancel wins over a chunk still streaming: the chunk finds the upload gone when it commits.
        if (state.kind !== "publishing") {
          await this.#discard(io, state);
          return { ok: true };
        }
        // A completion that got as far as D1 is waited for, not cut short.
        if (this.#writing) {
          await this.#writing.catch(() => {});
          continue;
        }
        // Alone, so no completion can record these bytes between D1's answer and their deletion.
        return this.#exclusive(io, state, undefined, {}, async () => {
          if ((await io.blobs.objectKeyOf(state.digest)) === this.#key(state)) {
            io.state.end();
            return refused({ reason: "unknown" });
          }
          await this.#discard(io, state);
          return { ok: true };
        });
      }
    });
  }

  /**
   * The upload expired (the alarm is set for when its id does): removes what
   * it wrote, except bytes that D1 points to, forgets their intents, and
   * deletes all of the object's storage, the alarm with it.
   */
  override async alarm(): Promise<void> {
    await this.#metered(async (io) => {
      // A request still streaming ends first, so its bytes are in the state when it is read.
      while (this.#writing) await this.#writing.catch(() => {});
      this.#expired = true;
      const state = io.state.load();
      if (state !== null && state !== "ended" && state.kind !== "empty") {
        const published = state.kind === "publishing" && (await io.blobs.objectKeyOf(state.digest)) === this.#key(state);
        if (state.kind === "parts") await this.#abortMultipart(io, state);
        // Every key the upload may have written (an object read into parts was deleted already; deleting is free).
        const keys = Array.from({ length: state.revision + 1 }, (_, revision) => blobObjectKey(this.ctx.id.toString(), revision));
        const unpublished = published ? keys.slice(0, -1) : keys;
        if (unpublished.length > 0) {
          await io.bucket.delete(unpublished);
          await io.blobs.forgetIntents(unpublished);
        }
      }
      // Under this compatibility date deleteAll() deletes the alarm too.
      await this.ctx.storage.deleteAll();
    });
  }

  /** Runs a call with storage metered for it alone, and answers with what it cost. */
  async #metered<T>(call: (io: Io) => Promise<T>): Promise<Metered<T>> {
    const meter = new Meter();
    const bucket = meterR2(this.env.BLOBS, meter);
    const io: Io = {
      meter,
      bucket,
      blobs: this.blobStore(meterD1(this.env.DB, meter), bucket),
      state: new UploadStateStore(this.ctx.storage, meter),
    };
    const result = await call(io);
    return { result, cost: meter.cost };
  }

  /** Where the session records blobs in D1 (tests replace it to intercept a recording). */
  protected blobStore(db: Database, bucket: R2Bucket): BlobStore {
    // Not a request's session: the binding itself, whose queries go to the primary.
    return new BlobStore({ db, primary: null }, bucket);
  }

  /**
   * The session a request acts on: begun by the upload's first request, null
   * once ended, expired (even if the id still says otherwise) or for another
   * repository.
   */
  #load(io: Io, target: SessionTarget): UploadState | null {
    if (this.#expired) return null;
    const state = io.state.load();
    if (state === "ended") return null;
    if (state === null) {
      if (Date.now() >= target.expiresAt) return null;
      // Not awaited, so loading stays synchronous: the output gate holds the response until the alarm is stored.
      void this.ctx.storage.setAlarm(target.expiresAt);
      return io.state.begin(target.repository, target.algorithm, target.expiresAt);
    }
    return state.repository === target.repository && Date.now() < state.expiresAt ? state : null;
  }

  /**
   * The session, once a publishing one has learnt from D1 whether it already
   * published: D1 wins, and a published session ends.
   */
  async #current(io: Io, target: SessionTarget): Promise<UploadState | null> {
    const state = this.#load(io, target);
    if (state?.kind !== "publishing" || (await io.blobs.objectKeyOf(state.digest)) !== this.#key(state)) return state;
    io.state.end();
    return null;
  }

  /** Refuses a chunk before reading it; one that announces more than the quota leaves allows ends the upload. */
  async #refuseChunk(io: Io, state: Receiving, chunk: ChunkBounds, target: SessionTarget): Promise<UploadFailure | null> {
    if (this.#writing) return { reason: "busy", size: state.size };
    if (chunk.start !== undefined && chunk.start !== state.size) return { reason: "out-of-order", size: state.size, start: chunk.start };
    if (state.size + (chunk.length ?? 0) > MAX_UPLOAD_BYTES) return { reason: "too-large", size: state.size, limit: MAX_UPLOAD_BYTES };
    if (target.maxBytes !== undefined && state.size + (chunk.length ?? 0) > target.maxBytes) {
      await this.#discard(io, state);
      return { reason: "over-quota" };
    }
    return null;
  }

  /**
   * Runs a data request alone, and turns what went wrong with its body or
   * with the isolate's memory into a refusal that leaves the session as it
   * was; a body that passes the quota ends it instead.
   */
  async #exclusive<T>(
    io: Io,
    state: UploadState,
    announced: number | undefined,
    { maxBytes }: Pick<SessionTarget, "maxBytes">,
    run: () => Promise<UploadResult<T>>,
  ): Promise<UploadResult<T>> {
    const running = run();
    this.#writing = running;
    try {
      return await running;
    } catch (error) {
      const { size } = state;
      if (error instanceof IncompleteBody) return refused({ reason: "incomplete-body", size, received: error.received, ...(announced === undefined ? {} : { announced }) });
      if (error instanceof BodyOverflow) {
        if (announced !== undefined) return refused({ reason: "overflow", size, announced });
        // A body of unknown length passed the quota: the upload goes, with what it held (this request's own parts are aborted already).
        if (maxBytes !== undefined && maxBytes < MAX_UPLOAD_BYTES) {
          await this.#discard(io, state);
          return refused({ reason: "over-quota" });
        }
        return refused({ reason: "too-large", size, limit: MAX_UPLOAD_BYTES });
      }
      if (error instanceof BuffersExhausted) return refused({ reason: "out-of-memory", size });
      // Cancelled while this request ran: what it was writing to is gone.
      if (io.state.load() === "ended") return refused({ reason: "unknown" });
      throw error;
    } finally {
      this.#writing = null;
    }
  }

  /** Names a key in D1 before its first byte is written: until an hour after the upload expires, so the alarm cleans up first. */
  async #recordIntent(io: Io, key: string, state: UploadState): Promise<void> {
    await io.blobs.recordIntent(key, state.expiresAt + UPLOAD_INTENT_MARGIN_MS);
  }

  /** The R2 key of the state's bytes. */
  #key(state: UploadState): string {
    return blobObjectKey(this.ctx.id.toString(), state.revision);
  }

  /**
   * Streams a first request that brings the whole blob, `length` bytes, into
   * one R2 object, and commits the object layout.
   */
  async #putObject(io: Io, state: Extract<UploadState, { kind: "empty" }>, body: ReadableStream<Uint8Array> | null, length: number): Promise<WholeObject> {
    const object: WholeObject = { ...state, kind: "object", size: length };
    const hasher = new Hasher(state.algorithm);
    this.#hash = null;
    await this.#recordIntent(io, this.#key(object), state);
    await this.#withBuffers(Math.min(BLOCK_BYTES, length), () => putWhole(io.bucket, this.#key(object), new ByteSource(null, body, length, io.meter), length, { hasher }));
    if (!io.state.save(object)) {
      await io.bucket.delete(this.#key(object));
      throw new Error("cancelled");
    }
    this.#hash = { hasher, through: length };
    return object;
  }

  /**
   * Streams a request's bytes into parts after what the session holds (its
   * tail, or its whole object, read into parts under the next revision);
   * commits nothing, and leaves no multipart upload behind if it fails.
   */
  async #writeParts(io: Io, state: Receiving, body: ReadableStream<Uint8Array> | null, announced: number | undefined, { maxBytes }: Pick<SessionTarget, "maxBytes">): Promise<Written> {
    // Taken, not shared: only a commit hands the hash back, so a failed request leaves none behind.
    const hash = state.size === 0 ? { hasher: new Hasher(state.algorithm), through: 0 } : this.#hash?.through === state.size ? this.#hash : null;
    this.#hash = null;
    const converting = state.kind === "object";
    const stored = converting ? await this.#read(io, state) : null;
    const carried = state.kind === "parts" ? io.state.tail() : new Uint8Array();
    const revision = converting ? state.revision + 1 : state.revision;
    const key = blobObjectKey(this.ctx.id.toString(), revision);
    let multipartId = state.kind === "parts" ? state.multipartId : null;
    let created: R2MultipartUpload | null = null;
    const newParts: Part[] = [];
    let nextPart = (state.kind === "parts" ? state.partCount : 0) + 1;
    // The session's bytes were hashed when they arrived: hash only what follows them.
    let hashedAhead = converting ? state.size : carried.length;
    const hashNew = async (bytes: Uint8Array) => {
      const skip = Math.min(hashedAhead, bytes.length);
      hashedAhead -= skip;
      await hash?.hasher.update(bytes.subarray(skip));
    };
    const source = new ByteSource(stored, body, announced ?? Math.min(MAX_UPLOAD_BYTES, maxBytes ?? Infinity) - state.size, io.meter);
    const expected = announced === undefined ? undefined : (converting ? state.size : 0) + announced;
    try {
      const tail = await this.#withBuffers(firstBufferBytes(carried.length, expected), (lease) =>
        cutIntoParts(source, carried, expected, lease, async (part) => {
          await hashNew(part);
          if (!multipartId) {
            await this.#recordIntent(io, key, state);
            created = await io.bucket.createMultipartUpload(key);
            multipartId = created.uploadId;
          }
          newParts.push(await io.bucket.resumeMultipartUpload(key, multipartId).uploadPart(nextPart++, part));
        }),
      );
      await hashNew(tail);
      const size = state.size + source.bodyBytes;
      if (announced !== undefined && source.bodyBytes !== announced) throw new IncompleteBody(source.bodyBytes);
      return {
        next: { kind: "parts", repository: state.repository, algorithm: state.algorithm, revision, expiresAt: state.expiresAt, size, multipartId, partCount: nextPart - 1 },
        newParts,
        tail,
        hash: hash && { hasher: hash.hasher, through: size },
      };
    } catch (error) {
      await (created as R2MultipartUpload | null)?.abort().catch(() => {});
      throw error;
    }
  }

  /** Commits written parts; false, and what they wrote removed, when the upload was cancelled meanwhile. */
  async #commitParts(io: Io, state: Receiving, written: Written): Promise<boolean> {
    // Nothing arrived: nothing to commit (an object read into parts has moved, though).
    if (written.next.size === state.size && state.kind !== "object") {
      this.#hash = written.hash;
      return true;
    }
    if (!io.state.save(written.next, written.newParts, written.tail)) {
      await this.#abortMultipart(io, written.next);
      return false;
    }
    this.#hash = written.hash;
    // The parts now hold the bytes of the whole object they took over.
    if (state.kind === "object") await io.bucket.delete(this.#key(state));
    return true;
  }

  /**
   * Puts every byte of the upload into one R2 object, taking the request's
   * body as its last chunk, and commits the object layout: the whole blob in
   * one put when this request brings all of it with its length; otherwise
   * parts, completed. Returns its digest too when a running hash of the
   * digest's algorithm covered every byte; null when cancelled meanwhile.
   */
  async #assemble(
    io: Io,
    state: Receiving,
    digest: Digest,
    body: ReadableStream<Uint8Array> | null,
    chunk: ChunkBounds,
    target: SessionTarget,
  ): Promise<{ object: WholeObject; known: Digest | null } | null> {
    const algorithm = algorithmOf(digest);
    const settled = async (hash: RunningHash | null) => (hash?.hasher.algorithm === algorithm ? hash.hasher.digest() : null);
    if (state.kind === "empty" && fitsOneObject(chunk.length)) {
      const object = await this.#putObject(io, state, body, chunk.length);
      return { object, known: await settled(this.#takeHash(object)) };
    }
    if (state.kind === "object" && (body === null || chunk.length === 0)) return { object: state, known: await settled(this.#takeHash(state)) };

    const written = await this.#writeParts(io, state, body, chunk.length, target);
    const { next, tail } = written;
    const object: WholeObject = { kind: "object", repository: next.repository, algorithm: next.algorithm, revision: next.revision, expiresAt: next.expiresAt, size: next.size };
    const parts = [...(state.kind === "parts" ? io.state.parts() : []), ...written.newParts];
    let known = await settled(written.hash);
    if (parts.length === 0) {
      known ??= await digestBytes(algorithm, tail);
      await this.#recordIntent(io, this.#key(object), state);
      // R2 checks the bytes against the digest as it stores them.
      await io.bucket.put(this.#key(object), tail, { [algorithm]: hexOf(known) });
    } else {
      const upload = io.bucket.resumeMultipartUpload(this.#key(object), next.multipartId!);
      if (tail.length > 0) parts.push(await upload.uploadPart(parts.length + 1, tail));
      await upload.complete(parts);
    }
    if (!io.state.save(object)) {
      await io.bucket.delete(this.#key(object));
      return null;
    }
    // The object now holds the bytes of the whole object its parts took over.
    if (state.kind === "object") await io.bucket.delete(this.#key(state));
    return { object, known };
  }

  #takeHash(object: WholeObject): RunningHash | null {
    const hash = this.#hash?.through === object.size ? this.#hash : null;
    this.#hash = null;
    return hash;
  }

  /** Hashes an assembled object once, when no running hash survived (eviction, a failed request). */
  async #digestOf(io: Io, object: WholeObject, algorithm: Algorithm): Promise<Digest | null> {
    const stored = await io.bucket.get(this.#key(object));
    return stored ? digestStream(algorithm, stored.body) : null;
  }

  async #read(io: Io, object: WholeObject): Promise<ReadableStream<Uint8Array>> {
    const stored = await io.bucket.get(this.#key(object));
    if (!stored) throw new Error(`upload object ${this.#key(object)} is missing from R2`);
    return stored.body;
  }

  /**
   * Records the verified blob in D1, where the first copy of a digest wins:
   * a later copy is deleted, as is one the namespace's caps refuse (unless D1
   * points to it). Ends the session.
   */
  async #publish(io: Io, state: Publishing, { caps }: Pick<SessionTarget, "caps">): Promise<UploadResult<{ digest: Digest; size: number }>> {
    const key = this.#key(state);
    const registration = await io.blobs.register(state.repository, { digest: state.digest, size: state.size, objectKey: key }, caps);
    if ("refused" in registration) {
      // An earlier completion, its answer lost, may have recorded these very bytes (the repository let go of them since): they stay.
      if (registration.recordedKey === key) io.state.end();
      else await this.#discard(io, state);
      return refused({ reason: "quota-reached", bytes: state.size, usage: registration.refused });
    }
    if (registration.stored !== key) await io.bucket.delete(key);
    io.state.end();
    return { ok: true, digest: state.digest, size: state.size };
  }

  /** Removes the upload's bytes and ends it; bytes of a publishing session only once D1 said it does not point to them. */
  async #discard(io: Io, state: UploadState): Promise<void> {
    if (state.kind === "parts") await this.#abortMultipart(io, state);
    else if (state.kind !== "empty") await io.bucket.delete(this.#key(state));
    io.state.end();
  }

  async #abortMultipart(io: Io, state: Extract<UploadState, { kind: "parts" }>): Promise<void> {
    if (!state.multipartId) return;
    // Already completed or expired uploads cannot be aborted; R2 drops unfinished ones after 7 days anyway.
    await io.bucket.resumeMultipartUpload(this.#key(state), state.multipartId).abort().catch(() => {});
  }

  /** Runs `write` with a lease of `bytes` of the isolate's upload buffers, or throws BuffersExhausted. */
  async #withBuffers<T>(bytes: number, write: (lease: Lease) => Promise<T>): Promise<T> {
    const lease = leaseBuffers(bytes);
    if (!lease) throw new BuffersExhausted();
    try {
      return await write(lease);
    } finally {
      lease.release();
    }
  }
}

/** Whether a first request of this announced length goes to R2 as one object. */
function fitsOneObject(length: number | undefined): length is number {
  return length !== undefined && length > 0 && length <= MAX_OBJECT_BYTES;
}
