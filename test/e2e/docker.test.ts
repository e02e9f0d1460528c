import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Dockerd } from "./daemons";
import { MEDIA_TYPES, registryFetch, sha256, uniqueRepo, Workspace, type ImageManifest } from "./clients";

const registry = inject("registry");

let ws: Workspace;
let dockerd: Dockerd;
/** The image docker builds for every describe: two layers (one COPY each), from scratch. */
const IMAGE = "localhost/e2e-docker";
let imageId: string;

beforeAll(async () => {
  ws = await Workspace.create("docker");
  dockerd = await Dockerd.start(ws.path("daemons"), { insecureRegistry: registry });
  // The workspace's files directory is the build context.
  await ws.randomFile("one.bin", 64 * 1024);
  await ws.file("two.txt", "the second layer of the docker e2e image\n");
  await ws.file("Dockerfile", "FROM scratch\nCOPY one.bin /one.bin\nCOPY two.txt /data/two.txt\n");
  imageId = await dockerd.build(ws.path("files"), IMAGE);
});

afterAll(async () => {
  try {
    await dockerd?.stop();
  } finally {
    await ws?.remove();
  }
});

interface InspectedImage {
  Id: string;
  RepoDigests: string[];
  RootFS: { Layers: string[] };
}

async function inspect(reference: string): Promise<InspectedImage> {
  const inspected = JSON.parse((await dockerd.docker("image", "inspect", reference)).stdout) as InspectedImage[];
  expect(inspected).toHaveLength(1);
  return inspected[0]!;
}

interface Pushed {
  /** docker push's progress output. */
  output: string;
  /** The manifest digest and size docker push reports (`<tag>: digest: sha256:… size: N`). */
  digest: string;
  size: number;
}

/** Tags the built image as `reference` and pushes it. */
async function push(reference: string): Promise<Pushed> {
  await dockerd.docker("tag", IMAGE, reference);
  const output = (await dockerd.docker("push", reference)).stdout;
  const reported = /: digest: (sha256:[0-9a-f]{64}) size: (\d+)/.exec(output);
  if (!reported) throw new Error(`docker push reported no digest:\n${output}`);
  return { output, digest: reported[1]!, size: Number(reported[2]) };
}

/** The layers a push or pull output says ended with `status`, e.g. "Pushed" (`<id>: Pushed`). */
function layersWithStatus(output: string, status: string): string[] {
  return [...output.matchAll(/^([0-9a-f]{12}): (.*)$/gm)].filter((m) => m[2] === status).map((m) => m[1]!);
}

