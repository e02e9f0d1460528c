import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Containerd } from "./daemons";
import { MEDIA_TYPES, OciLayout, registryFetch, run, sha256, uniqueRepo, Workspace, type Descriptor, type ImageManifest } from "./clients";

const registry = inject("registry");

let ws: Workspace;
let containerd: Containerd;
/** The image every describe imports into containerd: two layers, built with buildah. */
const IMAGE = "localhost/e2e-containerd";
/** The image as an OCI layout, and that layout as the archive `ctr images import` reads. */
let layout: OciLayout;
let archive: string;
let manifestDigest: string;
let manifest: ImageManifest;

beforeAll(async () => {
  ws = await Workspace.create("containerd");
  containerd = await Containerd.start(ws.path("containerd"));
  const base = "localhost/e2e-containerd-base";
  await ws.buildImage({ name: base, files: [{ path: "/one.bin", source: await ws.randomFile("one.bin", 48 * 1024) }] });
  await ws.buildImage({ name: IMAGE, base, files: [{ path: "/data/two.txt", source: await ws.file("two.txt", "the second layer\n") }] });
  layout = new OciLayout(ws.path("layout"));
  await ws.buildah("push", IMAGE, `oci:${layout.dir}:v1`);
  archive = ws.path("image.tar");
  await run("tar", ["-cf", archive, "-C", layout.dir, "oci-layout", "index.json", "blobs"]);
  manifestDigest = (await layout.tagged("v1")).digest;
  manifest = await layout.json<ImageManifest>(manifestDigest);
});

afterAll(async () => {
  try {
    await containerd?.stop();
  } finally {
    await ws?.remove();
  }
});

function blobsOf(image: ImageManifest): Descriptor[] {
  return [image.config, ...image.layers];
}

/** Imports the OCI archive as `<registry>/<repo>:v1` and pushes it; returns that reference. */
async function importAndPush(repo: string): Promise<string> {
  const reference = `${registry}/${repo}:v1`;
  // The archive's image is tagged "v1"; the base name makes it <registry>/<repo>:v1.
  await containerd.ctr("images", "import", "--no-unpack", "--base-name", `${registry}/${repo}`, archive);
  await containerd.ctr("images", "push", "--plain-http", reference);
  return reference;
}

/**
 * Removes every image and, before returning, all content: the describes share one image, and
 * containerd fetches no blob it already holds.
 */
async function emptyStore(): Promise<void> {
  const references = (await containerd.ctr("images", "ls", "--quiet")).stdout.split("\n").filter(Boolean);
  if (references.length > 0) await containerd.ctr("images", "rm", "--sync", ...references);
  expect(await contentDigests()).toEqual([]);
}

interface LoggedRequest {
  method: string;
  url: URL;
}

/**
 * The requests a ctr command run with --http-dump made, from its log. A request line can follow
 * the bytes of a dumped body in the same message, so it is looked for anywhere.
 */
function loggedRequests(stderr: string): LoggedRequest[] {
  return [...stderr.matchAll(/\b(GET|HEAD|POST|PUT|PATCH|DELETE) (\/v2\/\S*) HTTP\/1\.1/g)].map((m) => ({ method: m[1]!, url: new URL(m[2]!, "http://registry") }));
}

/** Pulls and unpacks with the native snapshotter, which needs no overlay filesystem. */
async function pull(reference: string): Promise<void> {
  await containerd.ctr("images", "pull", "--plain-http", "--snapshotter", "native", reference);
}

/** The manifest digest containerd's image `reference` points to (`ctr images ls`: REF TYPE DIGEST …). */
async function localDigest(reference: string): Promise<string> {
  const rows = (await containerd.ctr("images", "ls", `name==${reference}`)).stdout.split("\n").map((line) => line.split(/\s+/));
  const row = rows.find((columns) => columns[0] === reference);
  if (!row) throw new Error(`containerd has no image ${reference}`);
  return row[2]!;
}

async function contentDigests(): Promise<string[]> {
  return (await containerd.ctr("content", "ls", "--quiet")).stdout.split("\n").filter(Boolean);
}

/** The layers' chain IDs, the names of the snapshots unpacking them makes (OCI image spec). */
function chainIds(diffIds: string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) chain.push(chain.length === 0 ? diffId : sha256(`${chain.at(-1)} ${diffId}`));
  return chain;
}

describe("ctr images push --plain-http: the registry serves the imported OCI image byte for byte", () => {
  let repo: string;

  beforeAll(async () => {
    repo = uniqueRepo("ctr-push");
    await importAndPush(repo);
  });

  it("answers GET on the tag with the layout's manifest, under its digest and media type", async () => {
    const response = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { headers: { Accept: MEDIA_TYPES.ociManifest } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe(MEDIA_TYPES.ociManifest);
    expect(response.headers.get("Docker-Content-Digest")).toBe(manifestDigest);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array(await layout.blob(manifestDigest)));
  });

  it("serves the config and both layers with the layout's bytes", async () => {
    expect(manifest.layers).toHaveLength(2);
    for (const { digest } of blobsOf(manifest)) {
      const response = await registryFetch(registry, `/v2/${repo}/blobs/${digest}`);
      expect(response.status).toBe(200);
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array(await layout.blob(digest)));
    }
  });
});

