import { describe, expect, it, vi } from "vitest";
import { PART_SIZE } from "../../src/storage/part-writer";
import { Meter, type Cost } from "../../src/storage/meter";
import { adminAuthorization } from "./auth";
import { costOf, digestOf, fetchRegistry, fetchWithEnv, json, OCI_MANIFEST, pushBlob, pushImage, putManifest, randomBytes, streamOf, uniqueRepo, withDigest } from "./client";

// What a request that touches no storage costs: a fresh meter.
const NO_COST: Cost = new Meter().cost;

/** A repository holding an image tagged v1; returns the manifest's bytes. */
async function taggedImage(): Promise<{ repo: string; bytes: Uint8Array<ArrayBuffer> }> {
  const repo = uniqueRepo();
  const { bytes } = await pushImage(repo);
  expect((await putManifest(repo, "v1", bytes)).status).toBe(201);
  return { repo, bytes };
}

describe("the Registry-Cost header", () => {
  it("is absent with COST_HEADER off, the default", async () => {
    const response = await fetchWithEnv({ COST_HEADER: "off" }, "/v2/");
    expect(response.status).toBe(200);
    expect(response.headers.get("Registry-Cost")).toBeNull();
  });

  it("with COST_HEADER on, says GET /v2/ cost nothing: it touches no storage", async () => {
    expect(costOf(await fetchRegistry("/v2/"))).toEqual(NO_COST);
  });
});

describe("manifest GET and HEAD by tag", () => {
  it.each(["GET", "HEAD"])("%s is one D1 query reading two rows (the tag, then its manifest) and no R2 operation", async (method) => {
    const { repo, bytes } = await taggedImage();
    const response = await fetchRegistry(`/v2/${repo}/manifests/v1`, { method });
    expect(response.status).toBe(200);
    // A GET's manifest bytes come from its D1 row, and it sends them; a HEAD reads the digest, size and media type only.
    expect(costOf(response)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: 2, d1ResultBytes: expect.any(Number), bytesOut: method === "GET" ? bytes.length : 0 });
    expect(costOf(response).d1ResultBytes > bytes.length).toBe(method === "GET");
  });
});

describe("manifest GET by digest", () => {
  it("served from the location's cache is no D1 query and no R2 operation", async () => {
    const { repo, bytes } = await taggedImage();
    const digest = await digestOf(bytes);
    // The first pull reads D1, and fills the cache once its response is on the way (fetchWithEnv waits for that).
    expect(costOf(await fetchWithEnv({}, `/v2/${repo}/manifests/${digest}`))).toMatchObject({ d1Queries: 1, r2ClassA: 0, r2ClassB: 0 });
    const again = await fetchWithEnv({}, `/v2/${repo}/manifests/${digest}`);
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(bytes);
    expect(costOf(again)).toEqual({ ...NO_COST, bytesOut: bytes.length });
  });
});

// Blobs of at least this many bytes are redirected here (REDIRECT_MIN_BYTES), so small test blobs take the redirect path.
const REDIRECTED = { REDIRECT_MIN_BYTES: "1024" };

