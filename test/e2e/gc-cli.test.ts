import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attempt, MEDIA_TYPES, registryFetch, sha256, type Outcome } from "./clients";
import { freePort, startRegistry, type Running } from "./registry-server";

/**
 * `npm run gc` as a developer runs it against `npm start -- --var GC_GRACE_SECONDS:0`: one lifecycle
 * pass through wrangler dev's /cdn-cgi/local/scheduled. The registry is this file's own, since the shared one
 * keeps the default grace window and other files' images. What the pass did is checked through the
 * HTTP API as clients see it, and in the summary the pass writes to npm start's log.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** How long the pass's log line may take to reach us after `npm run gc` returned. */
const LOG_WAIT_MS = 10_000;

let server: Running;
let registry: string;

beforeAll(async () => {
  server = await startRegistry(ROOT, "none", ["--var", "GC_GRACE_SECONDS:0"]);
  registry = server.address;
});

afterAll(async () => {
  await server?.stop();
});

/** `npm run gc -- <url>`, to its end. */
function runGc(url: string): Promise<Outcome> {
  return attempt("npm", ["run", "gc", "--", url], { cwd: ROOT });
}

/** A blob pushed in one request (POST ?digest=). */
async function pushBlob(repo: string, bytes: Uint8Array): Promise<void> {
  const response = await registryFetch(registry, `/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, { method: "POST", body: bytes });
  expect(response.status).toBe(201);
}

interface Image {
  config: Uint8Array;
  layers: Uint8Array[];
}

/** An image's config: bytes of its own, so that two images share only the layers they are given. */
function configOf(label: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", label }));
}

/** Pushes an image's blobs, then its manifest under `tag`; returns the manifest's bytes. */
async function pushImage(repo: string, tag: string, { config, layers }: Image): Promise<Uint8Array> {
  for (const bytes of [config, ...layers]) await pushBlob(repo, bytes);
  const descriptor = (mediaType: string, bytes: Uint8Array) => ({ mediaType, digest: sha256(bytes), size: bytes.length });
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: descriptor("application/vnd.oci.image.config.v1+json", config),
      layers: layers.map((bytes) => descriptor("application/vnd.oci.image.layer.v1.tar", bytes)),
    }),
  );
  const response = await registryFetch(registry, `/v2/${repo}/manifests/${tag}`, { method: "PUT", body: manifest, headers: { "Content-Type": MEDIA_TYPES.ociManifest } });
  expect(response.status).toBe(201);
  return manifest;
}

/** GET's status and, when 200, the bytes: what a client pulling it gets. */
async function pull(path: string): Promise<{ status: number; bytes: Uint8Array }> {
  const response = await registryFetch(registry, path, { headers: { Accept: MEDIA_TYPES.ociManifest } });
  return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()) };
}

/** Strips the colours wrangler may give the Worker's log. */
const ANSI = /\x1b\[[0-9;]*m/g;
// The Worker logs each pass as an object, which the console prints over several lines up to a closing brace of its own.
const LIFECYCLE = /event: 'lifecycle',[\s\S]*?\n\}/g;

/** What the log says a pass freed: repositories' links to blobs, blob rows, and R2 objects (undefined where the log does not say). */
interface Freed {
  links: number | undefined;
  blobs: number | undefined;
  objects: number | undefined;
}

function numberIn(text: string, pattern: RegExp): number | undefined {
  const found = pattern.exec(text)?.[1];
  return found === undefined ? undefined : Number(found);
}

/** What the first lifecycle pass scheduled at or after `since` freed, from npm start's log; waits for its line to arrive. */
async function freedByPassSince(since: number): Promise<Freed> {
  for (const deadline = Date.now() + LOG_WAIT_MS; ; await new Promise((resolve) => setTimeout(resolve, 100))) {
    for (const [pass] of server.output().replace(ANSI, "").matchAll(LIFECYCLE)) {
      const time = /scheduledTime: '([^']+)'/.exec(pass)?.[1];
      if (time !== undefined && Date.parse(time) >= since) {
        return {
          links: numberIn(pass, /'gc-sweep-links': \{ deleted: (\d+)/),
          blobs: numberIn(pass, /'gc-sweep-blobs': \{ deleted: (\d+)/),
          objects: numberIn(pass, /'gc-intents': \{ objectsDeleted: (\d+)/),
        };
      }
    }
    if (Date.now() > deadline) throw new Error(`npm start logged no lifecycle pass after ${new Date(since).toISOString()}:\n${server.output()}`);
  }
}

describe("npm run gc", () => {
  it("with a grace of 0, one pass frees a deleted image's own blobs; the layer it shared and the other image still pull byte-identical", async () => {
    const repo = "gc/app";
    const shared = new Uint8Array(randomBytes(256));
    const first: Image = { config: configOf("first"), layers: [shared, new Uint8Array(randomBytes(256))] };
    const second: Image = { config: configOf("second"), layers: [shared, new Uint8Array(randomBytes(256))] };
    const firstManifest = sha256(await pushImage(repo, "first", first));
    const secondManifest = await pushImage(repo, "second", second);
    const onlyFirst = [first.config, first.layers[1]!].map((bytes) => sha256(bytes));

    expect((await registryFetch(registry, `/v2/${repo}/manifests/${firstManifest}`, { method: "DELETE" })).status).toBe(202);
    for (const reference of [firstManifest, "first"]) expect((await pull(`/v2/${repo}/manifests/${reference}`)).status).toBe(404);
    // Until a pass runs, the repository still holds the deleted image's blobs.
    for (const digest of onlyFirst) expect((await pull(`/v2/${repo}/blobs/${digest}`)).status).toBe(200);

    const url = `http://${registry}`;
    const since = Date.now();
    const gc = await runGc(url);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toContain(`npm run gc: a lifecycle pass ran on ${url}; npm start's log has its summary`);
    const freedAndKept = async () => {
      for (const digest of onlyFirst) {
        expect((await registryFetch(registry, `/v2/${repo}/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
        expect((await pull(`/v2/${repo}/blobs/${digest}`)).status).toBe(404);
      }
      expect(await pull(`/v2/${repo}/manifests/second`)).toEqual({ status: 200, bytes: secondManifest });
      // The shared layer among them.
      for (const bytes of [second.config, ...second.layers]) expect(await pull(`/v2/${repo}/blobs/${sha256(bytes)}`)).toEqual({ status: 200, bytes });
    };
    await freedAndKept();
    // Both of the first image's own blobs went, the repository's links to them, their rows and (the pass counts them) their R2 objects: its config and its layer.
    expect(await freedByPassSince(since)).toEqual({ links: 2, blobs: 2, objects: 2 });

    // A second pass finds nothing more to free: what the kept image references stays.
    const again = Date.now();
    expect((await runGc(url)).code).toBe(0);
    await freedAndKept();
    expect(await freedByPassSince(again)).toEqual({ links: 0, blobs: 0, objects: 0 });
  });

  it("against a port where nothing listens exits non-zero, asking whether npm start is running", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const gc = await runGc(url);
    expect(gc.code).not.toBe(0);
    expect(gc.stderr).toContain(`npm run gc: no registry at ${url} (is npm start running?)`);
  });
});
