/**
 * CPU time of the server's processes and of this client while a workload
 * runs, as a share of one core: on 2 cores, whichever process sits near 100%
 * (workerd runs a worker's requests on one thread) is what limits the figure.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { now } from "./stats.mjs";

let ticksPerSecond = null;
function clockTicks() {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of a process in milliseconds, or null if it is gone. */
function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat (utime, stime), counted from the state field, which is field 3.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return null;
  }
}

function clientCpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Runs fn and returns its result, the wall time, and { label: share of one core } for each process and the client. */
export async function measureCpu(processes, fn) {
  const before = processes.map((p) => processCpuMs(p.pid));
  const clientBefore = clientCpuMs();
  const start = now();
  const result = await fn();
  const wall = now() - start;
  const shares = {};
  processes.forEach((p, i) => {
    const after = processCpuMs(p.pid);
    if (after === null || before[i] === null) return;
    // Several processes may share a label (none do today); add them up.
    shares[p.label] = (shares[p.label] ?? 0) + (after - before[i]) / wall;
  });
  shares["bench client"] = (clientCpuMs() - clientBefore) / wall;
  return { result, wallMs: wall, shares };
}
