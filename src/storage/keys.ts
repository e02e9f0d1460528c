import { algorithmOf, hexOf, type Digest } from "../oci/digest";

/*
 * The R2 key layout, drawn once:
 *
 *   blobs/<upload id>        the bytes of a blob, named by the upload session that wrote
 *                            them (R2 cannot rename); D1's `blobs` row maps digest -> key
 *   manifests/<alg>/<hex>    manifests too large for a D1 row, by their digest
 */

export function blobObjectKey(uploadId: string): string {
  return `blobs/${uploadId}`;
}

export function manifestObjectKey(digest: Digest): string {
  return `manifests/${algorithmOf(digest)}/${hexOf(digest)}`;
}