describe("blob GET", () => {
  it("answered with a redirect is one D1 query and no R2 operation in the Worker", async () => {
    const repo = uniqueRepo();
    const digest = await pushBlob(repo, randomBytes(65536));
    const response = await fetchWithEnv(REDIRECTED, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    expect(response.status).toBe(307);
    expect(costOf(response)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: expect.any(Number), d1ResultBytes: expect.any(Number) });
  });

  it("on the signed final hop is no D1 query; a public blob's first download reads R2 twice (the client's bytes, the cache's fill), later ones none", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(65536);
    const digest = await pushBlob(repo, bytes);
    const redirect = await fetchWithEnv(REDIRECTED, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
    const link = redirect.headers.get("Location")!;
    // With auth off every namespace is public, so the blob goes to the edge cache.
    const expected = [
      { ...NO_COST, r2ClassB: 2, bytesOut: bytes.length },
      { ...NO_COST, bytesOut: bytes.length },
    ];
    for (const cost of expected) {
      const download = await fetchWithEnv(REDIRECTED, link, { redirect: "manual" });
      expect(download.status).toBe(200);
      expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
      expect(costOf(download)).toEqual(cost);
    }
  });

  it("below REDIRECT_MIN_BYTES is answered directly: one D1 query and R2 reads the first time, none once the isolate remembers the blob and the edge cache holds it", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(1000);
    const digest = await pushBlob(repo, bytes);
    const expected = [
      { ...NO_COST, d1Queries: 1, d1RowsRead: expect.any(Number), d1ResultBytes: expect.any(Number), r2ClassB: 2, bytesOut: bytes.length },
      { ...NO_COST, bytesOut: bytes.length },
    ];
    for (const cost of expected) {
      const response = await fetchWithEnv(REDIRECTED, `/v2/${repo}/blobs/${digest}`, { redirect: "manual" });
      expect(response.status).toBe(200);
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
      expect(costOf(response)).toEqual(cost);
    }
  });

  it("of a private blob is never cached: each direct GET reads R2 once", async () => {
    const repo = uniqueRepo();
    const bytes = randomBytes(1000);
    const digest = await pushBlob(repo, bytes);
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await fetchWithEnv({ AUTH_MODE: "token" }, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: adminAuthorization() }, redirect: "manual" });
      expect(response.status).toBe(200);
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
      expect(costOf(response)).toMatchObject({ r2ClassA: 0, r2ClassB: 1, doRequests: 0, bytesOut: bytes.length });
    }
  });
});

