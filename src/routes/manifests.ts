import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { algorithmOf, digestBytes } from "../oci/digest";
import { ERROR_CODES, RegistryError } from "../oci/errors";
import { enforceManifestLimits } from "../oci/limits";
import { parseManifest } from "../oci/manifest";
import { matchesIfNoneMatch } from "../oci/conditional";
import { parseTag, type Reference, type RepositoryName } from "../oci/names";
import { capsOf, capsRefusal, manifestRoom, newRepositoryRefusal, type Quota } from "../oci/quotas";
import type { Storage } from "../storage";
import type { ImmutableTag, ManifestHead, ManifestWithBody, PutResult } from "../storage/manifests";
import { policyDefaultsOf } from "../storage/policies";
import { manifestLocation, NAME, readBounded, referenceOf, repositoryOf, requires } from "./http";

/** end-3 (GET/HEAD), end-7 (PUT, with ?tag=) and end-9 (DELETE) on /v2/<name>/manifests/<reference>. */
export const manifests = new Hono<AppEnv>();

const PATH = `/${NAME}/manifests/:reference?`;

/**
 * GET and HEAD by digest are answered from this location's cache when they
 * can, with no D1 query, and clients may keep them MANIFEST_CACHE_SECONDS; by
 * tag they are always resolved in D1 and clients revalidate them (ETag), so a
 * moved tag is seen at once. Only what anyone may pull is for shared caches.
 */
manifests.get(PATH, requires("pull"), async (c) => {
  const repository = repositoryOf(c);
  const reference = referenceOf(c);
  const access = c.get("access");
  const config = c.get("config");
  const storage = c.get("storage");
  const [manifest, shared] = await Promise.all([lookUp(storage, repository, reference, c.req.method === "GET"), access.readableByAnyone(repository)]);
  if (!manifest) throw new RegistryError("MANIFEST_UNKNOWN", reference);
  const etag = `"${manifest.digest}"`;
  // What a 304 repeats of the 200.
  const revalidation = {
    "Docker-Content-Digest": manifest.digest,
    ETag: etag,
    "Cache-Control": `${shared ? "public" : "private"}, ${reference.kind === "tag" ? "no-cache" : `max-age=${config.MANIFEST_CACHE_SECONDS}`}`,
  };
  // After the lookup, so a deleted manifest is 404 rather than "not modified".
  const notModified = matchesIfNoneMatch(c.req.header("If-None-Match"), etag);
  const headers = { ...revalidation, "Content-Type": manifest.mediaType, "Content-Length": String(manifest.size) };
  if (!notModified && c.req.method === "GET" && "body" in manifest) return c.body(manifest.body, 200, headers);
  // HEAD, or nothing to send: a body read from the cache or R2 is let go.
  if ("body" in manifest && manifest.body instanceof ReadableStream) await manifest.body.cancel();
  return notModified ? c.body(null, 304, revalidation) : c.body(null, 200, headers);
});

/** A manifest by digest from the isolate's memory or the cache, else from storage (and, with its body, kept in the cache); by tag from storage alone. */
async function lookUp(storage: Storage, repository: RepositoryName, reference: Reference, withBody: boolean): Promise<ManifestHead | ManifestWithBody | null> {
  if (reference.kind === "digest") {
    const cached = await storage.manifestCache.get(repository, reference.digest, withBody);
    if (cached) return cached;
  }
  if (!withBody) return storage.manifests.head(repository, reference);
  const manifest = await storage.manifests.get(repository, reference);
  // Only a pull by digest fills the cache: it is what reads it, and a put on every pull by tag would double the work of the commonest pull.
  return manifest && reference.kind === "digest" ? storage.manifestCache.keep(repository, manifest) : manifest;
}

