import { MAX_UPLOAD_PARTS } from "../oci/limits";
import type { ByteSource } from "./byte-source";
import type { Lease } from "./memory-budget";

/**
 * R2 multipart parts: every part but the last must have one size of at least
 * 5 MiB, and an upload has at most 10,000 parts, so 8 MiB parts allow blobs up
 * to 78 GiB.
 */
export const PART_SIZE = 8 * 1024 * 1024;

/** The most one upload can hold: R2's most parts, each a full part. */
export const MAX_UPLOAD_BYTES = MAX_UPLOAD_PARTS * PART_SIZE;

// A buffer for bytes of unknown length starts this small and doubles, so a small blob never costs a whole part.
const FIRST_BUFFER = 64 * 1024;

/** The buffer a write must lease before it starts: the most it holds unless it can lease a second part. */
export function firstBufferBytes(carried: number, expected: number | undefined): number {
  return expected === undefined ? PART_SIZE : Math.min(PART_SIZE, carried + expected);
}

/**
 * Streams `source`, after the `carried` bytes, into full parts handed to
 * `writePart` in order, and returns the bytes after the last full part (the
 * tail). Bytes are read straight into the part's buffer. While one part
 * uploads the next fills a second buffer if `lease` can grow by one part and
 * still leave a part for an upload that has none; otherwise the upload is
 * awaited and its buffer refilled. So memory stays at
 * one or two parts whatever the blob's size and however late the garbage
 * collector runs. `writePart` must be done with its bytes when its promise
 * settles: the buffer is refilled after that.
 */
export async function cutIntoParts(
  source: ByteSource,
  carried: Uint8Array,
  expected: number | undefined,
  lease: Lease,
  writePart: (part: Uint8Array) => Promise<void>,
): Promise<Uint8Array> {
  let buffer: Uint8Array = new Uint8Array(expected === undefined ? Math.max(FIRST_BUFFER, carried.length) : firstBufferBytes(carried.length, expected));
  buffer.set(carried);
  let filled = carried.length;
  let spare: Uint8Array | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  for (;;) {
    const read = await source.fill(buffer, filled);
    buffer = read.buffer;
    filled = read.filled;
    // A buffer is left short only when the bytes ran out.
    if (filled < buffer.length) break;
    if (buffer.length < PART_SIZE) {
      // A buffer of the announced size is full: nothing more may follow.
      if (expected !== undefined) {
        await source.end();
        break;
      }
      buffer = grow(buffer);
      continue;
    }
    // The other buffer's upload must finish before that buffer is refilled.
    await inFlight;
    const part = buffer;
    inFlight = writePart(part);
    // Surface a failed upload at the next await without an unhandled rejection meanwhile.
    inFlight.catch(() => {});
    if (spare) {
      buffer = spare;
    } else if (lease.tryGrow(PART_SIZE, PART_SIZE)) {
      buffer = new Uint8Array(PART_SIZE);
    } else {
      await inFlight;
      buffer = part;
    }
    spare = buffer === part ? undefined : part;
    filled = 0;
  }
  await inFlight;
  return buffer.subarray(0, filled);
}

/** A buffer twice as large (at most a part) holding the same bytes. */
function grow(buffer: Uint8Array): Uint8Array {
  const larger = new Uint8Array(Math.min(PART_SIZE, buffer.length * 2));
  larger.set(buffer);
  return larger;
}