describe("docker push: the registry serves docker's manifest under the digest docker reports", () => {
  let repo: string;
  let pushed: Pushed;

  beforeAll(async () => {
    repo = uniqueRepo("docker-push");
    pushed = await push(`${registry}/${repo}:v1`);
  });

  it("uploads both layers", () => {
    expect(layersWithStatus(pushed.output, "Pushed")).toHaveLength(2);
  });

  it("answers GET on the tag (docker's Accept) with a Docker schema 2 manifest of that digest and size", async () => {
    const response = await registryFetch(registry, `/v2/${repo}/manifests/v1`, { headers: { Accept: MEDIA_TYPES.dockerManifest } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe(MEDIA_TYPES.dockerManifest);
    expect(response.headers.get("Docker-Content-Digest")).toBe(pushed.digest);
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(sha256(bytes)).toBe(pushed.digest);
    expect(bytes.length).toBe(pushed.size);
  });

  it("serves the built image: its config (the image ID), whose diff_ids are docker's layers, and both layer blobs", async () => {
    const manifest = (await (await registryFetch(registry, `/v2/${repo}/manifests/${pushed.digest}`, { headers: { Accept: MEDIA_TYPES.dockerManifest } })).json()) as ImageManifest;
    expect(manifest.config.digest).toBe(imageId);
    const config = new Uint8Array(await (await registryFetch(registry, `/v2/${repo}/blobs/${imageId}`)).arrayBuffer());
    expect(sha256(config)).toBe(imageId);
    const { rootfs } = JSON.parse(new TextDecoder().decode(config)) as { rootfs: { diff_ids: string[] } };
    expect(rootfs.diff_ids).toEqual((await inspect(IMAGE)).RootFS.Layers);

    expect(manifest.layers).toHaveLength(2);
    for (const layer of manifest.layers) {
      const bytes = new Uint8Array(await (await registryFetch(registry, `/v2/${repo}/blobs/${layer.digest}`)).arrayBuffer());
      expect(bytes.length).toBe(layer.size);
      expect(sha256(bytes)).toBe(layer.digest);
    }
  });

  it("sends no layer when the same image is pushed under a second tag: HEAD finds both, and the digest is the same", async () => {
    const again = await push(`${registry}/${repo}:v2`);
    expect(layersWithStatus(again.output, "Layer already exists")).toHaveLength(2);
    expect(layersWithStatus(again.output, "Pushed")).toEqual([]);
    expect(again.digest).toBe(pushed.digest);
  });
});

describe("docker push to a second repository of the registry mounts the layers from the first", () => {
  let source: string;
  let target: string;
  let pushed: Pushed;

  beforeAll(async () => {
    source = uniqueRepo("docker-mount-source");
    target = uniqueRepo("docker-mount-target");
    // docker remembers where it pushed each layer, and asks the registry to mount from there.
    await push(`${registry}/${source}:v1`);
    pushed = await push(`${registry}/${target}:v1`);
  });

  it("reports both layers mounted from the source repository, none uploaded", () => {
    expect(layersWithStatus(pushed.output, `Mounted from ${source}`)).toHaveLength(2);
    expect(layersWithStatus(pushed.output, "Pushed")).toEqual([]);
  });

  it("leaves the target serving the manifest and every layer", async () => {
    const response = await registryFetch(registry, `/v2/${target}/manifests/v1`, { headers: { Accept: MEDIA_TYPES.dockerManifest } });
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(sha256(bytes)).toBe(pushed.digest);
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
    expect(manifest.layers).toHaveLength(2);
    for (const layer of manifest.layers) {
      const head = await registryFetch(registry, `/v2/${target}/blobs/${layer.digest}`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.headers.get("Docker-Content-Digest")).toBe(layer.digest);
    }
  });
});

// Last: it removes the built image from the daemon.
describe("docker pull: an image removed from the daemon comes back from the registry as pushed", () => {
  let repo: string;
  let pushed: Pushed;
  let pullOutput: string;

  beforeAll(async () => {
    repo = uniqueRepo("docker-pull");
    pushed = await push(`${registry}/${repo}:v1`);
    // Every tag of the image goes, and its layers with it: the pull has to fetch them.
    await dockerd.docker("image", "rm", "--force", imageId);
    expect((await dockerd.docker("image", "ls", "--all", "--quiet")).stdout.trim()).toBe("");
    pullOutput = (await dockerd.docker("pull", `${registry}/${repo}:v1`)).stdout;
  });

  it("downloads both layers and reports the digest docker push reported", () => {
    expect(layersWithStatus(pullOutput, "Pull complete")).toHaveLength(2);
    expect(pullOutput).toContain(`Digest: ${pushed.digest}`);
  });

  it("has the built image's ID, so the same layers (docker checks each against the config's diff_ids)", async () => {
    const pulled = await inspect(`${registry}/${repo}:v1`);
    expect(pulled.Id).toBe(imageId);
    expect(pulled.RepoDigests).toEqual([`${registry}/${repo}@${pushed.digest}`]);
  });

  it("resolves a pull by digest to the same image", async () => {
    const reference = `${registry}/${repo}@${pushed.digest}`;
    const output = (await dockerd.docker("pull", reference)).stdout;
    expect(output).toContain(`Digest: ${pushed.digest}`);
    expect((await inspect(reference)).Id).toBe(imageId);
  });
});
