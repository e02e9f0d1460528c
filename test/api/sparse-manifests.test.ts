import { afterEach, describe, expect, it, vi } from "vitest";
import { type Descriptor, descriptorOf, digestOf, errorCode, fetchRegistry, fetchWithEnv, json, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, pushImage, putManifest, randomBytes, uniqueRepo } from "./client";

afterEach(() => {
  vi.restoreAllMocks();
});

/** A manifest PUT to a registry deployed with SPARSE_MANIFESTS set to `mode` (undefined: unset). */
function putWith(mode: string | undefined, repo: string, reference: string, bytes: Uint8Array<ArrayBuffer>, contentType = OCI_MANIFEST) {
  return fetchWithEnv({ SPARSE_MANIFESTS: mode }, `/v2/${repo}/manifests/${reference}`, { method: "PUT", headers: { "Content-Type": contentType }, body: bytes });
}

/** An image manifest whose config and layer were never pushed anywhere. */
async function unpushedImage() {
  const config = await descriptorOf(json({ architecture: "arm64", os: "linux" }), "application/vnd.oci.image.config.v1+json");
  const layer = await descriptorOf(randomBytes(100), OCI_LAYER);
  return { config, layer, bytes: json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }) };
}

describe("SPARSE_MANIFESTS", () => {
  it("rejects by default (unset): MANIFEST_BLOB_UNKNOWN; accept stores the manifest, served, listed and deleted like any other", async () => {
    const repo = uniqueRepo();
    const { layer, bytes } = await unpushedImage();
    const digest = await digestOf(bytes);
    const refused = await putWith(undefined, repo, "v1", bytes);
    expect(refused.status).toBe(404);
    expect(await errorCode(refused)).toBe("MANIFEST_BLOB_UNKNOWN");

    expect((await putWith("accept", repo, "v1", bytes)).status).toBe(201);
    for (const reference of ["v1", digest]) {
      const served = await fetchRegistry(`/v2/${repo}/manifests/${reference}`);
      expect(served.status).toBe(200);
      expect(new Uint8Array(await served.arrayBuffer())).toEqual(bytes);
      expect((await fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method: "HEAD" })).headers.get("Docker-Content-Digest")).toBe(digest);
    }
    expect(await (await fetchRegistry(`/v2/${repo}/tags/list`)).json()).toEqual({ name: repo, tags: ["v1"] });
    const blob = await fetchRegistry(`/v2/${repo}/blobs/${layer.digest}`);
    expect(blob.status).toBe(404);
    expect(await errorCode(blob)).toBe("BLOB_UNKNOWN");

    expect((await fetchRegistry(`/v2/${repo}/manifests/v1`, { method: "DELETE" })).status).toBe(202);
    expect((await fetchRegistry(`/v2/${repo}/manifests/${digest}`, { method: "DELETE" })).status).toBe(202);
    expect((await fetchRegistry(`/v2/${repo}/manifests/${digest}`)).status).toBe(404);
  });

  it("accept stores an index of which one platform was copied; the missing child is 404 MANIFEST_UNKNOWN", async () => {
    const repo = uniqueRepo();
    const copied = await pushImage(repo);
    const copiedDigest = await digestOf(copied.bytes);
    expect((await putManifest(repo, copiedDigest, copied.bytes)).status).toBe(201);
    const missing = await descriptorOf((await unpushedImage()).bytes, OCI_MANIFEST);
    const index = json({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { ...(await descriptorOf(copied.bytes, OCI_MANIFEST)), platform: { architecture: "amd64", os: "linux" } },
        { ...missing, platform: { architecture: "arm64", os: "linux" } },
      ],
    });
    expect((await putWith("accept", repo, "multi", index, OCI_INDEX)).status).toBe(201);
    expect(new Uint8Array(await (await fetchRegistry(`/v2/${repo}/manifests/multi`)).arrayBuffer())).toEqual(index);
    expect((await fetchRegistry(`/v2/${repo}/manifests/${copiedDigest}`)).status).toBe(200);
    const child = await fetchRegistry(`/v2/${repo}/manifests/${missing.digest}`);
    expect(child.status).toBe(404);
    expect(await errorCode(child)).toBe("MANIFEST_UNKNOWN");
  });

  it("accept keeps the DELETE rule: a referenced blob the repository holds is 409, one it lacks 404", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    const held = (manifest.layers as Descriptor[])[0]!;
    const { layer: lacking } = await unpushedImage();
    expect((await putWith("accept", repo, "v1", json({ ...manifest, layers: [held, lacking] }))).status).toBe(201);
    expect((await fetchRegistry(`/v2/${repo}/blobs/${held.digest}`, { method: "DELETE" })).status).toBe(409);
    const absent = await fetchRegistry(`/v2/${repo}/blobs/${lacking.digest}`, { method: "DELETE" });
    expect(absent.status).toBe(404);
    expect(await errorCode(absent)).toBe("BLOB_UNKNOWN");
  });

  it("refuses to run with any other value: 500, and the log names the var", async () => {
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await fetchWithEnv({ SPARSE_MANIFESTS: "sometimes" }, `/v2/${uniqueRepo()}/tags/list`);
    expect(response.status).toBe(500);
    expect(String(log.mock.calls[0]?.[0])).toContain("SPARSE_MANIFESTS");
  });
});
