import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PART_SIZE } from "../../src/storage/part-writer";
import { createUploadTables } from "../../src/storage/upload-state";
import { digestOf, errorCode, fetchRegistry, fetchWithEnv, interruptedCompletion, openUpload, randomBytes, sessionOf, streamOf, uniqueRepo, uploadObjectId, withDigest, objectsOf } from "./client";

const DAY = 24 * 60 * 60 * 1000;

/** Moves the clock of the Worker and its Durable Objects (they run in the test's isolate) past the default UPLOAD_EXPIRY_SECONDS. */
function aDayLater(): void {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() + DAY + 1000);
}

afterEach(() => {
  vi.useRealTimers();
});

/** The session object's SQL tables and its alarm. */
function storageOf(location: string): Promise<{ tables: string[]; alarm: number | null }> {
  return runInDurableObject(sessionOf(location), async (_, state) => ({
    tables: state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'")
      .toArray()
      .map((t) => t.name),
    alarm: await state.storage.getAlarm(),
  }));
}

function intentsOf(location: string): Promise<string[]> {
  return env.DB.prepare("SELECT object_key FROM object_intents WHERE substr(object_key, 1, length(?1)) = ?1")
    .bind(`blobs/${uploadObjectId(location)}`)
    .all<{ object_key: string }>()
    .then(({ results }) => results.map((r) => r.object_key));
}


/** Every request on the upload is refused as unknown. */
async function expectGone(location: string, digest: string): Promise<void> {
  for (const init of [{ method: "GET" }, { method: "PATCH", body: randomBytes(10) }, { method: "PUT", body: randomBytes(10) }, { method: "DELETE" }]) {
    const response = await fetchRegistry(init.method === "PUT" ? withDigest(location, digest) : location, init);
    expect(response.status, init.method).toBe(404);
    expect(await errorCode(response)).toBe("BLOB_UPLOAD_UNKNOWN");
  }
}

