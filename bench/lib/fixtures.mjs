/**
 * Content shared by both servers (generated once, so both get the same
 * bytes) and the untimed per-server setup: 10,000 tags, 1,000 referrers,
 * the blobs the pull workloads read.
 */
import { emptyConfigBlob, imageManifest, randomBlob, referrerManifest } from "./data.mjs";
import { runPool } from "./pool.mjs";
import { MiB } from "./stats.mjs";

export const REPOS = {
  small: "bench/small",
  big: "bench/big",
  pull: "bench/pull",
  manifests: "bench/manifests",
  tags: "bench/tags",
  referrers: "bench/referrers",
  memory: "bench/memory",
};

/** Tag names whose lexical order is their numeric order, so the expected pages are easy to state. */
function tagNames(count) {
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => `v${String(i).padStart(width, "0")}`);
}

export function makeSharedData(config) {
  const emptyConfig = emptyConfigBlob();
  const layer = randomBlob(4096);
  const image = imageManifest(emptyConfig, layer, "the image");
  const referrers = Array.from({ length: config.referrers }, (_, i) => referrerManifest(emptyConfig, image, `referrer ${i}`));
  // Byte order is what the spec's lexical order means, and what JS string comparison gives for these ASCII digests.
  referrers.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  // One big buffer serves the pull target and, by changing its first bytes, every big push.
  const big = randomBlob(config.bigMib * MiB);
  return {
    emptyConfig,
    layer,
    image,
    tags: tagNames(config.tags),
    referrers,
    pullBlobs: Array.from({ length: config.pullBlobs }, () => randomBlob(config.smallBlobKib * 1024)),
    big,
    bigPull: { digest: big.digest, size: big.size },
  };
}

/** Runs a setup pool and stops the bench on the first failure: timings over broken fixtures mean nothing. */
async function setupPool(what, count, concurrency, task) {
  const pool = await runPool({ count, concurrency, task });
  if (pool.failures.length > 0) throw new Error(`setup (${what}) failed ${pool.failures.length} times; first: ${pool.failures[0].message}`);
}

async function pushImage(client, data, repo, reference) {
  await client.pushBlob(repo, data.emptyConfig.bytes, data.emptyConfig.digest);
  await client.pushBlob(repo, data.layer.bytes, data.layer.digest);
  await client.putManifest(repo, reference, data.image);
}

/** Whether the server honours `n` on the tag list (distribution 2.8 ignores it and returns every tag). */
async function probeTagPagination(client) {
  const page = await client.tagsPage(`/v2/${REPOS.tags}/tags/list?n=2`);
  return page.items.length <= 2 && page.next !== null;
}

/** Whether the server has the referrers API: it answers an unknown or known subject with 200 and an index. */
async function probeReferrers(client, data) {
  return (await client.probe(`/v2/${REPOS.referrers}/referrers/${data.image.digest}`)) === 200;
}

export async function setupServer(client, data, config, log) {
  const c = config.setupConcurrency;
  await pushImage(client, data, REPOS.manifests, "latest");

  log(`  ${client.name}: ${data.tags.length} tags`);
  await pushImage(client, data, REPOS.tags, data.image.digest);
  await setupPool("tags", data.tags.length, c, (i) => client.putManifest(REPOS.tags, data.tags[i], data.image));
  const paginatesTags = await probeTagPagination(client);

  await pushImage(client, data, REPOS.referrers, data.image.digest);
  const referrersSupported = await probeReferrers(client, data);
  if (referrersSupported) {
    log(`  ${client.name}: ${data.referrers.length} referrers`);
    await setupPool("referrers", data.referrers.length, c, (i) => client.putManifest(REPOS.referrers, data.referrers[i].digest, data.referrers[i]));
  }

  log(`  ${client.name}: blobs to pull`);
  await setupPool("small blobs", data.pullBlobs.length, c, (i) => client.pushBlob(REPOS.pull, data.pullBlobs[i].bytes, data.pullBlobs[i].digest));
  // Both servers are set up before any round changes the big buffer's first bytes.
  await client.pushBlob(REPOS.big, data.big.bytes, data.big.digest);

  return { paginatesTags, referrersSupported };
}
