import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  MEDIA_TYPES,
  OciLayout,
  registryFetch,
  sha256,
  skopeo,
  uniqueRepo,
  Workspace,
  type ImageIndex,
  type ImageManifest,
} from "./clients";

const registry = inject("registry");
const ARCHITECTURES = ["amd64", "arm64"] as const;

describe("a two-platform image index pushed with buildah manifest push --all (OCI)", () => {
  let ws: Workspace;
  let repo: string;
  /** The index digest buildah computed over the bytes it sent. */
  let pushed: string;
  /** What each platform's only file says, to recognise its layer when it comes back. */
  const marker = (arch: string) => `built for linux/${arch} by run ${repo}\n`;

  beforeAll(async () => {
    ws = await Workspace.create("index");
    repo = uniqueRepo("index");
    const list = "localhost/e2e-index";
    await ws.buildah("manifest", "create", list);
    for (const arch of ARCHITECTURES) {
      const source = await ws.file(`${arch}.txt`, marker(arch));
      const image = `localhost/e2e-index-${arch}`;
      await ws.buildImage({ name: image, files: [{ path: "/platform.txt", source }], arch, os: "linux" });
      await ws.buildah("manifest", "add", list, image);
    }
    const digestFile = ws.path("index.digest");
    await ws.buildah("manifest", "push", "--all", "--format", "oci", "--tls-verify=false", "--digestfile", digestFile, list, `docker://${registry}/${repo}:v1`);
    pushed = (await readFile(digestFile, "utf8")).trim();
  });

  afterAll(async () => {
    await ws?.remove();
  });

  async function servedIndex(): Promise<{ raw: string; index: ImageIndex }> {
    const raw = await skopeo.inspectRaw(`docker://${registry}/${repo}:v1`);
    return { raw, index: JSON.parse(raw) as ImageIndex };
  }

  it("answers skopeo inspect --raw with the index buildah pushed: same sha256, two platforms", async () => {
    const { raw, index } = await servedIndex();
    expect(sha256(raw)).toBe(pushed);
    expect(index.mediaType).toBe(MEDIA_TYPES.ociIndex);
    expect(index.manifests).toHaveLength(2);
    expect(index.manifests.map((d) => `${d.platform?.os}/${d.platform?.architecture}`).sort()).toEqual(["linux/amd64", "linux/arm64"]);
    const head = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { method: "HEAD", headers: { Accept: MEDIA_TYPES.ociIndex } });
    expect(head.headers.get("Content-Type")).toBe(MEDIA_TYPES.ociIndex);
    expect(head.headers.get("Docker-Content-Digest")).toBe(pushed);
  });

  it("serves each platform's manifest by digest, byte for byte, with its media type and its platform's config", async () => {
    const { index } = await servedIndex();
    for (const entry of index.manifests) {
      const response = await registryFetch(registry, `/v2/${repo}/manifests/${entry.digest}`, { headers: { Accept: entry.mediaType } });
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toBe(entry.mediaType);
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(bytes.length).toBe(entry.size);
      expect(sha256(bytes)).toBe(entry.digest);
      const manifest = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
      const config = (await (await registryFetch(registry, `/v2/${repo}/blobs/${manifest.config.digest}`)).json()) as { architecture: string; os: string };
      expect(`${config.os}/${config.architecture}`).toBe(`${entry.platform?.os}/${entry.platform?.architecture}`);
    }
  });

  it("resolves to the right platform's image when a client asks for one (skopeo --override-arch)", async () => {
    const { index } = await servedIndex();
    for (const arch of ARCHITECTURES) {
      const inspected = (await skopeo.inspect(`docker://${registry}/${repo}:v1`, "--override-os", "linux", "--override-arch", arch)) as {
        Digest: string;
        Architecture: string;
        Layers: string[];
      };
      // skopeo reports the digest of the reference (the index) and the chosen image's config and layers.
      expect(inspected.Digest).toBe(pushed);
      expect(inspected.Architecture).toBe(arch);
      const entry = index.manifests.find((d) => d.platform?.architecture === arch)!;
      const manifest = (await (await registryFetch(registry, `/v2/${repo}/manifests/${entry.digest}`, { headers: { Accept: entry.mediaType } })).json()) as ImageManifest;
      expect(inspected.Layers).toEqual(manifest.layers.map((d) => d.digest));
    }
  });

  it("is pulled by podman as the platform asked for (--arch), identified by that platform's config", async () => {
    const { index } = await servedIndex();
    for (const arch of ARCHITECTURES) {
      const entry = index.manifests.find((d) => d.platform?.architecture === arch)!;
      const manifest = (await (await registryFetch(registry, `/v2/${repo}/manifests/${entry.digest}`, { headers: { Accept: entry.mediaType } })).json()) as ImageManifest;
      const id = (await ws.podman("pull", "--quiet", "--tls-verify=false", "--arch", arch, `${registry}/${repo}:v1`)).stdout.trim();
      expect(`sha256:${id}`).toBe(manifest.config.digest);
    }
  });

  it("pulls back with skopeo copy --all into an OCI layout holding the pushed index, both manifests and their blobs", async () => {
    const { raw, index } = await servedIndex();
    const layout = new OciLayout(ws.path("pulled"));
    await skopeo.copy(`docker://${registry}/${repo}:v1`, `oci:${layout.dir}:v1`, "--all");
    const top = await layout.tagged("v1");
    expect(top.digest).toBe(pushed);
    expect(new TextDecoder().decode(await layout.blob(pushed))).toBe(raw);

    for (const entry of index.manifests) {
      const bytes = await layout.blob(entry.digest);
      expect(sha256(bytes)).toBe(entry.digest);
      const manifest = await layout.json<ImageManifest>(entry.digest);
      for (const descriptor of [manifest.config, ...manifest.layers]) expect(sha256(await layout.blob(descriptor.digest))).toBe(descriptor.digest);
      // The platform's layer is the one built for it.
      expect(manifest.layers).toHaveLength(1);
      const extracted = await ws.extractLayer(layout.blobPath(manifest.layers[0]!.digest));
      expect(await readFile(join(extracted, "platform.txt"), "utf8")).toBe(marker(entry.platform!.architecture));
    }
  });
});
