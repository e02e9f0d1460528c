import { createExecutionContext, env, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import worker from "../../src/index";
import type { BlobStore } from "../../src/storage/blobs";
import type { Cost } from "../../src/storage/meter";

/** Requests go to the Worker's default export, as a client's would. */
export const BASE = "http://registry.test";

const urlOf = (path: string) => (path.startsWith("http") ? path : `${BASE}${path}`);

/**
 * A request to the Worker, following its redirects as clients do (a blob GET
 * answers 307 to its download link); `redirect: "manual"` returns the 307.
 */
export function fetchRegistry(path: string, init?: RequestInit): Promise<Response> {
  return following((url, hop) => SELF.fetch(url, hop), urlOf(path), init);
}

/**
 * A request to the Worker's fetch handler with some bindings or vars replaced,
 * as a deployment configured otherwise would see it, redirects followed the
 * same way. The storage is SELF's.
 */
export function fetchWithEnv(overrides: Partial<Cloudflare.Env>, path: string, init?: RequestInit): Promise<Response> {
  return following(
    async (url, hop) => {
      const ctx = createExecutionContext();
      const response = await worker.fetch(new Request(url, hop), { ...env, ...overrides }, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    },
    urlOf(path),
    init,
  );
}

const MAX_REDIRECTS = 3;

/** Sends `init` to `url`, then follows each redirect with the same method and headers but no Authorization, as registry clients do. */
async function following(send: (url: string, init: RequestInit) => Promise<Response>, url: string, init: RequestInit = {}): Promise<Response> {
  if (init.redirect === "manual") return send(url, init);
  let response = await send(url, { ...init, redirect: "manual" });
  for (let hop = 0; hop < MAX_REDIRECTS && [301, 302, 303, 307, 308].includes(response.status); hop++) {
    url = new URL(response.headers.get("Location")!, url).href;
    const headers = new Headers(init.headers);
    headers.delete("Authorization");
    response = await send(url, { method: init.method ?? "GET", headers, redirect: "manual" });
  }
  return response;
}

let counter = 0;
/** A repository name no other test uses. */
export function uniqueRepo(prefix = "test"): string {
  return `${prefix}/r${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export function randomBytes(length: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + 65536, length)));
  return bytes;
}

export async function digestOf(bytes: Uint8Array<ArrayBuffer>, algorithm: "sha256" | "sha512" = "sha256"): Promise<string> {
  const hash = await crypto.subtle.digest(algorithm === "sha256" ? "SHA-256" : "SHA-512", bytes);
  return `${algorithm}:${Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function json(value: unknown): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new TextEncoder().encode(JSON.stringify(value)));
}

/** A body of unknown length that sends `first`, then waits for `gate` before it ends: a chunk still streaming. */
export function heldBody(first: Uint8Array, gate: Promise<void>): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    async pull(controller) {
      if (sent) {
        await gate;
        return controller.close();
      }
      sent = true;
      controller.enqueue(first);
    },
  });
}

/** POST to open an upload; returns its Location. */
export async function openUpload(repo: string, query = ""): Promise<string> {
  const response = await fetchRegistry(`/v2/${repo}/blobs/uploads/${query}`, { method: "POST" });
  expect(response.status).toBe(202);
  return response.headers.get("Location")!;
}

/** Pushes a blob the way docker and podman do: POST, one PATCH, then PUT ?digest= with no body. */
export async function pushBlob(repo: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await digestOf(bytes);
  const location = await openUpload(repo);
  const patched = await fetchRegistry(location, { method: "PATCH", body: bytes });
  expect(patched.status).toBe(202);
  const put = await fetchRegistry(withDigest(patched.headers.get("Location")!, digest), { method: "PUT" });
  expect(put.status).toBe(201);
  return digest;
}

/** The hex id of the Durable Object behind an upload Location: the first 64 characters of the upload id. */
export function uploadObjectId(location: string): string {
  return new URL(location, BASE).pathname.split("/").at(-1)!.slice(0, 64);
}

/** The session object behind an upload Location. */
/** The R2 objects an upload's session wrote, by the key prefix its id gives them. */
export async function objectsOf(location: string): Promise<string[]> {
  return (await env.BLOBS.list({ prefix: `blobs/${uploadObjectId(location)}` })).objects.map((o) => o.key);
}

