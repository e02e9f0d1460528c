/**
 * R2 multipart parts: every part but the last must have one size of at least
 * 5 MiB, and an upload has at most 10,000 parts, so 8 MiB parts allow blobs up
 * to 78 GiB. Small chunks are gathered until a part fills.
 */
export const PART_SIZE = 8 * 1024 * 1024;

export interface CutResult {
  /** Bytes after the last full part: carried to the next request, or the last part. */
  tail: Uint8Array;
  /** Bytes read from the source (not counting the carried bytes). */
  received: number;
}

/**
 * Streams `source`, prefixed by `carried`, into full parts of PART_SIZE handed
 * to `writePart` in order. One part uploads while the next fills, so at most
 * two parts are held in memory whatever the chunk sizes.
 */
export async function cutIntoParts(
  source: ReadableStream<Uint8Array> | null,
  carried: Uint8Array,
  writePart: (part: Uint8Array) => Promise<void>,
): Promise<CutResult> {
  let buffer = new Uint8Array(PART_SIZE);
  buffer.set(carried);
  let filled = carried.length;
  let received = 0;
  let inFlight: Promise<void> = Promise.resolve();
  // Surface a failed upload at the next await without an unhandled rejection meanwhile.
  inFlight.catch(() => {});
  if (source) {
    for await (const chunk of source) {
      received += chunk.length;
      for (let offset = 0; offset < chunk.length; ) {
        const take = Math.min(PART_SIZE - filled, chunk.length - offset);
        buffer.set(chunk.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === PART_SIZE) {
          await inFlight;
          const part = buffer;
          inFlight = writePart(part);
          inFlight.catch(() => {});
          buffer = new Uint8Array(PART_SIZE);
          filled = 0;
        }
      }
    }
  }
  await inFlight;
  return { tail: buffer.subarray(0, filled), received };
}