manifests.put(PATH, requires("pull", "push"), async (c) => {
  const repository = repositoryOf(c);
  const reference = referenceOf(c);
  const extraTags = c.req.queries("tag")?.map(parseTag) ?? [];
  const config = c.get("config");
  const storage = c.get("storage");
  const quota = await storage.quotas.of(repository, policyDefaultsOf(config));
  const newRepository = newRepositoryRefusal(quota);
  if (newRepository) throw newRepository;
  const room = manifestRoom(quota, config);
  const bytes = await readBounded(c.req.raw, room.bytes, c.get("meter"));
  if (!bytes) throw room.refusal;
  const digest = await digestBytes(reference.kind === "digest" ? algorithmOf(reference.digest) : "sha256", bytes);
  if (reference.kind === "digest" && reference.digest !== digest) {
    throw new RegistryError("DIGEST_INVALID", `the manifest's bytes are ${digest}, not ${reference.digest}`);
  }
  const parsed = parseManifest(bytes, c.req.header("Content-Type"));
  enforceManifestLimits(parsed, config);
  const tags = reference.kind === "tag" ? [reference.tag, ...extraTags] : extraTags;
  const result = await storage.manifests.put(repository, { digest, bytes, parsed }, tags, {
    sparse: config.SPARSE_MANIFESTS === "accept",
    defaults: policyDefaultsOf(config),
    caps: capsOf(quota),
  });
  if (!result.stored) throw putRefusal(result, quota, bytes.length);
  c.header("Location", manifestLocation(repository, digest));
  c.header("Docker-Content-Digest", digest);
  c.header("Content-Length", "0");
  if (parsed.subject) c.header("OCI-Subject", parsed.subject);
  for (const tag of extraTags) c.header("OCI-Tag", tag, { append: true });
  return c.body(null, 201);
});

manifests.delete(PATH, requires("delete"), async (c) => {
  const repository = repositoryOf(c);
  const reference = referenceOf(c);
  const { manifests, manifestCache } = c.get("storage");
  const defaults = policyDefaultsOf(c.get("config"));
  const result = reference.kind === "tag" ? await manifests.deleteTag(repository, reference.tag, defaults) : await manifests.delete(repository, reference.digest, defaults);
  if (result !== "deleted" && result !== "unknown") throw immutableTags(result.immutable, "deleted");
  // After D1, so no pull here can cache it again; other locations' copies expire within MANIFEST_CACHE_SECONDS.
  // Even when D1 had no row: another location may have deleted it first.
  if (reference.kind === "digest") await manifestCache.delete(repository, reference.digest);
  if (result === "unknown") throw new RegistryError("MANIFEST_UNKNOWN", reference);
  return c.body(null, 202, { "Content-Length": "0" });
});

/** Why storage refused a PUT, as the OCI error a client expects. */
function putRefusal(result: Exclude<PutResult, { stored: true }>, quota: Quota, bytes: number): RegistryError {
  if ("immutable" in result) return immutableTags(result.immutable, "pushed");
  // Stored already, a manifest adds nothing: only one new to the repository can be refused for its size.
  if ("refused" in result) return capsRefusal(quota, result.refused, bytes);
  return new RegistryError("MANIFEST_BLOB_UNKNOWN", { missing: result.missing });
}

/**
 * 403 DENIED, as registries answer a push their policy forbids (Docker Hub's
 * immutable tags, zot's authorization). Clients print the message, not the
 * detail, so the message says which tag, where it points and which policy holds it.
 */
function immutableTags(held: ImmutableTag[], refused: "pushed" | "deleted"): RegistryError {
  const [{ tag, digest, policy }] = held as [ImmutableTag, ...ImmutableTag[]];
  const why = policy === null ? "IMMUTABLE_TAGS is on" : `namespace policy ${policy}`;
  const others = held.length > 1 ? ` (and ${held.length - 1} more)` : "";
  const outcome = refused === "pushed" ? "no push may move it; push a new tag instead" : "it cannot be deleted";
  const message = `${ERROR_CODES.DENIED.message}: tag ${tag}${others} is immutable (${why}): it points at ${digest}, and ${outcome}`;
  return new RegistryError("DENIED", { tags: held }, { message });
}
