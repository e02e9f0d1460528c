import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { httpDate, ifRangeHolds, matchesIfNoneMatch } from "../oci/conditional";
import type { Digest } from "../oci/digest";
import { MEDIA_TYPES } from "../oci/media-types";
import { resolveRange } from "../oci/range";
import type { StoredBlob } from "../storage/blobs";

/*
 * A blob's bytes as both places that serve them answer: a blob GET or HEAD
 * answered directly, and the final hop of a redirect (routes/downloads.ts).
 */

/** The headers of a blob's response; `shared` when anyone may pull it, so shared caches may keep it. */
export function blobHeaders(digest: Digest, createdAt: number, shared: boolean): Record<string, string> {
  return {
    // Explicit, so nothing on the way compresses the body and drops its length.
    "Content-Type": MEDIA_TYPES.octetStream,
    "Docker-Content-Digest": digest,
    "Accept-Ranges": "bytes",
    ETag: `"${digest}"`,
    "Last-Modified": httpDate(createdAt),
    // Content addressed by digest never changes; but only what anyone may pull is for shared caches.
    "Cache-Control": `${shared ? "public" : "private"}, max-age=31536000, immutable`,
  };
}

/** 304 when the client names the blob's ETag in If-None-Match: it holds these bytes already. */
export function notModified(c: Context<AppEnv>, headers: Record<string, string>): Response | null {
  return matchesIfNoneMatch(c.req.header("If-None-Match"), headers.ETag!) ? c.body(null, 304, headers) : null;
}

/**
 * The blob, or the part a Range asks for (206; 416 when none of it exists),
 * with `headers`; HEAD reads no bytes. What anyone may pull comes through
 * the edge cache.
 */
export async function sendBlob(c: Context<AppEnv>, blob: StoredBlob, headers: Record<string, string>, shared: boolean): Promise<Response> {
  const ranged = ifRangeHolds(c.req.header("If-Range"), headers.ETag!, headers["Last-Modified"]!);
  const range = ranged ? resolveRange(c.req.header("Range"), blob.size) : undefined;
  const sent: Record<string, string> = { ...headers, "Content-Length": String(range ? range.length : blob.size) };
  if (range) sent["Content-Range"] = `bytes ${range.offset}-${range.offset + range.length - 1}/${blob.size}`;
  const status = range ? 206 : 200;
  if (c.req.method === "HEAD") return c.body(null, status, sent);
  const storage = c.get("storage");
  const body = shared ? await storage.blobCache.read(blob, range, (work) => c.executionCtx.waitUntil(work)) : await storage.blobs.read(blob, range);
  return c.body(body, status, sent);
}
