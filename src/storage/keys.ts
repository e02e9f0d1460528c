import { algorithmOf, hexOf, type Digest } from "../oci/digest";
import type { RepositoryName } from "../oci/names";

/*
 * The R2 key layout, drawn once:
 *
 *   blobs/<upload id>        the bytes of a blob, named by the upload that wrote them (R2
 *                            cannot rename): its session object's id, or for a push that
 *                            needs no session a fresh id of that kind; D1's `blobs` row
 *                            maps digest -> key
 *   blobs/<upload id>.1      the same upload's bytes when more followed a first request
 *                            stored whole (R2 takes about one write a second to a key)
 *   manifests/<alg>/<hex>/<unique id>
 *                            a manifest too large for a D1 row, by its digest, one key per PUT
 *                            that wrote it: garbage collection deletes a key once D1 names it
 *                            only as an expired write intent, so no concurrent PUT may be
 *                            writing the same key
 *
 * Every key is named in D1's object_intents before its first byte is written
 * (intents.ts), so garbage collection finds what a failed write left without
 * listing the bucket.
 *
 * The Cache API keys (caches.default, the zone's cache in one location): URLs
 * on the origin the request came to, under a path no route serves, so no
 * client request can read or fill them:
 *
 *   <origin>/_cache/blobs/<digest>              a blob's bytes, shared by every repository and
 *                                               download link of the digest (only blobs anyone may pull)
 *   <origin>/_cache/manifests/<name>/<digest>   a manifest's bytes, per repository (each checks its own access)
 *
 * On the request's own origin because Cloudflare keeps Cache API entries per
 * zone and expects the zone's host in their keys; a zone reached under two
 * hostnames keeps two copies.
 */

export function blobObjectKey(uploadId: string, revision = 0): string {
  return revision === 0 ? `blobs/${uploadId}` : `blobs/${uploadId}.${revision}`;
}

export function manifestObjectKey(digest: Digest, writeId: string): string {
  return `manifests/${algorithmOf(digest)}/${hexOf(digest)}/${writeId}`;
}

export function blobCacheKey(origin: string, digest: Digest): string {
  return `${origin}/_cache/blobs/${digest}`;
}

export function manifestCacheKey(origin: string, repository: RepositoryName, digest: Digest): string {
  return `${origin}/_cache/manifests/${repository}/${digest}`;
}
