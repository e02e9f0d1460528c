import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { downloadFilename, downloadSecret, linkExpiry, signDownload } from "../auth/download-links";
import { RegistryError } from "../oci/errors";
import type { RepositoryName } from "../oci/names";
import type { BlobStat } from "../storage/blobs";
import { blobHeaders, notModified, sendBlob } from "./blob-bytes";
import { digestOf, NAME, originOf, repositoryOf, requires } from "./http";

/**
 * end-2 (GET/HEAD, with Range) and end-10 (DELETE) on /v2/<name>/blobs/<digest>.
 * A GET of a blob of at least REDIRECT_MIN_BYTES is redirected (BLOB_REDIRECT),
 * after the caller is checked, so the bytes need not flow through this request.
 * A blob a manifest of the repository references is not deleted (409): the
 * manifest must go first, so no manifest is ever served without its blobs.
 */
export const blobs = new Hono<AppEnv>();

const PATH = `/${NAME}/blobs/:digest?`;

blobs.get(PATH, requires("pull"), async (c) => {
  const repository = repositoryOf(c);
  const digest = digestOf(c);
  // Whether anyone may pull it is asked beside the blob, not after it (usually from memory, else one D1 read).
  const [blob, shared] = await Promise.all([c.get("storage").blobs.stat(repository, digest), c.get("access").readableByAnyone(repository)]);
  if (!blob) throw new RegistryError("BLOB_UNKNOWN", { digest });
  const headers = blobHeaders(digest, blob.createdAt, shared);
  const unchanged = notModified(c, headers);
  if (unchanged) return unchanged;
  // HEAD is answered here (a presigned URL is signed for one method), and so is a blob too small to repay a round trip.
  const { BLOB_REDIRECT, REDIRECT_MIN_BYTES } = c.get("config");
  if (c.req.method === "HEAD" || BLOB_REDIRECT === "none" || blob.size < REDIRECT_MIN_BYTES) return sendBlob(c, blob, headers, shared);
  return c.body(null, 307, { Location: await redirectFor(c, repository, blob, shared), "Cache-Control": "no-store", "Docker-Content-Digest": digest });
});

/**
 * Where a GET is sent for the blob's bytes, the caller being authorized
 * already: R2 itself (a presigned URL), or the registry's download route (a
 * signed link), which is also where blobs anyone may pull go under
 * `presigned`, so that they come from the edge cache.
 */
async function redirectFor(c: Context<AppEnv>, repository: RepositoryName, blob: BlobStat, shared: boolean): Promise<string> {
  const { BLOB_REDIRECT, REDIRECT_TTL_SECONDS } = c.get("config");
  const now = Date.now();
  if (BLOB_REDIRECT === "presigned" && !shared) return c.get("storage").presigner.presignGet(blob.objectKey, REDIRECT_TTL_SECONDS, new Date(now));
  const link = await signDownload(downloadSecret(c.env.DOWNLOAD_SECRET), {
    digest: blob.digest,
    filename: downloadFilename(repository, blob.digest),
    objectKey: blob.objectKey,
    size: blob.size,
    created: Math.floor(blob.createdAt / 1000),
    expires: linkExpiry(now, REDIRECT_TTL_SECONDS),
    public: shared,
  });
  // Absolute, on the origin the client used.
  return originOf(c) + link;
}

blobs.delete(PATH, requires("delete"), async (c) => {
  const repository = repositoryOf(c);
  const digest = digestOf(c);
  const unlink = await c.get("storage").blobs.unlink(repository, digest);
  if (unlink.result === "not-held") throw new RegistryError("BLOB_UNKNOWN", { digest });
  if (unlink.result === "referenced") {
    throw new RegistryError("DENIED", `manifest ${unlink.manifest} in this repository references blob ${digest}; delete the manifest first`, { status: 409 });
  }
  return c.body(null, 202, { "Content-Length": "0" });
});
