import type { Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import type { QuotaCaps } from "../oci/quotas";
import type { BlobStore, Registration } from "./blobs";
import { BodyOverflow, ByteSource, IncompleteBody } from "./byte-source";
import { REQUEST_INTENT_MARGIN_MS } from "./intents";
import { leaseBuffers } from "./memory-budget";
import type { Meter } from "./meter";
import { BLOCK_BYTES, DigestMismatch, putWhole, type WholeOptions } from "./object-writer";
import { refused, type UploadFailure, type UploadResult } from "./upload-result";

/** What the Worker writes through, counted on the request's meter. */
export interface DirectIo {
  bucket: R2Bucket;
  blobs: BlobStore;
  meter: Meter;
}

/** What can be wrong with a body, or with the memory to take it. */
type BodyFailure = Extract<UploadFailure, { reason: "out-of-memory" | "incomplete-body" | "overflow" }>;

/**
 * Streams a body that announced `length` bytes from the Worker into a new R2
 * object at `key`, holding one block of the isolate's upload buffers. Null
 * once stored; else what was wrong, nothing stored (`size` 0: the caller
 * knows what its upload holds). A DigestMismatch when R2 refused the bytes.
 */
export async function writeObject(io: Omit<DirectIo, "blobs">, key: string, body: ReadableStream<Uint8Array> | null, length: number, options: WholeOptions): Promise<BodyFailure | null> {
  const lease = leaseBuffers(Math.min(BLOCK_BYTES, length));
  if (!lease) return { reason: "out-of-memory", size: 0 };
  try {
    await putWhole(io.bucket, key, new ByteSource(null, body, length, io.meter), length, options);
    return null;
  } catch (error) {
    if (error instanceof IncompleteBody) return { reason: "incomplete-body", size: 0, received: error.received, announced: length };
    if (error instanceof BodyOverflow) return { reason: "overflow", size: 0, announced: length };
    throw error;
  } finally {
    lease.release();
  }
}

/**
 * A push that brings the whole blob, its length and its digest in one
 * request needs no upload session: the Worker streams the body straight into
 * a fresh R2 object at `key`, R2 checks the digest as it stores the bytes (and
 * stores nothing if they differ), and D1 records the blob, which makes it
 * visible. No byte crosses to a Durable Object, and none is asked anything.
 *
 * The key is named in D1 as a write intent before the first byte, and the
 * batch that records the blob clears it: a push that stops between R2 and D1
 * leaves the intent, and garbage collection the object. The first copy of a
 * digest that D1 records wins and a later one is deleted, as is one that the
 * namespace's `caps` refuse (each keeping its intent, in case the deletion
 * never happens). When recording fails, the object is deleted unless D1
 * points to it (the record committed but its answer was lost): published
 * bytes are never deleted.
 */
export async function pushWhole(
  io: DirectIo,
  target: { repository: RepositoryName; key: string; caps?: QuotaCaps },
  digest: Digest,
  body: ReadableStream<Uint8Array> | null,
  length: number,
): Promise<UploadResult<{ digest: Digest; size: number }>> {
  const { repository, key, caps } = target;
  const { bucket, blobs } = io;
  await blobs.recordIntent(key, Date.now() + REQUEST_INTENT_MARGIN_MS);
  try {
    const failure = await writeObject(io, key, body, length, { expected: digest });
    if (failure) return refused(failure);
  } catch (error) {
    if (error instanceof DigestMismatch) return refused({ reason: "digest-mismatch", expected: digest });
    throw error;
  }
  let registration: Registration;
  try {
    registration = await blobs.register(repository, { digest, size: length, objectKey: key }, caps);
  } catch (error) {
    // Unless D1 says it points elsewhere, the record may have committed: the object stays.
    // (A write request's queries go to the primary, so this reads what the record did.)
    if ((await blobs.objectKeyOf(digest).catch(() => key)) !== key) await bucket.delete(key);
    throw error;
  }
  if ("refused" in registration) {
    // The key is this push's own: D1 points to it only if this batch recorded the blob, which it did not.
    await bucket.delete(key);
    return refused({ reason: "quota-reached", bytes: length, usage: registration.refused });
  }
  if (registration.stored !== key) await bucket.delete(key);
  return { ok: true, digest, size: length };
}
