/**
 * A minimal OCI Distribution client that checks every answer. Each method
 * throws CheckFailed on a wrong status, length, digest or body, so callers
 * count it as a failure and never as throughput.
 */
import { createHash } from "node:crypto";
import { noteResponse } from "./meter.mjs";

export class CheckFailed extends Error {
  /** The HTTP status when the failure was a wrong one (a 429 says the server turned the request away). */
  constructor(message, status = undefined) {
    super(message);
    this.status = status;
  }
}

export function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

export function sha256Digest(bytes) {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export const MEDIA = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
};

// What docker and podman send: distribution 2.8 refuses to serve an OCI manifest to a client that does not list it.
export const MANIFEST_ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(", ");

/** What a blob GET may answer besides 200: a redirect to where the bytes are. */
export const REDIRECTS = [301, 302, 303, 307, 308];

/** Reads and drops a body so the keep-alive connection can carry the next request. */
async function drain(response) {
  if (response.body) await response.arrayBuffer();
}

/** The URL of a `Link: <...>; rel="next"` header, or null on the last page. */
function nextLink(response, base) {
  const link = response.headers.get("link");
  const match = link?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  return match ? new URL(match[1], base).href : null;
}

export class RegistryClient {
  constructor(name, baseUrl) {
    this.name = name;
    this.base = baseUrl;
  }

  url(target) {
    return new URL(target, this.base);
  }

  /**
   * One request whose status must be one of `expect`; redirects are never
   * followed here (pullBlob follows them itself, so each hop is seen). Its
   * Registry-Cost, if any, is filed under `label` (a redirect under its status).
   */
  async send(method, target, { headers = {}, body, expect, label = method }) {
    const init = { method, headers, redirect: "manual" };
    if (body !== undefined) {
      init.body = body;
      // Streams need half duplex; byte arrays get a Content-Length from undici.
      if (body instanceof ReadableStream) init.duplex = "half";
    }
    const response = await fetch(this.url(target), init);
    noteResponse(label, response);
    if (!expect.includes(response.status)) {
      const text = await response.text().catch(() => "");
      throw new CheckFailed(`${this.name}: ${method} ${target} answered ${response.status}, expected ${expect.join("/")}: ${text.slice(0, 300)}`, response.status);
    }
    return response;
  }

  // ---- blob uploads: POST, PATCH..., PUT ?digest= (the docker/podman shape) ----

  async startUpload(repo) {
    const response = await this.send("POST", `/v2/${repo}/blobs/uploads/`, { expect: [202] });
    await drain(response);
    const location = response.headers.get("location");
    check(location, `${this.name}: POST uploads gave no Location`);
    return location;
  }

  /** PATCH one chunk (or the whole blob); the server must report the bytes received so far. */
  async patch(location, body, { start, length, received, announced }) {
    const headers = { "Content-Type": "application/octet-stream" };
    if (start !== undefined) headers["Content-Range"] = `${start}-${start + length - 1}`;
    // A stream's length, announced as skopeo does when it knows the size.
    if (announced !== undefined) headers["Content-Length"] = String(announced);
    const response = await this.send("PATCH", location, { headers, body, expect: [202] });
    await drain(response);
    const range = response.headers.get("range");
    check(range === `0-${received - 1}`, `${this.name}: PATCH reported Range ${range}, expected 0-${received - 1}`);
    const next = response.headers.get("location");
    check(next, `${this.name}: PATCH gave no Location`);
    return next;
  }

  /** PUT ?digest=, with the last bytes or none: must answer 201 with the digest the client computed. */
  async finishUpload(location, digest, bytes = undefined) {
    const url = this.url(location);
    url.searchParams.set("digest", digest);
    const headers = bytes ? { "Content-Type": "application/octet-stream" } : { "Content-Length": "0" };
    const response = await this.send("PUT", url, { headers, body: bytes, expect: [201] });
    await drain(response);
    this.#checkUploaded(response, digest);
  }

