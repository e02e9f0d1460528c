#!/usr/bin/env node
/**
 * `npm run bench`: our registry (wrangler dev) against CNCF distribution,
 * the same workloads on both, interleaved round by round (ours, then
 * distribution, each round) so machine noise hits both alike; each round also
 * measures the floor, a Worker with no work of its own under the same wrangler dev.
 * See bench/README.md; `npm run bench -- --help` lists the settings.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleSize } from "./lib/bundle.mjs";
import { RegistryClient } from "./lib/client.mjs";
import { loadConfig, usage } from "./lib/config.mjs";
import { makeSharedData, setupServer } from "./lib/fixtures.mjs";
import { evaluateTargets, formatNumber, renderReport, Results, summarize } from "./lib/report.mjs";
import { FloorRun } from "./lib/floor.mjs";
import { distributionVersion, ensureDistribution, logTail, makeWorkDir, startDistribution, startFloor, startOurs } from "./lib/servers.mjs";
import { measureCpu } from "./lib/cpu.mjs";
import { now } from "./lib/stats.mjs";
import { MAIN_WORKLOADS, MEMORY_WORKLOADS } from "./lib/workloads.mjs";

const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const log = (message) => console.error(message);

/** The commit measured, and whether tracked files outside bench/ differed from it. */
function revision() {
  try {
    const git = (...args) => execFileSync("git", args, { cwd: REPO_DIR, encoding: "utf8" }).trim();
    // Untracked files (a node_modules symlink in a clone, say) change nothing that runs.
    const dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench").length > 0;
    return `${git("log", "-1", "--format=%h %s")}${dirty ? " (work tree modified)" : ""}`;
  } catch {
    return "unknown";
  }
}

function machineInfo(binary) {
  const wrangler = JSON.parse(readFileSync(join(REPO_DIR, "node_modules/wrangler/package.json"), "utf8")).version;
  return {
    cores: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: release(),
    node: process.version,
    wrangler,
    distribution: distributionVersion(binary),
    "registry revision": revision(),
  };
}

/** A one-line progress summary of an outcome. */
function describe(workload, outcome) {
  const figures = workload.figures.map((f) => `${formatNumber(outcome.values[f.key])} ${f.label}`).join(", ");
  return `${figures}${outcome.failures.length ? `, ${outcome.failures.length} FAILED: ${outcome.failures[0]}` : ""}`;
}

/** One round: each workload on ours, then on distribution. */
async function runRound({ round, rounds, workloads, servers, context, results }) {
  for (const workload of workloads) {
    for (const server of servers) {
      const reason = workload.unsupported?.(server.state);
      if (reason) {
        results.unsupported(workload, server.name, reason);
        continue;
      }
      const pidsBefore = server.workerPids();
      const { result: outcome, wallMs, shares } = await measureCpu(server.processes(), () => workload.run({ ...context, round }, server));
      outcome.cpu = shares;
      outcome.wallMs = wallMs;
      // wrangler dev restarts the worker when its sources or dependencies change under it: say so, the figures are void.
      if (server.workerPids() !== pidsBefore) {
        outcome.failures.push(`${server.name}'s processes changed during the run (${pidsBefore} → ${server.workerPids()}): restarted`);
      }
      results.record(workload, server.name, outcome);
      log(`[round ${round}/${rounds}] ${workload.id} ${server.name}: ${describe(workload, outcome)}`);
      if (!server.alive()) throw new Error(`${server.name} died during ${workload.id}, round ${round}; its log ends:\n${logTail(server)}`);
    }
  }
}

/** Starts ours then distribution; both are recorded in `started` so any exit stops them. */
async function startPair({ binary, workDir, started }) {
  started.push(await startOurs({ repoDir: REPO_DIR, workDir }));
  started.push(await startDistribution({ binary, workDir }));
  const pair = started.slice(-2).map((s) => ({ ...s, client: new RegistryClient(s.name, s.baseUrl), state: {} }));
  log(`servers: ${pair.map((s) => `${s.name} ${s.baseUrl}`).join(", ")}`);
  return pair;
}

/**
 * Memory: every workload and round on a fresh pair of servers, so each peak
 * is that of one upload on a server that has served nothing else (a workerd
 * keeps the heap an earlier transfer grew), and rounds are true repeats.
 */
async function memoryPhase({ workloads, config, context, results, servers }) {
  for (const workload of workloads) {
    for (let round = 1; round <= config.rounds; round++) {
      const pair = await startPair(servers);
      try {
        await runRound({ round, rounds: config.rounds, workloads: [workload], servers: pair, context, results });
      } finally {
        for (const server of pair) {
          await server.stop();
          rmSync(server.dataDir, { recursive: true, force: true });
        }
      }
    }
  }
}

