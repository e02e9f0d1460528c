import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { DEFAULT_ALGORITHM, parseAlgorithm, parseDigest } from "../oci/digest";
import { RegistryError } from "../oci/errors";
import { isRepositoryName } from "../oci/names";
import { parseContentRange } from "../oci/range";
import type { ChunkBounds } from "../storage/upload-session";
import { blobLocation, repositoryOf, uploadHeaders } from "./http";

/**
 * Blob uploads: end-4a/b/c and end-11 (POST: open, monolithic, mount), end-5
 * (PATCH), end-6 (PUT), end-13 (GET status) and end-14 (DELETE).
 */
export const uploads = new Hono<AppEnv>();

const SESSION = "/:name{.+}/blobs/uploads/:id";

uploads.post("/:name{.+}/blobs/uploads", async (c) => {
  const repository = repositoryOf(c);
  const { storage } = c.var;
  const mount = c.req.query("mount");
  if (mount !== undefined) {
    const digest = parseDigest(mount);
    // An unusable `from` is no error: the client falls back to the upload opened below.
    const from = c.req.query("from");
    const source = from === undefined ? undefined : isRepositoryName(from) ? from : null;
    if (source !== null && (await storage.blobs.mount(repository, digest, source))) {
      return c.body(null, 201, { Location: blobLocation(repository, digest), "Docker-Content-Digest": digest, "Content-Length": "0" });
    }
  }
  const monolithic = c.req.query("digest");
  const digest = monolithic === undefined ? undefined : parseDigest(monolithic);
  const upload = storage.uploads.create(repository, algorithmOf(c));
  if (digest) {
    const blob = await upload.complete(digest, c.req.raw.body, contentLength(c));
    return c.body(null, 201, { Location: blobLocation(repository, blob.digest), "Docker-Content-Digest": blob.digest, "Content-Length": "0" });
  }
  return c.body(null, 202, uploadHeaders(upload, 0));
});

uploads.get(SESSION, async (c) => {
  const upload = sessionOf(c);
  return c.body(null, 204, uploadHeaders(upload, await upload.size()));
});

uploads.patch(SESSION, async (c) => {
  const upload = sessionOf(c);
  const size = await upload.append(c.req.raw.body, chunkBounds(c));
  return c.body(null, 202, uploadHeaders(upload, size));
});

uploads.put(SESSION, async (c) => {
  const upload = sessionOf(c);
  const query = c.req.query("digest");
  if (query === undefined) throw new RegistryError("DIGEST_INVALID", "the digest query parameter is required to complete an upload");
  const blob = await upload.complete(parseDigest(query), c.req.raw.body, contentLength(c));
  return c.body(null, 201, {
    Location: blobLocation(upload.target.repository, blob.digest),
    "Docker-Content-Digest": blob.digest,
    "Content-Length": "0",
  });
});

uploads.delete(SESSION, async (c) => {
  await sessionOf(c).cancel();
  return c.body(null, 204);
});

function algorithmOf(c: Context<AppEnv>) {
  return parseAlgorithm(c.req.query("digest-algorithm") ?? DEFAULT_ALGORITHM);
}

/** The upload a session URL names; its algorithm only matters if this request begins the session. */
function sessionOf(c: Context<AppEnv>) {
  return c.var.storage.uploads.open(repositoryOf(c), c.req.param("id") ?? "", algorithmOf(c));
}

/** The body's announced length, if any. */
function contentLength(c: Context<AppEnv>): number | undefined {
  const header = c.req.header("Content-Length");
  const length = header === undefined ? undefined : Number(header);
  if (length !== undefined && !Number.isSafeInteger(length)) throw new RegistryError("SIZE_INVALID", `invalid Content-Length "${header}"`);
  return length;
}

/** What a PATCH's headers promise about its body; contradicting headers are refused before any byte is read. */
function chunkBounds(c: Context<AppEnv>): ChunkBounds {
  const length = contentLength(c);
  const contentRange = c.req.header("Content-Range");
  if (contentRange === undefined) return length === undefined ? {} : { length };
  const range = parseContentRange(contentRange);
  const rangeLength = range.end - range.start + 1;
  if (length !== undefined && length !== rangeLength) {
    throw new RegistryError("SIZE_INVALID", `Content-Range ${contentRange} is ${rangeLength} bytes but Content-Length is ${length}`);
  }
  return { start: range.start, length: rangeLength };
}
