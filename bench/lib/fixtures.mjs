/**
 * Content shared by every server (generated once, so all get the same
 * bytes) and the untimed per-server setup: 10,000 tags, 1,000 referrers,
 * the blobs the pull workloads read.
 */
import { REDIRECTS } from "./client.mjs";
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
  // On the other instances of ours, so the floor can tell their answers from the main instance's.
  direct: "bench/direct",
  hops: "bench/hops",
  threshold: "bench/threshold",
};

/** Blob sizes of redirect-threshold, KiB: around any sensible threshold, from a config to a layer. */
export const THRESHOLD_KIB = [16, 64, 256, 1024, 4096];

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
    // Pushed in chunks, so ours stores it as R2 parts; another digest, or ours would keep the single object.
    bigParts: randomBlob(config.bigMib * MiB),
    thresholdBlobs: THRESHOLD_KIB.map((kib) => randomBlob(kib * 1024)),
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

/** The main setup of ours and of distribution; the tags and referrers (the longest part) only if a selected workload reads them. */
export async function setupServer(client, data, config, log, { tags = true, referrers = true } = {}) {
  const c = config.setupConcurrency;
  await pushImage(client, data, REPOS.manifests, "latest");

  let paginatesTags = null;
  if (tags) {
    log(`  ${client.name}: ${data.tags.length} tags`);
    await pushImage(client, data, REPOS.tags, data.image.digest);
    await setupPool("tags", data.tags.length, c, (i) => client.putManifest(REPOS.tags, data.tags[i], data.image));
    paginatesTags = await probeTagPagination(client);
  }

  await pushImage(client, data, REPOS.referrers, data.image.digest);
  const referrersSupported = await probeReferrers(client, data);
  if (referrersSupported && referrers) {
    log(`  ${client.name}: ${data.referrers.length} referrers`);
    await setupPool("referrers", data.referrers.length, c, (i) => client.putManifest(REPOS.referrers, data.referrers[i].digest, data.referrers[i]));
  }

  log(`  ${client.name}: blobs to pull`);
  await setupPool("small blobs", data.pullBlobs.length, c, (i) => client.pushBlob(REPOS.pull, data.pullBlobs[i].bytes, data.pullBlobs[i].digest));
  await pushBigBlobs(client, data, config, REPOS.big);

  return {
    paginatesTags,
    referrersSupported,
    monolithic: await probeMonolithic(client),
    // A big blob surely lies above any redirect threshold.
    redirects: REDIRECTS.includes(await client.probe(`/v2/${REPOS.big}/blobs/${data.big.digest}`)),
    smallRedirects: REDIRECTS.includes(await client.probe(`/v2/${REPOS.pull}/blobs/${data.pullBlobs[0].digest}`)),
  };
}

/**
 * The big blob in one request (stored as one object) and the other in chunks
 * (stored as R2 parts). Every server is set up before any round changes the
 * big buffer's first bytes.
 */
async function pushBigBlobs(client, data, config, repo) {
  await client.pushBlob(repo, data.big.bytes, data.big.digest);
  await client.pushBlobChunked(repo, data.bigParts.bytes, data.bigParts.digest, config.chunkMib * MiB);
}

/** Whether the server stores a blob from one POST ?digest= with the body (distribution 2.8 opens an upload instead). */
async function probeMonolithic(client) {
  const blob = randomBlob(1024);
  try {
    await client.pushBlobMonolithic(REPOS.small, blob.bytes, blob.digest);
    return true;
  } catch {
    return false;
  }
}

/** The instance of ours that never redirects (BLOB_REDIRECT=none): the big blobs, and those of redirect-threshold. */
export async function setupDirect(client, data, config, log) {
  log(`  ${client.name}: big blobs and redirect-threshold blobs`);
  await pushBigBlobs(client, data, config, REPOS.direct);
  await pushThresholdBlobs(client, data);
}

/** The instance of ours that redirects every blob GET (REDIRECT_MIN_BYTES=1): the small blobs, and those of redirect-threshold. */
export async function setupRedirect(client, data, config, log) {
  log(`  ${client.name}: small blobs and redirect-threshold blobs`);
  await setupPool("small blobs", data.pullBlobs.length, config.setupConcurrency, (i) => client.pushBlob(REPOS.hops, data.pullBlobs[i].bytes, data.pullBlobs[i].digest));
  await pushThresholdBlobs(client, data);
}

async function pushThresholdBlobs(client, data) {
  for (const blob of data.thresholdBlobs) await client.pushBlob(REPOS.threshold, blob.bytes, blob.digest);
}
