#!/usr/bin/env node
/**
 * `npm run bench:ab -- [options] <checkout> [<checkout> ...]`: one workload on
 * our registry as two or more checkouts have it (say, main and a change),
 * side by side with the floor, to tell whether a change moves a workload
 * before it goes to a full `npm run bench`. Each checkout runs under its own
 * `npm start` over a fresh state directory, with the same fixtures; the floor
 * replays the first checkout's answers. Every round runs the workload once on
 * each, in an order rotated round by round, and the report gives, per
 * instance, the median rate and worker CPU per request, and the median of its
 * per-round ratios to the first checkout's: the machine drifts from round to
 * round, and a ratio within one round cancels that. See bench/README.md.
 */
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { MANIFEST_ACCEPT, RegistryClient } from "./lib/client.mjs";
import { measureCpu } from "./lib/cpu.mjs";
import { emptyConfigBlob, imageManifest, randomBlob, referrerManifest } from "./lib/data.mjs";
import { prepareFloor } from "./lib/floor.mjs";
import { runPool } from "./lib/pool.mjs";
import { makeWorkDir, startFloor, startOurs } from "./lib/servers.mjs";
import { median } from "./lib/stats.mjs";

const REPO = "bench/ab";

/**
 * The workloads: each seeds an instance (untimed), names the requests its
 * floor twin replays, and makes request i with the bench's client and checks.
 */
const WORKLOADS = {
  "redirect-hop": {
    about: "blob GET answered with a redirect (64 KiB blobs, REDIRECT_MIN_BYTES=1), c=16",
    vars: { REDIRECT_MIN_BYTES: "1" },
    concurrency: 16,
    data: () => ({ blobs: Array.from({ length: 100 }, () => randomBlob(64 * 1024)) }),
    seed: (client, { blobs }) => Promise.all(blobs.map((blob) => client.pushBlobMonolithic(REPO, blob.bytes, blob.digest))),
    floor: ({ blobs }) => blobs.map((blob) => ({ target: `/v2/${REPO}/blobs/${blob.digest}`, object: { key: blob.digest, layout: "single", bytes: blob.bytes } })),
    request: (client, { blobs }, i) => client.blobRedirect(REPO, blobs[i % blobs.length].digest),
  },
  "referrers-first": referrersWorkload("the first page (n=100) of 1,000 referrers, with a Link to the next, c=8", () => "?n=100"),
  "referrers-one-page": referrersWorkload("all 1,000 referrers in one page (no n: the server's page size), c=8", () => ""),
  "referrers-deep": referrersWorkload("the last page (n=100) of 1,000 referrers, no Link, c=8", ({ referrers }) => `?n=100&last=${lastBefore(referrers, 100)}`),
  "tags-first": tagsWorkload("the first page (n=100) of 1,000 tags, with a Link to the next, c=8", "?n=100"),
  "tags-deep": tagsWorkload("the last page (n=100) of 1,000 tags, no Link, c=8", "?n=100&last=v0899"),
  "tags-one-page": tagsWorkload("all 1,000 tags in one page (no n: the server's page size), c=8", ""),
  "tags-10k-page": tagsWorkload("all 10,000 tags in one page (no n: the server's page size, as the full bench's tags-all-default), c=8", "", 10_000),
  "manifest-get": manifestWorkload("manifest GET by tag (a manifest of about 400 bytes), c=32", 32, () => "the image"),
  "manifest-get-large": manifestWorkload("manifest GET by tag (a manifest of 256 KiB, kept in its D1 row), c=8", 8, () => "x".repeat(256 * 1024)),
};

/** 1,000 referrers of one image, and one page of them: `query` picks which. */
function referrersWorkload(about, query) {
  const target = (data) => `/v2/${REPO}/referrers/${data.manifest.digest}${query(data)}`;
  return {
    about,
    concurrency: 8,
    data: () => {
      const image = imageOf();
      return { ...image, referrers: Array.from({ length: 1000 }, (_, i) => referrerManifest(image.config, image.manifest, `referrer ${i}`)) };
    },
    async seed(client, { referrers, ...image }) {
      await pushImage(client, image, image.manifest.digest);
      const pool = await runPool({ count: referrers.length, concurrency: 8, task: (i) => client.putManifest(REPO, referrers[i].digest, referrers[i]) });
      if (pool.failures.length > 0) throw pool.failures[0];
    },
    floor: (data) => [{ target: target(data) }],
    request: (client, data) => client.referrersPage(target(data)),
  };
}

/** `count` tags of one image, and one page of them: `query` picks which. */
function tagsWorkload(about, query, count = 1000) {
  const target = `/v2/${REPO}/tags/list${query}`;
  return {
    about,
    concurrency: 8,
    data: () => ({ ...imageOf(), tags: Array.from({ length: count }, (_, i) => `v${String(i).padStart(4, "0")}`) }),
    async seed(client, { tags, ...image }) {
      await pushImage(client, image, tags[0]);
      const pool = await runPool({ count: tags.length - 1, concurrency: 8, task: (i) => client.putManifest(REPO, tags[i + 1], image.manifest) });
      if (pool.failures.length > 0) throw pool.failures[0];
    },
    floor: () => [{ target }],
    request: (client) => client.tagsPage(target),
  };
}

