/**
 * The workloads. Each run() measures one server once and returns
 * { values: { figureKey: number }, failures: [message], notes: [text] };
 * it never throws for a wrong answer: that is a failure, kept out of the figures.
 */
import { check, MEDIA } from "./client.mjs";
import { generatedStream, imageManifest, randomBlob, variantOf } from "./data.mjs";
import { REPOS } from "./fixtures.mjs";
import { sampleIsolate, sampleRss } from "./memory.mjs";
import { formatNumber } from "./report.mjs";
import { runPool } from "./pool.mjs";
import { median, MiB, mibPerSecond, percentile, perSecond, timed } from "./stats.mjs";

const rate = (unit) => ({ key: "rate", label: unit, higherIsBetter: true });
const P50 = { key: "p50", label: "p50 ms", higherIsBetter: false };
const P99 = { key: "p99", label: "p99 ms", higherIsBetter: false };
const LATENCY = { key: "latency", label: "median ms", higherIsBetter: false };

// fetch says only "fetch failed"; its cause says what failed (a reset connection, say).
const messageOf = (error) => (error instanceof Error ? `${error.message}${error.cause ? ` (${messageOf(error.cause)})` : ""}` : String(error));

/** Figures of a concurrent pool: successful operations per second and their latency percentiles. */
export function poolOutcome(pool) {
  return {
    values: {
      rate: pool.latencies.length > 0 ? perSecond(pool.latencies.length, pool.ms) : NaN,
      p50: percentile(pool.latencies, 50),
      p99: percentile(pool.latencies, 99),
    },
    failures: pool.failures.map(messageOf),
  };
}

/** One timed transfer of `bytes`, as MiB/s; a failed check gives no figure. */
export async function transferOutcome(bytes, fn) {
  try {
    const { ms } = await timed(fn);
    return { values: { rate: mibPerSecond(bytes, ms) }, failures: [] };
  } catch (error) {
    return { values: { rate: NaN }, failures: [messageOf(error)] };
  }
}

/** `repeats` sequential requests; the figure is their median latency. */
async function latencyOutcome(repeats, fn) {
  const pool = await runPool({ count: repeats, concurrency: 1, task: fn });
  return { values: { latency: median(pool.latencies) }, failures: pool.failures.map(messageOf) };
}

function checkSameList(server, what, actual, expected) {
  const same = actual.length === expected.length && actual.every((item, i) => item === expected[i]);
  check(same, `${server}: ${what} has ${actual.length} entries [${actual[0]} … ${actual.at(-1)}], expected ${expected.length} [${expected[0]} … ${expected.at(-1)}]`);
}

function isSorted(keys) {
  return keys.every((key, i) => i === 0 || keys[i - 1] < key);
}

/**
 * Follows Link headers from `start` to the end. Each page must be sorted and
 * start after the previous one ended (so no overlap and no gap can hide), and
 * together they must be exactly `expected`. A server that does not paginate
 * answers everything at once: then only the set is checked, since order is
 * what pagination needs and a single page has no pagination.
 */
async function walkPages(client, fetchPage, start, keyOf, expected, paginates) {
  const keys = [];
  let target = start;
  let pages = 0;
  while (target) {
    const page = await fetchPage(target);
    pages++;
    check(pages <= expected.length + 1, `${client.name}: more pages than entries; Link loop?`);
    const pageKeys = page.items.map(keyOf);
    if (paginates) {
      check(isSorted(pageKeys), `${client.name}: page ${pages} is not sorted`);
      check(keys.length === 0 || pageKeys.length === 0 || pageKeys[0] > keys.at(-1), `${client.name}: page ${pages} overlaps the previous one`);
    }
    keys.push(...pageKeys);
    target = page.next;
  }
  checkSameList(client.name, "the walk", paginates ? keys : [...keys].sort(), expected);
  return { pages, sorted: isSorted(keys) };
}

// ---------------------------------------------------------------- reference

/**
 * GET /v2/ does no storage work: its rate is the ceiling any request can
 * reach through the server's HTTP path (for ours, the wrangler dev proxy
 * and the worker), against which the other rates can be read.
 */
const baseGet = {
  id: "base-get",
  title: "GET /v2/ (no storage: the per-request floor), c=32",
  reference: true,
  figures: [rate("req/s"), P50, P99],
  async run({ config }, { client }) {
    return poolOutcome(await runPool({ count: config.manifestRequests, concurrency: 32, task: () => client.apiVersion() }));
  },
};

// ---------------------------------------------------------------- blobs

