import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Descriptor, digestOf, errorCode, fetchRegistry, fetchWithEnv, firstError, OCI_MANIFEST, pushBlob, pushImage, putManifest, randomBytes, uniqueRepo } from "./client";

/** The registry's database, with `interleave` run once just before the first write batch reaches it. */
function beforeFirstBatch(interleave: () => Promise<void>): D1Database {
  let pending: (() => Promise<void>) | undefined = interleave;
  // The binding and the sessions opened from it (every request queries through one).
  const intercepted = <T extends Pick<D1Database, "batch">>(target: T): T =>
    new Proxy(target, {
      get(db, property) {
        if (property === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            const run = pending;
            pending = undefined;
            await run?.();
            return db.batch(statements);
          };
        }
        if (property === "withSession") return (start?: string) => intercepted((db as unknown as D1Database).withSession(start));
        const value: unknown = Reflect.get(db, property, db);
        return typeof value === "function" ? value.bind(db) : value;
      },
    });
  return intercepted(env.DB);
}

describe("end-2 GET /v2/<name>/blobs/<digest>", () => {
  it("serves the bytes with explicit type, length, digest and range support", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(5000);
    const digest = await pushBlob(repo, bytes);
    const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe("application/octet-stream");
    expect(response.headers.get("Content-Length")).toBe("5000");
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(response.headers.get("Accept-Ranges")).toBe("bytes");
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
  });

  it("answers HEAD with the headers and no body", async () => {
    const repo = uniqueRepo();
    const digest = await pushBlob(repo, randomBytes(777));
    const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Length")).toBe("777");
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(await response.text()).toBe("");
  });

  it("serves a zero-byte blob", async () => {
    const repo = uniqueRepo();
    const digest = await pushBlob(repo, new Uint8Array(0));
    const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Length")).toBe("0");
    expect((await response.arrayBuffer()).byteLength).toBe(0);
  });

  it("is 404 BLOB_UNKNOWN in a repository that does not hold the blob", async () => {
    const digest = await pushBlob(uniqueRepo(), randomBytes(10));
    const response = await fetchRegistry(`/v2/${uniqueRepo()}/blobs/${digest}`);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("BLOB_UNKNOWN");
    const head = await fetchRegistry(`/v2/${uniqueRepo()}/blobs/${digest}`, { method: "HEAD" });
    expect(head.status).toBe(404);
  });

  describe("Range", () => {
    const cases: [string, number, number][] = [
      ["bytes=0-9", 0, 10],
      ["bytes=100-", 100, 900],
      ["bytes=-50", 950, 50],
      ["bytes=990-5000", 990, 10],
      ["bytes=-5000", 0, 1000],
    ];
    it.each(cases)("%s answers 206 with the slice", async (range, offset, length) => {
      const repo = uniqueRepo();
      const bytes = randomBytes(1000);
      const digest = await pushBlob(repo, bytes);
      const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { headers: { Range: range } });
      expect(response.status).toBe(206);
      expect(response.headers.get("Content-Length")).toBe(String(length));
      expect(response.headers.get("Content-Range")).toBe(`bytes ${offset}-${offset + length - 1}/1000`);
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes.subarray(offset, offset + length));
    });

    // Unsatisfiable ranges, and one that ends before it starts (never the whole blob instead).
    it.each(["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=500-0"])("%s is refused: 416 RANGE_INVALID with the size", async (range) => {
      const repo = uniqueRepo();
      const digest = await pushBlob(repo, randomBytes(1000));
      const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { headers: { Range: range } });
      expect(response.status).toBe(416);
      expect(response.headers.get("Content-Range")).toBe("bytes */1000");
      expect(await errorCode(response)).toBe("RANGE_INVALID");
    });

    it("ignores a multi-range request and serves the whole blob", async () => {
      const repo = uniqueRepo();
      const digest = await pushBlob(repo, randomBytes(100));
      const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { headers: { Range: "bytes=0-1,5-6" } });
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Length")).toBe("100");
    });
  });
});

