import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BlobStore } from "../../src/storage/blobs";
import { commitsThenThrows, digestOf, errorCode, fetchRegistry, interceptRegister, openUpload, randomBytes, sessionOf, uniqueRepo, uploadObjectId, withDigest } from "./client";

const MiB = 1024 * 1024;

/** Every R2 object under the blob keys of these uploads. */
async function objectsOf(...locations: string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const location of locations) keys.push(...(await env.BLOBS.list({ prefix: `blobs/${uploadObjectId(location)}` })).objects.map((o) => o.key));
  return keys;
}

async function patch(location: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  expect((await fetchRegistry(location, { method: "PATCH", body: bytes })).status).toBe(202);
}

function complete(location: string, digest: string): Promise<Response> {
  return fetchRegistry(withDigest(location, digest), { method: "PUT" });
}

async function expectServed(repo: string, digest: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`);
  expect(response.status).toBe(200);
  expect(await digestOf(new Uint8Array(await response.arrayBuffer()))).toBe(digest);
  expect(Number(response.headers.get("Content-Length"))).toBe(bytes.length);
}

describe("published bytes are never lost", () => {
  it.each([
    ["one object", 3 * MiB],
    ["parts", 9 * MiB],
  ])("a cancel after the blob was recorded in D1 but the session heard an error keeps the bytes (%s)", async (_, size) => {
    const repo = uniqueRepo();
    const bytes = randomBytes(size);
    const digest = await digestOf(bytes);
    const location = await openUpload(repo);
    if (size > 8 * MiB) {
      expect((await fetchRegistry(location, { method: "PATCH", body: bytes, headers: { "Content-Range": `0-${size - 1}` } })).status).toBe(202);
    } else {
      await patch(location, bytes);
    }
    await interceptRegister(location, commitsThenThrows);
    expect((await complete(location, digest)).status).toBe(500);

    const cancel = await fetchRegistry(location, { method: "DELETE" });
    expect(cancel.status).toBe(404);
    expect(await errorCode(cancel)).toBe("BLOB_UPLOAD_UNKNOWN");
    await expectServed(repo, digest, bytes);
    expect(await objectsOf(location)).toHaveLength(1);
  });

  it("a retried PUT after the blob was recorded but the session heard an error answers 201 and keeps one copy", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(2 * MiB);
    const digest = await digestOf(bytes);
    const location = await openUpload(repo);
    await patch(location, bytes);
    await interceptRegister(location, commitsThenThrows);
    expect((await complete(location, digest)).status).toBe(500);

    const retry = await complete(location, digest);
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Docker-Content-Digest")).toBe(digest);
    await expectServed(repo, digest, bytes);
    expect(await objectsOf(location)).toHaveLength(1);
  });

  it("a session evicted between recording the blob and ending learns from D1 that it is done", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(1000);
    const digest = await digestOf(bytes);
    const location = await openUpload(repo);
    await patch(location, bytes);
    await interceptRegister(location, commitsThenThrows);
    expect((await complete(location, digest)).status).toBe(500);
    await evictDurableObject(sessionOf(location));

    const status = await fetchRegistry(location);
    expect(status.status).toBe(404);
    expect(await errorCode(status)).toBe("BLOB_UPLOAD_UNKNOWN");
    await expectServed(repo, digest, bytes);
    expect(await objectsOf(location)).toHaveLength(1);
  });

  it("a cancel that arrives while the blob is being recorded waits for it and deletes nothing", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(5000);
    const digest = await digestOf(bytes);
    const location = await openUpload(repo);
    await patch(location, bytes);
    let recording!: () => void;
    const reached = new Promise<void>((resolve) => (recording = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await interceptRegister(location, async (real, ...args) => {
      recording();
      await gate;
      return real(...args);
    });
    const completing = complete(location, digest);
    await reached;
    const cancelling = fetchRegistry(location, { method: "DELETE" });
    // The cancel is inside the session, waiting: give it the chance to act before the record commits.
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    expect((await completing).status).toBe(201);
    expect((await cancelling).status).toBe(404);
    await expectServed(repo, digest, bytes);
    expect(await objectsOf(location)).toHaveLength(1);
  });

  it("two uploads of one digest completing at once in two repositories keep exactly one object, served by both", async () => {
    const bytes = randomBytes(3 * MiB);
    const digest = await digestOf(bytes);
    const [a, b] = [uniqueRepo(), uniqueRepo()];
    const [first, second] = [await openUpload(a), await openUpload(b)];
    await patch(first, bytes);
    await patch(second, bytes);
    // Both sessions verify their bytes, then record them in turn: the second hears the first's key.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived = 0;
    let bothArrived!: () => void;
    const bothVerified = new Promise<void>((resolve) => (bothArrived = resolve));
    const arrive = async (real: BlobStore["register"], ...args: Parameters<BlobStore["register"]>) => {
      if (++arrived === 2) bothArrived();
      await gate;
      return real(...args);
    };
    await interceptRegister(first, arrive);
    await interceptRegister(second, arrive);
    const completions = Promise.all([complete(first, digest), complete(second, digest)]);
    await bothVerified;
    release();
    expect((await completions).map((r) => r.status)).toEqual([201, 201]);

    const kept = await objectsOf(first, second);
    expect(kept).toHaveLength(1);
    const recorded = await env.DB.prepare("SELECT object_key FROM blobs WHERE digest = ?1").bind(digest).first<string>("object_key");
    expect(kept).toEqual([recorded]);
    await expectServed(a, digest, bytes);
    await expectServed(b, digest, bytes);
  });
});