const pushSmall = {
  id: "push-small",
  title: "push 64 KiB blobs, c=8 (POST, PATCH, PUT)",
  figures: [rate("blobs/s"), P50, P99],
  async run({ config }, { client }) {
    // Fresh random blobs each run, made before the clock starts.
    const blobs = Array.from({ length: config.smallBlobs }, () => randomBlob(config.smallBlobKib * 1024));
    return poolOutcome(await runPool({ count: blobs.length, concurrency: 8, task: (i) => client.pushBlob(REPOS.small, blobs[i].bytes, blobs[i].digest) }));
  },
};

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

const pullBig = {
  id: "pull-big",
  title: "pull big blob (sha256 verified while streaming)",
  figures: [rate("MiB/s")],
  async run({ data }, { client }) {
    return transferOutcome(data.bigPull.size, () => client.pullBlob(REPOS.big, data.bigPull.digest, data.bigPull.size));
  },
};

const pullSmall = {
  id: "pull-small",
  title: "pull 64 KiB blobs, c=16",
  figures: [rate("req/s"), P50, P99],
  async run({ config, data }, { client }) {
    const blobs = data.pullBlobs;
    return poolOutcome(
      await runPool({
        count: config.pullRequests,
        concurrency: 16,
        task: (i) => client.pullBlob(REPOS.pull, blobs[i % blobs.length].digest, blobs[i % blobs.length].size),
      }),
    );
  },
};

// ---------------------------------------------------------------- manifests

const manifestGet = {
  id: "manifest-get",
  title: "manifest GET by tag, c=32 (exact bytes checked)",
  figures: [rate("req/s"), P50, P99],
  async run({ config, data }, { client }) {
    return poolOutcome(await runPool({ count: config.manifestRequests, concurrency: 32, task: () => client.getManifest(REPOS.manifests, "latest", data.image) }));
  },
};

const manifestHead = {
  id: "manifest-head",
  title: "manifest HEAD by tag, c=32",
  figures: [rate("req/s"), P50, P99],
  async run({ config, data }, { client }) {
    return poolOutcome(await runPool({ count: config.manifestRequests, concurrency: 32, task: () => client.headManifest(REPOS.manifests, "latest", data.image) }));
  },
};

const manifestPut = {
  id: "manifest-put",
  title: "manifest PUT by tag (new manifest each), c=8",
  figures: [rate("req/s"), P50, P99],
  async run({ config, data, round }, { client }) {
    const manifests = Array.from({ length: config.manifestPuts }, (_, i) => imageManifest(data.emptyConfig, data.layer, `put ${round} ${i} ${Math.random()}`));
    return poolOutcome(
      await runPool({ count: manifests.length, concurrency: 8, task: (i) => client.putManifest(REPOS.manifests, `put-${round}-${i}`, manifests[i]) }),
    );
  },
};

// ---------------------------------------------------------------- tags

const PAGE = 100;
const NO_TAG_PAGINATION = "unsupported by peer: ignores n and last and returns every tag, unsorted (its one full answer is timed under tags-all)";

const tagsFirst = {
  id: "tags-first",
  title: "tag list, first page (n=100)",
  figures: [LATENCY],
  unsupported: (state) => (state.paginatesTags ? null : NO_TAG_PAGINATION),
  async run({ config, data }, { client }) {
    const expected = data.tags.slice(0, PAGE);
    return latencyOutcome(config.pageRepeats, async () => {
      const page = await client.tagsPage(`/v2/${REPOS.tags}/tags/list?n=${PAGE}`);
      checkSameList(client.name, "the first tag page", page.items, expected);
      check(page.next !== null, `${client.name}: the first tag page has no Link to the next`);
    });
  },
};

const tagsDeep = {
  id: "tags-deep",
  title: "tag list, deep page (last=<near the end>, n=100)",
  figures: [LATENCY],
  unsupported: (state) => (state.paginatesTags ? null : NO_TAG_PAGINATION),
  async run({ config, data }, { client }) {
    const last = data.tags[data.tags.length - PAGE - 1];
    const expected = data.tags.slice(-PAGE);
    return latencyOutcome(config.pageRepeats, async () => {
      const page = await client.tagsPage(`/v2/${REPOS.tags}/tags/list?n=${PAGE}&last=${last}`);
      checkSameList(client.name, "the deep tag page", page.items, expected);
    });
  },
};

/**
 * The whole tag list by following Link headers: with n=100 (100 pages of
 * 10,000 tags) and without n (the server's own page size, what `crane ls` or
 * skopeo do).
 */
