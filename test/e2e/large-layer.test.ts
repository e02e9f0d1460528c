import { readFile, rm, stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  OciLayout,
  parseTransferLog,
  registryFetch,
  sha256,
  sha256File,
  sha256Gunzipped,
  skopeo,
  uniqueRepo,
  Workspace,
  type Descriptor,
  type ImageManifest,
  type TransferLog,
} from "./clients";

const registry = inject("registry");
const MiB = 1024 * 1024;
/** Random bytes: gzip cannot shrink them, so the layer stays this large on the wire. */
const PAYLOAD_BYTES = 200 * MiB;

/*
 * Two images, each one layer holding the same payload under a different path, so their layers
 * differ. As root, buildah and skopeo share one blob-info cache (/var/lib/containers/cache): once
 * one push has put a layer in the registry, a later push of that same layer to another
 * repository is turned into a mount, and no bytes would be uploaded.
 */
const FROM_LAYOUT = "localhost/e2e-large-layout";
const FROM_STORAGE = "localhost/e2e-large-storage";

let ws: Workspace;

beforeAll(async () => {
  ws = await Workspace.create("large");
  const payload = await ws.randomFile("payload.bin", PAYLOAD_BYTES);
  await ws.buildImage({ name: FROM_LAYOUT, files: [{ path: "/payload.bin", source: payload }] });
  await ws.buildImage({ name: FROM_STORAGE, files: [{ path: "/data/payload.bin", source: payload }] });
  await rm(payload);
});

afterAll(async () => {
  await ws?.remove();
});

/** Pulls `repo:v1` into a fresh OCI layout; returns the layout and the manifest skopeo read. */
async function pull(repo: string, name: string): Promise<{ layout: OciLayout; layer: Descriptor }> {
  const layout = new OciLayout(ws.path(name));
  await skopeo.copy(`docker://${registry}/${repo}:v1`, `oci:${layout.dir}:v1`);
  const manifest = await layout.json<ImageManifest>((await layout.tagged("v1")).digest);
  expect(manifest.layers).toHaveLength(1);
  return { layout, layer: manifest.layers[0]! };
}

async function expectBlobHead(repo: string, layer: Descriptor): Promise<void> {
  const head = await registryFetch(registry, `/v2/${repo}/blobs/${layer.digest}`, { method: "HEAD" });
  expect(head.status).toBe(200);
  expect(head.headers.get("Content-Length")).toBe(String(layer.size));
  expect(head.headers.get("Docker-Content-Digest")).toBe(layer.digest);
}

describe("a 200 MiB layer pushed from an OCI layout with skopeo copy (length known, one streamed PATCH)", () => {
  let source: OciLayout;
  let sourceLayer: Descriptor;
  let repo: string;
  let log: TransferLog;

  beforeAll(async () => {
    source = new OciLayout(ws.path("source"));
    await ws.buildah("push", FROM_LAYOUT, `oci:${source.dir}:v1`);
    const manifest = await source.json<ImageManifest>((await source.tagged("v1")).digest);
    expect(manifest.layers).toHaveLength(1);
    sourceLayer = manifest.layers[0]!;
    expect(sourceLayer.size).toBeGreaterThan(PAYLOAD_BYTES);
    expect(await sha256File(source.blobPath(sourceLayer.digest))).toBe(sourceLayer.digest);

    repo = uniqueRepo("large-layout");
    log = parseTransferLog(await skopeo.copyDebug(`oci:${source.dir}:v1`, `docker://${registry}/${repo}:v1`, "--preserve-digests"));
  });

  it("was uploaded, not mounted", () => {
    expect(log.uploaded).toContain(sourceLayer.digest);
    expect(log.mounts).toEqual([]);
  });

  it("is held by the repository with its full length and digest", async () => {
    await expectBlobHead(repo, sourceLayer);
  });

  it("pulls back with skopeo copy as the very same blob: sha256 = its digest = the source's", async () => {
    const { layout, layer } = await pull(repo, "pulled-layout");
    expect(layer).toEqual(sourceLayer);
    const path = layout.blobPath(layer.digest);
    expect((await stat(path)).size).toBe(sourceLayer.size);
    expect(await sha256File(path)).toBe(sourceLayer.digest);
    await rm(layout.dir, { recursive: true });
  });
});

describe("a 200 MiB layer pushed with buildah push, gzipped on the fly (length unknown, chunked encoding)", () => {
  let repo: string;
  /** The manifest digest buildah computed over the bytes it sent. */
  let pushed: string;
  /** sha256 of the layer's uncompressed tar, as buildah recorded it when it built the image. */
  let diffId: string;
  let log: TransferLog;

  beforeAll(async () => {
    const image = JSON.parse((await ws.buildah("inspect", "--type", "image", FROM_STORAGE)).stdout) as { OCIv1: { rootfs: { diff_ids: string[] } } };
    expect(image.OCIv1.rootfs.diff_ids).toHaveLength(1);
    diffId = image.OCIv1.rootfs.diff_ids[0]!;

    repo = uniqueRepo("large-buildah");
    const digestFile = ws.path("large.digest");
    const { stderr } = await ws.buildah("--debug", "push", "--tls-verify=false", "--digestfile", digestFile, FROM_STORAGE, `docker://${registry}/${repo}:v1`);
    log = parseTransferLog(stderr);
    pushed = (await readFile(digestFile, "utf8")).trim();
  });

  it("serves the manifest buildah pushed, whose gzip layer the repository holds in full", async () => {
    const raw = await skopeo.inspectRaw(`docker://${registry}/${repo}:v1`);
    expect(sha256(raw)).toBe(pushed);
    const [layer] = (JSON.parse(raw) as ImageManifest).layers;
    expect(layer!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    expect(layer!.size).toBeGreaterThan(PAYLOAD_BYTES);
    await expectBlobHead(repo, layer!);
    // Uploaded, not mounted.
    expect(log.uploaded).toContain(layer!.digest);
    expect(log.mounts).toEqual([]);
  });

  it("pulls back with skopeo copy: sha256 = its digest, and it decompresses to the layer buildah built", async () => {
    const { layout, layer } = await pull(repo, "pulled-buildah");
    const path = layout.blobPath(layer.digest);
    expect(await sha256File(path)).toBe(layer.digest);
    expect(await sha256Gunzipped(path)).toBe(diffId);
    await rm(layout.dir, { recursive: true });
  });
});