  #checkUploaded(response, digest) {
    const answered = response.headers.get("docker-content-digest");
    check(answered === digest, `${this.name}: upload answered digest ${answered}, expected ${digest}`);
  }

  /** docker's and podman's shape: POST, PATCH with the body, PUT ?digest=. */
  async pushBlob(repo, bytes, digest) {
    const location = await this.startUpload(repo);
    const next = await this.patch(location, bytes, { received: bytes.length });
    await this.finishUpload(next, digest);
  }

  /** containerd's, oras's and helm's shape: POST, then PUT ?digest= with the body. */
  async pushBlobPostPut(repo, bytes, digest) {
    const location = await this.startUpload(repo);
    await this.finishUpload(location, digest, bytes);
  }

  /** The monolithic shape: one POST ?digest= with the body. */
  async pushBlobMonolithic(repo, bytes, digest) {
    const response = await this.send("POST", `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
      expect: [201],
    });
    await drain(response);
    this.#checkUploaded(response, digest);
  }

  /** Chunked push: one PATCH with Content-Range per chunk, as resumable clients do. */
  async pushBlobChunked(repo, bytes, digest, chunkSize) {
    let location = await this.startUpload(repo);
    for (let start = 0; start < bytes.length; start += chunkSize) {
      const chunk = bytes.subarray(start, Math.min(start + chunkSize, bytes.length));
      location = await this.patch(location, chunk, { start, length: chunk.length, received: start + chunk.length });
    }
    await this.finishUpload(location, digest);
  }

  /** Push of a generated stream in one PATCH; the digest is only known once the stream has ended. */
  async pushBlobStream(repo, generated, { announceLength = false } = {}) {
    const location = await this.startUpload(repo);
    const next = await this.patch(location, generated.stream, { received: generated.size, announced: announceLength ? generated.size : undefined });
    await this.finishUpload(next, generated.digest());
  }

  /**
   * GET a blob as a client does: a redirect, if given, is followed without
   * any credentials, and the bytes are hashed as they stream. Returns whether
   * it was redirected.
   */
  async pullBlob(repo, digest, size) {
    const target = `/v2/${repo}/blobs/${digest}`;
    const response = await this.send("GET", target, { expect: [200, ...REDIRECTS] });
    if (response.status === 200) {
      await this.#receiveBlob(response, digest, size);
      return false;
    }
    await this.finalHop(await this.#locationOf(response, target), digest, size);
    return true;
  }

  /** The first hop alone: GET of the blob, which must answer a redirect; returns where it points. */
  async blobRedirect(repo, digest) {
    const target = `/v2/${repo}/blobs/${digest}`;
    const response = await this.send("GET", target, { expect: REDIRECTS });
    return this.#locationOf(response, target);
  }

  /** The final hop alone: GET of where a redirect pointed, hashing the bytes. */
  async finalHop(url, digest, size) {
    const response = await this.send("GET", url, { expect: [200], label: "final" });
    await this.#receiveBlob(response, digest, size);
  }

  async #locationOf(response, target) {
    await drain(response);
    const location = response.headers.get("location");
    check(location, `${this.name}: GET ${target} answered ${response.status} without a Location`);
    return new URL(location, this.url(target)).href;
  }

  /** HEAD of a blob: its length and digest, no body. */
  async headBlob(repo, digest, size) {
    const response = await this.send("HEAD", `/v2/${repo}/blobs/${digest}`, { expect: [200] });
    const length = response.headers.get("content-length");
    check(Number(length) === size, `${this.name}: blob HEAD Content-Length ${length}, expected ${size}`);
    const answered = response.headers.get("docker-content-digest");
    check(answered === digest, `${this.name}: blob HEAD digest ${answered}, expected ${digest}`);
  }

  async #receiveBlob(response, digest, size) {
    const declared = response.headers.get("content-length");
    check(declared === null || Number(declared) === size, `${this.name}: blob Content-Length ${declared}, expected ${size}`);
    const hash = createHash("sha256");
    let received = 0;
    for await (const chunk of response.body) {
      hash.update(chunk);
      received += chunk.length;
    }
    check(received === size, `${this.name}: blob brought ${received} bytes, expected ${size}`);
    const actual = `sha256:${hash.digest("hex")}`;
    check(actual === digest, `${this.name}: blob bytes are ${actual}, expected ${digest}`);
  }

  // ---- manifests ----

  async putManifest(repo, reference, manifest) {
    const response = await this.send("PUT", `/v2/${repo}/manifests/${reference}`, {
      headers: { "Content-Type": manifest.mediaType },
      body: manifest.bytes,
      expect: [201],
    });
    await drain(response);
    const answered = response.headers.get("docker-content-digest");
    check(answered === manifest.digest, `${this.name}: manifest PUT answered digest ${answered}, expected ${manifest.digest}`);
  }

  /** GET must return exactly the bytes pushed, with their digest and media type. */
  async getManifest(repo, reference, manifest) {
    const response = await this.send("GET", `/v2/${repo}/manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT }, expect: [200] });
    const body = Buffer.from(await response.arrayBuffer());
    check(body.equals(manifest.bytes), `${this.name}: manifest GET returned ${body.length} bytes that differ from the ${manifest.bytes.length} pushed`);
    this.#checkManifestHeaders(response, manifest);
  }

  async headManifest(repo, reference, manifest) {
    const response = await this.send("HEAD", `/v2/${repo}/manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT }, expect: [200] });
    const length = response.headers.get("content-length");
    check(Number(length) === manifest.bytes.length, `${this.name}: manifest HEAD Content-Length ${length}, expected ${manifest.bytes.length}`);
    this.#checkManifestHeaders(response, manifest);
  }

  #checkManifestHeaders(response, manifest) {
    const digest = response.headers.get("docker-content-digest");
    check(digest === manifest.digest, `${this.name}: manifest digest header ${digest}, expected ${manifest.digest}`);
    const type = response.headers.get("content-type");
    check(type === manifest.mediaType, `${this.name}: manifest Content-Type ${type}, expected ${manifest.mediaType}`);
  }

  // ---- listings ----

  /** One page of tags and the URL of the next, if any. */
  async tagsPage(target) {
    const response = await this.send("GET", target, { expect: [200] });
    const body = await response.json();
    check(Array.isArray(body.tags), `${this.name}: tag list without a tags array`);
    return { items: body.tags, next: nextLink(response, this.url(target)) };
  }

  /** One page of referrers (an image index) and the URL of the next, if any. */
  async referrersPage(target) {
    const response = await this.send("GET", target, { expect: [200] });
    const type = response.headers.get("content-type");
    check(type?.startsWith(MEDIA.ociIndex), `${this.name}: referrers Content-Type ${type}`);
    const body = await response.json();
    check(body.mediaType === MEDIA.ociIndex && Array.isArray(body.manifests), `${this.name}: referrers answer is not an image index`);
    return { items: body.manifests, next: nextLink(response, this.url(target)) };
  }

  /** GET /v2/: 200 with the API version header. */
  async apiVersion() {
    const response = await this.send("GET", "/v2/", { expect: [200] });
    await drain(response);
    const version = response.headers.get("docker-distribution-api-version");
    check(version === "registry/2.0", `${this.name}: /v2/ answered API version ${version}`);
  }

  /** Status of a GET without judging it or following a redirect, for capability probes; the body is not read. */
  async probe(target) {
    const response = await fetch(this.url(target), { redirect: "manual" });
    await response.body?.cancel();
    return response.status;
  }
}
