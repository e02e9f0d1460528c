import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  MEDIA_TYPES,
  OciLayout,
  registryFetch,
  sha256,
  sha256File,
  skopeo,
  uniqueRepo,
  Workspace,
  type ImageFile,
  type ImageManifest,
} from "./clients";

const registry = inject("registry");

let ws: Workspace;
/** The local image every describe pushes: two small files in one layer, linux/amd64. */
const IMAGE = "localhost/e2e-image";
let imageId: string;
let files: ImageFile[];

beforeAll(async () => {
  ws = await Workspace.create("image");
  files = [
    { path: "/hello.txt", source: await ws.file("hello.txt", "hello from the e2e suite\n") },
    { path: "/data/random.bin", source: await ws.randomFile("random.bin", 64 * 1024) },
  ];
  imageId = await ws.buildImage({ name: IMAGE, files, arch: "amd64", os: "linux" });
});

afterAll(async () => {
  await ws?.remove();
});

/** buildah push to the registry; returns the manifest digest buildah computed over the bytes it sent. */
async function buildahPush(reference: string, ...flags: string[]): Promise<string> {
  const digestFile = ws.path(`digest-${Math.random().toString(36).slice(2)}`);
  await ws.buildah("push", "--tls-verify=false", "--digestfile", digestFile, ...flags, IMAGE, `docker://${reference}`);
  return (await readFile(digestFile, "utf8")).trim();
}

/** The files of an OCI layout's blobs directory, by name. */
async function blobFiles(layout: string): Promise<string[]> {
  return (await readdir(join(layout, "blobs", "sha256"))).sort();
}

describe("buildah push: the registry serves the manifest and blobs exactly as pushed", () => {
  let repo: string;
  let pushed: string;

  beforeAll(async () => {
    repo = uniqueRepo("image");
    pushed = await buildahPush(`${registry}/${repo}:v1`);
  });

  it("answers skopeo inspect --raw with the bytes buildah pushed (same sha256)", async () => {
    const raw = await skopeo.inspectRaw(`docker://${registry}/${repo}:v1`);
    expect(sha256(raw)).toBe(pushed);
    const manifest = JSON.parse(raw) as ImageManifest;
    expect(manifest.mediaType).toBe(MEDIA_TYPES.ociManifest);
    // The config is the image buildah built: its digest is the image ID.
    expect(manifest.config.digest).toBe(`sha256:${imageId}`);
  });

  it("answers HEAD on the tag with the manifest's digest, type and length", async () => {
    const raw = await skopeo.inspectRaw(`docker://${registry}/${repo}:v1`);
    const head = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { method: "HEAD", headers: { Accept: MEDIA_TYPES.ociManifest } });
    expect(head.status).toBe(200);
    expect(head.headers.get("Docker-Content-Digest")).toBe(pushed);
    expect(head.headers.get("Content-Type")).toBe(MEDIA_TYPES.ociManifest);
    expect(head.headers.get("Content-Length")).toBe(String(new TextEncoder().encode(raw).length));
  });

  it("pulls back with skopeo copy into an OCI layout: every blob matches its digest, the layer holds the built files", async () => {
    const layout = new OciLayout(ws.path(`pulled-${repo.replaceAll("/", "_")}`));
    await skopeo.copy(`docker://${registry}/${repo}:v1`, `oci:${layout.dir}:v1`);
    const top = await layout.tagged("v1");
    expect(top.digest).toBe(pushed);
    expect(sha256(await layout.blob(pushed))).toBe(pushed);

    const manifest = await layout.json<ImageManifest>(pushed);
    expect(manifest.layers).toHaveLength(1);
    for (const descriptor of [manifest.config, ...manifest.layers]) {
      const bytes = await layout.blob(descriptor.digest);
      expect(bytes.length).toBe(descriptor.size);
      expect(sha256(bytes)).toBe(descriptor.digest);
    }
    const config = await layout.json<{ architecture: string; os: string }>(manifest.config.digest);
    expect({ architecture: config.architecture, os: config.os }).toEqual({ architecture: "amd64", os: "linux" });

    const extracted = await ws.extractLayer(layout.blobPath(manifest.layers[0]!.digest));
    for (const file of files) expect(await sha256File(join(extracted, file.path))).toBe(await sha256File(file.source));
  });

  it("pulls with podman, which records the pushed manifest digest and the image ID", async () => {
    const reference = `${registry}/${repo}:v1`;
    await ws.podman("pull", "--tls-verify=false", reference);
    const inspected = JSON.parse((await ws.podman("image", "inspect", reference)).stdout) as { Id: string; Digest: string; RepoDigests: string[] }[];
    expect(inspected).toHaveLength(1);
    expect(inspected[0]!.Digest).toBe(pushed);
    expect(inspected[0]!.Id).toBe(imageId);
    expect(inspected[0]!.RepoDigests).toContain(`${registry}/${repo}@${pushed}`);
  });
});