describe("ctr images pull --plain-http: an image removed from containerd comes back from the registry as pushed", () => {
  let reference: string;

  beforeAll(async () => {
    reference = await importAndPush(uniqueRepo("ctr-pull"));
    await emptyStore();
    await pull(reference);
  });

  it("points the pulled image at the pushed manifest digest", async () => {
    expect(await localDigest(reference)).toBe(manifestDigest);
  });

  it("fetched the manifest, the config and both layers into its emptied content store, the manifest byte for byte", async () => {
    expect((await contentDigests()).sort()).toEqual([manifestDigest, ...blobsOf(manifest).map(({ digest }) => digest)].sort());
    const stored = (await containerd.ctr("content", "get", manifestDigest)).stdout;
    expect(stored).toBe(new TextDecoder().decode(await layout.blob(manifestDigest)));
  });

  it("unpacked both layers into snapshots named by the config's chain IDs (unpacking checks every diff_id)", async () => {
    const config = await layout.json<{ rootfs: { diff_ids: string[] } }>(manifest.config.digest);
    const snapshots = (await containerd.ctr("snapshots", "--snapshotter", "native", "ls")).stdout;
    for (const chainId of chainIds(config.rootfs.diff_ids)) expect(snapshots).toContain(chainId);
  });
});

describe("ctr push to a second repository of the registry mounts the blobs from the repository they were pulled from", () => {
  let source: string;
  let target: string;
  /** Every request ctr made during the push to the target. */
  let requests: LoggedRequest[];

  beforeAll(async () => {
    source = uniqueRepo("ctr-mount-source");
    target = uniqueRepo("ctr-mount-target");
    const pulled = await importAndPush(source);
    // A pull labels the content with the repository it came from; the push reads those labels.
    await emptyStore();
    await pull(pulled);
    await containerd.ctr("images", "tag", pulled, `${registry}/${target}:v1`);
    requests = loggedRequests((await containerd.ctr("images", "push", "--plain-http", "--http-dump", `${registry}/${target}:v1`)).stderr);
  });

  it("asks to mount the config and both layers from the source repository, and uploads no blob", () => {
    const mounts = requests
      .filter(({ method, url }) => method === "POST" && url.searchParams.has("mount"))
      .map(({ url }) => ({ digest: url.searchParams.get("mount"), from: url.searchParams.get("from") }));
    expect(mounts).toEqual(expect.arrayContaining(blobsOf(manifest).map(({ digest }) => ({ digest, from: source }))));
    expect(requests.filter(({ method, url }) => ["PUT", "PATCH"].includes(method) && url.pathname.includes("/blobs/uploads/"))).toEqual([]);
  });

  it("leaves the target serving the manifest and every blob", async () => {
    const head = await registryFetch(registry, `/v2/${target}/manifests/v1`, { method: "HEAD", headers: { Accept: MEDIA_TYPES.ociManifest } });
    expect(head.headers.get("Docker-Content-Digest")).toBe(manifestDigest);
    for (const { digest, size } of blobsOf(manifest)) {
      const blob = await registryFetch(registry, `/v2/${target}/blobs/${digest}`, { method: "HEAD" });
      expect(blob.status).toBe(200);
      expect(blob.headers.get("Content-Length")).toBe(String(size));
    }
  });
});

describe("ctr images push of an image imported from a docker archive: the registry serves its Docker schema 2 manifest", () => {
  let repo: string;
  let pushed: string;

  beforeAll(async () => {
    repo = uniqueRepo("ctr-docker");
    const reference = `${registry}/${repo}:v1`;
    const dockerArchive = ws.path("docker-image.tar");
    await ws.buildah("push", IMAGE, `docker-archive:${dockerArchive}:${reference}`);
    // A docker archive holds uncompressed layers; ctr gzips them, as docker push would.
    await containerd.ctr("images", "import", "--no-unpack", "--compress-blobs", dockerArchive);
    pushed = await localDigest(reference);
    await containerd.ctr("images", "push", "--plain-http", reference);
  });

  it("answers GET on the tag with containerd's manifest: Docker media type, same digest and bytes", async () => {
    const response = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { headers: { Accept: MEDIA_TYPES.dockerManifest } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe(MEDIA_TYPES.dockerManifest);
    expect(response.headers.get("Docker-Content-Digest")).toBe(pushed);
    const served = await response.text();
    expect(sha256(served)).toBe(pushed);
    expect(served).toBe((await containerd.ctr("content", "get", pushed)).stdout);
  });

  it("serves the config and both gzip layers under their digests", async () => {
    const served = (await (await registryFetch(registry, `/v2/${repo}/manifests/${pushed}`, { headers: { Accept: MEDIA_TYPES.dockerManifest } })).json()) as ImageManifest;
    expect(served.layers.map((layer) => layer.mediaType)).toEqual(Array(2).fill("application/vnd.docker.image.rootfs.diff.tar.gzip"));
    for (const { digest, size } of blobsOf(served)) {
      const bytes = new Uint8Array(await (await registryFetch(registry, `/v2/${repo}/blobs/${digest}`)).arrayBuffer());
      expect(bytes.length).toBe(size);
      expect(sha256(bytes)).toBe(digest);
    }
  });
});
