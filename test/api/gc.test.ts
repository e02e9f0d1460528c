import { createScheduledController, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { runLifecycle, type LifecycleOptions } from "../../src/lifecycle/pass";
import { descriptorOf, digestOf, fetchRegistry, json, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, putManifest, randomBytes, uniqueRepo, withDigest } from "./client";

const HOUR = 60 * 60 * 1000;
// GC's steps as the pass runs them; tests run the marks and the sweeps apart to put requests in between.
const MARK = ["gc-mark-links", "gc-mark-blobs"];
const SWEEP = ["gc-sweep-links", "gc-sweep-blobs", "gc-intents"];
const GC = ["gc-mark-links", "gc-sweep-links", "gc-mark-blobs", "gc-sweep-blobs", "gc-intents"];

/** GC steps of the lifecycle pass, as the cron runs them, with a grace window of 0 unless told otherwise. */
function gc(only: string[] = GC, options: Partial<LifecycleOptions> = {}, overrides: Partial<Cloudflare.Env> = {}) {
  return runLifecycle({ ...env, GC_GRACE_SECONDS: "0", ...overrides }, { now: Date.now(), only, ...options });
}

/** Pushes a blob as docker does (POST, PATCH, PUT) and returns its digest. */
async function pushBlob(repo: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const patched = await startPush(repo, bytes);
  return finishPush(patched, bytes);
}

/** The first half of a docker push of a blob: the session holds its bytes. Returns the Location to complete. */
async function startPush(repo: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const opened = await fetchRegistry(`/v2/${repo}/blobs/uploads/`, { method: "POST" });
  expect(opened.status).toBe(202);
  const patched = await fetchRegistry(opened.headers.get("Location")!, { method: "PATCH", body: bytes });
  expect(patched.status).toBe(202);
  return patched.headers.get("Location")!;
}

async function finishPush(location: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await digestOf(bytes);
  expect((await fetchRegistry(withDigest(location, digest), { method: "PUT" })).status).toBe(201);
  return digest;
}

/** An image manifest over `layers` (and a config of its own), its blobs pushed unless told not to. */
async function image(repo: string, layers: Uint8Array<ArrayBuffer>[], push = true): Promise<{ bytes: Uint8Array<ArrayBuffer>; blobs: Uint8Array<ArrayBuffer>[] }> {
  const config = json({ architecture: "amd64", os: "linux", id: crypto.randomUUID() });
  if (push) for (const blob of [config, ...layers]) await pushBlob(repo, blob);
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: await descriptorOf(config, OCI_CONFIG), layers: await Promise.all(layers.map((l) => descriptorOf(l, OCI_LAYER))) };
  return { bytes: json(manifest), blobs: [config, ...layers] };
}

async function put(repo: string, reference: string, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const response = await putManifest(repo, reference, bytes);
  expect(response.status, await response.clone().text()).toBe(201);
  return digestOf(bytes);
}

/** Pulls the manifest and each of its blobs, and checks every byte. */
async function expectPulls(repo: string, reference: string, manifest: Uint8Array<ArrayBuffer>, blobs: Uint8Array<ArrayBuffer>[]): Promise<void> {
  const response = await fetchRegistry(`/v2/${repo}/manifests/${reference}`);
  expect(response.status, `${repo}:${reference}`).toBe(200);
  expect(new Uint8Array(await response.arrayBuffer())).toEqual(manifest);
  for (const blob of blobs) await expectBlob(repo, blob);
}

async function expectBlob(repo: string, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const response = await fetchRegistry(`/v2/${repo}/blobs/${await digestOf(bytes)}`);
  expect(response.status, `${repo} blob ${await digestOf(bytes)}`).toBe(200);
  expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
}

async function blobStatus(repo: string, bytes: Uint8Array<ArrayBuffer>): Promise<number> {
  const response = await fetchRegistry(`/v2/${repo}/blobs/${await digestOf(bytes)}`, { method: "HEAD" });
  return response.status;
}

async function keyOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const key = await env.DB.prepare("SELECT object_key FROM blobs WHERE digest = ?1").bind(await digestOf(bytes)).first<string>("object_key");
  expect(key).not.toBeNull();
  return key!;
}

const inBucket = async (key: string) => (await env.BLOBS.head(key)) !== null;

function deleteManifest(repo: string, digest: string): Promise<Response> {
  return fetchRegistry(`/v2/${repo}/manifests/${digest}`, { method: "DELETE" });
}

