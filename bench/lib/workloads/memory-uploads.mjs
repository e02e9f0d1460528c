/**
 * Memory: peak server RSS and the isolate's own memory while big streams are
 * pushed, measured first, each round on servers that have served nothing yet.
 */
import { generatedStream } from "../data.mjs";
import { REPOS } from "../fixtures.mjs";
import { sampleIsolate, sampleRss } from "../memory.mjs";
import { formatNumber } from "../report.mjs";
import { MiB, mibPerSecond, timed } from "../stats.mjs";
import { messageOf } from "./outcomes.mjs";

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

