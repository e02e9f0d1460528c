import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { administer, uniqueName } from "./auth";
import {
  costOf,
  descriptorOf,
  digestOf,
  errorCode,
  fetchRegistry,
  fetchWithEnv,
  firstError,
  json,
  OCI_CONFIG,
  OCI_MANIFEST,
  openUpload,
  pushBlob,
  pushImage,
  putManifest,
  randomBytes,
  streamOf,
  uploadObjectId,
  withDigest,
  wrap,
  objectsOf,
  interruptedCompletion,
} from "./client";

const MB = 1_000_000;
const MiB = 1024 * 1024;

type Settings = { maxBlobBytes?: number | "none"; maxManifestBytes?: number | "none"; maxStorageBytes?: number | "none"; maxRepositories?: number | "none" };

async function setPolicy(pattern: string, settings: Settings): Promise<void> {
  expect((await administer("PUT", `policies/${pattern}`, settings)).status).toBe(204);
}

/** A namespace no other test uses, with a policy of `settings` on exactly it. */
async function namespaceWith(settings: Settings): Promise<string> {
  const namespace = uniqueName("quota");
  await setPolicy(namespace, settings);
  return namespace;
}

/** POST ?digest= with the whole body and its Content-Length. */
function monolithic(repo: string, bytes: Uint8Array<ArrayBuffer>, digest: string, vars: Partial<Cloudflare.Env> = {}): Promise<Response> {
  return fetchWithEnv(vars, `/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, { method: "POST", body: bytes, headers: { "Content-Length": String(bytes.length) } });
}


async function expectRefused(response: Response, status: number, code: string, message: RegExp): Promise<void> {
  expect(response.status).toBe(status);
  const error = await firstError(response);
  expect(error?.code).toBe(code);
  expect(error?.message).toMatch(message);
}

type Usage = { namespace: string; bytes: number; repositories: number; repositoryUsage: { repository: string; bytes: number }[]; limits: Record<string, unknown> };

async function usageOf(namespace: string): Promise<Usage> {
  const response = await administer("GET", `usage/${namespace}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Usage;
}

describe("a namespace allowing blobs up to 5 MB", () => {
  it("refuses a monolithic POST announcing more with 413 before reading its body, naming the limit", async () => {
    const namespace = await namespaceWith({ maxBlobBytes: 5 * MB });
    const bytes = randomBytes(5 * MB + 1);
    const response = await monolithic(`${namespace}/app`, bytes, await digestOf(bytes));
    expect(costOf(response).bytesIn).toBe(0);
    await expectRefused(response, 413, "SIZE_INVALID", new RegExp(`^blob exceeds the limit of 5 MB for namespace ${namespace} \\(policy ${namespace}\\)$`));
  });

  it("refuses a POST that opens an upload announcing more", async () => {
    const namespace = await namespaceWith({ maxBlobBytes: 5 * MB });
    const response = await fetchRegistry(`/v2/${namespace}/app/blobs/uploads/`, { method: "POST", body: randomBytes(5 * MB + 1) });
    await expectRefused(response, 413, "SIZE_INVALID", /5 MB/);
  });

  it("refuses the chunked PATCH that crosses it, before reading it, keeps nothing in R2, and ends the upload", async () => {
    const namespace = await namespaceWith({ maxBlobBytes: 5 * MB });
    const location = await openUpload(`${namespace}/app`);
    const chunk = randomBytes(2 * MB);
    for (const start of [0, 2 * MB]) {
      const patched = await fetchRegistry(location, { method: "PATCH", body: chunk, headers: { "Content-Range": `${start}-${start + chunk.length - 1}` } });
      expect(patched.status).toBe(202);
    }
    const crossing = await fetchRegistry(location, { method: "PATCH", body: chunk, headers: { "Content-Range": `${4 * MB}-${6 * MB - 1}` } });
    expect(costOf(crossing).bytesIn).toBe(0);
    await expectRefused(crossing, 413, "SIZE_INVALID", /^blob exceeds the limit of 5 MB/);
    expect(await objectsOf(location)).toEqual([]);
    expect(await errorCode(await fetchRegistry(location))).toBe("BLOB_UPLOAD_UNKNOWN");
    const put = await fetchRegistry(withDigest(location, await digestOf(chunk)), { method: "PUT" });
    expect(put.status).toBe(404);
  });

  it("refuses a docker-style streamed PATCH (no length) when its bytes cross it: nothing kept, the upload gone", async () => {
    const namespace = await namespaceWith({ maxBlobBytes: 5 * MB });
    const location = await openUpload(`${namespace}/app`);
    const response = await fetchRegistry(location, { method: "PATCH", body: streamOf(randomBytes(6 * MB)) });
    await expectRefused(response, 413, "SIZE_INVALID", /^blob exceeds the limit of 5 MB/);
    expect(await objectsOf(location)).toEqual([]);
    expect((await fetchRegistry(location)).status).toBe(404);
  });

  it("refuses a PUT that completes an upload with a body past it, as containerd pushes, keeping nothing", async () => {
    const namespace = await namespaceWith({ maxBlobBytes: 5 * MB });
    const location = await openUpload(`${namespace}/app`);
    const bytes = randomBytes(5 * MB + 1);
    const put = await fetchRegistry(withDigest(location, await digestOf(bytes)), { method: "PUT", body: bytes, headers: { "Content-Length": String(bytes.length) } });
    expect(costOf(put).bytesIn).toBe(0);
    await expectRefused(put, 413, "SIZE_INVALID", /5 MB/);
    expect(await objectsOf(location)).toEqual([]);
  });

  it("takes a blob up to the limit, pushed as docker does and monolithically", async () => {
    const namespace = await namespaceWith({ maxBlobBytes: 5 * MB });
    await pushBlob(`${namespace}/app`, randomBytes(5 * MB));
    const bytes = randomBytes(4 * MB);
    expect((await monolithic(`${namespace}/app`, bytes, await digestOf(bytes))).status).toBe(201);
  });

  it("leaves other namespaces alone", async () => {
    await namespaceWith({ maxBlobBytes: 5 * MB });
    await pushBlob(`${uniqueName("free")}/app`, randomBytes(6 * MB));
  });
});

describe("a quota crossed by a streamed PATCH after whole R2 parts", () => {
  it("aborts the upload's multipart upload", async () => {
    const namespace = await namespaceWith({ maxBlobBytes: 12 * MiB });
    const location = await openUpload(`${namespace}/app`);
    const first = randomBytes(9 * MiB);
    expect((await fetchRegistry(location, { method: "PATCH", body: first, headers: { "Content-Range": `0-${first.length - 1}` } })).status).toBe(202);
    const session = env.UPLOADS.get(env.UPLOADS.idFromString(uploadObjectId(location)));
    const multipartId = await runInDurableObject(session, (_, state) => state.storage.sql.exec<{ multipart_id: string }>("SELECT multipart_id FROM upload").one().multipart_id);
    expect(multipartId).toBeTruthy();

    const crossing = await fetchRegistry(location, { method: "PATCH", body: streamOf(randomBytes(4 * MiB)) });
    await expectRefused(crossing, 413, "SIZE_INVALID", /12 MiB/);
    const multipart = env.BLOBS.resumeMultipartUpload(`blobs/${uploadObjectId(location)}`, multipartId);
    await expect(multipart.uploadPart(2, randomBytes(10))).rejects.toThrow();
    expect(await objectsOf(location)).toEqual([]);
    expect((await fetchRegistry(location)).status).toBe(404);
  });
});

describe("a namespace's manifest limit", () => {
  it("refuses a larger manifest with 413 naming the policy, and takes one that fits", async () => {
    const repo = `${await namespaceWith({ maxManifestBytes: 2000 })}/app`;
    const { manifest, bytes } = await pushImage(repo);
    expect(bytes.length).toBeLessThan(2000);
    expect((await putManifest(repo, "small", bytes)).status).toBe(201);
    const large = json({ ...manifest, annotations: { padding: "x".repeat(2000) } });
    await expectRefused(await putManifest(repo, "large", large), 413, "SIZE_INVALID", /^manifest exceeds the limit of 2 kB for namespace .* \(policy /);
  });

  it("never loosens MAX_MANIFEST_BYTES", async () => {
    const repo = `${await namespaceWith({ maxManifestBytes: 10_000 })}/app`;
    const { manifest } = await pushImage(repo);
    const response = await fetchWithEnv({ MAX_MANIFEST_BYTES: "1000" }, `/v2/${repo}/manifests/v1`, {
      method: "PUT",
      headers: { "Content-Type": OCI_MANIFEST },
      body: json({ ...manifest, annotations: { padding: "x".repeat(1000) } }),
    });
    expect(response.status).toBe(413);
    expect((await firstError(response))?.detail).toContain("MAX_MANIFEST_BYTES = 1000");
  });
});

describe("a namespace's storage limit", () => {
  it("refuses the push that would take it past, at each point a push can be: POST, PATCH, manifest PUT", async () => {
    const namespace = await namespaceWith({ maxStorageBytes: 10_000 });
    const repo = `${namespace}/app`;
    await pushBlob(repo, randomBytes(6000));
    const big = randomBytes(5000);
    await expectRefused(await monolithic(repo, big, await digestOf(big)), 413, "SIZE_INVALID", new RegExp(`^push exceeds the storage limit of 10 kB for namespace ${namespace} \\(policy ${namespace}\\): 6 kB in use$`));
    const location = await openUpload(repo);
    await expectRefused(await fetchRegistry(location, { method: "PATCH", body: streamOf(big) }), 413, "SIZE_INVALID", /storage limit/);
    expect(await objectsOf(location)).toEqual([]);

    // 6000 + 3000 fits; then a manifest of more than the 1000 left does not.
    const config = randomBytes(3000);
    await pushBlob(repo, config);
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: await descriptorOf(config, OCI_CONFIG), layers: [], annotations: { padding: "x".repeat(1000) } };
    await expectRefused(await putManifest(repo, "v1", json(manifest)), 413, "SIZE_INVALID", /storage limit/);
    const small = json({ ...manifest, annotations: {} });
    expect((await putManifest(repo, "v1", small)).status).toBe(201);
    expect((await usageOf(namespace)).bytes).toBe(9000 + small.length);
    // Full now, yet tagging what it stores adds nothing and is taken.
    await setPolicy(namespace, { maxStorageBytes: 9000 + small.length });
    expect((await putManifest(repo, "v2", small)).status).toBe(201);
    const tiny = randomBytes(10);
    await expectRefused(await monolithic(repo, tiny, await digestOf(tiny)), 413, "SIZE_INVALID", /storage limit/);
  });

  it("refuses the completion of an upload that other pushes left no room for meanwhile, and discards it", async () => {
    const namespace = await namespaceWith({ maxStorageBytes: 5000 });
    const bytes = randomBytes(3000);
    const location = await openUpload(`${namespace}/app`);
    expect((await fetchRegistry(location, { method: "PATCH", body: bytes })).status).toBe(202);
    await pushBlob(`${namespace}/app`, randomBytes(3000));
    await expectRefused(await fetchRegistry(withDigest(location, await digestOf(bytes)), { method: "PUT" }), 413, "SIZE_INVALID", /storage limit of 5 kB/);
    expect(await objectsOf(location)).toEqual([]);
    expect((await fetchRegistry(location)).status).toBe(404);
  });

  it("counts a blob mounted from another namespace, and does not mount one past it", async () => {
    const layer = randomBytes(3000);
    const digest = await pushBlob(`${uniqueName("source")}/app`, layer);
    const namespace = await namespaceWith({ maxStorageBytes: 5000 });
    const mount = (repo: string) => fetchRegistry(`/v2/${repo}/blobs/uploads/?mount=${digest}`, { method: "POST" });
    expect((await mount(`${namespace}/a`)).status).toBe(201);
    expect((await usageOf(namespace)).bytes).toBe(3000);
    // 3000 more would make 6000: a normal upload is opened instead, and its bytes would be refused.
    expect((await mount(`${namespace}/b`)).status).toBe(202);
  });
});

describe("a namespace's repository limit", () => {
  it("refuses the first push to a repository past the count with 403 DENIED naming it, at POST and at manifest PUT", async () => {
    const namespace = await namespaceWith({ maxRepositories: 2 });
    await pushBlob(`${namespace}/one`, randomBytes(10));
    const { bytes } = await pushImage(`${namespace}/two`);
    const post = await fetchRegistry(`/v2/${namespace}/three/blobs/uploads/`, { method: "POST" });
    await expectRefused(post, 403, "DENIED", new RegExp(`namespace ${namespace} has 2 repositories, its limit \\(policy ${namespace}\\)`));
    const put = await putManifest(`${namespace}/three`, "v1", bytes);
    expect(put.status).toBe(403);
    // The repositories it has take pushes as before.
    await pushBlob(`${namespace}/one`, randomBytes(20));
    expect((await putManifest(`${namespace}/two`, "v1", bytes)).status).toBe(201);
    expect((await usageOf(namespace)).repositories).toBe(2);
  });
});

/** How many objects hold blobs' bytes in R2. */
async function blobObjectCount(): Promise<number> {
  let count = 0;
  let cursor: string | undefined;
  do {
    const listing = await env.BLOBS.list({ prefix: "blobs/", ...(cursor ? { cursor } : {}) });
    count += listing.objects.length;
    cursor = listing.truncated ? listing.cursor : undefined;
  } while (cursor);
  return count;
}

describe("concurrent pushes into a namespace", () => {
  // Each push passes the check made when it begins; the write that makes it visible checks again, as usage stands then.
  it("never take it past its storage limit, whichever way their blobs come", async () => {
    // Monolithic POSTs, and docker's POST, PATCH, PUT with each upload holding its bytes before any completes.
    const pushes = {
      monolithic: async (repo: string, bytes: Uint8Array<ArrayBuffer>[]) => Promise.all(bytes.map(async (blob) => monolithic(repo, blob, await digestOf(blob)))),
      chunked: async (repo: string, bytes: Uint8Array<ArrayBuffer>[]) => {
        const locations = await Promise.all(bytes.map(() => openUpload(repo)));
        for (const [i, location] of locations.entries()) expect((await fetchRegistry(location, { method: "PATCH", body: bytes[i] })).status).toBe(202);
        const responses = await Promise.all(locations.map(async (location, i) => fetchRegistry(withDigest(location, await digestOf(bytes[i]!)), { method: "PUT" })));
        return responses;
      },
    };
    for (const push of Object.values(pushes)) {
      const namespace = await namespaceWith({ maxStorageBytes: 5000 });
      const repo = `${namespace}/app`;
      const blobs = Array.from({ length: 3 }, () => randomBytes(3000));
      const objects = await blobObjectCount();
      const responses = await push(repo, blobs);
      expect(responses.filter((response) => response.status === 201)).toHaveLength(1);
      for (const response of responses.filter((response) => response.status !== 201)) {
        await expectRefused(response, 413, "SIZE_INVALID", new RegExp(`^push exceeds the storage limit of 5 kB for namespace ${namespace} \\(policy ${namespace}\\): 3 kB in use$`));
      }
      expect((await usageOf(namespace)).bytes).toBe(3000);
      // What was refused is not visible, and its bytes are gone from R2.
      expect(await blobObjectCount()).toBe(objects + 1);
      for (const [i, bytes] of blobs.entries()) {
        const head = await fetchRegistry(`/v2/${repo}/blobs/${await digestOf(bytes)}`, { method: "HEAD" });
        expect(head.status).toBe(responses[i]!.status === 201 ? 200 : 404);
      }
    }
  });

  it("never mount blobs past its storage limit: past it, an upload is opened instead", async () => {
    const source = `${uniqueName("source")}/app`;
    const digests = await Promise.all(Array.from({ length: 3 }, () => pushBlob(source, randomBytes(3000))));
    const namespace = await namespaceWith({ maxStorageBytes: 5000 });
    // Each mount's D1 batch waits until all three have read the quota: the race, every time.
    let arrived = 0;
    let release!: () => void;
    const allRead = new Promise<void>((resolve) => (release = resolve));
    const DB = wrap(env.DB, {
      withSession: (constraint?: string) => {
        const session = env.DB.withSession(constraint);
        return wrap(session, {
          batch: async (statements: D1PreparedStatement[]) => {
            if (++arrived === digests.length) release();
            await allRead;
            return session.batch(statements);
          },
        });
      },
    });
    const mounts = digests.map((digest) => fetchWithEnv({ DB }, `/v2/${namespace}/app/blobs/uploads/?mount=${digest}&from=${source}`, { method: "POST" }));
    expect((await Promise.all(mounts)).map((response) => response.status).sort()).toEqual([201, 202, 202]);
    expect((await usageOf(namespace)).bytes).toBe(3000);
  });

  it("keep bytes D1 points to when a completion retried after its lost answer finds the room gone", async () => {
    const namespace = await namespaceWith({ maxStorageBytes: 5000 });
    const repo = `${namespace}/app`;
    const bytes = randomBytes(3000);
    const { location, digest } = await interruptedCompletion(repo, bytes);
    // Meanwhile the repository lets go of the blob (D1 still records its bytes) and another push takes the room.
    expect((await fetchRegistry(`/v2/${repo}/blobs/${digest}`, { method: "DELETE" })).status).toBe(202);
    await pushBlob(repo, randomBytes(3000));
    await expectRefused(await fetchRegistry(withDigest(location, digest), { method: "PUT" }), 413, "SIZE_INVALID", /storage limit of 5 kB/);
    expect(await objectsOf(location)).toHaveLength(1);
    // Pushed where there is room, the digest is served from those bytes.
    const elsewhere = `${uniqueName("roomy")}/app`;
    expect(await pushBlob(elsewhere, bytes)).toBe(digest);
    const served = await fetchRegistry(`/v2/${elsewhere}/blobs/${digest}`);
    expect(served.status).toBe(200);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(bytes);
  });

  it("never store manifests past its storage limit", async () => {
    const namespace = await namespaceWith({ maxStorageBytes: 5000 });
    const repo = `${namespace}/app`;
    const config = randomBytes(100);
    await pushBlob(repo, config);
    const manifests = ["a", "b", "c"].map(async (padding) =>
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: await descriptorOf(config, OCI_CONFIG), layers: [], annotations: { padding: padding.repeat(2000) } }),
    );
    const responses = await Promise.all(manifests.map(async (bytes, i) => putManifest(repo, `v${i}`, await bytes)));
    expect(responses.filter((response) => response.status === 201)).toHaveLength(2);
    const refused = responses.find((response) => response.status !== 201)!;
    await expectRefused(refused, 413, "SIZE_INVALID", /^push exceeds the storage limit of 5 kB/);
    const tags = (await (await fetchRegistry(`/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toHaveLength(2);
    expect((await usageOf(namespace)).bytes).toBeLessThanOrEqual(5000);
  });

  it("never create repositories past its count", async () => {
    const namespace = await namespaceWith({ maxRepositories: 1 });
    const pushes = ["a", "b", "c"].map(async (name) => {
      const bytes = randomBytes(100);
      return monolithic(`${namespace}/${name}`, bytes, await digestOf(bytes));
    });
    const responses = await Promise.all(pushes);
    expect(responses.filter((response) => response.status === 201)).toHaveLength(1);
    for (const response of responses.filter((response) => response.status !== 201)) {
      await expectRefused(response, 403, "DENIED", new RegExp(`namespace ${namespace} has 1 repositories, its limit \\(policy ${namespace}\\)`));
    }
    expect((await usageOf(namespace)).repositories).toBe(1);
  });
});

describe("several policies matching a namespace", () => {
  it("hold it to the most restrictive limit, a policy without limit lifting none", async () => {
    const namespace = uniqueName("strict");
    await setPolicy(`${namespace}*`, { maxBlobBytes: 3000 });
    await setPolicy(namespace, { maxBlobBytes: 2000 });
    await setPolicy(`*${namespace}`, { maxBlobBytes: "none" });
    const bytes = randomBytes(2500);
    await expectRefused(await monolithic(`${namespace}/app`, bytes, await digestOf(bytes)), 413, "SIZE_INVALID", new RegExp(`2 kB for namespace ${namespace} \\(policy ${namespace}\\)`));
    // Where only the looser one matches, it holds.
    expect((await monolithic(`${namespace}x/app`, bytes, await digestOf(bytes))).status).toBe(201);
  });
});

describe("the vars", () => {
  it("set the quotas where no policy does, and a policy saying none exempts its namespace", async () => {
    const vars = { MAX_BLOB_BYTES: "1000", QUOTA_MAX_REPOSITORIES: "1", QUOTA_MAX_STORAGE_BYTES: "1500" };
    const namespace = uniqueName("defaults");
    const bytes = randomBytes(1001);
    await expectRefused(await monolithic(`${namespace}/app`, bytes, await digestOf(bytes), vars), 413, "SIZE_INVALID", /1 kB for namespace .* \(MAX_BLOB_BYTES\)$/);
    const fits = randomBytes(900);
    expect((await monolithic(`${namespace}/app`, fits, await digestOf(fits), vars)).status).toBe(201);
    const more = randomBytes(900);
    await expectRefused(await monolithic(`${namespace}/app`, more, await digestOf(more), vars), 413, "SIZE_INVALID", /storage limit of 1.5 kB .*\(QUOTA_MAX_STORAGE_BYTES\)/);
    const another = await fetchWithEnv(vars, `/v2/${namespace}/another/blobs/uploads/`, { method: "POST" });
    await expectRefused(another, 403, "DENIED", /\(QUOTA_MAX_REPOSITORIES\)/);

    const exempt = await namespaceWith({ maxBlobBytes: "none", maxStorageBytes: "none", maxRepositories: "none" });
    for (const repo of ["a", "b"]) expect((await monolithic(`${exempt}/${repo}`, bytes, await digestOf(bytes), vars)).status).toBe(201);
  });
});

describe("usage", () => {
  it("counts the blobs each repository links and its manifests, a shared blob in each, and drops with blob and manifest DELETEs", async () => {
    const namespace = uniqueName("usage");
    const first = `${namespace}/first`;
    const { manifest, bytes } = await pushImage(first);
    expect((await putManifest(first, "v1", bytes)).status).toBe(201);
    const blobs = [manifest.config, ...(manifest.layers as { size: number; digest: string }[])] as { size: number; digest: string }[];
    const blobBytes = blobs.reduce((sum, blob) => sum + blob.size, 0);
    let usage = await usageOf(namespace);
    expect(usage).toMatchObject({ namespace, bytes: blobBytes + bytes.length, repositories: 1, repositoryUsage: [{ repository: first, bytes: blobBytes + bytes.length }] });

    const second = `${namespace}/second`;
    const layer = blobs[1]!;
    expect((await fetchRegistry(`/v2/${second}/blobs/uploads/?mount=${layer.digest}&from=${first}`, { method: "POST" })).status).toBe(201);
    usage = await usageOf(namespace);
    expect(usage.bytes).toBe(blobBytes + bytes.length + layer.size);
    expect(usage.repositories).toBe(2);
    expect(usage.repositoryUsage).toEqual([
      { repository: first, bytes: blobBytes + bytes.length },
      { repository: second, bytes: layer.size },
    ]);
    const everyNamespace = (await (await administer("GET", "usage")).json()) as { namespaces: { namespace: string; bytes: number }[] };
    expect(everyNamespace.namespaces.find((n) => n.namespace === namespace)).toEqual({ namespace, bytes: usage.bytes, repositories: 2 });

    expect((await fetchRegistry(`/v2/${second}/blobs/${layer.digest}`, { method: "DELETE" })).status).toBe(202);
    expect((await usageOf(namespace)).bytes).toBe(blobBytes + bytes.length);
    expect((await fetchRegistry(`/v2/${first}/manifests/${await digestOf(bytes)}`, { method: "DELETE" })).status).toBe(202);
    expect((await usageOf(namespace)).bytes).toBe(blobBytes);
  });

  it("shows the quotas the namespace is held to and where each comes from", async () => {
    const namespace = await namespaceWith({ maxStorageBytes: 5 * MB });
    expect((await usageOf(namespace)).limits).toEqual({
      maxBlobBytes: null,
      maxManifestBytes: { value: 4 * MiB, source: { variable: "MAX_MANIFEST_BYTES" } },
      maxStorageBytes: { value: 5 * MB, source: { policy: namespace } },
      maxRepositories: null,
    });
  });
});