function tagsWalk(id, pageSize) {
  const query = pageSize ? `?n=${pageSize}` : "";
  return {
    id,
    title: `tag list, all pages following Link (${pageSize ? `n=${pageSize}` : "no n: server's page size"})`,
    figures: [LATENCY],
    async run({ config, data }, { client, state }) {
      let shape = "";
      const outcome = await latencyOutcome(config.walks, async () => {
        const walk = await walkPages(client, (t) => client.tagsPage(t), `/v2/${REPOS.tags}/tags/list${query}`, (tag) => tag, data.tags, state.paginatesTags);
        shape = `${walk.pages} page(s)${walk.sorted ? "" : ", unsorted"}`;
      });
      return { ...outcome, notes: shape ? [shape] : [] };
    },
  };
}

const tagsAll = tagsWalk("tags-all", PAGE);
const tagsAllDefault = tagsWalk("tags-all-default", null);

// ---------------------------------------------------------------- referrers

const NO_REFERRERS = "unsupported by peer: no referrers API (404)";

/** A referrers page: entries in digest order, each describing the artifact pushed. */
function checkReferrers(client, items, expected) {
  checkSameList(
    client.name,
    "the referrers page",
    items.map((d) => d.digest),
    expected.map((m) => m.digest),
  );
  for (const [i, d] of items.entries()) {
    check(
      d.mediaType === MEDIA.ociManifest && d.size === expected[i].size && d.artifactType === "application/vnd.example.bench.signature",
      `${client.name}: referrer descriptor ${d.digest} is wrong: ${JSON.stringify(d)}`,
    );
  }
}

const referrersFirst = {
  id: "referrers-first",
  title: "referrers, first page (n=100)",
  figures: [LATENCY],
  unsupported: (state) => (state.referrersSupported ? null : NO_REFERRERS),
  async run({ config, data }, { client }) {
    const expected = data.referrers.slice(0, PAGE);
    return latencyOutcome(config.pageRepeats, async () => {
      const page = await client.referrersPage(`/v2/${REPOS.referrers}/referrers/${data.image.digest}?n=${PAGE}`);
      checkReferrers(client, page.items, expected);
      check(page.next !== null, `${client.name}: the first referrers page has no Link to the next`);
    });
  },
};

const referrersDeep = {
  id: "referrers-deep",
  title: "referrers, deep page (last=<near the end>, n=100)",
  figures: [LATENCY],
  unsupported: (state) => (state.referrersSupported ? null : NO_REFERRERS),
  async run({ config, data }, { client }) {
    const last = data.referrers[data.referrers.length - PAGE - 1].digest;
    const expected = data.referrers.slice(-PAGE);
    return latencyOutcome(config.pageRepeats, async () => {
      const page = await client.referrersPage(`/v2/${REPOS.referrers}/referrers/${data.image.digest}?n=${PAGE}&last=${last}`);
      checkReferrers(client, page.items, expected);
    });
  },
};

function referrersWalk(id, pageSize) {
  const query = pageSize ? `?n=${pageSize}` : "";
  return {
    id,
    title: `referrers, all pages following Link (${pageSize ? `n=${pageSize}` : "no n: server's page size"})`,
    figures: [LATENCY],
    unsupported: (state) => (state.referrersSupported ? null : NO_REFERRERS),
    async run({ config, data }, { client }) {
      const expected = data.referrers.map((m) => m.digest);
      let shape = "";
      const start = `/v2/${REPOS.referrers}/referrers/${data.image.digest}${query}`;
      const outcome = await latencyOutcome(config.walks, async () => {
        const walk = await walkPages(client, (t) => client.referrersPage(t), start, (d) => d.digest, expected, true);
        shape = `${walk.pages} page(s)`;
      });
      return { ...outcome, notes: shape ? [shape] : [] };
    },
  };
}

const referrersAll = referrersWalk("referrers-all", PAGE);
const referrersAllDefault = referrersWalk("referrers-all-default", null);

// ---------------------------------------------------------------- memory

const MB = (bytes) => bytes / MiB;

/** `concurrency` generated streams of `mib` MiB, and their push all at once, timed, each upload's outcome settled. */
function concurrentPush(client, { concurrency, mib, announceLength }) {
  const streams = Array.from({ length: concurrency }, () => generatedStream(mib * MiB));
  return {
    bytes: concurrency * mib * MiB,
    produced: () => streams.reduce((sum, generated) => sum + generated.produced(), 0),
    push: () => timed(() => Promise.allSettled(streams.map((generated) => client.pushBlobStream(REPOS.memory, generated, { announceLength })))),
  };
}

/**
 * The isolate's live memory half way through a push of the same shape, after
 * the measured one: the heap snapshot that reads it pauses the isolate and
 * grows workerd's RSS (by some 75 MiB), so it must stay out of the measured
 * push. Its uploads are checked like the measured ones.
 */