function mount(repo: string, digest: string, from: string): Promise<Response> {
  return fetchRegistry(`/v2/${repo}/blobs/uploads/?mount=${digest}&from=${from}`, { method: "POST" });
}

/**
 * Both directions: every object in the bucket is one a D1 row points at or
 * an unexpired intent names (nothing leaked), and every D1 blob and large
 * manifest has its object (nothing lost).
 */
async function expectBucketMatchesD1(now: number): Promise<void> {
  const objects = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await env.BLOBS.list({ cursor });
    for (const object of page.objects) objects.add(object.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  const { results } = await env.DB.prepare(
    `SELECT object_key FROM blobs UNION SELECT object_key FROM manifests WHERE object_key IS NOT NULL
     UNION SELECT object_key FROM object_intents WHERE expires_at > ?1`,
  )
    .bind(now)
    .all<{ object_key: string }>();
  const known = new Set(results.map((row) => row.object_key));
  expect([...objects].filter((key) => !known.has(key))).toEqual([]);
  const { results: pointed } = await env.DB.prepare("SELECT object_key FROM blobs UNION SELECT object_key FROM manifests WHERE object_key IS NOT NULL").all<{ object_key: string }>();
  expect(pointed.map((row) => row.object_key).filter((key) => !objects.has(key))).toEqual([]);
}

describe("garbage collection: deleting a manifest", () => {
  it("frees its unshared blobs (object deleted, blob 404) and keeps those another repository holds", async () => {
    const [a, b] = [uniqueRepo("gc"), uniqueRepo("gc")];
    const shared = randomBytes(3000);
    const own = randomBytes(2000);
    const imageA = await image(a, [shared, own]);
    const imageB = await image(b, [shared]);
    const digestA = await put(a, "1.0", imageA.bytes);
    await put(b, "1.0", imageB.bytes);
    const [ownKey, sharedKey, configKey] = [await keyOf(own), await keyOf(shared), await keyOf(imageA.blobs[0]!)];

    expect((await deleteManifest(a, digestA)).status).toBe(202);
    // Within the default grace window (an hour), nothing goes.
    await gc(GC, {}, { GC_GRACE_SECONDS: undefined });
    expect(await inBucket(ownKey)).toBe(true);
    expect(await blobStatus(a, own)).toBe(200);

    await gc();
    expect(await inBucket(ownKey)).toBe(false);
    expect(await inBucket(configKey)).toBe(false);
    expect(await blobStatus(a, own)).toBe(404);
    expect(await blobStatus(a, shared)).toBe(404);
    expect(await inBucket(sharedKey)).toBe(true);
    await expectPulls(b, "1.0", imageB.bytes, imageB.blobs);
  });

  it("measures the grace window from when a mark first found the blob unreferenced, not from its push", async () => {
    const repo = uniqueRepo("gc");
    const blob = randomBytes(500);
    await pushBlob(repo, blob);
    const key = await keyOf(blob);
    // The blob was pushed long ago, as far as the clock of the pass goes: its age counts for nothing.
    const first = Date.now() + 5 * HOUR;
    const at = (offset: number, only: string[]) => runLifecycle(env, { now: first + offset, only });
    await at(0, MARK);
    await at(HOUR / 2, MARK);
    await at(HOUR - 1, GC);
    expect(await blobStatus(repo, blob)).toBe(200);
    await at(HOUR, GC);
    expect(await blobStatus(repo, blob)).toBe(404);
    // The blob row itself waits a grace window of its own once its last link went.
    expect(await inBucket(key)).toBe(true);
    await at(2 * HOUR, GC);
    expect(await inBucket(key)).toBe(false);
    // Candidates this pass's clock saw in the future would outlive the later tests' passes.
    await env.DB.batch([env.DB.prepare("DELETE FROM gc_links WHERE seen_at > ?1").bind(Date.now()), env.DB.prepare("DELETE FROM gc_blobs WHERE seen_at > ?1").bind(Date.now())]);
  });

  it("frees a manifest stored in R2 through an intent: each repository's copy has its own object, freed with its own row", async () => {
    const [a, b] = [uniqueRepo("gc"), uniqueRepo("gc")];
    // Over 950 KB, so stored in R2: one layer descriptor with a large annotation.
    const layer = randomBytes(100);
    await pushBlob(a, layer);
    await pushBlob(b, layer);
    const big = json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: await descriptorOf(layer, OCI_CONFIG), layers: [], annotations: { pad: "x".repeat(1_000_000) } });
    const digest = await put(a, await digestOf(big), big);
    await put(b, digest, big);
    const keyOf = (repo: string) => env.DB.prepare("SELECT object_key FROM manifests WHERE repository = ?1 AND digest = ?2").bind(repo, digest).first<string>("object_key");
    const [keyA, keyB] = [await keyOf(a), await keyOf(b)];
    expect(keyA).not.toBeNull();
    expect(keyB).not.toBeNull();

    expect((await deleteManifest(a, digest)).status).toBe(202);
    await gc();
    expect(await inBucket(keyA!)).toBe(false);
    expect(await inBucket(keyB!)).toBe(true);
    await expectPulls(b, digest, big, [layer]);

    expect((await deleteManifest(b, digest)).status).toBe(202);
    await gc();
    expect(await inBucket(keyB!)).toBe(false);
  });
});

