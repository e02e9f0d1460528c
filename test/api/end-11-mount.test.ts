import { describe, expect, it } from "vitest";
import { digestOf, errorCode, fetchRegistry, pushBlob, randomBytes, uniqueRepo } from "./client";

function mount(repo: string, query: string): Promise<Response> {
  return fetchRegistry(`/v2/${repo}/blobs/uploads/?${query}`, { method: "POST" });
}

describe("end-11 POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>", () => {
  it("mounts a blob from another repository: 201, and the blob serves its real digest and size", async () => {
    const [source, target] = [uniqueRepo(), uniqueRepo()];
    const bytes = randomBytes(4321);
    const digest = await pushBlob(source, bytes);
    const response = await mount(target, `mount=${digest}&from=${source}`);
    expect(response.status).toBe(201);
    expect(response.headers.get("Location")).toBe(`/v2/${target}/blobs/${digest}`);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    const head = await fetchRegistry(`/v2/${target}/blobs/${digest}`, { method: "HEAD" });
    expect(head.headers.get("Content-Length")).toBe("4321");
    expect(head.headers.get("Docker-Content-Digest")).toBe(digest);
    const served = new Uint8Array(await (await fetchRegistry(`/v2/${target}/blobs/${digest}`)).arrayBuffer());
    expect(await digestOf(served)).toBe(digest);
  });

  it("mounts without `from` when the registry holds the blob", async () => {
    const digest = await pushBlob(uniqueRepo(), randomBytes(99));
    const target = uniqueRepo();
    expect((await mount(target, `mount=${digest}`)).status).toBe(201);
    expect((await fetchRegistry(`/v2/${target}/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);
  });

  it("falls back to a normal upload session (202) when `from` does not hold the blob", async () => {
    const digest = await pushBlob(uniqueRepo(), randomBytes(99));
    const target = uniqueRepo();
    const response = await mount(target, `mount=${digest}&from=${uniqueRepo()}`);
    expect(response.status).toBe(202);
    const location = response.headers.get("Location")!;
    expect(location).toMatch(/\/blobs\/uploads\/[0-9a-f]{104}$/);
    expect((await fetchRegistry(`/v2/${target}/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
    // The session is a real one: the blob can be pushed through it.
    const bytes = randomBytes(10);
    const put = await fetchRegistry(`${location}?digest=${await digestOf(bytes)}`, { method: "PUT", body: bytes });
    expect(put.status).toBe(201);
  });

  it("falls back to an upload when no repository holds the digest, or `from` is not a valid name", async () => {
    const unknown = `sha256:${"d".repeat(64)}`;
    expect((await mount(uniqueRepo(), `mount=${unknown}`)).status).toBe(202);
    const digest = await pushBlob(uniqueRepo(), randomBytes(5));
    expect((await mount(uniqueRepo(), `mount=${digest}&from=Not..Valid`)).status).toBe(202);
  });

  it("refuses a malformed mount digest with DIGEST_INVALID", async () => {
    const response = await mount(uniqueRepo(), "mount=sha256:xyz");
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("DIGEST_INVALID");
  });
});
