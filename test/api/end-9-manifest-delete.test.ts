import { describe, expect, it } from "vitest";
import { digestOf, errorCode, fetchRegistry, json, OCI_MANIFEST, pushBlob, pushImage, putManifest, uniqueRepo } from "./client";

const del = (repo: string, reference: string) => fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method: "DELETE" });
const head = (repo: string, reference: string) => fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method: "HEAD" });

describe("end-9 DELETE /v2/<name>/manifests/<reference>", () => {
  it("by tag removes only that tag", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    const digest = await digestOf(bytes);
    await putManifest(repo, "a", bytes);
    await putManifest(repo, "b", bytes);
    expect((await del(repo, "a")).status).toBe(202);
    expect((await head(repo, "a")).status).toBe(404);
    expect((await head(repo, "b")).status).toBe(200);
    expect((await head(repo, digest)).status).toBe(200);
  });

  it("by digest removes the manifest and every tag that pointed at it", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    const digest = await digestOf(bytes);
    await putManifest(repo, "a", bytes);
    await putManifest(repo, "b", bytes);
    expect((await del(repo, digest)).status).toBe(202);
    for (const reference of ["a", "b", digest]) expect((await head(repo, reference)).status).toBe(404);
    const tags = (await (await fetchRegistry(`/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual([]);
  });

  it("by digest removes the manifest from its subject's referrers", async () => {
    const repo = uniqueRepo();
    const empty = json({});
    await pushBlob(repo, empty);
    const subject = `sha256:${"e".repeat(64)}`;
    const referrer = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: "application/vnd.example.sig",
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest: await digestOf(empty), size: 2 },
      layers: [],
      subject: { mediaType: OCI_MANIFEST, digest: subject, size: 10 },
    });
    const digest = await digestOf(referrer);
    await putManifest(repo, digest, referrer);
    const before = (await (await fetchRegistry(`/v2/${repo}/referrers/${subject}`)).json()) as { manifests: unknown[] };
    expect(before.manifests).toHaveLength(1);
    expect((await del(repo, digest)).status).toBe(202);
    const after = (await (await fetchRegistry(`/v2/${repo}/referrers/${subject}`)).json()) as { manifests: unknown[] };
    expect(after.manifests).toEqual([]);
  });

  it("is 404 MANIFEST_UNKNOWN for what does not exist", async () => {
    const repo = uniqueRepo();
    for (const reference of ["nope", `sha256:${"f".repeat(64)}`]) {
      const response = await del(repo, reference);
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe("MANIFEST_UNKNOWN");
    }
  });
});