/** The digest a page of the last `count` referrers starts after, in the registry's order (by digest). */
const lastBefore = (referrers, count) => referrers.map((r) => r.digest).sort().at(-count - 1);

/** Pulls by tag of one image, whose manifest's annotation is `note`. */
function manifestWorkload(about, concurrency, note) {
  return {
    about,
    concurrency,
    data: () => imageOf(note()),
    seed: (client, image) => pushImage(client, image, "latest"),
    floor: () => [{ target: `/v2/${REPO}/manifests/latest`, headers: { Accept: MANIFEST_ACCEPT } }],
    request: (client, { manifest }) => client.getManifest(REPO, "latest", manifest),
  };
}

/** An image: the empty config, one 4 KiB layer, and its manifest, annotated with `note`. */
function imageOf(note = "the image") {
  const config = emptyConfigBlob();
  const layer = randomBlob(4096);
  return { config, layer, manifest: imageManifest(config, layer, note) };
}

async function pushImage(client, { config, layer, manifest }, reference) {
  for (const blob of [config, layer]) await client.pushBlobMonolithic(REPO, blob.bytes, blob.digest);
  await client.putManifest(REPO, reference, manifest);
}

const { values: options, positionals: checkouts } = parseArgs({
  allowPositionals: true,
  options: {
    workload: { type: "string", default: "redirect-hop" },
    rounds: { type: "string", default: "12" },
    requests: { type: "string", default: "1000" },
    help: { type: "boolean", default: false },
  },
});
const workload = WORKLOADS[options.workload];
if (options.help || !workload || checkouts.length === 0) {
  console.error(`usage: npm run bench:ab -- [--workload ${Object.keys(WORKLOADS).join("|")}] [--rounds 12] [--requests 1000] <checkout> [<checkout> ...]`);
  for (const [id, { about }] of Object.entries(WORKLOADS)) console.error(`  ${id}: ${about}`);
  process.exit(options.help ? 0 : 2);
}
const rounds = Number(options.rounds);
const requests = Number(options.requests);

const data = workload.data();
const workDir = makeWorkDir();
const started = [];
const stopAll = () => Promise.all(started.map((server) => server.stop().catch(() => {})));
process.on("SIGINT", () => stopAll().then(() => process.exit(130)));

try {
  const instances = [];
  for (const [index, checkout] of checkouts.entries()) {
    const name = `${index + 1}:${checkout}`;
    const server = await startOurs({ repoDir: resolve(checkout), workDir, name: `ab-${index + 1}`, vars: workload.vars ?? {} });
    started.push(server);
    instances.push({ name, server, client: new RegistryClient(name, server.baseUrl) });
  }
  const floor = await startFloor({ repoDir: resolve(checkouts[0]), workDir });
  started.push(floor);
  for (const { client } of instances) await workload.seed(client, data);
  const twin = { floor: () => workload.floor(data) };
  await prepareFloor({ floor, workloads: [twin], context: {}, instances: { ours: instances[0].server }, log: (line) => console.error(line) });
  instances.push({ name: "floor", server: floor, client: new RegistryClient("floor", floor.baseUrl) });

  // Untimed warm-up: each isolate compiles its hot paths before the first round.
  for (const instance of instances) await run(instance);
  const figures = new Map(instances.map((instance) => [instance, []]));
  for (let round = 0; round < rounds; round++) {
    const order = instances.map((_, i) => instances[(i + round) % instances.length]);
    for (const instance of order) figures.get(instance).push(await run(instance));
    console.error(`round ${round + 1}/${rounds}: ${instances.map((i) => `${i.name} ${describe(figures.get(i).at(-1))}`).join(" | ")}`);
  }
  console.log(report(instances, figures));
} finally {
  await stopAll();
  rmSync(workDir, { recursive: true, force: true });
}

/** One round's requests on one instance: its rate, and its worker process's CPU per request. */
async function run({ server, client }) {
  const { result: pool, wallMs, shares } = await measureCpu(server.processes(), () =>
    runPool({ count: requests, concurrency: workload.concurrency, task: (i) => workload.request(client, data, i) }),
  );
  if (pool.failures.length > 0) throw pool.failures[0];
  return { rate: (requests * 1000) / pool.ms, cpuMs: ((shares["worker workerd"] ?? NaN) * wallMs) / requests };
}

function describe({ rate, cpuMs }) {
  return `${rate.toFixed(0)}/s ${cpuMs.toFixed(2)} ms`;
}

function report(instances, figures) {
  const first = figures.get(instances[0]);
  const lines = [
    `${options.workload} (${workload.about}): ${rounds} rounds of ${requests} requests`,
    "",
    "| instance | req/s | worker CPU ms / request | rate / first's, median of rounds | CPU / first's, median of rounds |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const instance of instances) {
    const own = figures.get(instance);
    const rateRatio = median(own.map((f, i) => f.rate / first[i].rate));
    const cpuRatio = median(own.map((f, i) => f.cpuMs / first[i].cpuMs));
    lines.push(`| ${instance.name} | ${median(own.map((f) => f.rate)).toFixed(0)} | ${median(own.map((f) => f.cpuMs)).toFixed(2)} | ${rateRatio.toFixed(3)} | ${cpuRatio.toFixed(3)} |`);
  }
  return lines.join("\n");
}
