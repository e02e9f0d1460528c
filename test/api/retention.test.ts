import { createScheduledController, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { runLifecycle } from "../../src/lifecycle/pass";
import { administer, uniqueName } from "./auth";
import { descriptorOf, digestOf, fetchRegistry, json, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, pushBlob, pushImage, putManifest, uniqueRepo } from "./client";

const DAY = 24 * 60 * 60 * 1000;

/** A policy on a pattern, through the administration API. */
async function setPolicy(pattern: string, settings: Record<string, unknown>): Promise<void> {
  expect((await administer("PUT", `policies/${pattern}`, settings)).status).toBe(204);
}

/** A repository in a namespace of its own, with a policy on that namespace unless told otherwise. */
async function repoWith(settings?: Record<string, unknown>): Promise<{ repo: string; namespace: string }> {
  const namespace = uniqueName("keep");
  if (settings) await setPolicy(namespace, settings);
  return { repo: uniqueRepo(namespace), namespace };
}

/** Pushes an image manifest (tagged, or by digest) over new blobs; returns its digest. */
async function pushManifest(repo: string, tag?: string, extra: Record<string, unknown> = {}): Promise<string> {
  const { bytes } = await pushImage(repo, 1, extra);
  const digest = await digestOf(bytes);
  expect((await putManifest(repo, tag ?? digest, bytes)).status).toBe(201);
  return digest;
}

/** Pushes an artifact whose subject is `subject` (a signature, an SBOM); returns its digest. */
async function pushReferrer(repo: string, subject: string, tag?: string): Promise<string> {
  const empty = json({});
  await pushBlob(repo, empty);
  const bytes = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: "application/vnd.example.signature",
    config: await descriptorOf(empty, OCI_EMPTY),
    layers: [await descriptorOf(empty, OCI_EMPTY)],
    subject: { mediaType: OCI_MANIFEST, digest: subject, size: 1 },
    annotations: { n: crypto.randomUUID() },
  });
  const digest = await digestOf(bytes);
  expect((await putManifest(repo, tag ?? digest, bytes)).status).toBe(201);
  return digest;
}

/** An index listing `children` (pushed by digest first, as clients do); returns its digest. */
async function pushIndex(repo: string, tag: string, children: string[]): Promise<string> {
  const manifests = [];
  for (const [i, child] of children.entries()) {
    const head = await fetchRegistry(`/v2/${repo}/manifests/${child}`, { method: "HEAD" });
    manifests.push({ mediaType: OCI_MANIFEST, digest: child, size: Number(head.headers.get("Content-Length")), platform: { architecture: `arch${i}`, os: "linux" } });
  }
  const bytes = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
  expect((await putManifest(repo, tag, bytes, OCI_INDEX)).status).toBe(201);
  return digestOf(bytes);
}

/** Backdates a manifest's push: the clock retention reads. */
async function pushedDaysAgo(repo: string, digest: string, days: number): Promise<void> {
  const changed = await env.DB.prepare("UPDATE manifests SET created_at = ?3 WHERE repository = ?1 AND digest = ?2").bind(repo, digest, Date.now() - days * DAY).run();
  expect(changed.meta.changes).toBe(1);
}

/** Orders tags by their last push: the first of `tags` the oldest. */
async function taggedInOrder(repo: string, tags: string[]): Promise<void> {
  for (const [i, tag] of tags.entries()) {
    await env.DB.prepare("UPDATE tags SET updated_at = ?3 WHERE repository = ?1 AND name = ?2").bind(repo, tag, Date.now() - (tags.length - i) * 60_000).run();
  }
}

/** The Worker's scheduled handler, as the Cron Trigger runs it, with some vars replaced if need be. */
async function runCron(overrides: Partial<Cloudflare.Env> = {}): Promise<void> {
  await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/15 * * * *" }), { ...env, ...overrides });
}

