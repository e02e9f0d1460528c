import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { UPLOAD_BUFFER_BUDGET } from "../../src/oci/limits";
import { MAX_UPLOAD_BYTES, PART_SIZE } from "../../src/storage/part-writer";
import { digestOf, errorCode, fetchRegistry, heldBody, openUpload, randomBytes, uniqueRepo, uploadObjectId, withDigest } from "./client";

describe("the isolate's upload buffers", () => {
  it("turn away a chunk that cannot have its buffer with 429 and Retry-After, and take it once buffers are free", async () => {
    // A chunk of unknown length leases a whole part while it streams.
    const streams = UPLOAD_BUFFER_BUDGET / PART_SIZE;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const repo = uniqueRepo();
    const first = randomBytes(1000);
    const streaming: Promise<Response>[] = [];
    for (let i = 0; i < streams; i++) streaming.push(fetchRegistry(await openUpload(repo), { method: "PATCH", body: heldBody(first, gate) }));
    // Let every chunk reach its session and lease its buffer.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const location = await openUpload(repo);
    const refused = await fetchRegistry(location, { method: "PATCH", body: heldBody(first, Promise.resolve()) });
    expect(refused.status).toBe(429);
    expect(await errorCode(refused)).toBe("TOOMANYREQUESTS");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await fetchRegistry(location)).headers.get("Range")).toBe("0-0");

    release();
    for (const response of await Promise.all(streaming)) expect(response.status).toBe(202);
    const digest = await digestOf(first);
    expect((await fetchRegistry(withDigest(location, digest), { method: "PUT", body: first })).status).toBe(201);
  });

  it("keep a part free for a new upload: an upload takes a second buffer only if a part stays free", async () => {
    const gate = () => {
      let open!: () => void;
      return { opened: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
    };
    const [begun, filled] = [gate(), gate()];
    // Five uploads lease their first buffers, then each fills a part and would take a second buffer to read on.
    const large = 5;
    const repo = uniqueRepo();
    const phases = () => {
      let phase = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (phase === 0) controller.enqueue(randomBytes(1024));
          if (phase === 1) {
            await begun.opened;
            controller.enqueue(randomBytes(PART_SIZE));
          }
          if (phase === 2) {
            await filled.opened;
            controller.close();
          }
          phase++;
        },
      });
    };
    const streaming: Promise<Response>[] = [];
    for (let i = 0; i < large; i++) streaming.push(fetchRegistry(await openUpload(repo), { method: "PATCH", body: phases() }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    begun.open();
    await new Promise((resolve) => setTimeout(resolve, 2000));

    // Second buffers left a part free: one more upload begins, and takes it.
    const newcomer = fetchRegistry(await openUpload(repo), { method: "PATCH", body: heldBody(randomBytes(10), filled.opened) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await fetchRegistry(await openUpload(repo), { method: "PATCH", body: heldBody(randomBytes(10), Promise.resolve()) })).status).toBe(429);
    filled.open();
    expect((await Promise.all([...streaming, newcomer])).map((r) => r.status)).toEqual(Array(large + 1).fill(202));
  });
});

describe("an upload's size", () => {
  it("is refused with 413 before any byte is read when a chunk's range ends past what an upload holds", async () => {
    const location = await openUpload(uniqueRepo());
    const response = await fetchRegistry(location, {
      method: "PATCH",
      body: heldBody(randomBytes(10), new Promise(() => {})),
      headers: { "Content-Range": `0-${MAX_UPLOAD_BYTES}` },
    });
    expect(response.status).toBe(413);
    expect(await errorCode(response)).toBe("SIZE_INVALID");
    expect((await fetchRegistry(location)).headers.get("Range")).toBe("0-0");
  });

  it("is refused with 413 when a chunk of unknown length streams past R2's 10,000 parts, keeping the upload", async () => {
    const location = await openUpload(uniqueRepo());
    expect((await fetchRegistry(location, { method: "PATCH", body: randomBytes(100), headers: { "Content-Range": "0-99" } })).status).toBe(202);
    // As if 10,000 parts less 10 bytes had arrived: only the size matters to the limit.
    const almostFull = MAX_UPLOAD_BYTES - 10;
    await runInDurableObject(env.UPLOADS.get(env.UPLOADS.idFromString(uploadObjectId(location))), (_, state) => {
      state.storage.sql.exec("UPDATE upload SET size = ?", almostFull);
    });
    const response = await fetchRegistry(location, { method: "PATCH", body: heldBody(randomBytes(100), Promise.resolve()) });
    expect(response.status).toBe(413);
    expect(await errorCode(response)).toBe("SIZE_INVALID");
    expect(response.headers.get("Range")).toBe(`0-${almostFull - 1}`);
    expect((await fetchRegistry(location)).headers.get("Range")).toBe(`0-${almostFull - 1}`);
  });
});
