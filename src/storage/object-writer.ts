import type { Hasher } from "../oci/digest";
import { cutIntoParts } from "./part-writer";

// What the put is fed at a time: a chunk at a time through the hash and the put's writer costs several times more.
const BLOCK_BYTES = 1024 * 1024;

/**
 * Streams a body that announced `length` bytes into one R2 object at `key`,
 * through `hasher` on the way. Returns how many bytes the body brought
 * (counting stops just past `length`); unless exactly `length`, nothing is
 * stored, as the put is aborted. The put's backpressure paces the body, so
 * memory stays at a few blocks whatever the size.
 */
export async function putWhole(bucket: R2Bucket, key: string, body: ReadableStream<Uint8Array> | null, length: number, hasher: Hasher): Promise<number> {
  const sized = new FixedLengthStream(length);
  const writer = sized.writable.getWriter();
  const stored = bucket.put(key, sized.readable);
  // The block buffers are reused: the put gets a copy it may hold as long as it likes.
  const writeBlock = async (block: Uint8Array) => {
    await hasher.update(block);
    await writer.write(block.slice());
  };
  let received = 0;
  async function* counted() {
    for await (const chunk of body ?? []) {
      received += chunk.length;
      yield chunk;
      if (received > length) return;
    }
  }
  try {
    const { tail } = await cutIntoParts(counted(), new Uint8Array(), writeBlock, BLOCK_BYTES);
    if (received !== length) throw new Error(`the body brought ${received} bytes, not ${length}`);
    await writeBlock(tail);
    await writer.close();
    await stored;
  } catch (error) {
    // An aborted stream fails the put, so no partial object is ever stored.
    await writer.abort(error).catch(() => {});
    await stored.catch(() => {});
    if (received !== length) return received;
    throw error;
  }
  return received;
}
