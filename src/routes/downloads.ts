import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { downloadSecret, verifyDownload, type DownloadRefusal } from "../auth/download-links";
import { RegistryError } from "../oci/errors";
import { blobHeaders, notModified, sendBlob } from "./blob-bytes";

/**
 * GET/HEAD /downloads/<digest>/<file name>?...: the final hop of a blob GET
 * redirected under BLOB_REDIRECT=signed (or a public blob's under
 * presigned). Outside /v2 and its credentials: the link's signature is the
 * authorization, and everything the response needs is signed into it, so it
 * reads no database; HEAD and 304 read no storage at all.
 */
export const downloads = new Hono<AppEnv>();

const REFUSALS: Record<DownloadRefusal, string> = {
  incomplete: "the download link is incomplete; ask the registry for the blob again",
  forged: "the download link is not one the registry signed, or was altered",
  expired: "the download link has expired; ask the registry for the blob again",
};

downloads.get("/downloads/:digest/:filename", async (c) => {
  const { digest, filename } = c.req.param();
  const grant = await verifyDownload(downloadSecret(c.env.DOWNLOAD_SECRET), digest, filename, new URL(c.req.url).searchParams, Date.now() / 1000);
  if (typeof grant === "string") throw new RegistryError("DENIED", REFUSALS[grant]);
  const headers = { ...blobHeaders(grant.digest, grant.created * 1000, grant.public), "Content-Disposition": `attachment; filename="${grant.filename}"` };
  const unchanged = notModified(c, headers);
  if (unchanged) return unchanged;
  return sendBlob(c, { digest: grant.digest, size: grant.size, objectKey: grant.objectKey }, headers, grant.public);
});
