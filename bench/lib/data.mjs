/** Test content: random blobs, a generated stream, and manifests that point at them. */
import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { MEDIA, sha256Digest } from "./client.mjs";

/** A random blob with its digest. Random bytes, so nothing on the way can compress or dedupe them. */
export function randomBlob(size) {
  const bytes = randomBytes(size);
  return { bytes, digest: sha256Digest(bytes), size };
}

/** A copy of a big blob that differs in its first bytes, so each round pushes a new digest without regenerating it. */
export function variantOf(bytes) {
  randomFillSync(bytes, 0, Math.min(32, bytes.length));
  return { bytes, digest: sha256Digest(bytes), size: bytes.length };
}

/**
 * `size` random bytes made as the reader asks for them, hashed on the way:
 * the client never holds more than a chunk, so a 1 GiB upload measures the
 * server's memory, not ours. digest() is valid once the stream has ended.
 */
export function generatedStream(size, chunkSize = 1024 * 1024) {
  const hash = createHash("sha256");
  let produced = 0;
  let digest = null;
  const stream = new ReadableStream(
    {
      pull(controller) {
        const length = Math.min(chunkSize, size - produced);
        const chunk = randomBytes(length);
        hash.update(chunk);
        produced += length;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
        if (produced === size) {
          digest = `sha256:${hash.digest("hex")}`;
          controller.close();
        }
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    size,
    /** Bytes handed to the reader so far. */
    produced: () => produced,
    digest() {
      if (!digest) throw new Error("the generated stream has not ended");
      return digest;
    },
  };
}

/** A manifest as pushed: exact bytes, digest, media type. */
function manifestOf(object) {
  const bytes = Buffer.from(JSON.stringify(object));
  return { bytes, digest: sha256Digest(bytes), mediaType: object.mediaType, size: bytes.length };
}

function descriptor(mediaType, blob) {
  return { mediaType, digest: blob.digest, size: blob.size };
}

/** A small image manifest: one config, one layer; `note` makes each one distinct. */
export function imageManifest(config, layer, note) {
  return manifestOf({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: descriptor(MEDIA.ociConfig, config),
    layers: [descriptor(MEDIA.ociLayer, layer)],
    annotations: { "org.example.bench": note },
  });
}

/** An artifact manifest (the OCI 1.1 shape: empty config, artifactType) whose subject is `subject`. */
export function referrerManifest(emptyConfig, subject, note) {
  return manifestOf({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType: "application/vnd.example.bench.signature",
    config: descriptor(MEDIA.ociEmpty, emptyConfig),
    layers: [descriptor(MEDIA.ociEmpty, emptyConfig)],
    subject: descriptor(subject.mediaType, subject),
    annotations: { "org.example.bench": note },
  });
}

/** The OCI empty descriptor's blob: `{}`. */
export function emptyConfigBlob() {
  const bytes = Buffer.from("{}");
  return { bytes, digest: sha256Digest(bytes), size: bytes.length };
}
