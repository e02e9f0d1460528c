import type { Digest } from "../oci/digest";
import type { ByteRange } from "../oci/range";
import type { BlobStore, StoredBlob } from "./blobs";
import { blobCacheKey } from "./keys";

/*
 * Blobs anyone may pull, kept in the Workers Cache API of each Cloudflare
 * location that serves them, so a popular blob costs no R2 read on a hit.
 * Bytes named by a digest never change, so an entry is kept for good, under
 * its digest alone (keys.ts): every repository and every download link of the digest
 * shares it. Only what anyone may pull is put here; reading it needs no
 * further check, because the caller was authorized before (by the registry,
 * or by the signature of a download link) and the bytes of a digest are the
 * same for everyone. The cache is per location and best effort: a miss reads R2.
 */

/** The Cache API keeps objects of up to 512 MB; larger blobs are always read from R2. */
export const EDGE_CACHE_MAX_BYTES = 512_000_000;

export class BlobCache {
  constructor(
    private readonly cache: Cache,
    private readonly blobs: BlobStore,
    private readonly origin: string,
  ) {}

  /**
   * The bytes of a blob anyone may pull (or `range` of them): from this
   * location's cache, else from R2 while `background` fills the cache from a
   * read of its own (a tee would hold in memory what a slow client has not
   * taken yet).
   */
  async read(blob: StoredBlob, range: ByteRange | undefined, background: (work: Promise<void>) => void): Promise<ReadableStream<Uint8Array>> {
    if (blob.size > EDGE_CACHE_MAX_BYTES) return this.blobs.read(blob, range);
    const cached = await this.#match(blob, range);
    if (cached) return cached;
    background(this.#fill(blob));
    return this.blobs.read(blob, range);
  }

  /** The cached bytes, if this location holds them; the cache answers a Range itself (206 from the whole entry). */
  async #match(blob: StoredBlob, range: ByteRange | undefined): Promise<ReadableStream<Uint8Array> | null> {
    const headers: HeadersInit = range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {};
    const cached = await this.cache.match(new Request(this.#key(blob.digest), { headers }));
    if (!cached) return null;
    const [status, length] = range ? [206, range.length] : [200, blob.size];
    if (cached.status === status && cached.headers.get("Content-Length") === String(length) && cached.body) return cached.body;
    await cached.body?.cancel();
    return null;
  }

  async #fill(blob: StoredBlob): Promise<void> {
    try {
      const body = await this.blobs.read(blob);
      const headers = { "Content-Length": String(blob.size), "Cache-Control": "public, max-age=31536000, immutable", ETag: `"${blob.digest}"` };
      await this.cache.put(this.#key(blob.digest), new Response(body, { headers }));
    } catch (error) {
      // The client is served from R2 regardless; a fill that fails is tried again by the next miss.
      console.warn(`could not cache blob ${blob.digest}:`, error);
    }
  }

  #key(digest: Digest): string {
    return blobCacheKey(this.origin, digest);
  }
}
