import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PART_SIZE } from "../../src/storage/part-writer";
import {
  costOf,
  digestOf,
  fetchRegistry,
  fetchWithEnv,
  interceptRegister,
  OCI_MANIFEST,
  openUpload,
  pushBlob,
  pushImage,
  putManifest,
  randomBytes,
  streamOf,
  uniqueRepo,
  uploadObjectId,
  withDigest,
  wrap,
} from "./client";

const HOUR = 60 * 60 * 1000;

/** When the write intent of `key` expires, or null when D1 names no intent for it. */
function intentOf(key: string): Promise<number | null> {
  return env.DB.prepare("SELECT expires_at FROM object_intents WHERE object_key = ?1").bind(key).first<number>("expires_at");
}

function blobKeyOf(digest: string): Promise<string | null> {
  return env.DB.prepare("SELECT object_key FROM blobs WHERE digest = ?1").bind(digest).first<string>("object_key");
}

async function exists(key: string): Promise<boolean> {
  return (await env.BLOBS.head(key)) !== null;
}

/** The bucket's keys under a prefix. */
async function keysUnder(prefix: string): Promise<string[]> {
  return (await env.BLOBS.list({ prefix })).objects.map((o) => o.key);
}

// The two ways an upload's bytes reach R2: one object (a PATCH with its length), or a multipart upload (a chunked PATCH of a full part and more).
const SHAPES = [
  ["one object", 5000, (bytes: Uint8Array<ArrayBuffer>) => ({ body: bytes })],
  ["parts", PART_SIZE + 10, (bytes: Uint8Array<ArrayBuffer>) => ({ body: streamOf(bytes) })],
] as const;

describe("an upload's write intent", () => {
  it.each(SHAPES)("names its key in D1 once the first PATCH wrote bytes (%s), expiring after the upload does, and goes when the PUT records the blob", async (_, size, bodyOf) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(size);
    const digest = await digestOf(bytes);
    const location = await openUpload(repo);
    const key = `blobs/${uploadObjectId(location)}`;
    const patched = await fetchRegistry(location, { method: "PATCH", ...bodyOf(bytes) });
    expect(patched.status).toBe(202);
    // The upload expires a day after its POST; its intent an hour after that, so the session's alarm cleans up first.
    expect(await intentOf(key)).toBeGreaterThan(Date.now() + 24 * HOUR);

    const put = await fetchRegistry(withDigest(patched.headers.get("Location")!, digest), { method: "PUT" });
    expect(put.status).toBe(201);
    expect(await blobKeyOf(digest)).toBe(key);
    expect(await intentOf(key)).toBeNull();
  });

  it("of a second copy of a digest stays, naming the copy that the PUT deleted (garbage collection clears it, or its object should the deletion not happen)", async () => {
    const bytes = randomBytes(3000);
    const digest = await pushBlob(uniqueRepo(), bytes);
    const first = await blobKeyOf(digest);
    const location = await openUpload(uniqueRepo());
    const copy = `blobs/${uploadObjectId(location)}`;
    expect((await fetchRegistry(location, { method: "PATCH", body: bytes })).status).toBe(202);
    expect((await fetchRegistry(withDigest(location, digest), { method: "PUT" })).status).toBe(201);

    expect(await blobKeyOf(digest)).toBe(first);
    expect(await intentOf(copy)).not.toBeNull();
    expect(await exists(copy)).toBe(false);
  });

  it("left by a completion whose D1 record failed names the object it wrote", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(4000);
    const digest = await digestOf(bytes);
    const location = await openUpload(repo);
    const key = `blobs/${uploadObjectId(location)}`;
    expect((await fetchRegistry(location, { method: "PATCH", body: bytes })).status).toBe(202);
    await interceptRegister(location, () => Promise.reject(new Error("D1 is unreachable")));
    expect((await fetchRegistry(withDigest(location, digest), { method: "PUT" })).status).toBe(500);

    expect(await blobKeyOf(digest)).toBeNull();
    expect(await exists(key)).toBe(true);
    expect(await intentOf(key)).not.toBeNull();
  });
});

/** D1 whose request sessions (every store's way to it) have some methods replaced. */
function sessionsWith(overrides: Partial<Record<keyof D1DatabaseSession, unknown>>): D1Database {
  return wrap(env.DB, { withSession: (constraint?: string) => wrap(env.DB.withSession(constraint), overrides) });
}

const unreachable = () => {
  throw new Error("D1 is unreachable");
};