async function liveHalfWay(client, inspectorUrl, shape) {
  const pushing = concurrentPush(client, shape);
  const sampled = await sampleIsolate(inspectorUrl, pushing.push, { liveWhen: () => pushing.produced() >= pushing.bytes / 2 });
  return { live: sampled.live, settled: sampled.result.result };
}

/**
 * Peak RSS of the server's processes (ours: every workerd under wrangler;
 * the peer: its one process), and ours' isolate memory, while `concurrency`
 * generated streams are pushed at once, each in one PATCH, its length
 * announced (skopeo: one R2 object) or not (docker, podman: parts). Durable
 * Objects of one class can share an isolate in production, so several
 * uploads at once is what the isolate's upload buffer budget must hold; an
 * upload it turns away (429) is a failure like any wrong answer.
 */
const memoryUploadOf = ({ concurrency, announceLength }) => ({
  id: `memory-upload${announceLength ? "-sized" : ""}${concurrency === 1 ? "" : `-x${concurrency}`}`,
  title: `${concurrency === 1 ? "streamed upload in one PATCH" : `${concurrency} concurrent streamed uploads, one PATCH each`}${announceLength ? " with" : ", no"} Content-Length: peak server RSS`,
  concurrency,
  figures: [
    { key: "peak", label: "peak RSS MiB", higherIsBetter: false },
    { key: "growth", label: "RSS growth MiB", higherIsBetter: false },
    { key: "isolate", label: "peak isolate heap + ArrayBuffers MiB (ours only)", higherIsBetter: false },
    { key: "live", label: "live isolate MiB after a full GC, half way through a second push (ours only)", higherIsBetter: false },
    { key: "rate", label: `upload MiB/s${concurrency === 1 ? "" : " (all uploads)"}`, higherIsBetter: true },
  ],
  async run({ config, round }, { client, memoryPids, processLabel, inspectorUrl }) {
    const pids = memoryPids();
    const measured = concurrentPush(client, { concurrency, mib: config.memoryMib, announceLength });
    const isolate = inspectorUrl ? await sampleIsolate(inspectorUrl, () => sampleRss(pids, measured.push)) : null;
    const sampled = isolate ? isolate.result : await sampleRss(pids, measured.push);
    const { result: settled, ms } = sampled.result;
    const after = inspectorUrl ? await liveHalfWay(client, inspectorUrl, { concurrency, mib: config.liveMib, announceLength }) : null;
    const failed = (outcomes) => outcomes.filter((s) => s.status === "rejected").map((s) => s.reason);
    const rejected = failed([...settled, ...(after?.settled ?? [])]);
    const refused = rejected.filter((reason) => reason?.status === 429).length;
    const perProcess = Object.entries(sampled.perProcessPeak).map(([pid, bytes]) => {
      const hwm = sampled.hwm ? ` (kernel VmHWM ${MB(sampled.hwm[pid]).toFixed(0)})` : "";
      return `${processLabel(Number(pid))} ${MB(bytes).toFixed(0)} MiB${hwm}`;
    });
    return {
      values: {
        peak: MB(sampled.peak),
        growth: MB(sampled.peak - sampled.baseline),
        isolate: isolate ? MB(isolate.peak) : NaN,
        live: MB(after?.live ?? NaN),
        rate: failed(settled).length > 0 ? NaN : mibPerSecond(measured.bytes, ms),
      },
      failures: rejected.map(messageOf),
      notes: [
        `round ${round}: baseline ${MB(sampled.baseline).toFixed(0)} MiB, peak per process: ${perProcess.join(", ")}` +
          (isolate ? `; isolate ${MB(isolate.baseline).toFixed(1)} → ${MB(isolate.peak).toFixed(1)} MiB, live ${formatNumber(MB(after?.live ?? NaN))}` : "") +
          (rejected.length > 0 ? `; ${rejected.length} uploads failed, ${refused} with a 429 the client could read` : ""),
      ],
      raw: { peakBytes: sampled.peak, baselineBytes: sampled.baseline, perProcessPeak: sampled.perProcessPeak, hwm: sampled.hwm },
    };
  },
});

/** Measured first, each round on servers that have served nothing yet, so earlier workloads' heaps do not count. */
export const MEMORY_WORKLOADS = [1, 4].flatMap((concurrency) => [false, true].map((announceLength) => memoryUploadOf({ concurrency, announceLength })));

export const MAIN_WORKLOADS = [
  baseGet,
  pushSmall,
  pushBig,
  pushBigChunked,
  pullBig,
  pullSmall,
  manifestGet,
  manifestHead,
  manifestPut,
  tagsFirst,
  tagsDeep,
  tagsAll,
  tagsAllDefault,
  referrersFirst,
  referrersDeep,
  referrersAll,
  referrersAllDefault,
];
