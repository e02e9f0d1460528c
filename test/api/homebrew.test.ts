import { describe, expect, it } from "vitest";
import { fetchAuthed, makePublic, uniqueName } from "./auth";
import { BASE, descriptorOf, digestOf, json, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, pushBlob, putManifest, randomBytes } from "./client";

const MiB = 1024 * 1024;

/** What Homebrew sends with every request: a fixed anonymous Bearer, no token dance. */
const HOMEBREW = { Authorization: "Bearer QQ==" };

/** Up to `count` bytes of a body, after which the connection "breaks": the rest is never read. */
async function firstBytes(body: ReadableStream<Uint8Array>, count: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  await reader.cancel();
  const bytes = new Uint8Array(Math.min(length, count));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk.subarray(0, bytes.length - offset), offset);
    offset += Math.min(chunk.length, bytes.length - offset);
  }
  return bytes;
}

describe("Homebrew's pull of a bottle from a public namespace", () => {
  it("HEAD then GET of the index with Bearer QQ==, the bottle through its redirect without Authorization, and a download resumed with Range", async () => {
    const namespace = uniqueName("homebrew");
    await makePublic(namespace);
    const repo = `${namespace}/core/wget`;
    // A bottle large enough to be redirected, its manifest and an index naming the platform, as `brew` publishes them.
    const bottle = randomBytes(MiB + 4321);
    const config = json({ architecture: "arm64", os: "darwin", rootfs: { type: "layers", diff_ids: [] } });
    await pushBlob(repo, bottle);
    await pushBlob(repo, config);
    const layer = { ...(await descriptorOf(bottle, OCI_LAYER)), annotations: { "org.opencontainers.image.title": "wget--1.24.5.arm64_sonoma.bottle.tar.gz" } };
    const manifest = json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: await descriptorOf(config, OCI_CONFIG), layers: [layer] });
    const manifestDigest = await digestOf(manifest);
    expect((await putManifest(repo, manifestDigest, manifest)).status).toBe(201);
    const index = json({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...(await descriptorOf(manifest, OCI_MANIFEST)), platform: { architecture: "arm64", os: "darwin", "os.version": "macOS 14" } }],
    });
    expect((await putManifest(repo, "1.24.5", index, OCI_INDEX)).status).toBe(201);

    const accept = { ...HOMEBREW, Accept: OCI_INDEX };
    const head = await fetchAuthed(`/v2/${repo}/manifests/1.24.5`, { method: "HEAD", headers: accept });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Type")).toBe(OCI_INDEX);
    expect(head.headers.get("Docker-Content-Digest")).toBe(await digestOf(index));
    const got = await fetchAuthed(`/v2/${repo}/manifests/1.24.5`, { headers: accept });
    expect(got.status).toBe(200);
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(index);
    expect((await fetchAuthed(`/v2/${repo}/manifests/${manifestDigest}`, { headers: { ...HOMEBREW, Accept: OCI_MANIFEST } })).status).toBe(200);

    // curl -L: the blob GET answers 307, and the final hop is asked without the Authorization header.
    const redirect = await fetchAuthed(`/v2/${repo}/blobs/${layer.digest}`, { headers: HOMEBREW, redirect: "manual" });
    expect(redirect.status).toBe(307);
    const location = redirect.headers.get("Location")!;
    expect(location.startsWith(`${BASE}/downloads/${layer.digest}/`)).toBe(true);
    const first = await fetchAuthed(location);
    expect(first.status).toBe(200);
    expect(first.headers.get("Content-Length")).toBe(String(bottle.length));
    expect(first.headers.get("Accept-Ranges")).toBe("bytes");
    expect(first.headers.get("ETag")).toBe(`"${layer.digest}"`);
    expect(Date.parse(first.headers.get("Last-Modified")!)).not.toBeNaN();
    // The download breaks off partway; `curl --continue-at -` asks for the rest.
    const part = await firstBytes(first.body!, 300_000);
    const rest = await fetchAuthed(location, { headers: { Range: `bytes=${part.length}-` } });
    expect(rest.status).toBe(206);
    expect(rest.headers.get("Content-Range")).toBe(`bytes ${part.length}-${bottle.length - 1}/${bottle.length}`);
    const whole = new Uint8Array(bottle.length);
    whole.set(part);
    whole.set(new Uint8Array(await rest.arrayBuffer()), part.length);
    expect(whole).toEqual(bottle);
    expect(await digestOf(whole)).toBe(layer.digest);
  });
});
