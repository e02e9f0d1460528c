import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { costOf, digestOf, errorCode, fetchRegistry, fetchWithEnv, randomBytes, uniqueRepo, wrap } from "./client";

const MiB = 1024 * 1024;

/**
 * A body with no Content-Length, as the runtime hands a chunked one to the
 * Worker: a byte stream (the requests here are built in the test, not
 * received over HTTP, and a plain stream cannot be read into buffers).
 */
function streamOf(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
  return source.pipeThrough(new IdentityTransformStream());
}

/** A bucket that records the keys a request writes. */
function recording() {
  const written: string[] = [];
  const BLOBS = wrap(env.BLOBS, {
    put: (key: string, ...rest: unknown[]) => {
      written.push(key);
      return (env.BLOBS.put as (...args: unknown[]) => unknown).call(env.BLOBS, key, ...rest);
    },
  });
  return { bindings: { BLOBS }, written };
}

/** The written keys that still hold an object. */
async function remaining(keys: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const key of keys) if (await env.BLOBS.head(key)) found.push(key);
  return found;
}

/**
 * A monolithic POST to the Worker's fetch handler with `bindings`. It is
 * built here, not sent over HTTP, so a body of known length states its
 * Content-Length as a client's would.
 */
function monolithic(bindings: Partial<Cloudflare.Env>, repo: string, digest: string, body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>, headers: Record<string, string> = {}): Promise<Response> {
  const length: Record<string, string> = body instanceof Uint8Array ? { "Content-Length": String(body.length) } : {};
  return fetchWithEnv(bindings, `/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body, headers: { ...length, ...headers } });
}

async function expectServed(repo: string, digest: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`);
  expect(response.status).toBe(200);
  const served = new Uint8Array(await response.arrayBuffer());
  expect(served.length).toBe(bytes.length);
  expect(await digestOf(served)).toBe(await digestOf(bytes));
}

describe("end-4b a monolithic POST ?digest= with the body's length", () => {
  it.each([
    ["sha256", 0],
    ["sha256", 1],
    ["sha256", 3 * MiB + 17],
    ["sha512", 0],
    ["sha512", 1],
    ["sha512", 3 * MiB + 17],
  ] as const)("stores a %s blob of %i bytes straight in R2, asking no Durable Object, and serves it byte for byte", async (algorithm, size) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(size);
    const digest = await digestOf(bytes, algorithm);
    const { bindings, written } = recording();
    const response = await monolithic(bindings, repo, digest, bytes);
    expect(response.status).toBe(201);
    expect(response.headers.get("Location")).toBe(`/v2/${repo}/blobs/${digest}`);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    // D1: the quota's read, the key's write intent, then one batch records the blob (its row, the intent cleared, the repository, the link, the key read back).
    expect(costOf(response)).toMatchObject({ doRequests: 0, r2ClassA: 1, r2ClassB: 0, d1Queries: 7, bytesIn: size });
    expect(await remaining(written)).toHaveLength(1);
    await expectServed(repo, digest, bytes);
  });

  it.each([0, 10, 2 * MiB])("refuses a body of %i bytes that does not have the digest: 400 DIGEST_INVALID, and nothing is left in R2", async (size) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(size);
    const claimed = await digestOf(randomBytes(size + 1));
    const { bindings, written } = recording();
    const response = await monolithic(bindings, repo, claimed, bytes);
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("DIGEST_INVALID");
    expect(written).toHaveLength(1);
    expect(await remaining(written)).toEqual([]);
    for (const digest of [claimed, await digestOf(bytes)]) expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
  });

  it("refuses a body shorter than its Content-Length: 400 SIZE_INVALID, and nothing is left in R2", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(3 * MiB);
    const digest = await digestOf(bytes);
    const { bindings, written } = recording();
    const response = await monolithic(bindings, repo, digest, streamOf(bytes.slice(0, MiB)), { "Content-Length": String(bytes.length) });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("SIZE_INVALID");
    expect(await remaining(written)).toEqual([]);
    expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
  });

  it("keeps one R2 object when the same blob is pushed twice at once, and serves it to both repositories", async () => {
    const bytes = randomBytes(2 * MiB);
    const digest = await digestOf(bytes);
    const [a, b] = [uniqueRepo(), uniqueRepo()];
    const { bindings, written } = recording();
    const responses = await Promise.all([monolithic(bindings, a, digest, bytes), monolithic(bindings, b, digest, bytes)]);
    expect(responses.map((r) => r.status)).toEqual([201, 201]);
    expect(written).toHaveLength(2);
    const recorded = await env.DB.prepare("SELECT object_key FROM blobs WHERE digest = ?1").bind(digest).first<string>("object_key");
    expect(await remaining(written)).toEqual([recorded]);
    await expectServed(a, digest, bytes);
    await expectServed(b, digest, bytes);
  });

  it("keeps the bytes when D1 recorded the blob but its answer was lost, and removes them when D1 recorded nothing", async () => {
    const repo = uniqueRepo();
    const { bindings, written } = recording();
    // D1 whose batches (the blob's record) fail, committed first or not, in every session the request opens.
    const failingBatch = (commit: boolean) =>
      wrap(env.DB, {
        withSession: (start?: string) => {
          const session = env.DB.withSession(start);
          return wrap(session, {
            batch: async (statements: D1PreparedStatement[]) => {
              if (commit) await session.batch(statements);
              throw new Error("the reply from D1 was lost");
            },
          });
        },
      });
    const committed = randomBytes(1000);
    const lost = await monolithic({ ...bindings, DB: failingBatch(true) }, repo, await digestOf(committed), committed);
    expect(lost.status).toBe(500);
    expect(await remaining(written)).toHaveLength(1);
    await expectServed(repo, await digestOf(committed), committed);

    const refused = randomBytes(1000);
    expect((await monolithic({ ...bindings, DB: failingBatch(false) }, repo, await digestOf(refused), refused)).status).toBe(500);
    expect(written).toHaveLength(2);
    expect(await remaining(written.slice(1))).toEqual([]);
    expect((await fetchRegistry(`/v2/${repo}/blobs/${await digestOf(refused)}`, { method: "HEAD" })).status).toBe(404);
  });
});

describe("end-4b a monolithic POST ?digest= without a length", () => {
  it("streams a chunked body through an upload session", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(3 * MiB + 5);
    const digest = await digestOf(bytes);
    const { bindings } = recording();
    const response = await monolithic(bindings, repo, digest, streamOf(bytes));
    expect(response.status).toBe(201);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(costOf(response).doRequests).toBe(1);
    await expectServed(repo, digest, bytes);
  });
});

