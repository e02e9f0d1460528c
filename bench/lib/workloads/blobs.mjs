/**
 * Blob workloads: the three shapes of a small push, big pushes, and pulls:
 * whole (a redirect followed, as clients do), each hop of a redirect alone,
 * HEAD, a blob stored as one object against one stored in parts, and the
 * redirect threshold.
 */
import { check } from "../client.mjs";
import { randomBlob, variantOf } from "../data.mjs";
import { REPOS, THRESHOLD_KIB } from "../fixtures.mjs";
import { runPool } from "../pool.mjs";
import { median, MiB, timed } from "../stats.mjs";
import { messageOf, P50, P99, poolOutcome, rate, transferOutcome } from "./outcomes.mjs";

// ---------------------------------------------------------------- pushes

/** A push of `smallBlobs` fresh 64 KiB blobs, concurrency 8, in one of the shapes clients use. */
function pushSmallOf({ id, title, push, unsupported }) {
  return {
    id,
    title: `push 64 KiB blobs, c=8: ${title}`,
    figures: [rate("blobs/s"), P50, P99],
    unsupported,
    async run({ config }, { client }) {
      // Fresh random blobs each run, made before the clock starts.
      const blobs = Array.from({ length: config.smallBlobs }, () => randomBlob(config.smallBlobKib * 1024));
      return poolOutcome(await runPool({ count: blobs.length, concurrency: 8, task: (i) => push(client, blobs[i]) }));
    },
  };
}

const pushSmallMonolithic = pushSmallOf({
  id: "push-small-monolithic",
  title: "monolithic POST ?digest= with the body",
  push: (client, blob) => client.pushBlobMonolithic(REPOS.small, blob.bytes, blob.digest),
  unsupported: (state) => (state.monolithic ? null : "unsupported by peer: POST ?digest= with a body opens an upload instead of storing the blob"),
});

const pushSmallPostPut = pushSmallOf({
  id: "push-small-post-put",
  title: "POST, then PUT ?digest= with the body (containerd, oras, helm)",
  push: (client, blob) => client.pushBlobPostPut(REPOS.small, blob.bytes, blob.digest),
});

const pushSmall = pushSmallOf({
  id: "push-small",
  title: "POST, PATCH with the body, PUT ?digest= (docker, podman)",
  push: (client, blob) => client.pushBlob(REPOS.small, blob.bytes, blob.digest),
});

const pushBig = {
  id: "push-big",
  title: "push big blob, one PATCH",
  figures: [rate("MiB/s")],
  async run({ data }, { client }) {
    const blob = variantOf(data.big.bytes);
    return transferOutcome(blob.size, () => client.pushBlob(REPOS.big, blob.bytes, blob.digest));
  },
};

const pushBigChunked = {
  id: "push-big-chunked",
  title: "push big blob, chunked PATCHes with Content-Range",
  figures: [rate("MiB/s")],
  async run({ data, config }, { client }) {
    const blob = variantOf(data.big.bytes);
    return transferOutcome(blob.size, () => client.pushBlobChunked(REPOS.big, blob.bytes, blob.digest, config.chunkMib * MiB));
  },
};

// ---------------------------------------------------------------- small pulls

/** The floor twin of a blob GET: ours' answer replayed, the bytes read from the floor's R2 in the same layout. */
const blobGet = (repo, blob, layout = "single") => ({ method: "GET", target: `/v2/${repo}/blobs/${blob.digest}`, object: { key: blob.digest, layout, bytes: blob.bytes } });

const NO_REDIRECT = "ours answers blob GETs directly (no redirect on this revision)";

/** The i-th request's blob: the list over and over. */
const nth = (blobs, i) => blobs[i % blobs.length];

const pullSmall = {
  id: "pull-small",
  title: "pull 64 KiB blobs, c=16 (a redirect followed if given)",
  figures: [rate("req/s"), P50, P99],
  floorTarget: true,
  floor: ({ data }) => data.pullBlobs.map((blob) => blobGet(REPOS.pull, blob)),
  async run({ config, data }, { client }) {
    const blob = (i) => nth(data.pullBlobs, i);
    return poolOutcome(await runPool({ count: config.pullRequests, concurrency: 16, task: (i) => client.pullBlob(REPOS.pull, blob(i).digest, blob(i).size) }));
  },
};

const blobHead = {
  id: "blob-head",
  title: "blob HEAD (64 KiB blobs), c=32",
  figures: [rate("req/s"), P50, P99],
  floorTarget: true,
  floor: ({ data }) => data.pullBlobs.map((blob) => ({ method: "HEAD", target: `/v2/${REPOS.pull}/blobs/${blob.digest}` })),
  async run({ config, data }, { client }) {
    const blob = (i) => nth(data.pullBlobs, i);
    return poolOutcome(await runPool({ count: config.manifestRequests, concurrency: 32, task: (i) => client.headBlob(REPOS.pull, blob(i).digest, blob(i).size) }));
  },
};

/**
 * The two hops of a redirected pull, each alone, on the instance of ours
 * started with REDIRECT_MIN_BYTES=1, so that the 64 KiB blobs are redirected
 * whatever the default threshold.
 */