describe("blob HEAD", () => {
  const ONE_QUERY = { ...NO_COST, d1Queries: 1, d1RowsRead: expect.any(Number), d1ResultBytes: expect.any(Number) };

  it("is one D1 query (the repository's link joined to the blob) and no R2 operation; again, none: the isolate remembers the blob", async () => {
    const repo = uniqueRepo();
    const digest = await pushBlob(repo, randomBytes(1000));
    for (const cost of [ONE_QUERY, NO_COST]) {
      const response = await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
      expect(response.status).toBe(200);
      expect(costOf(response)).toEqual(cost);
    }
  });

  it("queries D1 every time when MANIFEST_CACHE_SECONDS (deleted content's bound) or GC_GRACE_SECONDS (the bytes' last hold) is 0", async () => {
    for (const vars of [{ MANIFEST_CACHE_SECONDS: "0" }, { GC_GRACE_SECONDS: "0" }]) {
      const repo = uniqueRepo();
      const digest = await pushBlob(repo, randomBytes(1000));
      for (let attempt = 0; attempt < 2; attempt++) {
        const response = await fetchWithEnv(vars, `/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
        expect(response.status).toBe(200);
        expect(costOf(response)).toEqual(ONE_QUERY);
      }
    }
  });
});

describe("a tags page", () => {
  const tagsOf = async (response: Response) => ((await response.clone().json()) as { tags: string[] }).tags;

  it("is one D1 query reading the tag list's version, a row per tag it lists and one more (is there a next page?): D1 bills rows read", async () => {
    const { repo, bytes } = await taggedImage();
    for (const tag of ["v2", "v3", "v4", "v5"]) expect((await putManifest(repo, tag, bytes)).status).toBe(201);
    const first = await fetchRegistry(`/v2/${repo}/tags/list?n=2`);
    expect(await tagsOf(first)).toEqual(["v1", "v2"]);
    expect(costOf(first)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: 4, d1ResultBytes: expect.any(Number) });
    const last = await fetchRegistry(`/v2/${repo}/tags/list?n=2&last=v4`);
    expect(await tagsOf(last)).toEqual(["v5"]);
    expect(costOf(last)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: 2, d1ResultBytes: expect.any(Number) });
  });

  it("asked again, reads one row, the version: the isolate remembers the page; a tag moved to another manifest leaves it so", async () => {
    const { repo } = await taggedImage();
    const { bytes: other } = await pushImage(repo, 2);
    for (const tag of ["v2", "v3"]) expect((await putManifest(repo, tag, other)).status).toBe(201);
    const listed = await fetchRegistry(`/v2/${repo}/tags/list`);
    expect(costOf(listed)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: 4, d1ResultBytes: expect.any(Number) });
    // The page's text came from D1: SQLite wrote it.
    expect(costOf(listed).d1ResultBytes).toBeGreaterThan(JSON.stringify(await tagsOf(listed)).length);
    expect((await putManifest(repo, "v1", other)).status).toBe(201);
    for (let attempt = 0; attempt < 2; attempt++) {
      const again = await fetchRegistry(`/v2/${repo}/tags/list`);
      expect(await again.text()).toBe(await listed.clone().text());
      // The version alone, a number.
      expect(costOf(again)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: 1, d1ResultBytes: 8 });
    }
  });

  it("once a tag was added, is two D1 queries: the version, which changed, then the page with its version; then one again", async () => {
    const { repo, bytes } = await taggedImage();
    await fetchRegistry(`/v2/${repo}/tags/list`);
    expect((await putManifest(repo, "v2", bytes)).status).toBe(201);
    const stale = await fetchRegistry(`/v2/${repo}/tags/list`);
    expect(await tagsOf(stale)).toEqual(["v1", "v2"]);
    expect(costOf(stale)).toEqual({ ...NO_COST, d1Queries: 2, d1RowsRead: 1 + 3, d1ResultBytes: expect.any(Number) });
    expect(costOf(await fetchRegistry(`/v2/${repo}/tags/list`))).toMatchObject({ d1Queries: 1, d1RowsRead: 1 });
  });
});

describe("a referrers page", () => {
  it("is one D1 query reading the list's version, a row per referrer and one more (is there a next page?), which answers one row: SQLite joins the descriptors; asked again, the version alone", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    const subject = `sha256:${"4".repeat(64)}`;
    for (const note of ["a", "b", "c"]) {
      expect((await putManifest(repo, note, json({ ...manifest, subject: { mediaType: OCI_MANIFEST, digest: subject, size: 5 }, annotations: { note } }))).status).toBe(201);
    }
    const response = await fetchRegistry(`/v2/${repo}/referrers/${subject}`);
    expect(((await response.clone().json()) as { manifests: unknown[] }).manifests).toHaveLength(3);
    expect(costOf(response)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: 5, d1ResultBytes: expect.any(Number) });
    const again = await fetchRegistry(`/v2/${repo}/referrers/${subject}`);
    expect(await again.text()).toBe(await response.text());
    expect(costOf(again)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: 1, d1ResultBytes: 8 });
  });
});

describe("a docker-shaped layer push: POST, one PATCH without Content-Length, PUT ?digest=", () => {
  it.each([1, 3])(
    "of %i part(s) costs R2 Class A 2 + parts (create, each part, complete), one Durable Object request per PATCH and PUT, none for the POST, one D1 read of the quota for each request, the key's intent (PATCH) and one batch (PUT)",
    async (parts) => {
      const repo = uniqueRepo();
      const bytes = randomBytes(parts * PART_SIZE);
      const post = await fetchRegistry(`/v2/${repo}/blobs/uploads/`, { method: "POST" });
      expect(post.status).toBe(202);
      // The POST reads the namespace's quota and signs an upload id: the session begins with the first PATCH.
      expect(costOf(post)).toEqual({ ...NO_COST, d1Queries: 1, d1RowsRead: expect.any(Number), d1ResultBytes: expect.any(Number) });

      const patch = await fetchRegistry(post.headers.get("Location")!, { method: "PATCH", body: streamOf(bytes) });
      expect(patch.status).toBe(202);
      const patched = costOf(patch);
      // The multipart upload is created with the first part, after its key's write intent is in D1; the session reads every byte of the body. D1: the quota it is held to, and the intent.
      expect(patched).toMatchObject({ doRequests: 1, r2ClassA: 1 + parts, r2ClassB: 0, d1Queries: 2, d1RowsWritten: expect.any(Number), bytesIn: bytes.length });
      // The session's state and its parts are rows of its SQLite.
      expect(patched.doRowsWritten).toBeGreaterThan(0);

      const put = await fetchRegistry(withDigest(patch.headers.get("Location")!, await digestOf(bytes)), { method: "PUT" });
      expect(put.status).toBe(201);
      const completed = costOf(put);
      // The quota's read; completing the multipart upload, then one D1 batch records the blob: its row, its key's intent cleared, the repository, the link, the key read back.
      expect(completed).toMatchObject({ doRequests: 1, r2ClassA: 1, r2ClassB: 0, d1Queries: 6, bytesIn: 0 });
      expect(completed.d1RowsWritten).toBeGreaterThan(0);
      expect(patched.r2ClassA + completed.r2ClassA).toBe(2 + parts);
    },
  );
});

describe("a manifest PUT (a D1 write path)", () => {
  it("is the quota's D1 read, then one D1 batch of seven statements (the last two report tags an immutability policy holds, and whether the quota let it be stored), counting the rows they write and the body bytes the Worker reads", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo, 2);
    const response = await putManifest(repo, "v1", bytes);
    expect(response.status).toBe(201);
    const cost = costOf(response);
    expect(cost).toMatchObject({ d1Queries: 8, r2ClassA: 0, r2ClassB: 0, doRequests: 0, bytesIn: bytes.length, bytesOut: 0 });
    // At least the manifest, its three references (config and two layers) and the tag.
    expect(cost.d1RowsWritten).toBeGreaterThanOrEqual(5);
  });

  it("and deleting a tag is one D1 batch of two statements (the delete, and what holds the tag if it stayed), writing two rows: the tag's, and its list's version", async () => {
    const { repo } = await taggedImage();
    const response = await fetchRegistry(`/v2/${repo}/manifests/v1`, { method: "DELETE" });
    expect(response.status).toBe(202);
    expect(costOf(response)).toEqual({ ...NO_COST, d1Queries: 2, d1RowsRead: expect.any(Number), d1RowsWritten: 2, d1ResultBytes: expect.any(Number) });
  });
});

describe("error responses", () => {
  it("a 404 for an unknown tag, answered by onError, is metered: two D1 queries that found nothing (the replica's miss is confirmed on the primary)", async () => {
    const { repo } = await taggedImage();
    const response = await fetchRegistry(`/v2/${repo}/manifests/v2`);
    expect(response.status).toBe(404);
    expect(costOf(response)).toEqual({ ...NO_COST, d1Queries: 2 });
  });

  it("a 404 for an endpoint that does not exist carries its cost too: nothing", async () => {
    const response = await fetchRegistry(`/v2/${uniqueRepo()}/nothing-here`);
    expect(response.status).toBe(404);
    expect(costOf(response)).toEqual(NO_COST);
  });
});

describe("the request log line", () => {
  it("is one structured line per request: method, the route's pattern (not the path), status and cost", async () => {
    const { repo } = await taggedImage();
    const log = vi.spyOn(console, "log");
    try {
      const response = await fetchRegistry(`/v2/${repo}/manifests/v1`);
      expect(response.status).toBe(200);
      const lines = log.mock.calls.map(([line]) => line as unknown).filter((line) => (line as { event?: string } | null)?.event === "request");
      expect(lines).toEqual([{ event: "request", method: "GET", route: "/v2/:name{.*}/manifests/:reference?", status: 200, cost: costOf(response) }]);
    } finally {
      log.mockRestore();
    }
  });

  it("is not written with REQUEST_LOG off", async () => {
    const log = vi.spyOn(console, "log");
    try {
      const response = await fetchWithEnv({ REQUEST_LOG: "off" }, "/v2/");
      expect(response.status).toBe(200);
      expect(log.mock.calls.filter(([line]) => (line as { event?: string } | null)?.event === "request")).toEqual([]);
    } finally {
      log.mockRestore();
    }
  });
});
