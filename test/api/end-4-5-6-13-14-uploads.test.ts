import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Digest } from "../../src/oci/digest";
import type { RepositoryName } from "../../src/oci/names";
import type { UploadResult } from "../../src/storage/upload-result";
import type { UploadSession } from "../../src/storage/upload-session";
import { digestOf, errorCode, fetchRegistry, heldBody, openUpload, pushBlob, randomBytes, streamOf, uniqueRepo, uploadObjectId, withDigest, objectsOf } from "./client";

const MiB = 1024 * 1024;

/** A body that errors after `length` bytes, as one whose connection drops or whose chunked encoding breaks does. */
function breakingOff(length: number): ReadableStream<Uint8Array> {
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  void (async () => {
    for (let sent = 0; sent < length; sent += 256 * 1024) await writer.write(randomBytes(Math.min(256 * 1024, length - sent)));
    await writer.abort(new Error("connection reset"));
  })();
  return readable;
}

const ZERO_DIGEST = `sha256:${"0".repeat(64)}` as Digest;

async function patch(location: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Response> {
  return fetchRegistry(location, { method: "PATCH", body, headers });
}

/** Sends `bytes` as PATCH chunks of `size` with Content-Range, as chunked clients do; returns the last Location. */
async function patchInChunks(location: string, bytes: Uint8Array, size: number): Promise<string> {
  for (let offset = 0; offset < bytes.length; offset += size) {
    const chunk = bytes.slice(offset, offset + size);
    const response = await patch(location, chunk, { "Content-Range": `${offset}-${offset + chunk.length - 1}`, "Content-Type": "application/octet-stream" });
    expect(response.status).toBe(202);
    expect(response.headers.get("Range")).toBe(`0-${offset + chunk.length - 1}`);
    location = response.headers.get("Location")!;
  }
  return location;
}

async function expectBlob(repo: string, digest: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`);
  expect(response.status).toBe(200);
  expect(response.headers.get("Content-Length")).toBe(String(bytes.length));
  const served = new Uint8Array(await response.arrayBuffer());
  expect(served.length).toBe(bytes.length);
  expect(await digestOf(served, digest.startsWith("sha512") ? "sha512" : "sha256")).toBe(digest);
}

async function complete(location: string, digest: string, body?: BodyInit): Promise<Response> {
  return fetchRegistry(withDigest(location, digest), { method: "PUT", ...(body === undefined ? {} : { body }) });
}

describe("end-4a POST /v2/<name>/blobs/uploads/", () => {
  it("opens a session: 202 with Location, Range and the upload id", async () => {
    const repo = uniqueRepo();
    const response = await fetchRegistry(`/v2/${repo}/blobs/uploads/`, { method: "POST" });
    expect(response.status).toBe(202);
    const location = response.headers.get("Location")!;
    expect(location).toMatch(new RegExp(`^/v2/${repo}/blobs/uploads/[0-9a-f]{104}$`));
    expect(response.headers.get("Range")).toBe("0-0");
    expect(location.endsWith(response.headers.get("Docker-Upload-UUID")!)).toBe(true);
  });
});

describe("end-4b POST ?digest= (monolithic)", () => {
  it("stores the body in one request: 201 with Location and digest", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(4096);
    const digest = await digestOf(bytes);
    const response = await fetchRegistry(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: bytes, headers: { "Content-Type": "application/octet-stream" } });
    expect(response.status).toBe(201);
    expect(response.headers.get("Location")).toBe(`/v2/${repo}/blobs/${digest}`);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    await expectBlob(repo, digest, bytes);
  });

  it("refuses a body that does not match the digest, and stores nothing", async () => {
    const repo = uniqueRepo();
    const claimed = await digestOf(randomBytes(10));
    const response = await fetchRegistry(`/v2/${repo}/blobs/uploads/?digest=${claimed}`, { method: "POST", body: randomBytes(10) });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("DIGEST_INVALID");
    expect((await fetchRegistry(`/v2/${repo}/blobs/${claimed}`, { method: "HEAD" })).status).toBe(404);
  });
});

describe("end-4c POST ?digest-algorithm=sha512", () => {
  it("accepts sha512 uploads, chunked or whole", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(3 * MiB + 17);
    const digest = await digestOf(bytes, "sha512");
    const whole = await openUpload(repo, "?digest-algorithm=sha512");
    // The session begins with its first PATCH, which learns the algorithm from the Location.
    expect(whole).toMatch(/\?digest-algorithm=sha512$/);
    const patched = await patch(whole, bytes);
    expect((await complete(patched.headers.get("Location")!, digest)).status).toBe(201);
    await expectBlob(repo, digest, bytes);

    const other = uniqueRepo();
    const chunked = await patchInChunks(await openUpload(other, "?digest-algorithm=sha512"), bytes, MiB);
    expect((await complete(chunked, digest)).status).toBe(201);
    await expectBlob(other, digest, bytes);
  });

  it("refuses an unknown algorithm with DIGEST_INVALID", async () => {
    const response = await fetchRegistry(`/v2/${uniqueRepo()}/blobs/uploads/?digest-algorithm=md5`, { method: "POST" });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("DIGEST_INVALID");
  });
});

describe("end-5 PATCH <location>", () => {
  it("streams a whole blob with chunked transfer encoding (no Content-Length), then PUT with no body", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(20 * MiB + 123);
    const location = await openUpload(repo);
    const patched = await patch(location, streamOf(bytes, 256 * 1024));
    expect(patched.status).toBe(202);
    expect(patched.headers.get("Range")).toBe(`0-${bytes.length - 1}`);
    const digest = await digestOf(bytes);
    const put = await complete(patched.headers.get("Location")!, digest);
    expect(put.status).toBe(201);
    expect(put.headers.get("Docker-Content-Digest")).toBe(digest);
    await expectBlob(repo, digest, bytes);
  });

  it.each([
    ["1-byte chunks", 40, 1],
    ["chunks that straddle 8 MiB part boundaries", 19 * MiB + 5, 3 * MiB + 1],
    ["chunks exactly one part long", 16 * MiB, 8 * MiB],
  ])("assembles %s with Content-Range", async (_, total, size) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(total);
    const location = await patchInChunks(await openUpload(repo), bytes, size);
    const digest = await digestOf(bytes);
    expect((await complete(location, digest)).status).toBe(201);
    await expectBlob(repo, digest, bytes);
  });

  it("appends chunks without Content-Range at the end of the upload", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(9 * MiB);
    let location = await openUpload(repo);
    for (const part of [bytes.slice(0, 5 * MiB), bytes.slice(5 * MiB)]) {
      const response = await patch(location, streamOf(part));
      expect(response.status).toBe(202);
      location = response.headers.get("Location")!;
    }
    const digest = await digestOf(bytes);
    expect((await complete(location, digest)).status).toBe(201);
    await expectBlob(repo, digest, bytes);
  });

  it("answers an out-of-order chunk with 416 and the true Range, and keeps the upload", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(300);
    const location = await openUpload(repo);
    expect((await patch(location, bytes.slice(0, 100), { "Content-Range": "0-99" })).status).toBe(202);
    const gap = await patch(location, bytes.slice(200, 300), { "Content-Range": "200-299" });
    expect(gap.status).toBe(416);
    expect(gap.headers.get("Range")).toBe("0-99");
    expect(await errorCode(gap)).toBe("RANGE_INVALID");
    const overlap = await patch(location, bytes.slice(50, 150), { "Content-Range": "50-149" });
    expect(overlap.status).toBe(416);
    expect(overlap.headers.get("Range")).toBe("0-99");
    expect((await patch(location, bytes.slice(100), { "Content-Range": "100-299" })).status).toBe(202);
    const digest = await digestOf(bytes);
    expect((await complete(location, digest)).status).toBe(201);
    await expectBlob(repo, digest, bytes);
  });

  it("refuses a chunk whose length differs from its Content-Range, keeping what came before", async () => {
    const repo = uniqueRepo();
    const location = await openUpload(repo);
    expect((await patch(location, randomBytes(10), { "Content-Range": "0-9" })).status).toBe(202);
    const short = await patch(location, streamOf(randomBytes(5)), { "Content-Range": "10-29" });
    expect(short.status).toBe(400);
    expect(await errorCode(short)).toBe("SIZE_INVALID");
    const status = await fetchRegistry(location);
    expect(status.headers.get("Range")).toBe("0-9");
  });

  it("turns away a second writer while a chunk is streaming", async () => {
    const repo = uniqueRepo();
    const location = await openUpload(repo);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = randomBytes(1000);
    const streaming = patch(location, heldBody(first, gate));
    // Wait until the first request is inside the session.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = await patch(location, randomBytes(10));
    expect(second.status).toBe(416);
    expect(await errorCode(second)).toBe("RANGE_INVALID");
    release();
    const done = await streaming;
    expect(done.status).toBe(202);
    expect(done.headers.get("Range")).toBe("0-999");
    const digest = await digestOf(first);
    expect((await complete(location, digest)).status).toBe(201);
    await expectBlob(repo, digest, first);
  });
});

describe("end-6 PUT <location>?digest=", () => {
  it("takes the last chunk in the PUT body", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(10 * MiB + 3);
    const location = await patchInChunks(await openUpload(repo), bytes.slice(0, 9 * MiB), 9 * MiB);
    const digest = await digestOf(bytes);
    const put = await complete(location, digest, bytes.slice(9 * MiB));
    expect(put.status).toBe(201);
    await expectBlob(repo, digest, bytes);
  });

  it("takes the whole blob in the PUT body after POST, as containerd does", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(12 * MiB);
    const digest = await digestOf(bytes);
    expect((await complete(await openUpload(repo), digest, streamOf(bytes))).status).toBe(201);
    await expectBlob(repo, digest, bytes);
  });

  it.each([
    ["small, whole", 1000, 1000],
    ["multipart, whole", 9 * MiB, 9 * MiB],
    ["multipart, chunked", 9 * MiB, 2 * MiB],
  ])("refuses a digest mismatch (%s) with DIGEST_INVALID and publishes nothing", async (_, total, size) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(total);
    const location = await patchInChunks(await openUpload(repo), bytes, size);
    const wrong = await digestOf(randomBytes(total));
    const put = await complete(location, wrong);
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe("DIGEST_INVALID");
    expect((await fetchRegistry(`/v2/${repo}/blobs/${wrong}`, { method: "HEAD" })).status).toBe(404);
    expect((await fetchRegistry(`/v2/${repo}/blobs/${await digestOf(bytes)}`, { method: "HEAD" })).status).toBe(404);
    expect((await fetchRegistry(location)).status).toBe(404);
  });

  it.each([
    ["accepts the right digest", true, "a ranged chunk"],
    ["refuses a wrong digest", false, "a ranged chunk"],
    ["accepts the right digest", true, "a whole first PATCH"],
    ["refuses a wrong digest", false, "a whole first PATCH"],
  ])("%s when the session was evicted between chunks (its running hash lost), after %s", async (_, right, first) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(11 * MiB);
    const opened = await openUpload(repo);
    const location = first === "a ranged chunk" ? await patchInChunks(opened, bytes.slice(0, 6 * MiB), 6 * MiB) : opened;
    if (first === "a whole first PATCH") expect((await patch(location, bytes.slice(0, 6 * MiB))).status).toBe(202);
    const id = env.UPLOADS.idFromString(uploadObjectId(location));
    await evictDurableObject(env.UPLOADS.get(id));
    const rest = await patch(location, bytes.slice(6 * MiB), { "Content-Range": `${6 * MiB}-${bytes.length - 1}` });
    expect(rest.status).toBe(202);
    const digest = right ? await digestOf(bytes) : await digestOf(randomBytes(11));
    const put = await complete(location, digest);
    expect(put.status).toBe(right ? 201 : 400);
    if (right) await expectBlob(repo, digest, bytes);
    else expect((await fetchRegistry(`/v2/${repo}/blobs/${await digestOf(bytes)}`, { method: "HEAD" })).status).toBe(404);
  });

  it("checks the digest of a sha512 PUT on a sha256 session by reading the bytes back", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(9 * MiB);
    const patched = await patch(await openUpload(repo), bytes);
    const digest = await digestOf(bytes, "sha512");
    expect((await complete(patched.headers.get("Location")!, digest)).status).toBe(201);
    await expectBlob(repo, digest, bytes);
  });

  it.each([0, 100])("refuses a PUT body shorter than its Content-Length and keeps what came before (%i bytes)", async (before) => {
    const repo = uniqueRepo();
    const location = await openUpload(repo);
    const first = randomBytes(before);
    if (before > 0) expect((await patch(location, first)).status).toBe(202);
    const rest = randomBytes(3 * MiB);
    const whole = new Uint8Array([...first, ...rest]);
    const put = await fetchRegistry(withDigest(location, await digestOf(whole)), {
      method: "PUT",
      body: streamOf(rest.slice(0, MiB)),
      headers: { "Content-Length": String(rest.length) },
    });
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe("SIZE_INVALID");
    expect((await fetchRegistry(location)).headers.get("Range")).toBe(`0-${Math.max(before - 1, 0)}`);
    expect(await objectsOf(location)).toHaveLength(before > 0 ? 1 : 0);
  });

  it("answers a last chunk that does not start where the upload ends with 416 and the true Range, keeping the upload", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(300);
    const digest = await digestOf(bytes);
    const location = await patchInChunks(await openUpload(repo), bytes.slice(0, 100), 100);
    for (const range of ["50-299", "150-299"]) {
      const put = await fetchRegistry(withDigest(location, digest), { method: "PUT", body: bytes.slice(Number(range.split("-")[0])), headers: { "Content-Range": range } });
      expect(put.status).toBe(416);
      expect(put.headers.get("Range")).toBe("0-99");
      expect(await errorCode(put)).toBe("RANGE_INVALID");
    }
    expect((await fetchRegistry(location)).headers.get("Range")).toBe("0-99");
    const put = await fetchRegistry(withDigest(location, digest), { method: "PUT", body: bytes.slice(100), headers: { "Content-Range": "100-299" } });
    expect(put.status).toBe(201);
    await expectBlob(repo, digest, bytes);
  });

  it("requires the digest parameter", async () => {
    const location = await openUpload(uniqueRepo());
    const response = await fetchRegistry(location, { method: "PUT" });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("DIGEST_INVALID");
  });

  it("stores a blob pushed twice once, under its first copy", async () => {
    const bytes = randomBytes(2000);
    const digest = await digestOf(bytes);
    const [a, b] = [uniqueRepo(), uniqueRepo()];
    const locations: string[] = [];
    for (const repo of [a, b]) {
      const location = await openUpload(repo);
      locations.push(location);
      expect((await complete(location, digest, bytes)).status).toBe(201);
    }
    await expectBlob(a, digest, bytes);
    await expectBlob(b, digest, bytes);
    expect(await objectsOf(locations[0]!)).toHaveLength(1);
    expect(await objectsOf(locations[1]!)).toEqual([]);
  });
});


describe("a first request that announces its length (one R2 object)", () => {
  it.each([
    ["PATCHes", 20 * MiB, 3 * MiB],
    ["a small PATCH", 2 * MiB, 1000],
  ])("takes more %s after it, and leaves only the published object", async (_, first, more) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(first + more);
    const location = await openUpload(repo);
    expect((await patch(location, bytes.slice(0, first))).status).toBe(202);
    const next = await patch(location, bytes.slice(first), { "Content-Range": `${first}-${bytes.length - 1}` });
    expect(next.headers.get("Range")).toBe(`0-${bytes.length - 1}`);
    const digest = await digestOf(bytes);
    expect((await complete(location, digest)).status).toBe(201);
    await expectBlob(repo, digest, bytes);
    expect(await objectsOf(location)).toHaveLength(1);
  });

  it("takes a last chunk in the PUT body after it", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(10 * MiB + 5);
    const location = await openUpload(repo);
    expect((await patch(location, bytes.slice(0, 10 * MiB))).status).toBe(202);
    const digest = await digestOf(bytes);
    expect((await complete(location, digest, bytes.slice(10 * MiB))).status).toBe(201);
    await expectBlob(repo, digest, bytes);
    expect(await objectsOf(location)).toHaveLength(1);
  });

  it.each(["a wrong digest", "a cancel"])("leaves nothing in R2 after %s", async (ending) => {
    const repo = uniqueRepo();
    const location = await openUpload(repo);
    expect((await patch(location, randomBytes(3 * MiB))).status).toBe(202);
    expect(await objectsOf(location)).toHaveLength(1);
    const ended = ending === "a cancel" ? await fetchRegistry(location, { method: "DELETE" }) : await complete(location, await digestOf(randomBytes(5)));
    expect(ended.status).toBe(ending === "a cancel" ? 204 : 400);
    expect(await objectsOf(location)).toEqual([]);
  });
});

describe("a finished upload's location", () => {
  it.each(["completed", "cancelled"])("is unknown to every method once the upload is %s", async (ending) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(3000);
    const digest = await digestOf(bytes);
    const location = await patchInChunks(await openUpload(repo), bytes, 3000);
    const ended = ending === "completed" ? await complete(location, digest) : await fetchRegistry(location, { method: "DELETE" });
    expect(ended.status).toBe(ending === "completed" ? 201 : 204);
    const requests: [string, RequestInit][] = [
      [location, { method: "PATCH", body: randomBytes(10) }],
      [withDigest(location, await digestOf(randomBytes(5))), { method: "PUT", body: randomBytes(5) }],
      [location, { method: "GET" }],
      [location, { method: "DELETE" }],
    ];
    for (const [url, init] of requests) {
      const response = await fetchRegistry(url, init);
      expect(response.status, init.method).toBe(404);
      expect(await errorCode(response)).toBe("BLOB_UPLOAD_UNKNOWN");
    }
    expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" })).status).toBe(ending === "completed" ? 200 : 404);
  });
});

describe("end-13 GET <location>", () => {
  it("reports the bytes received: 204 with Location and Range", async () => {
    const repo = uniqueRepo();
    const location = await patchInChunks(await openUpload(repo), randomBytes(2500), 1000);
    const response = await fetchRegistry(location);
    expect(response.status).toBe(204);
    expect(response.headers.get("Range")).toBe("0-2499");
    expect(response.headers.get("Location")).toBe(location);
  });

  it("does not answer for another repository's upload", async () => {
    const repo = uniqueRepo();
    const location = await patchInChunks(await openUpload(repo), randomBytes(100), 100);
    const elsewhere = location.replace(repo, uniqueRepo());
    for (const method of ["GET", "PATCH", "DELETE"]) {
      const response = await fetchRegistry(elsewhere, { method, ...(method === "PATCH" ? { body: randomBytes(10) } : {}) });
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe("BLOB_UPLOAD_UNKNOWN");
    }
    expect((await fetchRegistry(location)).headers.get("Range")).toBe("0-99");
  });

  it("answers an id the registry never issued with BLOB_UPLOAD_UNKNOWN", async () => {
    const response = await fetchRegistry(`/v2/${uniqueRepo()}/blobs/uploads/${"0".repeat(64)}`);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("BLOB_UPLOAD_UNKNOWN");
  });
});

describe("end-14 DELETE <location>", () => {
  it("cancels the upload: 204, then the session is unknown", async () => {
    const repo = uniqueRepo();
    const location = await patchInChunks(await openUpload(repo), randomBytes(9 * MiB), 9 * MiB);
    expect((await fetchRegistry(location, { method: "DELETE" })).status).toBe(204);
    const status = await fetchRegistry(location);
    expect(status.status).toBe(404);
    expect(await errorCode(status)).toBe("BLOB_UPLOAD_UNKNOWN");
    expect((await fetchRegistry(location, { method: "DELETE" })).status).toBe(404);
  });

  it("wins over a chunk that is still streaming: the chunk is refused and nothing remains", async () => {
    const location = await openUpload(uniqueRepo());
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(randomBytes(1000));
        await gate;
        controller.close();
      },
    });
    const streaming = patch(location, slow);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await fetchRegistry(location, { method: "DELETE" })).status).toBe(204);
    release();
    const refused = await streaming;
    expect(refused.status).toBe(404);
    expect(await errorCode(refused)).toBe("BLOB_UPLOAD_UNKNOWN");
    expect((await fetchRegistry(location)).status).toBe(404);
  });
});

describe("an interrupted upload", () => {
  it("keeps the session as it was when the connection drops mid-body, and never publishes the partial bytes", async () => {
    const repo = uniqueRepo();
    const intended = randomBytes(12 * MiB);
    const location = await openUpload(repo);
    const { readable, writable } = new FixedLengthStream(intended.length);
    const writer = writable.getWriter();
    const response = patch(location, readable).then((r) => r.status, () => "dropped");
    await writer.write(intended.slice(0, 10 * MiB));
    await writer.abort(new Error("connection reset")).catch(() => {});
    expect(await response).not.toBe(202);

    const status = await fetchRegistry(location);
    expect(status.status).toBe(204);
    expect(status.headers.get("Range")).toBe("0-0");
    const digest = await digestOf(intended);
    const put = await complete(location, digest);
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe("DIGEST_INVALID");
    expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
  });

  // SELF.fetch delivers a client's broken body as one that ended early; the session hears the break itself.
  it.each([
    ["a chunk", "append", 0],
    ["a chunk after a chunk", "append", 100],
    ["a chunk that fills parts first", "append", 9 * MiB],
    ["a completing chunk", "complete", 0],
    ["a completing chunk after a chunk", "complete", 100],
  ] as const)("refuses %s whose body breaks off as an incomplete body, and keeps what came before", async (_, method, before) => {
    const repo = uniqueRepo();
    const location = await openUpload(repo);
    const first = randomBytes(before);
    if (before > 0) expect((await patch(location, first, { "Content-Range": `0-${before - 1}` })).status).toBe(202);
    const session = env.UPLOADS.get(env.UPLOADS.idFromString(uploadObjectId(location)));
    const result = await runInDurableObject(session, (object): Promise<UploadResult<object>> => {
      const instance = object as unknown as UploadSession;
      const target = { repository: repo as RepositoryName, algorithm: "sha256" as const, expiresAt: Date.now() + 60_000 };
      const body = breakingOff(10 * MiB);
      const answer = method === "append" ? instance.append(target, body, {}) : instance.complete(target, ZERO_DIGEST, body, {});
      return answer.then(({ result }) => result);
    });
    expect(result).toMatchObject({ ok: false, reason: "incomplete-body", size: before });
    expect((await fetchRegistry(location)).headers.get("Range")).toBe(`0-${Math.max(before - 1, 0)}`);
    const rest = randomBytes(1000);
    const whole = new Uint8Array([...first, ...rest]);
    expect((await complete(location, await digestOf(whole), rest)).status).toBe(201);
    await expectBlob(repo, await digestOf(whole), whole);
  });

  it.each([0, 100])("refuses a body shorter than its Content-Length and keeps what came before (%i bytes)", async (before) => {
    const repo = uniqueRepo();
    const location = await openUpload(repo);
    if (before > 0) expect((await patch(location, randomBytes(before))).status).toBe(202);
    const short = await patch(location, streamOf(randomBytes(3 * MiB)), { "Content-Length": String(5 * MiB) });
    expect(short.status).toBe(400);
    expect(await errorCode(short)).toBe("SIZE_INVALID");
    expect((await fetchRegistry(location)).headers.get("Range")).toBe(`0-${Math.max(before - 1, 0)}`);
    expect(await objectsOf(location)).toHaveLength(before > 0 ? 1 : 0);
  });
});
