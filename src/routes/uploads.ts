import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { DEFAULT_ALGORITHM, parseAlgorithm, parseDigest } from "../oci/digest";
import { RegistryError } from "../oci/errors";
import { MAX_UPLOAD_PARTS, UPLOAD_BUFFER_BUDGET } from "../oci/limits";
import { isRepositoryName, type RepositoryName } from "../oci/names";
import { blobRoom, capsOf, capsRefusal, newRepositoryRefusal, type Quota } from "../oci/quotas";
import { parseContentRange, uploadRange } from "../oci/range";
import { policyDefaultsOf } from "../storage/policies";
import type { UploadFailure, UploadResult } from "../storage/upload-result";
import type { ChunkBounds } from "../storage/upload-session";
import type { PushLimits, Upload } from "../storage/uploads";
import { blobLocation, NAME, repositoryOf, requires, uploadHeaders } from "./http";

/**
 * Blob uploads: end-4a/b/c and end-11 (POST: open, monolithic, mount), end-5
 * (PATCH), end-6 (PUT), end-13 (GET status) and end-14 (DELETE).
 */
export const uploads = new Hono<AppEnv>();

const UPLOADS = `/${NAME}/blobs/uploads`;
const SESSION = `${UPLOADS}/:id`;

// How long a client is asked to wait when the isolate's upload buffers are all in use.
const RETRY_AFTER_SECONDS = 5;

uploads.post(UPLOADS, requires("pull", "push"), async (c) => {
  const repository = repositoryOf(c);
  const storage = c.get("storage");
  // The first request of a push: a new repository past its namespace's count, or a body announced past its room, goes no further.
  const quota = await quotaOf(c);
  const newRepository = newRepositoryRefusal(quota);
  if (newRepository) throw newRepository;
  const room = blobRoom(quota);
  if (room && (contentLength(c) ?? 0) > room.bytes) throw room.refusal;
  const mount = c.req.query("mount");
  if (mount !== undefined) {
    const digest = parseDigest(mount);
    const source = await mountSource(c);
    // A blob too large for the room is not mounted: the client uploads it, and that is refused.
    if (source !== null && (await storage.blobs.mount(repository, digest, source, room?.bytes, capsOf(quota)))) {
      return c.body(null, 201, { Location: blobLocation(repository, digest), "Docker-Content-Digest": digest, "Content-Length": "0" });
    }
  }
  const monolithic = c.req.query("digest");
  if (monolithic !== undefined) {
    const blob = settle(await storage.uploads.push(repository, algorithmOf(c), parseDigest(monolithic), c.req.raw.body, chunkBounds(c), limitsOf(quota)), quota);
    return c.body(null, 201, { Location: blobLocation(repository, blob.digest), "Docker-Content-Digest": blob.digest, "Content-Length": "0" });
  }
  return c.body(null, 202, uploadHeaders(await storage.uploads.create(repository, algorithmOf(c)), 0));
});

// The collection itself has no upload to report or cancel.
uploads.on(["GET", "DELETE"], UPLOADS, () => {
  throw new RegistryError("BLOB_UPLOAD_UNKNOWN", "an upload id is required");
});

uploads.get(SESSION, requires("pull", "push"), async (c) => {
  const upload = await sessionOf(c);
  return c.body(null, 204, uploadHeaders(upload, settle(await upload.size()).size));
});

uploads.patch(SESSION, requires("pull", "push"), async (c) => {
  const quota = await quotaOf(c);
  const upload = await sessionOf(c, limitsOf(quota));
  const { size } = settle(await upload.append(c.req.raw.body, chunkBounds(c)), quota);
  return c.body(null, 202, uploadHeaders(upload, size));
});

uploads.put(SESSION, requires("pull", "push"), async (c) => {
  const quota = await quotaOf(c);
  const upload = await sessionOf(c, limitsOf(quota));
  const query = c.req.query("digest");
  if (query === undefined) throw new RegistryError("DIGEST_INVALID", "the digest query parameter is required to complete an upload");
  const blob = settle(await upload.complete(parseDigest(query), c.req.raw.body, chunkBounds(c)), quota);
  return c.body(null, 201, {
    Location: blobLocation(upload.target.repository, blob.digest),
    "Docker-Content-Digest": blob.digest,
    "Content-Length": "0",
  });
});

uploads.delete(SESSION, requires("pull", "push"), async (c) => {
  const upload = await sessionOf(c);
  settle(await upload.cancel());
  return c.body(null, 204);
});

/**
 * Where a mount may take its blob from: `from`, if the caller may pull it;
 * without `from`, any repository that holds the blob, for a caller who may
 * read them all. Null when there is no mount: an unusable `from` is no error,
 * the client falls back to the upload opened instead.
 */