const blobRedirect = {
  id: "blob-redirect",
  title: "blob GET, the redirect hop alone (64 KiB blobs, every blob redirected), c=16",
  figures: [rate("req/s"), P50, P99],
  instance: "ours-redirect",
  peer: false,
  needsRedirect: NO_REDIRECT,
  floorTarget: true,
  floor: ({ data }) => data.pullBlobs.map((blob) => blobGet(REPOS.hops, blob)),
  async run({ config, data }, { client }) {
    return poolOutcome(await runPool({ count: config.pullRequests, concurrency: 16, task: (i) => client.blobRedirect(REPOS.hops, nth(data.pullBlobs, i).digest) }));
  },
};

const blobFinal = {
  id: "blob-final",
  title: "blob GET, the final hop alone (where the redirect points), c=16",
  figures: [rate("req/s"), P50, P99],
  instance: "ours-redirect",
  peer: false,
  needsRedirect: NO_REDIRECT,
  floorTarget: true,
  floor: ({ data }) => data.pullBlobs.map((blob) => blobGet(REPOS.hops, blob)),
  async run({ config, data }, { client }) {
    const blobs = data.pullBlobs;
    // Fresh URLs each round (they expire), fetched before the clock starts.
    const locations = [];
    for (const blob of blobs) locations.push(await client.blobRedirect(REPOS.hops, blob.digest));
    return poolOutcome(await runPool({ count: config.pullRequests, concurrency: 16, task: (i) => client.finalHop(nth(locations, i), nth(blobs, i).digest, nth(blobs, i).size) }));
  },
};

// ---------------------------------------------------------------- big pulls

/**
 * A big blob stored as one object (pushed in one request) or as R2 parts
 * (pushed in chunks), pulled on the main instance (a redirect followed, if
 * ours gives one) or on the instance with BLOB_REDIRECT=none (the direct path).
 */
function pullBigOf({ parts, direct }) {
  const blobOf = (data) => (parts ? data.bigParts : data.big);
  const repo = direct ? REPOS.direct : REPOS.big;
  return {
    id: `pull-big${parts ? "-parts" : ""}${direct ? "-direct" : ""}`,
    title: `pull big blob ${parts ? "pushed in chunks (R2 parts)" : "pushed in one request (one object)"}, ${direct ? "direct (BLOB_REDIRECT=none)" : "a redirect followed if given"}; sha256 verified while streaming`,
    figures: [rate("MiB/s")],
    parts,
    direct,
    ...(direct ? { instance: "ours-direct", peer: false, needsRedirect: "ours does not redirect: pull-big is already the direct path" } : {}),
    floor: ({ data }) => [blobGet(repo, blobOf(data), parts ? "parts" : "single")],
    async run({ data }, { client }) {
      const blob = blobOf(data);
      return transferOutcome(blob.size, () => client.pullBlob(repo, blob.digest, blob.size));
    },
  };
}

// ---------------------------------------------------------------- redirect threshold

/**
 * Blobs of several sizes pulled one at a time, alternately from the instance
 * that streams them (BLOB_REDIRECT=none) and from the one that redirects every
 * blob GET (REDIRECT_MIN_BYTES=1), both hops timed: what a redirect adds to a
 * pull of each size, for choosing REDIRECT_MIN_BYTES.
 */
const redirectThreshold = {
  id: "redirect-threshold",
  title: "blob pull one at a time, direct vs through a redirect, by size",
  figures: THRESHOLD_KIB.flatMap((kib) => [
    { key: `direct-${kib}`, label: `${sizeLabel(kib)} direct, median ms`, higherIsBetter: false },
    { key: `redirect-${kib}`, label: `${sizeLabel(kib)} via redirect (both hops), median ms`, higherIsBetter: false },
  ]),
  instance: "ours-direct",
  alsoUses: ["ours-redirect"],
  peer: false,
  needsRedirect: NO_REDIRECT,
  async run({ config, data, instances }) {
    const direct = instances["ours-direct"].client;
    const redirecting = instances["ours-redirect"].client;
    const values = {};
    const failures = [];
    for (const [index, kib] of THRESHOLD_KIB.entries()) {
      const blob = data.thresholdBlobs[index];
      const times = { direct: [], redirect: [] };
      for (let i = 0; i < config.thresholdPulls; i++) {
        try {
          const plain = await timed(() => direct.pullBlob(REPOS.threshold, blob.digest, blob.size));
          check(!plain.result, `${direct.name}: a ${sizeLabel(kib)} blob was redirected, though BLOB_REDIRECT=none`);
          times.direct.push(plain.ms);
          const hops = await timed(() => redirecting.pullBlob(REPOS.threshold, blob.digest, blob.size));
          check(hops.result, `${redirecting.name}: a ${sizeLabel(kib)} blob was not redirected, though REDIRECT_MIN_BYTES=1`);
          times.redirect.push(hops.ms);
        } catch (error) {
          failures.push(messageOf(error));
        }
      }
      values[`direct-${kib}`] = median(times.direct);
      values[`redirect-${kib}`] = median(times.redirect);
    }
    return { values, failures };
  },
};

function sizeLabel(kib) {
  return kib >= 1024 ? `${kib / 1024} MiB` : `${kib} KiB`;
}

export const BLOB_WORKLOADS = [
  pushSmallMonolithic,
  pushSmallPostPut,
  pushSmall,
  pushBig,
  pushBigChunked,
  pullBigOf({ parts: false, direct: false }),
  pullBigOf({ parts: true, direct: false }),
  pullBigOf({ parts: false, direct: true }),
  pullBigOf({ parts: true, direct: true }),
  pullSmall,
  blobHead,
  blobRedirect,
  blobFinal,
  redirectThreshold,
];