describe("end-10 DELETE /v2/<name>/blobs/<digest>", () => {
  it("unlinks the blob from one repository and keeps it in the others", async () => {
    const [a, b] = [uniqueRepo(), uniqueRepo()];
    const bytes = randomBytes(300);
    const digest = await pushBlob(a, bytes);
    await pushBlob(b, bytes);
    const deleted = await fetchRegistry(`/v2/${a}/blobs/${digest}`, { method: "DELETE" });
    expect(deleted.status).toBe(202);
    expect((await fetchRegistry(`/v2/${a}/blobs/${digest}`)).status).toBe(404);
    const kept = await fetchRegistry(`/v2/${b}/blobs/${digest}`);
    expect(kept.status).toBe(200);
    expect(await digestOf(new Uint8Array(await kept.arrayBuffer()))).toBe(digest);
  });

  it("is 404 at once for a blob just pulled, which the isolate remembered", async () => {
    const repo = uniqueRepo();
    const digest = await pushBlob(repo, randomBytes(300));
    for (const method of ["HEAD", "GET"]) expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method })).status).toBe(200);
    expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "DELETE" })).status).toBe(202);
    for (const method of ["HEAD", "GET"]) expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method })).status).toBe(404);
  });

  it("is 404 BLOB_UNKNOWN for a blob the repository does not hold", async () => {
    const response = await fetchRegistry(`/v2/${uniqueRepo()}/blobs/sha256:${"0".repeat(64)}`, { method: "DELETE" });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("BLOB_UNKNOWN");
  });
});

describe("end-10 DELETE /v2/<name>/blobs/<digest> of a blob a manifest references", () => {
  const del = (repo: string, digest: string) => fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "DELETE" });

  it("is 409 naming the manifest while it exists, tagged or not, and 202 once it is deleted", async () => {
    const [repo, other] = [uniqueRepo(), uniqueRepo()];
    const { manifest, bytes } = await pushImage(repo);
    const digest = await digestOf(bytes);
    await putManifest(repo, "v1", bytes);
    const blobs = [(manifest.config as Descriptor).digest, (manifest.layers as Descriptor[])[0]!.digest];
    for (const blob of blobs) {
      const refused = await del(repo, blob);
      expect(refused.status).toBe(409);
      const error = await firstError(refused);
      expect(error?.code).toBe("DENIED");
      expect(error?.detail).toContain(digest);
    }
    // Only this repository's manifests keep a blob in it.
    expect((await fetchRegistry(`/v2/${other}/blobs/uploads/?mount=${blobs[1]}&from=${repo}`, { method: "POST" })).status).toBe(201);
    expect((await del(other, blobs[1]!)).status).toBe(202);

    expect((await fetchRegistry(`/v2/${repo}/manifests/v1`, { method: "DELETE" })).status).toBe(202);
    expect((await del(repo, blobs[0]!)).status).toBe(409);
    expect((await fetchRegistry(`/v2/${repo}/manifests/${digest}`, { method: "DELETE" })).status).toBe(202);
    for (const blob of blobs) {
      expect((await del(repo, blob)).status).toBe(202);
      expect((await fetchRegistry(`/v2/${repo}/blobs/${blob}`)).status).toBe(404);
    }
  });

  it("landing while a manifest PUT is under way, just before its write, makes the PUT store nothing: no manifest is served without its blob", async () => {
    const repo = uniqueRepo();
    const { manifest, bytes } = await pushImage(repo);
    const layer = (manifest.layers as Descriptor[])[0]!.digest;
    let deleted: Response | undefined;
    const DB = beforeFirstBatch(async () => {
      deleted = await del(repo, layer);
    });
    const put = await fetchWithEnv({ DB }, `/v2/${repo}/manifests/v1`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: bytes });
    expect(deleted?.status).toBe(202);
    expect(put.status).toBe(404);
    expect(await errorCode(put)).toBe("MANIFEST_BLOB_UNKNOWN");
    expect((await fetchRegistry(`/v2/${repo}/manifests/v1`)).status).toBe(404);
    expect((await fetchRegistry(`/v2/${repo}/manifests/${await digestOf(bytes)}`)).status).toBe(404);
  });
});
