import { describe, expect, it } from "vitest";
import { administer, uniqueName } from "./auth";
import { digestOf, fetchRegistry, fetchWithEnv, firstError, json, OCI_MANIFEST, pushImage, putManifest, uniqueRepo } from "./client";

/** A policy on a pattern, through the administration API. */
async function setPolicy(pattern: string, immutableTags: boolean): Promise<void> {
  expect((await administer("PUT", `policies/${pattern}`, { immutableTags })).status).toBe(204);
}

/** A repository in a namespace of its own, with an immutable-tags policy on that namespace unless told otherwise. */
async function frozenRepo(policy = true): Promise<{ repo: string; namespace: string }> {
  const namespace = uniqueName("frozen");
  if (policy) await setPolicy(namespace, true);
  return { repo: uniqueRepo(namespace), namespace };
}

/** Two different image manifests whose blobs the repository holds, with their digests. */
async function twoImages(repo: string) {
  const images = [];
  for (let i = 0; i < 2; i++) {
    const { bytes } = await pushImage(repo);
    images.push({ bytes, digest: await digestOf(bytes) });
  }
  return images as [(typeof images)[0], (typeof images)[0]];
}

const taggedDigest = async (repo: string, tag: string) => (await fetchRegistry(`/v2/${repo}/manifests/${tag}`, { method: "HEAD" })).headers.get("Docker-Content-Digest");
const status = async (repo: string, reference: string) => (await fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method: "HEAD" })).status;
const del = (repo: string, reference: string) => fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method: "DELETE" });
const putTags = (repo: string, digest: string, bytes: Uint8Array<ArrayBuffer>, tags: string[]) =>
  fetchRegistry(`/v2/${repo}/manifests/${digest}?${tags.map((tag) => `tag=${tag}`).join("&")}`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: bytes });

