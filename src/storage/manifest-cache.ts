import type { Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import { manifestCacheKey } from "./keys";
import type { ManifestWithBody } from "./manifests";

/**
 * Manifests by repository and digest in the Workers Cache API, so a repeated
 * pull by digest touches no database. The cache is per location; an entry
 * lives `seconds`, which bounds how long a deleted manifest can still be
 * served in another location (a DELETE removes this location's entry at once).
 * Content addressed by digest never changes, so nothing else invalidates it.
 * Where the Cache API does nothing (a workers.dev address), every pull reads D1.
 */
export class ManifestCache {
  constructor(
    private readonly origin: string,
    private readonly seconds: number,
    private readonly waitUntil: (promise: Promise<unknown>) => void,
  ) {}

  async get(repository: RepositoryName, digest: Digest): Promise<ManifestWithBody | null> {
    if (this.seconds === 0) return null;
    const hit = await caches.default.match(this.#key(repository, digest));
    const mediaType = hit?.headers.get("Content-Type");
    const size = hit?.headers.get("Content-Length");
    if (!hit?.body || !mediaType || !size) return null;
    return { digest, mediaType, size: Number(size), body: hit.body };
  }

  /** Keeps a manifest just read from storage once the response is on its way; returns it with a body still to be read. */
  keep(repository: RepositoryName, manifest: ManifestWithBody): ManifestWithBody {
    if (this.seconds === 0) return manifest;
    const [body, copy] = manifest.body instanceof ReadableStream ? manifest.body.tee() : [manifest.body, manifest.body];
    const headers = { "Content-Type": manifest.mediaType, "Content-Length": String(manifest.size), "Cache-Control": `max-age=${this.seconds}` };
    const key = this.#key(repository, manifest.digest);
    this.waitUntil(caches.default.put(key, new Response(copy, { headers })).catch((error) => console.warn(`could not cache ${key}`, error)));
    return { ...manifest, body };
  }

  /** Forgets a deleted manifest in this location. */
  async delete(repository: RepositoryName, digest: Digest): Promise<void> {
    await caches.default.delete(this.#key(repository, digest));
  }

  #key(repository: RepositoryName, digest: Digest): string {
    return manifestCacheKey(this.origin, repository, digest);
  }
}