function hasFailures(results) {
  return results.entries().some(({ servers }) => Object.values(servers).some((side) => side.outcomes.some((o) => o.failures.length > 0)));
}

/** The servers' data dirs hold gigabytes: always removed unless BENCH_KEEP; the logs stay when something went wrong. */
function keepOrRemove(workDir, servers, clean) {
  if (process.env.BENCH_KEEP) {
    log(`kept ${workDir}`);
    return;
  }
  if (clean) {
    rmSync(workDir, { recursive: true, force: true });
    return;
  }
  for (const server of servers) rmSync(server.dataDir, { recursive: true, force: true });
  log(`logs kept in ${workDir}`);
}

/** Stops the servers once, whichever way the run ends. */
function cleanupOnce(servers) {
  let done = null;
  return () => (done ??= Promise.all(servers.map((s) => s.stop().catch(() => {}))));
}

async function main() {
  const config = loadConfig();
  if (config.help) {
    console.log(usage());
    return 0;
  }
  // A mistyped id would otherwise run nothing and say nothing.
  const known = new Set(["floor", ...[...MEMORY_WORKLOADS, ...MAIN_WORKLOADS].map((w) => w.id)]);
  const unknown = [...(config.only ?? [])].filter((id) => !known.has(id));
  if (unknown.length > 0) throw new Error(`--only: no workload ${unknown.join(", ")}; the ids are ${[...known].join(", ")}`);
  const selected = (list) => (config.only ? list.filter((w) => config.only.has(w.id)) : list);
  const memoryWorkloads = selected(MEMORY_WORKLOADS);
  const mainWorkloads = selected(MAIN_WORKLOADS);
  const floorSelected = !config.only || config.only.has("floor");
  const startedAt = new Date();
  const start = now();

  const binary = ensureDistribution();
  const machine = machineInfo(binary);
  log(`machine: ${JSON.stringify(machine)}`);
  // Before the servers start, so the build does not compete with them for the 2 cores.
  let bundle = null;
  if (config.bundle) {
    log("bundle: wrangler deploy --dry-run …");
    bundle = bundleSize(REPO_DIR);
    log(`bundle: ${bundle.wranglerLine}`);
  }

  const workDir = makeWorkDir();
  log(`work dir: ${workDir}`);
  const started = [];
  const stopAll = cleanupOnce(started);
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, async () => {
      await stopAll();
      keepOrRemove(workDir, started, false);
      process.exit(130);
    });
  }

  const results = new Results();
  let floor = null;
  let fatal = null;
  try {
    log("data: generating shared content …");
    const data = makeSharedData(config);
    const context = { config, data };
    const serverSpec = { binary, workDir, started };

    if (memoryWorkloads.length > 0) {
      log("memory phase: a fresh pair of servers each round …");
      await memoryPhase({ workloads: memoryWorkloads, config, context, results, servers: serverSpec });
    }
    if (mainWorkloads.length > 0 || floorSelected) {
      const servers = mainWorkloads.length > 0 ? await startPair(serverSpec) : [];
      log("setup (untimed) …");
      for (const server of servers) server.state = await setupServer(server.client, data, config, log);
      log(`setup: ${servers.map((s) => `${s.name} ${JSON.stringify(s.state)}`).join(", ")}`);
      let floorRun = null;
      if (floorSelected) {
        log("floor: a Worker with no work of its own, under the same wrangler dev …");
        const server = await startFloor({ repoDir: REPO_DIR, workDir });
        started.push(server);
        floorRun = await FloorRun.prepare({ server, data, config, log });
      }
      for (let round = 1; round <= config.rounds; round++) {
        await runRound({ round, rounds: config.rounds, workloads: mainWorkloads, servers, context, results });
        await floorRun?.round(round);
      }
      floor = floorRun?.summary() ?? null;
    }
  } catch (error) {
    // Still report what was measured; the error goes last.
    fatal = error;
  } finally {
    await stopAll();
    keepOrRemove(workDir, started, !fatal && !hasFailures(results));
  }

  const rows = summarize(results);
  const targets = evaluateTargets(rows, results);
  const report = renderReport({ results, rows, targets, floor, machine, bundle, config, startedAt, elapsedMs: now() - start });
  console.log(report);
  if (config.report) {
    writeFileSync(config.report, `${report}\n`);
    log(`report written to ${config.report}`);
  }
  if (fatal) {
    console.error(fatal);
    return 2;
  }
  // A wrong answer anywhere makes the comparison suspect: say so in the exit code.
  const floorFailed = floor?.some((m) => m.failures.length > 0) ?? false;
  return floorFailed || rows.some((r) => r.failures.ours > 0 || r.failures.distribution > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