describe("an upload that expires", () => {
  it("sets the session's alarm, when its first request begins it, for when its id expires", async () => {
    const location = await openUpload(uniqueRepo());
    const before = Date.now();
    expect((await fetchRegistry(location, { method: "PATCH", body: randomBytes(100) })).status).toBe(202);
    const { alarm } = await storageOf(location);
    // Ids keep whole seconds.
    expect(alarm).toBeGreaterThan(before + DAY - 2000);
    expect(alarm).toBeLessThanOrEqual(Date.now() + DAY);
  });

  it("with parts: the alarm aborts the multipart upload, deletes what it wrote and its intents, and frees all of the session's storage; later requests are 404 BLOB_UPLOAD_UNKNOWN", async () => {
    const bytes = randomBytes(PART_SIZE + 100);
    const digest = await digestOf(bytes);
    const location = await openUpload(uniqueRepo());
    expect((await fetchRegistry(location, { method: "PATCH", body: streamOf(bytes) })).status).toBe(202);
    const multipartId = await runInDurableObject(sessionOf(location), (_, state) => state.storage.sql.exec<{ id: string }>("SELECT multipart_id AS id FROM upload").one().id);
    expect(await intentsOf(location)).toHaveLength(1);

    aDayLater();
    expect(await runDurableObjectAlarm(sessionOf(location))).toBe(true);

    const upload = env.BLOBS.resumeMultipartUpload(`blobs/${uploadObjectId(location)}`, multipartId);
    await expect(upload.uploadPart(2, randomBytes(10))).rejects.toThrow();
    expect(await objectsOf(location)).toEqual([]);
    expect(await intentsOf(location)).toEqual([]);
    expect(await storageOf(location)).toEqual({ tables: [], alarm: null });
    await expectGone(location, digest);
  });

  it("with one object (a PATCH with its Content-Length, as skopeo sends): the alarm deletes the object and its intent, and frees the session's storage", async () => {
    const bytes = randomBytes(5000);
    const digest = await digestOf(bytes);
    const location = await openUpload(uniqueRepo());
    expect((await fetchRegistry(location, { method: "PATCH", body: bytes })).status).toBe(202);
    expect(await objectsOf(location)).toHaveLength(1);

    aDayLater();
    expect(await runDurableObjectAlarm(sessionOf(location))).toBe(true);

    expect(await objectsOf(location)).toEqual([]);
    expect(await intentsOf(location)).toEqual([]);
    expect(await storageOf(location)).toEqual({ tables: [], alarm: null });
    await expectGone(location, digest);
  });

  it("once completed: the alarm removes the session's tombstone, and the published blob still pulls byte for byte", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(PART_SIZE + 100);
    const digest = await digestOf(bytes);
    const location = await openUpload(repo);
    expect((await fetchRegistry(location, { method: "PATCH", body: streamOf(bytes) })).status).toBe(202);
    expect((await fetchRegistry(withDigest(location, digest), { method: "PUT" })).status).toBe(201);
    expect((await storageOf(location)).tables).toContain("ended");

    aDayLater();
    expect(await runDurableObjectAlarm(sessionOf(location))).toBe(true);

    expect(await storageOf(location)).toEqual({ tables: [], alarm: null });
    vi.useRealTimers();
    const pulled = await fetchRegistry(`/v2/${repo}/blobs/${digest}`);
    expect(pulled.status).toBe(200);
    // By digest: comparing 8 MiB element by element takes the matcher a minute.
    expect(await digestOf(new Uint8Array(await pulled.arrayBuffer()))).toBe(digest);
  });

  it("while publishing, after D1 recorded the blob but the session heard an error: the alarm keeps the bytes D1 points to", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(3000);
    const { location, digest } = await interruptedCompletion(repo, bytes);

    aDayLater();
    expect(await runDurableObjectAlarm(sessionOf(location))).toBe(true);

    expect(await storageOf(location)).toEqual({ tables: [], alarm: null });
    expect(await objectsOf(location)).toHaveLength(1);
    vi.useRealTimers();
    const pulled = await fetchRegistry(`/v2/${repo}/blobs/${digest}`);
    expect(new Uint8Array(await pulled.arrayBuffer())).toEqual(bytes);
  });

  it("is refused by its session once expired, even through a Worker whose longer UPLOAD_EXPIRY_SECONDS still honours the id", async () => {
    const location = await openUpload(uniqueRepo());
    expect((await fetchRegistry(location, { method: "PATCH", body: randomBytes(100) })).status).toBe(202);

    aDayLater();
    const status = await fetchWithEnv({ UPLOAD_EXPIRY_SECONDS: String(2 * 86400) }, location);
    expect(status.status).toBe(404);
    expect(await errorCode(status)).toBe("BLOB_UPLOAD_UNKNOWN");
  });
});

describe("a session begun before uploads expired", () => {
  it("expires as soon as its object starts again: requests on it are 404 BLOB_UPLOAD_UNKNOWN (not a 500 on its old table) and its alarm removes what it wrote", async () => {
    const bytes = randomBytes(1000);
    const location = await openUpload(uniqueRepo());
    expect((await fetchRegistry(location, { method: "PATCH", body: bytes, headers: { "Content-Length": String(bytes.length) } })).status).toBe(202);
    expect(await objectsOf(location)).toHaveLength(1);
    // Its tables as that version made them, then what the object's constructor does when it starts.
    const alarm = await runInDurableObject(sessionOf(location), async (_, state) => {
      state.storage.sql.exec("ALTER TABLE upload DROP COLUMN expires_at");
      await state.storage.deleteAlarm();
      const before = Date.now();
      createUploadTables(state.storage);
      const due = await state.storage.getAlarm();
      // Moved away, so that the test runs it rather than the runtime at a moment of its own.
      await state.storage.setAlarm(before + DAY);
      return { due, before };
    });
    expect(alarm.due).toBeGreaterThanOrEqual(alarm.before);
    expect(alarm.due).toBeLessThanOrEqual(Date.now());
    await expectGone(location, await digestOf(bytes));
    expect(await runDurableObjectAlarm(sessionOf(location))).toBe(true);
    expect(await objectsOf(location)).toEqual([]);
    expect(await storageOf(location)).toEqual({ tables: [], alarm: null });
  });
});
