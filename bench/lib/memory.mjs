/** Resident memory of a server's processes, from /proc, while something runs. */
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
