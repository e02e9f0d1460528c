import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { MEDIA_TYPES, parseTransferLog, registryFetch, sha256, skopeo, uniqueRepo, Workspace, type ImageManifest, type TransferLog } from "./clients";

const registry = inject("registry");

describe("skopeo copy between two repositories of the registry", () => {
  let ws: Workspace;
  let source: string;
  let target: string;
  let manifest: ImageManifest;
  let manifestDigest: string;
  let copyLog: TransferLog;

  beforeAll(async () => {
    ws = await Workspace.create("mount");
    // Two layers, so more than one blob has to cross over.
    const base = "localhost/e2e-mount-base";
    await ws.buildImage({ name: base, files: [{ path: "/one.bin", source: await ws.randomFile("one.bin", 32 * 1024) }] });
    await ws.buildImage({ name: "localhost/e2e-mount", base, files: [{ path: "/two.bin", source: await ws.randomFile("two.bin", 48 * 1024) }] });
    source = uniqueRepo("mount-source");
    target = uniqueRepo("mount-target");
    await ws.buildah("push", "--tls-verify=false", "localhost/e2e-mount", `docker://${registry}/${source}:v1`);
    const raw = await skopeo.inspectRaw(`docker://${registry}/${source}:v1`);
    manifestDigest = sha256(raw);
    manifest = JSON.parse(raw) as ImageManifest;
    expect(manifest.layers).toHaveLength(2);

    copyLog = parseTransferLog(await skopeo.copyDebug(`docker://${registry}/${source}:v1`, `docker://${registry}/${target}:v1`));
  });

  afterAll(async () => {
    await ws?.remove();
  });

  it("leaves the target serving the same manifest", async () => {
    const head = await registryFetch(registry, `/v2/${target}/manifests/v1`, { method: "HEAD", headers: { Accept: MEDIA_TYPES.ociManifest } });
    expect(head.status).toBe(200);
    expect(head.headers.get("Docker-Content-Digest")).toBe(manifestDigest);
  });

  it("leaves the target holding every blob: HEAD 200 with its length and digest, GET with its bytes", async () => {
    for (const { digest, size } of [manifest.config, ...manifest.layers]) {
      const head = await registryFetch(registry, `/v2/${target}/blobs/${digest}`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.headers.get("Content-Length")).toBe(String(size));
      expect(head.headers.get("Docker-Content-Digest")).toBe(digest);
      const bytes = new Uint8Array(await (await registryFetch(registry, `/v2/${target}/blobs/${digest}`)).arrayBuffer());
      expect(sha256(bytes)).toBe(digest);
    }
  });

  it("mounted every layer from the source repository (201) instead of uploading it", () => {
    const layers = manifest.layers.map((d) => d.digest);
    expect(copyLog.mounts.filter((m) => layers.includes(m.digest))).toEqual(
      expect.arrayContaining(layers.map((digest) => ({ digest, from: source }))),
    );
    expect(copyLog.refusedCount).toBe(0);
    expect(copyLog.mountedCount).toBe(layers.length);
    expect(copyLog.skipped).toEqual(expect.arrayContaining(layers));
    // At most the config travels as bytes: containers/image does not try to mount configs.
    expect(copyLog.uploaded.filter((digest) => digest !== manifest.config.digest)).toEqual([]);
  });
});