/** A monolithic POST ?digest= of `bytes` with their length, to a Worker with `bindings`. */
function monolithic(bindings: Partial<Cloudflare.Env>, repo: string, bytes: Uint8Array<ArrayBuffer>, digest: string): Promise<Response> {
  return fetchWithEnv(bindings, `/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, {
    method: "POST",
    headers: { "Content-Length": String(bytes.length) },
    body: bytes,
  });
}

describe("a monolithic push's write intent", () => {
  it("is in D1 before R2 gets the object's first byte, and goes in the batch that records the blob", async () => {
    const bytes = randomBytes(2000);
    const digest = await digestOf(bytes);
    const seen: { key: string; intent: number | null }[] = [];
    const BLOBS = wrap(env.BLOBS, {
      put: async (key: string, ...rest: unknown[]) => {
        seen.push({ key, intent: await intentOf(key) });
        return (env.BLOBS.put as (...args: unknown[]) => unknown).call(env.BLOBS, key, ...rest);
      },
    });
    const before = Date.now();
    expect((await monolithic({ BLOBS }, uniqueRepo(), bytes, digest)).status).toBe(201);

    const [{ key, intent }] = seen as [{ key: string; intent: number | null }];
    expect(await blobKeyOf(digest)).toBe(key);
    // Expiring within minutes: the request that writes the object records it long before.
    expect(intent).toBeGreaterThan(before);
    expect(intent).toBeLessThanOrEqual(Date.now() + HOUR);
    expect(await intentOf(key)).toBeNull();
  });

  it("left by a push that lost D1 after writing its object names that object", async () => {
    const bytes = randomBytes(2000);
    const digest = await digestOf(bytes);
    const written: string[] = [];
    const BLOBS = wrap(env.BLOBS, {
      put: (key: string, ...rest: unknown[]) => {
        written.push(key);
        return (env.BLOBS.put as (...args: unknown[]) => unknown).call(env.BLOBS, key, ...rest);
      },
    });
    // D1 answers until the object is written, and nothing after (the Worker cannot even ask whether the record committed).
    const DB = sessionsWith({
      prepare: (query: string) => (written.length === 0 ? env.DB.prepare(query) : wrap(env.DB.prepare(query), { bind: unreachable })),
      batch: unreachable,
    });
    expect((await monolithic({ BLOBS, DB }, uniqueRepo(), bytes, digest)).status).toBe(500);

    const [key] = written as [string];
    expect(await blobKeyOf(digest)).toBeNull();
    expect(await exists(key)).toBe(true);
    expect(await intentOf(key)).not.toBeNull();
  });
});

/** A manifest of `size` bytes or more (past 950 KB it is stored in R2), referencing an image pushed to `repo`. */
async function largeManifest(repo: string, size = 1024 * 1024): Promise<{ bytes: Uint8Array<ArrayBuffer>; digest: string }> {
  const { manifest } = await pushImage(repo);
  const bytes = new Uint8Array(new TextEncoder().encode(JSON.stringify({ ...manifest, annotations: { pad: "x".repeat(size) } })));
  return { bytes, digest: await digestOf(bytes) };
}

function manifestKeyOf(repo: string, digest: string): Promise<string | null> {
  return env.DB.prepare("SELECT object_key FROM manifests WHERE repository = ?1 AND digest = ?2").bind(repo, digest).first<string>("object_key");
}

describe("a manifest too large for its D1 row", () => {
  it("is written to a key of its own for each PUT, named as an intent that the batch storing the manifest clears; a copy D1 does not point at keeps its intent", async () => {
    const [a, b] = [uniqueRepo(), uniqueRepo()];
    const { bytes, digest } = await largeManifest(a);
    const stored = await putManifest(a, "v1", bytes);
    expect(stored.status).toBe(201);
    // One D1 query names the key, then one batch of eight statements stores the manifest and clears it; one R2 put between them.
    expect(costOf(stored)).toMatchObject({ d1Queries: 10, r2ClassA: 1, r2ClassB: 0, doRequests: 0 });
    // b's copy of the same manifest must not share a's key: garbage collection may delete either while the other is being written.
    // (b lacks its blobs: a mirror copying the manifest alone.)
    const copied = await fetchWithEnv({ SPARSE_MANIFESTS: "accept" }, `/v2/${b}/manifests/v1`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: bytes });
    expect(copied.status).toBe(201);
    const [keyA, keyB] = [await manifestKeyOf(a, digest), await manifestKeyOf(b, digest)];
    expect(keyA).toMatch(new RegExp(`^manifests/sha256/${digest.slice("sha256:".length)}/.+`));
    expect(keyB).not.toBe(keyA);
    expect(await intentOf(keyA!)).toBeNull();
    expect(await intentOf(keyB!)).toBeNull();

    // Pushed again, the manifest keeps its first object; the new one is a copy nothing points at, left to garbage collection.
    expect((await putManifest(a, "v2", bytes)).status).toBe(201);
    expect(await manifestKeyOf(a, digest)).toBe(keyA);
    const copies = (await keysUnder(`manifests/sha256/${digest.slice("sha256:".length)}/`)).filter((key) => key !== keyA && key !== keyB);
    expect(copies).toHaveLength(1);
    expect(await intentOf(copies[0]!)).not.toBeNull();
    const served = await fetchRegistry(`/v2/${a}/manifests/v2`);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(bytes);
  });

  it("left by a PUT whose D1 batch failed names the object it wrote", async () => {
    const repo = uniqueRepo();
    const { bytes, digest } = await largeManifest(repo);
    const DB = sessionsWith({ batch: unreachable });
    const response = await fetchWithEnv({ DB }, `/v2/${repo}/manifests/v1`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: bytes });
    expect(response.status).toBe(500);

    expect(await manifestKeyOf(repo, digest)).toBeNull();
    const [key] = await keysUnder(`manifests/sha256/${digest.slice("sha256:".length)}/`);
    expect(key).toBeDefined();
    expect(await intentOf(key!)).not.toBeNull();
  });
});