describe("skopeo copy from an OCI layout: what comes back is the layout that was pushed, byte for byte", () => {
  let source: OciLayout;
  let repo: string;

  beforeAll(async () => {
    source = new OciLayout(ws.path("source-layout"));
    await ws.buildah("push", IMAGE, `oci:${source.dir}:v1`);
    repo = uniqueRepo("layout");
    // --preserve-digests: skopeo fails rather than push anything but the layout's own manifest.
    await skopeo.copy(`oci:${source.dir}:v1`, `docker://${registry}/${repo}:v1`, "--preserve-digests");
  });

  it("serves the layout's manifest file, byte for byte", async () => {
    const { digest } = await source.tagged("v1");
    const raw = await skopeo.inspectRaw(`docker://${registry}/${repo}:v1`);
    expect(raw).toBe(new TextDecoder().decode(await source.blob(digest)));
    expect(sha256(raw)).toBe(digest);
  });

  it("pulls back into a layout whose blobs are the source's, file for file and byte for byte", async () => {
    const pulled = new OciLayout(ws.path("pulled-layout"));
    await skopeo.copy(`docker://${registry}/${repo}:v1`, `oci:${pulled.dir}:v1`);
    expect((await pulled.tagged("v1")).digest).toBe((await source.tagged("v1")).digest);
    const names = await blobFiles(source.dir);
    expect(names).toHaveLength(3); // manifest, config, layer
    expect(await blobFiles(pulled.dir)).toEqual(names);
    for (const name of names) {
      const digest = `sha256:${name}`;
      const bytes = await pulled.blob(digest);
      expect(sha256(bytes)).toBe(digest);
      expect(bytes).toEqual(await source.blob(digest));
    }
  });
});

describe("Docker schema 2: a manifest pushed with buildah push --format v2s2 is served as pushed", () => {
  it("keeps its media type and digest, and pulls back with skopeo", async () => {
    const repo = uniqueRepo("docker");
    const pushed = await buildahPush(`${registry}/${repo}:v1`, "--format", "v2s2");
    const head = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { method: "HEAD", headers: { Accept: MEDIA_TYPES.dockerManifest } });
    expect(head.headers.get("Content-Type")).toBe(MEDIA_TYPES.dockerManifest);
    expect(head.headers.get("Docker-Content-Digest")).toBe(pushed);
    expect(sha256(await skopeo.inspectRaw(`docker://${registry}/${repo}:v1`))).toBe(pushed);
    // dir: keeps the manifest as served; skopeo verifies every blob's digest while copying.
    const dir = ws.path("pulled-docker");
    await skopeo.copy(`docker://${registry}/${repo}:v1`, `dir:${dir}`);
    expect(sha256(await readFile(join(dir, "manifest.json")))).toBe(pushed);
  });
});

describe("tags: skopeo list-tags lists every tag pushed to the repository", () => {
  it("lists v1, v2 and latest, in lexical order", async () => {
    const repo = uniqueRepo("tags");
    for (const tag of ["v2", "latest", "v1"]) await buildahPush(`${registry}/${repo}:${tag}`);
    expect((await skopeo.listTags(`docker://${registry}/${repo}`)).Tags).toEqual(["latest", "v1", "v2"]);
  });

  it("follows the Link header across pages: all 10,001 tags of a repository", async () => {
    const repo = uniqueRepo("many-tags");
    const digest = await buildahPush(`${registry}/${repo}:v1`);
    const manifest = await (await registryFetch(registry, `/v2/${repo}/manifests/v1`, { headers: { Accept: MEDIA_TYPES.ociManifest } })).arrayBuffer();
    // More tags than one page holds (the registry serves at most 10,000), added 100 per PUT with ?tag=.
    const tags = Array.from({ length: 10_000 }, (_, i) => `t${String(i).padStart(5, "0")}`);
    for (let i = 0; i < tags.length; i += 100) {
      const query = tags.slice(i, i + 100).map((tag) => `tag=${tag}`).join("&");
      const put = await registryFetch(registry, `/v2/${repo}/manifests/${digest}?${query}`, {
        method: "PUT",
        headers: { "Content-Type": MEDIA_TYPES.ociManifest },
        body: manifest,
      });
      expect(put.status).toBe(201);
    }
    const firstPage = await registryFetch(registry, `/v2/${repo}/tags/list`);
    expect(firstPage.headers.get("Link")).toMatch(/rel="next"/);
    expect((await skopeo.listTags(`docker://${registry}/${repo}`)).Tags).toEqual([...tags, "v1"]);
  });
});

describe("delete: after skopeo delete the manifest and its tags are gone", () => {
  let repo: string;
  let pushed: string;

  beforeAll(async () => {
    repo = uniqueRepo("delete");
    pushed = await buildahPush(`${registry}/${repo}:v1`);
    // A second tag on the very same manifest (a registry-to-registry copy keeps it as is).
    await skopeo.copy(`docker://${registry}/${repo}:v1`, `docker://${registry}/${repo}:also`, "--preserve-digests");
    const also = await registryFetch(registry, `/v2/${repo}/manifests/also`, { method: "HEAD", headers: { Accept: MEDIA_TYPES.ociManifest } });
    expect(also.headers.get("Docker-Content-Digest")).toBe(pushed);
    await skopeo.delete(`docker://${registry}/${repo}:v1`);
  });

  it("answers 404 MANIFEST_UNKNOWN for the tag and for the digest", async () => {
    for (const reference of ["v1", pushed]) {
      const response = await registryFetch(registry, `/v2/${repo}/manifests/${reference}`, { headers: { Accept: MEDIA_TYPES.ociManifest } });
      expect(response.status).toBe(404);
      const body = (await response.json()) as { errors: { code: string }[] };
      expect(body.errors[0]?.code).toBe("MANIFEST_UNKNOWN");
    }
  });

  it("lists no tags: skopeo deletes by digest, so the other tag on that manifest goes too", async () => {
    expect((await skopeo.listTags(`docker://${registry}/${repo}`)).Tags).toEqual([]);
  });

  it("refuses to pull the deleted tag", async () => {
    await expect(skopeo.inspectRaw(`docker://${registry}/${repo}:v1`)).rejects.toThrow(/manifest unknown/i);
  });
});