const status = async (repo: string, reference: string) => (await fetchRegistry(`/v2/${repo}/manifests/${reference}`, { method: "HEAD" })).status;
const tagsOf = async (repo: string) => (((await (await fetchRegistry(`/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags ?? []).sort();

describe("retention: untagged manifests", () => {
  it("deletes untagged manifests pushed more than N days ago; newer untagged and tagged ones stay", async () => {
    const { repo } = await repoWith({ deleteUntaggedAfterDays: 30 });
    const tagged = await pushManifest(repo, "1.0");
    const old = await pushManifest(repo);
    const recent = await pushManifest(repo);
    await pushedDaysAgo(repo, tagged, 40);
    await pushedDaysAgo(repo, old, 31);
    await pushedDaysAgo(repo, recent, 29);

    await runCron();
    expect(await status(repo, old)).toBe(404);
    expect(await status(repo, recent)).toBe(200);
    expect(await status(repo, tagged)).toBe(200);
    expect(await status(repo, "1.0")).toBe(200);
  });

  it("keeps an index's children while the index stays, and deletes them after it", async () => {
    const { repo } = await repoWith({ deleteUntaggedAfterDays: 7 });
    const children = [await pushManifest(repo), await pushManifest(repo)];
    const index = await pushIndex(repo, "multi", children);
    for (const digest of [...children, index]) await pushedDaysAgo(repo, digest, 8);

    await runCron();
    for (const digest of [...children, index]) expect(await status(repo, digest)).toBe(200);

    expect((await fetchRegistry(`/v2/${repo}/manifests/multi`, { method: "DELETE" })).status).toBe(202);
    await runCron();
    for (const digest of [...children, index]) expect(await status(repo, digest)).toBe(404);
  });

  it("deletes referrers with their subject, referrers of referrers too, but keeps tagged ones and the referrers of kept manifests", async () => {
    const { repo } = await repoWith({ deleteUntaggedAfterDays: 30 });
    const doomed = await pushManifest(repo);
    const sbom = await pushReferrer(repo, doomed);
    const sbomSignature = await pushReferrer(repo, sbom);
    const taggedSignature = await pushReferrer(repo, doomed, "sig");
    const kept = await pushManifest(repo, "1.0");
    const keptSignature = await pushReferrer(repo, kept);
    // Only the subjects are old: their referrers go with them, whatever their own age.
    await pushedDaysAgo(repo, doomed, 31);
    await pushedDaysAgo(repo, kept, 31);
    await pushedDaysAgo(repo, keptSignature, 31);

    await runCron();
    for (const digest of [doomed, sbom, sbomSignature]) expect(await status(repo, digest)).toBe(404);
    expect(await status(repo, taggedSignature)).toBe(200);
    expect(await status(repo, kept)).toBe(200);
    expect(await status(repo, keptSignature)).toBe(200);
    const referrers = (await (await fetchRegistry(`/v2/${repo}/referrers/${kept}`)).json()) as { manifests: { digest: string }[] };
    expect(referrers.manifests.map((m) => m.digest)).toEqual([keptSignature]);
  });

  it("deletes a subject's referrers before it when a batch cannot take them all, so none is left behind", async () => {
    const { repo } = await repoWith({ deleteUntaggedAfterDays: 30 });
    const subject = await pushManifest(repo);
    const referrers = [await pushReferrer(repo, subject), await pushReferrer(repo, subject), await pushReferrer(repo, subject)];
    await pushedDaysAgo(repo, subject, 31);

    await runLifecycle(env, { now: Date.now(), batchSize: 1 });
    for (const digest of [subject, ...referrers]) expect(await status(repo, digest)).toBe(404);
  });

  it("applies the most retentive of the matching policies: the most days, and never over any number", async () => {
    const prefix = uniqueName("days");
    await setPolicy(`${prefix}-*`, { deleteUntaggedAfterDays: 10 });
    await setPolicy(`${prefix}-a*`, { deleteUntaggedAfterDays: 30 });
    await setPolicy(`${prefix}-ab`, { deleteUntaggedAfterDays: "never" });
    const [ten, thirty, never] = [uniqueRepo(`${prefix}-x`), uniqueRepo(`${prefix}-a`), uniqueRepo(`${prefix}-ab`)];
    const digests = new Map<string, string[]>();
    for (const repo of [ten, thirty, never]) {
      const [younger, older] = [await pushManifest(repo), await pushManifest(repo)];
      await pushedDaysAgo(repo, younger, 20);
      await pushedDaysAgo(repo, older, 400);
      digests.set(repo, [younger, older]);
    }

    await runCron();
    expect([await status(ten, digests.get(ten)![0]!), await status(ten, digests.get(ten)![1]!)]).toEqual([404, 404]);
    expect([await status(thirty, digests.get(thirty)![0]!), await status(thirty, digests.get(thirty)![1]!)]).toEqual([200, 404]);
    expect([await status(never, digests.get(never)![0]!), await status(never, digests.get(never)![1]!)]).toEqual([200, 200]);
  });
});

describe("retention: keeping the newest tags", () => {
  it("keeps the newest K tags matching the pattern, deletes the older matching ones, and leaves the others alone", async () => {
    const { repo } = await repoWith({ keepTags: 2, keepTagsMatching: "v*" });
    const { bytes } = await pushImage(repo);
    for (const tag of ["v1", "v2", "v3", "v4", "dev", "latest"]) expect((await putManifest(repo, tag, bytes)).status).toBe(201);
    const digest = await digestOf(bytes);
    await taggedInOrder(repo, ["v3", "dev", "v1", "v4", "latest", "v2"]);
    // Listed before, so the isolate remembers the page: what the pass deletes must not be listed after it.
    expect(await tagsOf(repo)).toEqual(["dev", "latest", "v1", "v2", "v3", "v4"]);

    await runCron();
    expect(await tagsOf(repo)).toEqual(["dev", "latest", "v2", "v4"]);
    expect(await status(repo, digest)).toBe(200);
  });

  it("deletes a tag only when no matching policy keeps it", async () => {
    const prefix = uniqueName("tags");
    await setPolicy(`${prefix}*`, { keepTags: 1 });
    await setPolicy(`*${prefix}`, { keepTags: 3, keepTagsMatching: "v*" });
    const repo = uniqueRepo(prefix);
    const tags = ["v1", "dev1", "v2", "v3", "v4", "dev2"];
    for (const tag of tags) await pushManifest(repo, tag);
    await taggedInOrder(repo, tags);

    await runCron();
    // The newest of all (dev2), and the newest three v* tags.
    expect(await tagsOf(repo)).toEqual(["dev2", "v2", "v3", "v4"]);
  });

  it("never deletes a tag that a policy makes immutable", async () => {
    const { repo } = await repoWith({ immutableTags: true, keepTags: 1 });
    for (const tag of ["1.0", "1.1", "1.2"]) await pushManifest(repo, tag);
    await taggedInOrder(repo, ["1.0", "1.1", "1.2"]);

    await runCron();
    expect(await tagsOf(repo)).toEqual(["1.0", "1.1", "1.2"]);
  });

  it("leaves manifests that lost their tags to the untagged rule", async () => {
    const { repo } = await repoWith({ keepTags: 1, deleteUntaggedAfterDays: 30 });
    const old = await pushManifest(repo, "old");
    const recent = await pushManifest(repo, "recent");
    const newest = await pushManifest(repo, "newest");
    await taggedInOrder(repo, ["old", "recent", "newest"]);
    await pushedDaysAgo(repo, old, 31);

    await runCron();
    expect(await tagsOf(repo)).toEqual(["newest"]);
    expect(await status(repo, old)).toBe(404);
    expect(await status(repo, recent)).toBe(200);
    expect(await status(repo, newest)).toBe(200);
  });
});

describe("retention: defaults and policies", () => {
  it("deletes nothing where no policy and no var asks for it", async () => {
    const { repo } = await repoWith();
    const untagged = await pushManifest(repo);
    for (const tag of ["a", "b", "c"]) await pushManifest(repo, tag);
    await pushedDaysAgo(repo, untagged, 3650);

    await runCron();
    expect(await status(repo, untagged)).toBe(200);
    expect(await tagsOf(repo)).toEqual(["a", "b", "c"]);
  });

  it("applies RETENTION_UNTAGGED_DAYS and RETENTION_KEEP_TAGS where no policy sets them; never and all exempt a namespace", async () => {
    const prefix = uniqueName("vars");
    const { repo } = await repoWith();
    const { repo: exempt } = await repoWith({ deleteUntaggedAfterDays: "never", keepTags: "all" });
    const digests = new Map<string, string>();
    for (const target of [repo, exempt]) {
      const untagged = await pushManifest(target);
      // Further back than anything the other tests push, which a var applies to as well.
      await pushedDaysAgo(target, untagged, 36_600);
      digests.set(target, untagged);
      const tags = [`${prefix}-1`, `${prefix}-2`, "other"];
      for (const tag of tags) await pushManifest(target, tag);
      await taggedInOrder(target, tags);
    }

    await runCron({ RETENTION_UNTAGGED_DAYS: "36500", RETENTION_KEEP_TAGS: "1", RETENTION_KEEP_TAGS_MATCHING: `${prefix}-*` });
    expect(await status(repo, digests.get(repo)!)).toBe(404);
    expect(await tagsOf(repo)).toEqual(["other", `${prefix}-2`]);
    expect(await status(exempt, digests.get(exempt)!)).toBe(200);
    expect(await tagsOf(exempt)).toEqual(["other", `${prefix}-1`, `${prefix}-2`]);
  });
});

describe("retention: the scheduled pass", () => {
  afterEach(() => vi.restoreAllMocks());

  it("works in bounded batches, each run resuming where the last one stopped", async () => {
    const prefix = uniqueName("resume");
    await setPolicy(`${prefix}-*`, { deleteUntaggedAfterDays: 1 });
    const repos = [uniqueRepo(`${prefix}-a`), uniqueRepo(`${prefix}-b`), uniqueRepo(`${prefix}-c`)];
    const doomed: [string, string][] = [];
    const kept: [string, string][] = [];
    for (const repo of repos) {
      // Manifests that differ in an annotation only, over the same blobs.
      const { manifest } = await pushImage(repo);
      for (let i = 0; i < 5; i++) {
        const bytes = json({ ...manifest, annotations: { n: String(i) } });
        const digest = await digestOf(bytes);
        expect((await putManifest(repo, digest, bytes)).status).toBe(201);
        await pushedDaysAgo(repo, digest, 2);
        doomed.push([repo, digest]);
      }
      kept.push([repo, await pushManifest(repo, "1.0")]);
    }
    const left = async () =>
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM manifests WHERE digest IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(doomed.map(([, digest]) => digest))).first<{ n: number }>())!.n;

    // Retention alone (garbage collection would share the calls), one manifest per statement and six D1 calls per run (one held back to record the cursor, one to read it,
    // one for a page of repositories): at most three deletions each time.
    const runs: { from: string; to: string; manifestsDeleted: number }[] = [];
    const run = async () => runs.push((await runLifecycle(env, { now: Date.now(), batchSize: 1, calls: 6, only: ["retention"] })).steps.retention as (typeof runs)[0]);
    await run();
    expect(await left()).toBeGreaterThan(0);
    while ((await left()) > 0 && runs.length < 100) await run();
    for (const [repo, digest] of doomed) expect(await status(repo, digest)).toBe(404);

    for (const { manifestsDeleted } of runs) expect(manifestsDeleted).toBeLessThanOrEqual(3);
    for (const [previous, next] of runs.slice(0, -1).map((r, i) => [r, runs[i + 1]!] as const)) expect(next.from).toBe(previous.to);
    for (const [repo, digest] of kept) expect(await status(repo, digest)).toBe(200);
  });

  it("logs one summary line per run", async () => {
    const log = vi.spyOn(console, "log");
    await runCron();
    const lines = log.mock.calls.map(([line]) => line as { event?: string; cron?: string; steps?: { retention?: object } }).filter((line) => line?.event === "lifecycle");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ cron: "*/15 * * * *", steps: { retention: { repositories: expect.any(Number), tagsDeleted: expect.any(Number), manifestsDeleted: expect.any(Number) } } });
  });
});
