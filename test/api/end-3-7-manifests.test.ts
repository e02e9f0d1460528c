import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  descriptorOf,
  digestOf,
  errorCode,
  fetchRegistry,
  json,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  putManifest,
  randomBytes,
  uniqueRepo,
} from "./client";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

async function getManifest(repo: string, reference: string, method = "GET"): Promise<Response> {
  return fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method, headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}, ${DOCKER_MANIFEST}, ${DOCKER_LIST}` } });
}

/** Pushes the empty config blob artifacts use. */
async function pushEmptyConfig(repo: string) {
  const empty = json({});
  await pushBlob(repo, empty);
  return { ...(await descriptorOf(empty, OCI_EMPTY)), data: "e30=" };
}

describe("end-7 PUT /v2/<name>/manifests/<reference>", () => {
  it("stores an image manifest by tag: 201 with Location and Docker-Content-Digest", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo, 2);
    const response = await putManifest(repo, "v1", bytes);
    expect(response.status).toBe(201);
    const digest = await digestOf(bytes);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(response.headers.get("Location")).toBe(`/v2/${repo}/manifests/${digest}`);
  });

  it("stores by digest, with one OCI-Tag header per ?tag=", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    const digest = await digestOf(bytes);
    const response = await fetchRegistry(`/v2/${repo}/manifests/${digest}?tag=a&tag=b`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: bytes });
    expect(response.status).toBe(201);
    expect(response.headers.get("OCI-Tag")).toBe("a, b");
    for (const tag of ["a", "b"]) expect((await getManifest(repo, tag)).headers.get("Docker-Content-Digest")).toBe(digest);
  });

  it("refuses a PUT by digest whose bytes hash differently", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    const response = await putManifest(repo, `sha256:${"a".repeat(64)}`, bytes);
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("DIGEST_INVALID");
  });

  it("accepts a PUT by sha512 digest", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    const digest = await digestOf(bytes, "sha512");
    const response = await putManifest(repo, digest, bytes);
    expect(response.status).toBe(201);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(new Uint8Array(await (await getManifest(repo, digest)).arrayBuffer())).toEqual(bytes);
  });

  it("refuses a manifest whose blobs the repository does not hold: MANIFEST_BLOB_UNKNOWN", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    const missing = await descriptorOf(randomBytes(50), OCI_LAYER);
    const response = await putManifest(repo, "v1", json({ ...manifest, layers: [missing] }));
    expect(response.status).toBe(404);
    const body = (await response.json()) as { errors: { code: string; detail: { missing: string[] } }[] };
    expect(body.errors[0]!.code).toBe("MANIFEST_BLOB_UNKNOWN");
    expect(body.errors[0]!.detail.missing).toEqual([missing.digest]);
  });

  it("refuses blobs held only by another repository", async () => {
    const other = uniqueRepo();
    const { bytes } = await pushImage(other);
    const response = await putManifest(uniqueRepo(), "v1", bytes);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("MANIFEST_BLOB_UNKNOWN");
  });

  it("accepts non-distributable layers and layers with urls without their bytes", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    const foreign = {
      ...(await descriptorOf(randomBytes(10), "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")),
    };
    const withUrls = { ...(await descriptorOf(randomBytes(11), OCI_LAYER)), urls: ["https://example.com/layer.tar.gz"] };
    const response = await putManifest(repo, "v1", json({ ...manifest, layers: [...(manifest.layers as object[]), foreign, withUrls] }));
    expect(response.status).toBe(201);
  });

  it("accepts artifacts: artifactType, empty config with data, any layer type, custom fields, no layers", async () => {
    const repo = uniqueRepo();
    const config = await pushEmptyConfig(repo);
    const chart = randomBytes(300);
    await pushBlob(repo, chart);
    const artifact = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: "application/vnd.cncf.helm.chart.v1",
      config,
      layers: [await descriptorOf(chart, "application/vnd.cncf.helm.chart.content.v1.tar+gzip")],
      annotations: { "org.opencontainers.image.title": "chart" },
      "x-custom": { anything: [1, 2, 3] },
    };
    expect((await putManifest(repo, "chart", json(artifact))).status).toBe(201);
    expect((await putManifest(repo, "empty", json({ ...artifact, layers: [] }))).status).toBe(201);
  });

  it("stores Docker schema 2 manifests and manifest lists with their media types", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    const docker = json({ ...manifest, mediaType: DOCKER_MANIFEST, config: { ...(manifest.config as object), mediaType: "application/vnd.docker.container.image.v1+json" } });
    expect((await putManifest(repo, "docker", docker, DOCKER_MANIFEST)).status).toBe(201);
    const child = await descriptorOf(docker, DOCKER_MANIFEST);
    const list = json({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [{ ...child, platform: { architecture: "amd64", os: "linux" } }] });
    expect((await putManifest(repo, "list", list, DOCKER_LIST)).status).toBe(201);
    const served = await getManifest(repo, "list");
    expect(served.headers.get("Content-Type")).toBe(DOCKER_LIST);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(list);
  });

  it("requires an index's manifests to be in the repository", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    const child = await descriptorOf(bytes, OCI_MANIFEST);
    const index = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] });
    const early = await putManifest(repo, "multi", index, OCI_INDEX);
    expect(early.status).toBe(404);
    expect(await errorCode(early)).toBe("MANIFEST_BLOB_UNKNOWN");
    expect((await putManifest(repo, child.digest, bytes)).status).toBe(201);
    expect((await putManifest(repo, "multi", index, OCI_INDEX)).status).toBe(201);
  });

  it("accepts a subject that does not exist yet and answers OCI-Subject", async () => {
    const repo = uniqueRepo();
    const config = await pushEmptyConfig(repo);
    const subject = `sha256:${"b".repeat(64)}`;
    const referrer = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: "application/vnd.example.sbom", config, layers: [], subject: { mediaType: OCI_MANIFEST, digest: subject, size: 1234 } };
    const response = await putManifest(repo, await digestOf(json(referrer)), json(referrer));
    expect(response.status).toBe(201);
    expect(response.headers.get("OCI-Subject")).toBe(subject);
  });

  it("accepts a manifest of 4 MiB and refuses a larger one with 413", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    const padded = (size: number) => {
      const base = json({ ...manifest, annotations: { pad: "" } });
      return json({ ...manifest, annotations: { pad: "x".repeat(size - base.length) } });
    };
    const largest = padded(4 * 1024 * 1024);
    expect(largest.length).toBe(4 * 1024 * 1024);
    const stored = await putManifest(repo, "big", largest);
    expect(stored.status).toBe(201);
    const served = await getManifest(repo, "big");
    expect(served.headers.get("Content-Length")).toBe(String(largest.length));
    expect(await digestOf(new Uint8Array(await served.arrayBuffer()))).toBe(await digestOf(largest));

    const tooLarge = await putManifest(repo, "bigger", padded(4 * 1024 * 1024 + 1));
    expect(tooLarge.status).toBe(413);
    expect(await errorCode(tooLarge)).toBe("SIZE_INVALID");
  });

  it("answers the same digest when the same bytes are pushed again", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    const first = await putManifest(repo, "a", bytes);
    const second = await putManifest(repo, "b", bytes);
    expect(second.status).toBe(201);
    expect(second.headers.get("Docker-Content-Digest")).toBe(first.headers.get("Docker-Content-Digest"));
  });

  it("moves a tag to a new manifest", async () => {
    const repo = uniqueRepo();
    const one = await pushImage(repo);
    const two = await pushImage(repo);
    await putManifest(repo, "latest", one.bytes);
    await putManifest(repo, "latest", two.bytes);
    expect((await getManifest(repo, "latest")).headers.get("Docker-Content-Digest")).toBe(await digestOf(two.bytes));
  });
});

describe("end-3 GET/HEAD /v2/<name>/manifests/<reference>", () => {
  it("serves the exact bytes pushed, by tag and by digest, with the pushed media type", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    // Unusual but valid formatting must survive byte for byte.
    const bytes = new Uint8Array(new TextEncoder().encode(JSON.stringify(manifest, null, 3) + "\n"));
    await putManifest(repo, "pretty", bytes);
    const digest = await digestOf(bytes);
    for (const reference of ["pretty", digest]) {
      const response = await getManifest(repo, reference);
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toBe(OCI_MANIFEST);
      expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
      expect(response.headers.get("Content-Length")).toBe(String(bytes.length));
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
    }
  });

  it("serves a manifest's non-ASCII text and byte-order mark byte for byte, from its D1 row", async () => {
    const repo = uniqueRepo();
    const { manifest } = await pushImage(repo);
    // Two-, three- and four-byte characters, a line separator JSON leaves as it is, a NUL it escapes, and a BOM the parser skips.
    const text = JSON.stringify({ ...manifest, annotations: { note: "é € 😀 \u2028 \u0000" } });
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(text)]);
    expect((await putManifest(repo, "unicode", bytes)).status).toBe(201);
    const response = await getManifest(repo, "unicode");
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
    // Rows may hold the bytes as a BLOB rather than text (as they were first written): those come back the same.
    const row = env.DB.prepare("SELECT typeof(content) AS type FROM manifests WHERE repository = ?1 AND digest = ?2").bind(repo, await digestOf(bytes));
    expect(await row.first("type")).toBe("text");
    await env.DB.prepare("UPDATE manifests SET content = CAST(content AS BLOB) WHERE repository = ?1").bind(repo).run();
    expect(await row.first("type")).toBe("blob");
    expect(new Uint8Array(await (await getManifest(repo, "unicode")).arrayBuffer())).toEqual(bytes);
  });

  it("answers HEAD with the headers only", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    await putManifest(repo, "v1", bytes);
    const response = await getManifest(repo, "v1", "HEAD");
    expect(response.status).toBe(200);
    expect(response.headers.get("Docker-Content-Digest")).toBe(await digestOf(bytes));
    expect(response.headers.get("Content-Length")).toBe(String(bytes.length));
    expect(await response.text()).toBe("");
  });

  it("is 404 MANIFEST_UNKNOWN for an unknown tag or digest, or another repository's manifest", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    await putManifest(repo, "v1", bytes);
    for (const [name, reference] of [
      [repo, "nope"],
      [repo, `sha256:${"c".repeat(64)}`],
      [uniqueRepo(), await digestOf(bytes)],
    ] as const) {
      const response = await getManifest(name, reference);
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe("MANIFEST_UNKNOWN");
      expect((await getManifest(name, reference, "HEAD")).status).toBe(404);
    }
  });

  it("serves an OCI index with its media type", async () => {
    const repo = uniqueRepo();
    const { bytes } = await pushImage(repo);
    await putManifest(repo, await digestOf(bytes), bytes);
    const index = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...(await descriptorOf(bytes, OCI_MANIFEST)), platform: { architecture: "arm64", os: "linux" } }] });
    await putManifest(repo, "multi", index, OCI_INDEX);
    const response = await getManifest(repo, "multi");
    expect(response.headers.get("Content-Type")).toBe(OCI_INDEX);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(index);
  });
});

