import { algorithmOf, hexOf, type Digest, type Hasher } from "../oci/digest";
import { IncompleteBody, type ByteSource } from "./byte-source";

/** What the put is fed at a time: a chunk at a time through the hash and the put's writer costs several times more. */
export const BLOCK_BYTES = 1024 * 1024;

/** R2's largest single put (5 GiB less 5 MiB); longer blobs go to parts. */
export const MAX_OBJECT_BYTES = 5 * 1024 ** 3 - 5 * 1024 ** 2;

/** R2 stored nothing: the bytes do not have the digest the put named. */
export class DigestMismatch extends Error {}

// R2's error code for a checksum that does not match the bytes (BadDigest) ends the binding's error message.
const BAD_DIGEST = /\(10037\)$/;

export interface WholeOptions {
  /** Sees every byte on the way. */
  hasher?: Hasher;
  /** The digest R2 checks the bytes against as it stores them: it stores nothing if they differ (a DigestMismatch). */
  expected?: Digest;
}

/**
 * Streams a body that announced `length` bytes into one R2 object at `key`,
 * one block at a time in a single reused buffer: a write resolves once the
 * put has taken the block's bytes, and the put's pace holds the body back, so
 * memory stays at one block whatever the size. Stores nothing unless the body
 * brings exactly `length` bytes (the put is aborted): an IncompleteBody or
 * BodyOverflow says what went wrong.
 */
export async function putWhole(bucket: R2Bucket, key: string, source: ByteSource, length: number, { hasher, expected }: WholeOptions = {}): Promise<void> {
  const sized = new FixedLengthStream(length);
  const writer = sized.writable.getWriter();
  const stored = bucket.put(key, sized.readable, expected ? { [algorithmOf(expected)]: hexOf(expected) } : {});
  let block: Uint8Array = new Uint8Array(Math.min(BLOCK_BYTES, length));
  try {
    for (let written = 0; written < length; ) {
      const read = await source.fill(block, 0);
      block = read.buffer;
      const bytes = block.subarray(0, read.filled);
      await hasher?.update(bytes);
      await writer.write(bytes);
      written += read.filled;
      if (read.ended) break;
    }
    await source.end();
    if (source.bodyBytes !== length) throw new IncompleteBody(source.bodyBytes);
    await writer.close();
    await stored.catch((error: unknown) => {
      throw error instanceof Error && BAD_DIGEST.test(error.message) ? new DigestMismatch(error.message) : error;
    });
  } catch (error) {
    // An aborted stream fails the put, so no partial object is ever stored.
    await writer.abort(error).catch(() => {});
    await stored.catch(() => {});
    throw error;
  }
}