async function mountSource(c: Context<AppEnv>): Promise<RepositoryName | undefined | null> {
  const from = c.req.query("from");
  if (from === undefined) return c.get("access").readsEverything ? undefined : null;
  return isRepositoryName(from) && (await c.get("access").can(from, "pull")) ? from : null;
}

function algorithmOf(c: Context<AppEnv>) {
  return parseAlgorithm(c.req.query("digest-algorithm") ?? DEFAULT_ALGORITHM);
}

/** The quotas of the repository in the path, read afresh by each request that brings bytes: other pushes may have used them. */
function quotaOf(c: Context<AppEnv>): Promise<Quota> {
  return c.get("storage").quotas.of(repositoryOf(c), policyDefaultsOf(c.get("config")));
}

/** What the quotas hold a request that brings a blob's bytes to: the room they leave it, and the caps the blob is recorded within. */
function limitsOf(quota: Quota): PushLimits {
  const room = blobRoom(quota);
  return room ? { maxBytes: room.bytes, caps: capsOf(quota) } : { caps: capsOf(quota) };
}

/** The upload a session URL names, held to `limits`; its algorithm only matters if this request begins the session. */
async function sessionOf(c: Context<AppEnv>, limits: PushLimits = {}): Promise<Upload> {
  const id = c.req.param("id") ?? "";
  const upload = await c.get("storage").uploads.open(repositoryOf(c), id, algorithmOf(c), limits);
  if (!upload) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `no upload ${id.slice(0, 200)} in this repository`);
  return upload;
}

/** The body's announced length, if any. */
function contentLength(c: Context<AppEnv>): number | undefined {
  const header = c.req.header("Content-Length");
  const length = header === undefined ? undefined : Number(header);
  if (length !== undefined && !Number.isSafeInteger(length)) throw new RegistryError("SIZE_INVALID", `invalid Content-Length "${header}"`);
  return length;
}

/** What a chunk's headers promise about its body; contradicting headers are refused before any byte is read. */
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

/** The value of a session's answer, or its refusal as the OCI error a client expects; `quota` is what the request was held to. */
function settle<T>(result: UploadResult<T>, quota: Quota | null = null): T {
  if (result.ok) return result;
  throw refusal(result, quota);
}

function refusal(failure: UploadFailure, quota: Quota | null): RegistryError {
  // Errors about where an upload stands tell the client where it really ends.
  const range = (size: number) => ({ headers: { Range: uploadRange(size) } });
  switch (failure.reason) {
    case "unknown":
      return new RegistryError("BLOB_UPLOAD_UNKNOWN", "no such upload in this repository");
    case "out-of-order":
      return new RegistryError("RANGE_INVALID", `the chunk starts at ${failure.start} but the upload has ${failure.size} bytes`, range(failure.size));
    case "busy":
      return new RegistryError("RANGE_INVALID", "another request is writing to this upload", range(failure.size));
    case "incomplete-body": {
      const announced = failure.announced === undefined ? "" : ` of the ${failure.announced} it announced`;
      return new RegistryError("SIZE_INVALID", `the body ended after ${failure.received} bytes${announced}`, range(failure.size));
    }
    case "overflow":
      return new RegistryError("SIZE_INVALID", `the body brought more than the ${failure.announced} bytes it announced`, range(failure.size));
    case "too-large":
      return new RegistryError("SIZE_INVALID", `the upload exceeds the limit MAX_UPLOAD_PARTS = ${MAX_UPLOAD_PARTS} parts, ${failure.limit} bytes`, {
        status: 413,
        ...range(failure.size),
      });
    case "digest-mismatch": {
      const found = failure.actual === undefined ? "have another digest" : `are ${failure.actual ?? "missing"}`;
      return new RegistryError("DIGEST_INVALID", `expected ${failure.expected}, the uploaded bytes ${found}`);
    }
    case "out-of-memory":
      return new RegistryError("TOOMANYREQUESTS", `the upload buffers in use reach the limit UPLOAD_BUFFER_BUDGET = ${UPLOAD_BUFFER_BUDGET} bytes; retry shortly`, {
        headers: { "Retry-After": String(RETRY_AFTER_SECONDS), Range: uploadRange(failure.size) },
      });
    case "over-quota": {
      const room = quota && blobRoom(quota);
      if (!room) throw new Error("an upload refused for a quota it was not given");
      return room.refusal;
    }
    case "quota-reached":
      if (!quota) throw new Error("an upload refused for caps it was not given");
      return capsRefusal(quota, failure.usage, failure.bytes);
    case "completing":
      return new RegistryError("BLOB_UPLOAD_INVALID", "the upload is being completed: repeat its PUT, or cancel it", range(failure.size));
  }
}
