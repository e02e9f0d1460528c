import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { algorithmOf, digestBytes } from "../oci/digest";
import { ERROR_CODES, RegistryError } from "../oci/errors";
import { enforceManifestLimits, manifestTooLarge } from "../oci/limits";
import { parseManifest } from "../oci/manifest";
import { parseTag } from "../oci/names";
import type { ImmutableTag, ManifestHead } from "../storage/manifests";
import { policyDefaultsOf } from "../storage/policies";
import { manifestLocation, NAME, readBounded, referenceOf, repositoryOf, requires } from "./http";

/** end-3 (GET/HEAD), end-7 (PUT, with ?tag=) and end-9 (DELETE) on /v2/<name>/manifests/<reference>. */
export const manifests = new Hono<AppEnv>();

const PATH = `/${NAME}/manifests/:reference?`;

function manifestHeaders(manifest: ManifestHead): Record<string, string> {
  return {
    "Content-Type": manifest.mediaType,
    "Content-Length": String(manifest.size),
    "Docker-Content-Digest": manifest.digest,
    ETag: `"${manifest.digest}"`,
  };
}

manifests.get(PATH, requires("pull"), async (c) => {
  const repository = repositoryOf(c);
  const reference = referenceOf(c);
  const { storage } = c.var;
  if (c.req.method === "HEAD") {
    const head = await storage.manifests.head(repository, reference);
    if (!head) throw new RegistryError("MANIFEST_UNKNOWN", reference);
    return c.body(null, 200, manifestHeaders(head));
  }
  const manifest = await storage.manifests.get(repository, reference);
  if (!manifest) throw new RegistryError("MANIFEST_UNKNOWN", reference);
  return c.body(manifest.body, 200, manifestHeaders(manifest));
});

manifests.put(PATH, requires("pull", "push"), async (c) => {
  const repository = repositoryOf(c);
  const reference = referenceOf(c);
  const extraTags = c.req.queries("tag")?.map(parseTag) ?? [];
  const { config, storage } = c.var;
  const bytes = await readBounded(c.req.raw, config.MAX_MANIFEST_BYTES, c.var.meter);
  if (!bytes) throw manifestTooLarge(config);
  const digest = await digestBytes(reference.kind === "digest" ? algorithmOf(reference.digest) : "sha256", bytes);
  if (reference.kind === "digest" && reference.digest !== digest) {
    throw new RegistryError("DIGEST_INVALID", `the manifest's bytes are ${digest}, not ${reference.digest}`);
  }
  const parsed = parseManifest(bytes, c.req.header("Content-Type"));
  enforceManifestLimits(parsed, config);
  const tags = reference.kind === "tag" ? [reference.tag, ...extraTags] : extraTags;
  const result = await storage.manifests.put(repository, { digest, bytes, parsed }, tags, { sparse: config.SPARSE_MANIFESTS === "accept", defaults: policyDefaultsOf(config) });
  if (!result.stored) throw "immutable" in result ? immutableTags(result.immutable, "pushed") : new RegistryError("MANIFEST_BLOB_UNKNOWN", { missing: result.missing });
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
  const { manifests } = c.var.storage;
  const defaults = policyDefaultsOf(c.var.config);
  const result = reference.kind === "tag" ? await manifests.deleteTag(repository, reference.tag, defaults) : await manifests.delete(repository, reference.digest, defaults);
  if (result === "unknown") throw new RegistryError("MANIFEST_UNKNOWN", reference);
  if (result !== "deleted") throw immutableTags(result.immutable, "deleted");
  return c.body(null, 202, { "Content-Length": "0" });
});

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
