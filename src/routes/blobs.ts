import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { RegistryError } from "../oci/errors";
import { MEDIA_TYPES } from "../oci/media-types";
import { resolveRange } from "../oci/range";
import { digestOf, NAME, repositoryOf, requires } from "./http";

/**
 * end-2 (GET/HEAD, with Range) and end-10 (DELETE) on /v2/<name>/blobs/<digest>.
 * A blob a manifest of the repository references is not deleted (409): the
 * manifest must go first, so no manifest is ever served without its blobs.
 */
export const blobs = new Hono<AppEnv>();

const PATH = `/${NAME}/blobs/:digest?`;

blobs.get(PATH, requires("pull"), async (c) => {
  const repository = repositoryOf(c);
  const digest = digestOf(c);
  // Whether anyone may pull it is asked beside the blob, not after it (usually from memory, else one D1 read).
  const [blob, shared] = await Promise.all([c.var.storage.blobs.stat(repository, digest), c.var.access.readableByAnyone(repository)]);
  if (!blob) throw new RegistryError("BLOB_UNKNOWN", { digest });
  const headers: Record<string, string> = {
    // Explicit, so nothing on the way compresses the body and drops its length.
    "Content-Type": MEDIA_TYPES.octetStream,
    "Docker-Content-Digest": digest,
    "Accept-Ranges": "bytes",
    ETag: `"${digest}"`,
    // Content addressed by digest never changes; but only what anyone may pull is for shared caches.
    "Cache-Control": `${shared ? "public" : "private"}, max-age=31536000, immutable`,
  };
  const range = resolveRange(c.req.header("Range"), blob.size);
  if (range) {
    headers["Content-Range"] = `bytes ${range.offset}-${range.offset + range.length - 1}/${blob.size}`;
    headers["Content-Length"] = String(range.length);
  } else {
    headers["Content-Length"] = String(blob.size);
  }
  const status = range ? 206 : 200;
  if (c.req.method === "HEAD") return c.body(null, status, headers);
  return c.body(await c.var.storage.blobs.read(blob, range), status, headers);
});

blobs.delete(PATH, requires("delete"), async (c) => {
  const repository = repositoryOf(c);
  const digest = digestOf(c);
  const unlink = await c.var.storage.blobs.unlink(repository, digest);
  if (unlink.result === "not-held") throw new RegistryError("BLOB_UNKNOWN", { digest });
  if (unlink.result === "referenced") {
    throw new RegistryError("DENIED", `manifest ${unlink.manifest} in this repository references blob ${digest}; delete the manifest first`, { status: 409 });
  }
  return c.body(null, 202, { "Content-Length": "0" });
});
