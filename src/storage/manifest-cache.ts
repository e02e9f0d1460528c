import { Memo } from "../memo";
import type { Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";
import { manifestCacheKey } from "./keys";
import type { ManifestHead, ManifestWithBody } from "./manifests";

/** A manifest this small is remembered with its bytes in the isolate; a larger one by its head alone. */
const REMEMBERED_BODY_BYTES = 8 * 1024;
/** At most this many manifests per isolate: 8 MiB of bodies at worst. */
const REMEMBERED_MANIFESTS = 1000;

/**
 * What this isolate read by digest lately, in front of the Cache API: a hot
 * manifest is answered from memory, with no cache read either. Module state,
 * so it outlives the request and is shared by every request the isolate serves.
 */
const remembered = new Memo<ManifestHead & { bytes: Uint8Array<ArrayBuffer> | null }>(Infinity, REMEMBERED_MANIFESTS);

/**
 * Manifests by repository and digest in the isolate's memory and the Workers
 * Cache API, so a repeated pull by digest touches no database. Both are per
 * isolate or location; an entry lives `seconds`, which bounds how long a
 * deleted manifest can still be served elsewhere (a DELETE forgets it at
 * once in the isolate and location that served it). Content addressed by
 * digest never changes, so nothing else invalidates it. Where the Cache API
 * does nothing (a workers.dev address), the isolate's memory still answers.
 */
export class ManifestCache {
  constructor(
    private readonly origin: string,
    private readonly seconds: number,
    private readonly waitUntil: (promise: Promise<unknown>) => void,
  ) {}

  /** The manifest, with its bytes if the isolate holds them or `withBody` asks for them; null when neither level holds it. */
  async get(repository: RepositoryName, digest: Digest, withBody: boolean): Promise<ManifestHead | ManifestWithBody | null> {
    if (this.seconds === 0) return null;
    const memo = remembered.get(this.#key(repository, digest));
    if (memo && (memo.bytes || !withBody)) return memo.bytes ? { ...headOf(memo), body: memo.bytes } : headOf(memo);
    const hit = await caches.default.match(this.#key(repository, digest));
    const mediaType = hit?.headers.get("Content-Type");
    const size = hit?.headers.get("Content-Length");
    if (!hit?.body || !mediaType || !size) return null;
    const head = { digest, mediaType, size: Number(size) };
    // Remembered no longer than the cache entry lives, so the isolate adds nothing to how long a deleted manifest is served.
    const until = Date.parse(hit.headers.get("Expires") ?? "");
    if (head.size > REMEMBERED_BODY_BYTES) {
      this.#remember(repository, head, null, until);
      return { ...head, body: hit.body };
    }
    const bytes = new Uint8Array(await hit.arrayBuffer());
    this.#remember(repository, head, bytes, until);
    return { ...head, body: bytes };
  }

  /** Keeps a manifest just read from storage once the response is on its way; returns it with a body still to be read. */
  keep(repository: RepositoryName, manifest: ManifestWithBody): ManifestWithBody {
    if (this.seconds === 0) return manifest;
    const until = Date.now() + this.seconds * 1000;
    const small = manifest.body instanceof Uint8Array && manifest.size <= REMEMBERED_BODY_BYTES;
    this.#remember(repository, headOf(manifest), small ? (manifest.body as Uint8Array<ArrayBuffer>) : null, until);
    const [body, copy] = manifest.body instanceof ReadableStream ? manifest.body.tee() : [manifest.body, manifest.body];
    // Expires as well: an isolate that finds the entry remembers it until then, not for `seconds` more.
    const headers = {
      "Content-Type": manifest.mediaType,
      "Content-Length": String(manifest.size),
      "Cache-Control": `max-age=${this.seconds}`,
      Expires: new Date(until).toUTCString(),
    };
    const key = this.#key(repository, manifest.digest);
    this.waitUntil(caches.default.put(key, new Response(copy, { headers })).catch((error) => console.warn(`could not cache ${key}`, error)));
    return { ...manifest, body };
  }

  /** Forgets a deleted manifest in this isolate and location. */
  async delete(repository: RepositoryName, digest: Digest): Promise<void> {
    const key = this.#key(repository, digest);
    remembered.delete(key);
    await caches.default.delete(key);
  }

  /** Remembers a manifest until `until` (milliseconds since the epoch); an entry that says no time (NaN) is not remembered. */
  #remember(repository: RepositoryName, head: ManifestHead, bytes: Uint8Array<ArrayBuffer> | null, until: number): void {
    if (Number.isFinite(until)) remembered.set(this.#key(repository, head.digest), { ...head, bytes }, until);
  }

  #key(repository: RepositoryName, digest: Digest): string {
    return manifestCacheKey(this.origin, repository, digest);
  }
}

function headOf({ digest, mediaType, size }: ManifestHead): ManifestHead {
  return { digest, mediaType, size };
}
