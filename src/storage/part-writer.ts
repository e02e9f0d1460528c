/**
 * R2 multipart parts: every part but the last must have one size of at least
 * 5 MiB, and an upload has at most 10,000 parts, so 8 MiB parts allow blobs up
 * to 78 GiB. Small chunks are gathered until a part fills.
 */
const PART_SIZE = 8 * 1024 * 1024;

// The first buffer starts this small and doubles, so a small blob never costs a whole part.
const FIRST_BUFFER = 64 * 1024;

export interface CutResult {
  /** Bytes after the last full part: carried to the next request, or the last part. */
  tail: Uint8Array;
  /** Bytes read from the source (not counting the carried bytes). */
  received: number;
}

/**
 * Streams `source`, prefixed by `carried`, into full parts of `partSize` (R2's
 * part size unless asked otherwise) handed to `writePart` in order. One part
 * uploads while the next fills, in two buffers used in turn, so memory stays
 * at two parts whatever the blob's size and however late the garbage collector
 * runs. `writePart` must be done with
 * its bytes when its promise settles: the buffer is refilled after that.
 */
export async function cutIntoParts(
  source: AsyncIterable<Uint8Array> | null,
  carried: Uint8Array,
  writePart: (part: Uint8Array) => Promise<void>,
  partSize = PART_SIZE,
): Promise<CutResult> {
  let buffer: Uint8Array = new Uint8Array(Math.max(FIRST_BUFFER, carried.length));
  buffer.set(carried);
  let filled = carried.length;
  let spare: Uint8Array | undefined;
  let received = 0;
  let inFlight: Promise<void> = Promise.resolve();
  for await (const chunk of source ?? []) {
    received += chunk.length;
    for (let offset = 0; offset < chunk.length; ) {
      if (filled === buffer.length) buffer = grow(buffer, partSize);
      const take = Math.min(buffer.length - filled, chunk.length - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === partSize) {
        // The spare buffer's upload must finish before the spare is refilled.
        await inFlight;
        const part = buffer;
        inFlight = writePart(part);
        // Surface a failed upload at the next await without an unhandled rejection meanwhile.
        inFlight.catch(() => {});
        buffer = spare ?? new Uint8Array(partSize);
        spare = part;
        filled = 0;
      }
    }
  }
  await inFlight;
  return { tail: buffer.subarray(0, filled), received };
}

/** A buffer twice as large (at most a part) holding the same bytes. */
function grow(buffer: Uint8Array, partSize: number): Uint8Array {
  const larger = new Uint8Array(Math.min(partSize, buffer.length * 2));
  larger.set(buffer);
  return larger;
}