describe("immutable tags: PUT /v2/<name>/manifests/<tag>", () => {
  it("refuses to move a tag to another digest: 403 DENIED naming the tag, its digest and the policy; nothing is written", async () => {
    const { repo, namespace } = await frozenRepo();
    const [first, second] = await twoImages(repo);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);

    const refused = await putManifest(repo, "1.0", second.bytes);
    expect(refused.status).toBe(403);
    const error = await firstError(refused);
    expect(error?.code).toBe("DENIED");
    expect(error?.message).toContain("tag 1.0 is immutable");
    expect(error?.message).toContain(first.digest);
    expect(error?.message).toContain(`namespace policy ${namespace}`);
    expect(error?.detail).toEqual({ tags: [{ tag: "1.0", digest: first.digest, policy: namespace }] });

    expect(await taggedDigest(repo, "1.0")).toBe(first.digest);
    expect(await status(repo, second.digest)).toBe(404);
  });

  it("takes the same digest again, new tags, and pushes by digest (201)", async () => {
    const { repo } = await frozenRepo();
    const [first, second] = await twoImages(repo);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);
    expect((await putManifest(repo, "1.1", second.bytes)).status).toBe(201);
    expect((await putManifest(repo, first.digest, first.bytes)).status).toBe(201);
    expect((await putTags(repo, second.digest, second.bytes, ["1.1", "latest"])).status).toBe(201);
    expect(await taggedDigest(repo, "latest")).toBe(second.digest);
  });

  it("is all or nothing with ?tag=: when one tag would move, no tag is written, nor the manifest", async () => {
    const { repo } = await frozenRepo();
    const [first, second] = await twoImages(repo);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);

    const refused = await putTags(repo, second.digest, second.bytes, ["2.0", "1.0"]);
    expect(refused.status).toBe(403);
    expect((await firstError(refused))?.message).toContain("tag 1.0 is immutable");
    expect(await status(repo, "2.0")).toBe(404);
    expect(await status(repo, second.digest)).toBe(404);

    // A manifest already stored is only tagged: still none of its tags when one would move.
    expect((await putManifest(repo, second.digest, second.bytes)).status).toBe(201);
    expect((await putTags(repo, second.digest, second.bytes, ["2.0", "1.0"])).status).toBe(403);
    expect(await status(repo, "2.0")).toBe(404);
    expect(await taggedDigest(repo, "1.0")).toBe(first.digest);
  });

  it("lets exactly one of many PUTs racing to a new tag win, and the tag never moves after", async () => {
    const { repo } = await frozenRepo();
    // Manifests that differ in an annotation only: as many digests as racers, over the same blobs.
    const { manifest } = await pushImage(repo);
    const racers = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const bytes = json({ ...manifest, annotations: { racer: String(i) } });
        return { bytes, digest: await digestOf(bytes) };
      }),
    );
    for (const tag of ["a", "b", "c", "d"]) {
      const responses = await Promise.all(racers.map((racer) => putManifest(repo, tag, racer.bytes)));
      expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
      expect(responses.filter((r) => r.status === 403)).toHaveLength(racers.length - 1);
      const winner = racers[responses.findIndex((r) => r.status === 201)]!;
      expect(await taggedDigest(repo, tag)).toBe(winner.digest);
      for (const loser of racers.filter((racer) => racer !== winner)) expect((await putManifest(repo, tag, loser.bytes)).status).toBe(403);
      expect(await taggedDigest(repo, tag)).toBe(winner.digest);
    }
  });

  it("moves tags where no policy matches, IMMUTABLE_TAGS being off by default, and again once the policy is removed", async () => {
    const { repo, namespace } = await frozenRepo(false);
    const [first, second] = await twoImages(repo);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);
    expect((await putManifest(repo, "1.0", second.bytes)).status).toBe(201);
    expect(await taggedDigest(repo, "1.0")).toBe(second.digest);

    await setPolicy(namespace, true);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(403);
    expect((await administer("DELETE", `policies/${namespace}`)).status).toBe(204);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);
    expect(await taggedDigest(repo, "1.0")).toBe(first.digest);
  });

  it("with IMMUTABLE_TAGS=on, holds tags wherever no policy says otherwise; a policy saying off frees its namespaces", async () => {
    const immutableByDefault = (path: string, init?: RequestInit) => fetchWithEnv({ IMMUTABLE_TAGS: "on" }, path, init);
    const putOn = (repo: string, tag: string, bytes: Uint8Array<ArrayBuffer>) =>
      immutableByDefault(`/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: bytes });

    const { repo } = await frozenRepo(false);
    const [first, second] = await twoImages(repo);
    expect((await putOn(repo, "1.0", first.bytes)).status).toBe(201);
    const refused = await putOn(repo, "1.0", second.bytes);
    expect(refused.status).toBe(403);
    expect((await firstError(refused))?.message).toContain("IMMUTABLE_TAGS is on");
    expect((await immutableByDefault(`/v2/${repo}/manifests/1.0`, { method: "DELETE" })).status).toBe(403);

    const free = await frozenRepo(false);
    await setPolicy(free.namespace, false);
    const [one, other] = await twoImages(free.repo);
    expect((await putOn(free.repo, "1.0", one.bytes)).status).toBe(201);
    expect((await putOn(free.repo, "1.0", other.bytes)).status).toBe(201);
  });

  it("holds tags where any matching policy says so, however many others say off", async () => {
    const prefix = uniqueName("mixed");
    await setPolicy(`${prefix}-*`, false);
    await setPolicy(`${prefix}-app*`, true);
    await setPolicy(`*${prefix}-app`, false);
    const held = uniqueRepo(`${prefix}-app`);
    const free = uniqueRepo(`${prefix}-web`);
    for (const [repo, expected] of [[held, 403], [free, 201]] as const) {
      const [first, second] = await twoImages(repo);
      expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);
      expect((await putManifest(repo, "1.0", second.bytes)).status).toBe(expected);
    }
  });
});

describe("immutable tags: DELETE /v2/<name>/manifests/<reference>", () => {
  it("refuses to delete an immutable tag (403 DENIED naming it): deleting and pushing again would move it", async () => {
    const { repo, namespace } = await frozenRepo();
    const [first] = await twoImages(repo);
    expect((await putManifest(repo, "1.0", first.bytes)).status).toBe(201);
    const refused = await del(repo, "1.0");
    expect(refused.status).toBe(403);
    const error = await firstError(refused);
    expect(error?.code).toBe("DENIED");
    expect(error?.message).toContain(`tag 1.0 is immutable (namespace policy ${namespace}): it points at ${first.digest}, and it cannot be deleted`);
    expect(await taggedDigest(repo, "1.0")).toBe(first.digest);
    expect((await del(repo, "nope")).status).toBe(404);
  });

  it("refuses to delete a tagged manifest by digest, keeping it and its tags; an untagged one deletes", async () => {
    const { repo } = await frozenRepo();
    const [tagged, untagged] = await twoImages(repo);
    expect((await putTags(repo, tagged.digest, tagged.bytes, ["1.0", "stable"])).status).toBe(201);
    expect((await putManifest(repo, untagged.digest, untagged.bytes)).status).toBe(201);

    const refused = await del(repo, tagged.digest);
    expect(refused.status).toBe(403);
    expect((await firstError(refused))?.detail).toEqual({
      tags: [
        { tag: "1.0", digest: tagged.digest, policy: expect.any(String) },
        { tag: "stable", digest: tagged.digest, policy: expect.any(String) },
      ],
    });
    expect(await status(repo, tagged.digest)).toBe(200);
    expect(await taggedDigest(repo, "stable")).toBe(tagged.digest);

    expect((await del(repo, untagged.digest)).status).toBe(202);
    expect(await status(repo, untagged.digest)).toBe(404);
  });

  it("deletes tags and tagged manifests once the policy is removed", async () => {
    const { repo, namespace } = await frozenRepo();
    const [first] = await twoImages(repo);
    expect((await putTags(repo, first.digest, first.bytes, ["1.0", "2.0"])).status).toBe(201);
    expect((await del(repo, "1.0")).status).toBe(403);
    expect((await administer("DELETE", `policies/${namespace}`)).status).toBe(204);
    expect((await del(repo, "1.0")).status).toBe(202);
    expect((await del(repo, first.digest)).status).toBe(202);
    expect(await status(repo, "2.0")).toBe(404);
  });
});
