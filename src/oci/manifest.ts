import * as z from "zod";
import { parseDigest, type Digest } from "./digest";
import { RegistryError } from "./errors";
import { essence, isNonDistributable, MEDIA_TYPE_GRAMMAR, MEDIA_TYPES, type ManifestMediaType } from "./media-types";

const digest = z.string().transform((value, ctx): Digest => {
  try {
    return parseDigest(value);
  } catch {
    ctx.addIssue({ code: "custom", message: `invalid digest "${value.slice(0, 200)}"` });
    return z.NEVER;
  }
});
const mediaType = z.string().regex(MEDIA_TYPE_GRAMMAR, "invalid media type");
const annotations = z.record(z.string(), z.string());

// Descriptors and manifests are loose: unknown fields are valid and kept, since the bytes are stored as pushed.
const descriptor = z.looseObject({
  mediaType,
  digest,
  size: z.number().int().nonnegative(),
  urls: z.array(z.url()).optional(),
  annotations: annotations.optional(),
  data: z.base64().optional(),
  artifactType: mediaType.optional(),
  platform: z.looseObject({ architecture: z.string(), os: z.string() }).optional(),
});
type Descriptor = z.infer<typeof descriptor>;

const imageManifest = (type: ManifestMediaType, mediaTypeRequired: boolean) =>
  z.looseObject({
    schemaVersion: z.literal(2),
    mediaType: mediaTypeRequired ? z.literal(type) : z.literal(type).optional(),
    artifactType: mediaType.optional(),
    config: descriptor,
    layers: z.array(descriptor),
    subject: descriptor.optional(),
    annotations: annotations.optional(),
  });

const imageIndex = (type: ManifestMediaType, mediaTypeRequired: boolean) =>
  z.looseObject({
    schemaVersion: z.literal(2),
    mediaType: mediaTypeRequired ? z.literal(type) : z.literal(type).optional(),
    artifactType: mediaType.optional(),
    manifests: z.array(descriptor),
    subject: descriptor.optional(),
    annotations: annotations.optional(),
  });

// OCI makes mediaType optional in the body; Docker requires it.
const SCHEMAS = {
  [MEDIA_TYPES.ociManifest]: { kind: "image", schema: imageManifest(MEDIA_TYPES.ociManifest, false) },
  [MEDIA_TYPES.dockerManifest]: { kind: "image", schema: imageManifest(MEDIA_TYPES.dockerManifest, true) },
  [MEDIA_TYPES.ociIndex]: { kind: "index", schema: imageIndex(MEDIA_TYPES.ociIndex, false) },
  [MEDIA_TYPES.dockerManifestList]: { kind: "index", schema: imageIndex(MEDIA_TYPES.dockerManifestList, true) },
} as const;

function isManifestMediaType(value: string): value is ManifestMediaType {
  return Object.hasOwn(SCHEMAS, value);
}

/** What the registry needs to know of a manifest beyond its bytes. */
export interface ParsedManifest {
  /** The bytes as text, a byte-order mark included: they are valid UTF-8, so the text encodes back to them. */
  text: string;
  mediaType: ManifestMediaType;
  /** Blobs that must be in the repository: config and distributable layers without `urls`. */
  blobs: Digest[];
  /** Manifests an index points at, which must be in the repository. */
  manifests: Digest[];
  /** How many descriptors it has, pushed or not: config and layers, or manifests, plus subject. */
  descriptors: number;
  subject?: Digest;
  /** The artifact type a referrers list reports: artifactType, else the config's media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function mustBePushed(layer: Descriptor): boolean {
  return !isNonDistributable(layer.mediaType) && !(layer.urls && layer.urls.length > 0);
}

function chooseMediaType(contentType: string | undefined, body: Record<string, unknown>): ManifestMediaType {
  const declared = typeof body.mediaType === "string" ? body.mediaType : undefined;
  // Generic types (application/json, octet-stream) say nothing; a vendor type is a claim the body must agree with.
  const header = essence(contentType);
  const claimed = header?.startsWith("application/vnd.") ? header : undefined;
  if (claimed && declared && claimed !== declared) {
    throw new RegistryError("MANIFEST_INVALID", `Content-Type ${claimed} does not match the manifest's mediaType ${declared}`);
  }
  const chosen = claimed ?? declared ?? ("manifests" in body ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
  if (!isManifestMediaType(chosen)) throw new RegistryError("MANIFEST_INVALID", `unsupported manifest media type ${chosen}`);
  return chosen;
}

/** Validates manifest bytes against the schema of their media type. Throws MANIFEST_INVALID. */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let text: string;
  let json: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    // A byte-order mark is skipped for parsing, as a decoder that drops it would, but kept in the text.
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    throw new RegistryError("MANIFEST_INVALID", "manifest is not valid UTF-8 JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new RegistryError("MANIFEST_INVALID", "manifest is not a JSON object");
  }
  const mediaType = chooseMediaType(contentType, json as Record<string, unknown>);
  const entry = SCHEMAS[mediaType];
  const invalid = (error: z.ZodError) => {
    const issues = error.issues.slice(0, 10).map((issue) => ({ path: issue.path.join("."), message: issue.message }));
    return new RegistryError("MANIFEST_INVALID", { mediaType, issues });
  };
  if (entry.kind === "image") {
    const result = entry.schema.safeParse(json);
    if (!result.success) throw invalid(result.error);
    const manifest = result.data;
    return {
      text,
      mediaType,
      blobs: [manifest.config, ...manifest.layers.filter(mustBePushed)].map((d) => d.digest),
      manifests: [],
      descriptors: 1 + manifest.layers.length + (manifest.subject ? 1 : 0),
      artifactType: manifest.artifactType ?? manifest.config.mediaType,
      ...(manifest.subject ? { subject: manifest.subject.digest } : {}),
      ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
    };
  }
  const result = entry.schema.safeParse(json);
  if (!result.success) throw invalid(result.error);
  const index = result.data;
  return {
    text,
    mediaType,
    blobs: [],
    manifests: index.manifests.map((d) => d.digest),
    descriptors: index.manifests.length + (index.subject ? 1 : 0),
    ...(index.artifactType ? { artifactType: index.artifactType } : {}),
    ...(index.subject ? { subject: index.subject.digest } : {}),
    ...(index.annotations ? { annotations: index.annotations } : {}),
  };
}

/**
 * The descriptor a referrers list shows of a manifest that has a subject, as
 * JSON text (null for one without): written once when it is pushed, so a page
 * of the list only joins stored texts. A manifest without annotations lists
 * none, not an empty or null field.
 */
export function referrerDescriptor(digest: Digest, size: number, manifest: ParsedManifest): string | null {
  if (!manifest.subject) return null;
  const { mediaType, artifactType, annotations } = manifest;
  return JSON.stringify({ mediaType, digest, size, artifactType, annotations });
}
