/** Media types the registry treats specially; every other type is stored as opaque content. */
export const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  octetStream: "application/octet-stream",
} as const;

export type ManifestMediaType =
  | typeof MEDIA_TYPES.ociManifest
  | typeof MEDIA_TYPES.ociIndex
  | typeof MEDIA_TYPES.dockerManifest
  | typeof MEDIA_TYPES.dockerManifestList;

/** Layers that may be referenced without being pushed: their bytes are never distributed. */
const NON_DISTRIBUTABLE_LAYERS = new Set([
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
]);

export function isNonDistributable(mediaType: string): boolean {
  return NON_DISTRIBUTABLE_LAYERS.has(mediaType);
}

/** RFC 6838 type/subtype, as descriptors and artifactType carry it (no parameters). */
export const MEDIA_TYPE_GRAMMAR = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** The bare type of a Content-Type header: parameters and case dropped. */
export function essence(contentType: string | undefined): string | undefined {
  const bare = contentType?.split(";")[0]?.trim().toLowerCase();
  return bare ? bare : undefined;
}