describe("garbage collection under concurrent pushes", () => {
  it("push starts, GC marks, push completes (blob and manifest), GC sweeps: the image pulls back whole", async () => {
    const repo = uniqueRepo("gc");
    const layer = randomBytes(4000);
    // An earlier push that never got to its manifest left the layer unreferenced in the repository.
    await pushBlob(repo, layer);
    const { bytes, blobs } = await image(repo, [layer], false);
    const config = blobs[0]!;
    const started = await Promise.all([startPush(repo, config), startPush(repo, layer)]);
    await gc(MARK);
    await finishPush(started[0], config);
    await finishPush(started[1], layer);
    await put(repo, "1.0", bytes);
    await gc(SWEEP);
    await expectPulls(repo, "1.0", bytes, blobs);
    await gc();
    await expectPulls(repo, "1.0", bytes, blobs);
  });

  it("an upload that completes between mark and sweep keeps its blob for the manifest that follows the sweep", async () => {
    const repo = uniqueRepo("gc");
    const layer = randomBytes(4000);
    await pushBlob(repo, layer);
    const { bytes, blobs } = await image(repo, [layer], false);
    const started = await Promise.all(blobs.map((blob) => startPush(repo, blob)));
    await gc(MARK);
    for (const [i, location] of started.entries()) await finishPush(location, blobs[i]!);
    await gc(SWEEP);
    await put(repo, "1.0", bytes);
    await expectPulls(repo, "1.0", bytes, blobs);
  });

  it("a blob no repository holds any more, pushed again between mark and sweep, stays", async () => {
    const [old, repo] = [uniqueRepo("gc"), uniqueRepo("gc")];
    const layer = randomBytes(4000);
    await pushBlob(old, layer);
    expect((await fetchRegistry(`/v2/${old}/blobs/${await digestOf(layer)}`, { method: "DELETE" })).status).toBe(202);
    const key = await keyOf(layer);
    const { bytes, blobs } = await image(repo, [layer], false);
    const started = await Promise.all(blobs.map((blob) => startPush(repo, blob)));
    await gc(MARK);
    for (const [i, location] of started.entries()) await finishPush(location, blobs[i]!);
    await gc(SWEEP);
    // The earlier copy was kept and serves the digest; the new upload's bytes were dropped.
    expect(await keyOf(layer)).toBe(key);
    await put(repo, "1.0", bytes);
    await expectPulls(repo, "1.0", bytes, blobs);
  });

  it("a mount between mark and sweep keeps the blob, also for a repository whose own link was a candidate", async () => {
    const [source, target] = [uniqueRepo("gc"), uniqueRepo("gc")];
    const layer = randomBytes(4000);
    await pushBlob(source, layer);
    await pushBlob(target, layer);
    const { bytes, blobs } = await image(target, [layer], false);
    await gc(MARK);
    expect((await mount(target, await digestOf(layer), source)).status).toBe(201);
    await gc(SWEEP);
    await pushBlob(target, blobs[0]!);
    await put(target, "1.0", bytes);
    await expectPulls(target, "1.0", bytes, blobs);
  });

  it("a manifest PUT referencing a candidate blob between mark and sweep keeps it", async () => {
    const repo = uniqueRepo("gc");
    const { bytes, blobs } = await image(repo, [randomBytes(4000)]);
    await gc(MARK);
    await put(repo, "1.0", bytes);
    await gc(SWEEP);
    await gc();
    await expectPulls(repo, "1.0", bytes, blobs);
  });
});