export function sessionOf(location: string) {
  return env.UPLOADS.get(env.UPLOADS.idFromString(uploadObjectId(location)));
}

/**
 * Replaces the D1 recording of a blob by the session's next call with
 * `register`, which gets the real one: so a test decides when the record
 * commits and what the session hears back.
 */
export async function interceptRegister(location: string, register: (real: BlobStore["register"], ...args: Parameters<BlobStore["register"]>) => ReturnType<BlobStore["register"]>): Promise<void> {
  await runInDurableObject(sessionOf(location), (instance) => {
    // Each call to the session builds its own store: the next one built records through `register`.
    const session = instance as unknown as { blobStore: (...args: ConstructorParameters<typeof BlobStore>) => BlobStore };
    const build = session.blobStore.bind(session);
    session.blobStore = (...args) => {
      session.blobStore = build;
      const blobs = build(...args);
      const real = blobs.register.bind(blobs);
      blobs.register = (...args) => register(real, ...args);
      return blobs;
    };
  });
}

/** For interceptRegister: a D1 record that commits, after which the session hears only an error (a lost reply, a crash). */
export async function commitsThenThrows(real: BlobStore["register"], ...args: Parameters<BlobStore["register"]>): ReturnType<BlobStore["register"]> {
  await real(...args);
  throw new Error("the reply from D1 was lost");
}

/** An upload of `bytes` whose completing PUT D1 recorded while the session heard only an error (a 500): it stays publishing. */
export async function interruptedCompletion(repo: string, bytes: Uint8Array<ArrayBuffer>): Promise<{ location: string; digest: string }> {
  const digest = await digestOf(bytes);
  const location = await openUpload(repo);
  expect((await fetchRegistry(location, { method: "PATCH", body: bytes })).status).toBe(202);
  await interceptRegister(location, commitsThenThrows);
  expect((await fetchRegistry(withDigest(location, digest), { method: "PUT" })).status).toBe(500);
  return { location, digest };
}

/** `binding` with some of its methods replaced; the others still reach the real one. */
export function wrap<T extends object>(binding: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(binding, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value = Reflect.get(target, property) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export function withDigest(location: string, digest: string): string {
  return `${location}${location.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}`;
}

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  [field: string]: unknown;
}

export async function descriptorOf(bytes: Uint8Array<ArrayBuffer>, mediaType: string): Promise<Descriptor> {
  return { mediaType, digest: await digestOf(bytes), size: bytes.length };
}

/** Pushes a config and layers, and returns an OCI image manifest that references them. */
export async function pushImage(repo: string, layers = 1, extra: Record<string, unknown> = {}): Promise<{ manifest: Record<string, unknown>; bytes: Uint8Array<ArrayBuffer> }> {
  const config = json({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } });
  await pushBlob(repo, config);
  const layerDescriptors: Descriptor[] = [];
  for (let i = 0; i < layers; i++) {
    const layer = randomBytes(1000 + i);
    await pushBlob(repo, layer);
    layerDescriptors.push(await descriptorOf(layer, OCI_LAYER));
  }
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: await descriptorOf(config, OCI_CONFIG), layers: layerDescriptors, ...extra };
  return { manifest, bytes: json(manifest) };
}

export async function putManifest(repo: string, reference: string, bytes: Uint8Array<ArrayBuffer>, contentType = OCI_MANIFEST): Promise<Response> {
  return fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method: "PUT", headers: { "Content-Type": contentType }, body: bytes });
}

/** What a request cost, from its Registry-Cost header (the API tests run with COST_HEADER on). */
export function costOf(response: Response): Cost {
  const header = response.headers.get("Registry-Cost");
  expect(header, "a Registry-Cost header").not.toBeNull();
  return JSON.parse(header!) as Cost;
}

/** A request body with no Content-Length: the runtime sends it with chunked transfer encoding, as docker and podman do. */
export function streamOf(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

/** Reads the spec's error body and returns its first error. */
export async function firstError(response: Response): Promise<{ code: string; message: string; detail?: unknown } | undefined> {
  const body = (await response.json()) as { errors?: { code: string; message: string; detail?: unknown }[] };
  return body.errors?.[0];
}

/** Reads the spec's error body and returns its first code. */
export async function errorCode(response: Response): Promise<string | undefined> {
  return (await firstError(response))?.code;
}
