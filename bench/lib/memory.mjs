/**
 * Memory while something runs: resident memory of a server's processes, from
 * /proc, and for ours the worker isolate's own heap, over the DevTools protocol.
 */
import { readFileSync, writeFileSync } from "node:fs";

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

/**
 * Samples the isolate's memory through wrangler's DevTools socket every
 * `intervalMs` while `fn` runs: V8's used heap, the embedder's, and the
 * ArrayBuffer backing stores, summed; garbage not yet collected counts too.
 * This is what the Workers limit of 128 MB is about. Locally one isolate runs
 * both the Worker and its Durable Objects, which production keeps apart.
 */
export async function sampleIsolate(inspectorUrl, fn, intervalMs = 50) {
  // wrangler's inspector proxy only takes connections that say they come from localhost.
  const socket = new WebSocket(inspectorUrl, { headers: { Origin: "http://localhost" } });
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`no DevTools connection at ${inspectorUrl}`));
  });
  const pending = new Map();
  let nextId = 1;
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  };
  const heapUsage = () =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method: "Runtime.getHeapUsage", params: {} }));
    });
  const bytes = (usage) => usage.usedSize + usage.embedderHeapUsedSize + usage.backingStorageSize;
  try {
    const baseline = bytes(await heapUsage());
    let peak = baseline;
    let running = true;
    const sampling = (async () => {
      while (running) {
        peak = Math.max(peak, bytes(await heapUsage()));
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
    const result = await fn();
    running = false;
    await sampling;
    return { result, baseline, peak };
  } finally {
    socket.close();
  }
}