/** A small seeded generator (mulberry32), so a failing interleaving can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("garbage collection, randomized interleavings", () => {
  it("after every step of many seeded runs of pushes, deletes, mounts and GC steps, every tagged image pulls byte-identical", async () => {
    for (let seed = 1; seed <= 8; seed++) {
      const next = random(seed);
      const pick = <T,>(items: T[]): T => items[Math.floor(next() * items.length)]!;
      const repos = [uniqueRepo("gcr"), uniqueRepo("gcr"), uniqueRepo("gcr")];
      // Few distinct layers, so repositories share them.
      const layers = Array.from({ length: 4 }, () => randomBytes(200 + Math.floor(next() * 300)));
      const tagged = new Map<string, { repo: string; tag: string; bytes: Uint8Array<ArrayBuffer>; blobs: Uint8Array<ArrayBuffer>[] }>();
      // Pushes that have their blobs and wait for their manifest.
      const pending: { repo: string; tag: string; bytes: Uint8Array<ArrayBuffer>; blobs: Uint8Array<ArrayBuffer>[]; started: { location: string; blob: Uint8Array<ArrayBuffer> }[] }[] = [];
      for (let step = 0; step < 12; step++) {
        const choice = next();
        if (choice < 0.25) {
          // A push begins: some blobs go through sessions left open.
          const repo = pick(repos);
          const chosen = layers.filter(() => next() < 0.5);
          const { bytes, blobs } = await image(repo, chosen.length ? chosen : [layers[0]!], false);
          const started = [];
          for (const blob of blobs) started.push({ location: await startPush(repo, blob), blob });
          pending.push({ repo, tag: `t${step}`, bytes, blobs, started });
          continue;
        } else if (choice < 0.45 && pending.length) {
          // A push completes: its blobs, then its manifest.
          const push = pending.splice(Math.floor(next() * pending.length), 1)[0]!;
          for (const { location, blob } of push.started) await finishPush(location, blob);
          await put(push.repo, push.tag, push.bytes);
          tagged.set(`${push.repo}:${push.tag}`, push);
          continue;
        } else if (choice < 0.55 && tagged.size) {
          const [name, image] = pick([...tagged.entries()]);
          expect((await deleteManifest(image.repo, await digestOf(image.bytes))).status).toBe(202);
          tagged.delete(name);
        } else if (choice < 0.65 && tagged.size) {
          const [, image] = pick([...tagged.entries()]);
          const target = pick(repos);
          const blob = pick(image.blobs);
          expect([201, 202]).toContain((await mount(target, await digestOf(blob), image.repo)).status);
          continue;
          continue;
        } else if (choice < 0.8) {
          await gc(MARK);
        } else if (choice < 0.95) {
          await gc(SWEEP);
        } else {
          await gc();
        }
        // After each step that deletes something: a GC step, or a manifest DELETE.
        for (const image of tagged.values()) await expectPulls(image.repo, image.tag, image.bytes, image.blobs);
      }
      // Pushes never completed are cancelled, as a client that gives up does.
      for (const push of pending) for (const { location } of push.started) expect((await fetchRegistry(location, { method: "DELETE" })).status).toBe(204);
    }
  }, 300_000);
});

describe("garbage collection leaves the bucket and D1 in agreement", () => {
  it("after a pass, every object is pointed at by D1 or named by an unexpired intent, and every pointed-at object is there", async () => {
    const [a, b] = [uniqueRepo("gc"), uniqueRepo("gc")];
    const shared = randomBytes(1500);
    const kept = await image(a, [shared, randomBytes(700)]);
    const doomed = await image(b, [shared, randomBytes(800)]);
    await put(a, "1.0", kept.bytes);
    const doomedDigest = await put(b, "1.0", doomed.bytes);
    await pushBlob(b, randomBytes(900));
    expect((await deleteManifest(b, doomedDigest)).status).toBe(202);

    const now = Date.now();
    await gc(GC, { now });
    await expectBucketMatchesD1(now);
    await expectPulls(a, "1.0", kept.bytes, kept.blobs);
    const { results } = await env.DB.prepare("SELECT COUNT(*) AS n FROM repository_blobs WHERE repository = ?1").bind(b).all<{ n: number }>();
    expect(results[0]!.n).toBe(0);
  });
});

describe("garbage collection: crashes and budgets", () => {
  it("an object whose D1 row went but whose R2 delete failed is freed by the next pass through its intent", async () => {
    const repo = uniqueRepo("gc");
    const blob = randomBytes(600);
    await pushBlob(repo, blob);
    const key = await keyOf(blob);
    expect((await fetchRegistry(`/v2/${repo}/blobs/${await digestOf(blob)}`, { method: "DELETE" })).status).toBe(202);
    const failing = new Proxy(env.BLOBS, {
      get: (bucket, name) => (name === "delete" ? () => Promise.reject(new Error("R2 unreachable")) : Reflect.get(bucket, name, bucket)),
    });
    await expect(gc(GC, {}, { BLOBS: failing })).rejects.toThrow("R2 unreachable");
    expect(await env.DB.prepare("SELECT 1 AS n FROM blobs WHERE object_key = ?1").bind(key).first()).toBeNull();
    expect(await env.DB.prepare("SELECT 1 AS n FROM object_intents WHERE object_key = ?1").bind(key).first()).not.toBeNull();
    expect(await inBucket(key)).toBe(true);

    await gc();
    expect(await inBucket(key)).toBe(false);
    expect(await env.DB.prepare("SELECT 1 AS n FROM object_intents WHERE object_key = ?1").bind(key).first()).toBeNull();
  });

  it("frees the object of an expired intent that no row points at, and only drops the intent of one a row points at", async () => {
    const orphan = `blobs/orphan-${crypto.randomUUID()}`;
    await env.BLOBS.put(orphan, randomBytes(10));
    const repo = uniqueRepo("gc");
    const blob = randomBytes(600);
    const { bytes } = await image(repo, [blob]);
    await put(repo, "1.0", bytes);
    const published = await keyOf(blob);
    const young = `blobs/young-${crypto.randomUUID()}`;
    await env.BLOBS.put(young, randomBytes(10));
    await env.DB.batch([
      env.DB.prepare("INSERT INTO object_intents (object_key, expires_at) VALUES (?1, ?2)").bind(orphan, Date.now() - 1),
      env.DB.prepare("INSERT INTO object_intents (object_key, expires_at) VALUES (?1, ?2)").bind(published, Date.now() - 1),
      env.DB.prepare("INSERT INTO object_intents (object_key, expires_at) VALUES (?1, ?2)").bind(young, Date.now() + HOUR),
    ]);
    await gc(["gc-intents"]);
    expect(await inBucket(orphan)).toBe(false);
    expect(await inBucket(published)).toBe(true);
    expect(await inBucket(young)).toBe(true);
    const left = await env.DB.prepare("SELECT object_key FROM object_intents WHERE object_key IN (?1, ?2, ?3)").bind(orphan, published, young).all<{ object_key: string }>();
    expect(left.results.map((row) => row.object_key)).toEqual([young]);
    await env.BLOBS.delete(young);
    await env.DB.prepare("DELETE FROM object_intents WHERE object_key = ?1").bind(young).run();
  });

  it("a mark out of budget records where it stopped, and the next runs resume there until they have looked at every link", async () => {
    const repo = uniqueRepo("gc");
    for (let i = 0; i < 5; i++) await pushBlob(repo, randomBytes(50 + i));
    await env.DB.prepare("DELETE FROM lifecycle_cursors WHERE step = 'gc-mark-links'").run();
    const links = (await env.DB.prepare("SELECT COUNT(*) AS n FROM repository_blobs").first<number>("n"))!;
    let looked = 0;
    let runs = 0;
    for (let round = false; !round; runs++) {
      // Three calls: the cursor, one batch of two links, and the held-back call that records the cursor.
      const summary = (await gc(["gc-mark-links"], { batchSize: 2, calls: 3 })).steps["gc-mark-links"] as { looked: number; round: boolean };
      expect(summary.looked).toBeLessThanOrEqual(2);
      looked += summary.looked;
      round = summary.round;
      expect(runs).toBeLessThan(links);
    }
    expect(looked).toBe(links);
    expect(await env.DB.prepare("SELECT position FROM lifecycle_cursors WHERE step = 'gc-mark-links'").first<string>("position")).toBe("");
  });

  it("runs from the scheduled handler, as the Cron Trigger runs it", async () => {
    const repo = uniqueRepo("gc");
    const blob = randomBytes(321);
    await pushBlob(repo, blob);
    const key = await keyOf(blob);
    const cron = () => worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/15 * * * *" }), { ...env, GC_GRACE_SECONDS: "0" });
    // With no grace, one pass takes the link, then the blob, then its object.
    await cron();
    expect(await blobStatus(repo, blob)).toBe(404);
    expect(await inBucket(key)).toBe(false);
  });
});
