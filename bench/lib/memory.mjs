/**
 * Memory while something runs: resident memory of a server's processes, from
 * /proc, and for ours the worker isolate's own heap, over the DevTools protocol.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { openDevTools } from "./devtools.mjs";

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM), or 0 if the process is gone. */
function statusBytes(pid, field) {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resets the kernel's peak-RSS mark (VmHWM) so it covers only what follows; best effort. */
function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples VmRSS of `pids` every `intervalMs` while `fn` runs. Reports the
 * baseline before, the peak of the sum over the processes, each process's
 * peak, and the kernel's own peak marks (VmHWM), which catch spikes between
 * samples.
 */
export async function sampleRss(pids, fn, intervalMs = 100) {
  const sum = () => pids.reduce((total, pid) => total + statusBytes(pid, "VmRSS"), 0);
  const hwmReset = pids.every(resetPeak);
  const baseline = sum();
  const perProcess = new Map(pids.map((pid) => [pid, statusBytes(pid, "VmRSS")]));
  let peak = baseline;
  const sample = () => {
    let total = 0;
    for (const pid of pids) {
      const rss = statusBytes(pid, "VmRSS");
      total += rss;
      if (rss > perProcess.get(pid)) perProcess.set(pid, rss);
    }
    if (total > peak) peak = total;
  };
  const timer = setInterval(sample, intervalMs);
  try {
    const result = await fn();
    sample();
    return {
      result,
      baseline,
      peak,
      perProcessPeak: Object.fromEntries(perProcess),
      // Kernel peaks per process, valid only if they could be reset before the run.
      hwm: hwmReset ? Object.fromEntries(pids.map((pid) => [pid, statusBytes(pid, "VmHWM")])) : null,
    };
  } finally {
    clearInterval(timer);
  }
}

/** The isolate's memory as the Workers limit counts it: V8's used heap, the embedder's, and ArrayBuffer backing stores. */
const isolateBytes = (usage) => usage.usedSize + usage.embedderHeapUsedSize + usage.backingStorageSize;

/**
 * The isolate's live memory: a heap snapshot, which workerd takes itself and
 * which collects all garbage first, then the usage, asked for in the same
 * breath so the isolate has next to no time to make garbage in between.
 * HeapProfiler.collectGarbage never answers under workerd, and gc() is not exposed.
 */
async function liveBytes(devtools) {
  const [, usage] = await Promise.all([devtools.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false }), devtools.call("Runtime.getHeapUsage")]);
  return isolateBytes(usage);
}

/**
 * Samples the isolate's memory through wrangler's DevTools socket every
 * `intervalMs` while `fn` runs; garbage not yet collected counts too. This is
 * what the Workers limit of 128 MB is about. Locally one isolate runs both
 * the Worker and its Durable Objects, which production may keep apart. Once
 * `liveWhen()` holds, the live memory is read once (see liveBytes); that
 * disturbs the run, whose other figures are then not to be trusted.
 */
export async function sampleIsolate(inspectorUrl, fn, { liveWhen = () => false, intervalMs = 50 } = {}) {
  const devtools = await openDevTools(inspectorUrl);
  const usage = async () => isolateBytes(await devtools.call("Runtime.getHeapUsage"));
  try {
    const baseline = await usage();
    let peak = baseline;
    let live = null;
    let running = true;
    const sampling = (async () => {
      while (running) {
        if (live === null && liveWhen()) live = await liveBytes(devtools);
        else peak = Math.max(peak, await usage());
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
    // A failed sample surfaces once fn is done, not as an unhandled rejection meanwhile.
    sampling.catch(() => {});
    let result;
    try {
      result = await fn();
    } finally {
      running = false;
      await sampling;
    }
    return { result, baseline, peak, live };
  } finally {
    devtools.close();
  }
}
