#!/usr/bin/env node
/**
 * `npm run bench`: our registry (wrangler dev) against its floor twin (a
 * Worker with no work of its own under the same wrangler dev, replaying ours'
 * answers) and CNCF distribution, the same workloads on each, interleaved
 * round by round (ours, floor, distribution) so machine noise hits all alike.
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
import { makeSharedData, setupDirect, setupRedirect, setupServer } from "./lib/fixtures.mjs";
import { evaluateTargets, formatNumber, renderReport, Results, ROLES, summarize } from "./lib/report.mjs";
import { prepareFloor } from "./lib/floor.mjs";
import { distributionVersion, ensureDistribution, logTail, makeWorkDir, startDistribution, startFloor, startOurs } from "./lib/servers.mjs";
import { measureCpu } from "./lib/cpu.mjs";
import { now } from "./lib/stats.mjs";
import { MAIN_WORKLOADS, MEMORY_WORKLOADS } from "./lib/workloads/index.mjs";
import { mergeOutcomes } from "./lib/workloads/outcomes.mjs";

const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const began = now();
/** Progress, stamped with the time since the bench began (so a run's phases can be timed from its log). */
function log(message) {
  const seconds = Math.round((now() - began) / 1000);
  console.error(`[${String(Math.floor(seconds / 60)).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}] ${message}`);
}

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

/** The servers that play each role in a workload: the instance of ours it names, that instance's floor if it has a twin, distribution unless not. */
function rolesOf(workload, servers) {
  const instance = workload.instance ?? "ours";
  return {
    ours: servers.instances[instance],
    floor: workload.floor ? servers.floors[instance] : undefined,
    distribution: workload.peer === false ? undefined : servers.distribution,
  };
}

/**
 * What a request-bound workload runs, untimed, on each server just before its
 * timed run: minutes of other workloads pass between one round's run and the
 * next, in which what ours keeps warm for a route nobody calls (V8's optimized
 * code among it) may go cold (ours' first tags page, first in its group,
 * measured 0.79-0.88x of its floor while the same page deeper in, run right
 * after, measured 0.96-1.02x). The floor runs one small handler for everything,
 * so without this ours' warming up would be timed and the floor's not.
 */
const WARM_UP = { manifestRequests: 300, pullRequests: 200, pageRequests: 100, walks: 1, pageWalks: 10 };

const warmUpConfig = (config) => ({ ...config, ...Object.fromEntries(Object.keys(WARM_UP).map((name) => [name, Math.min(WARM_UP[name], config[name])])) });

/** The settings of slice `index` of `slices`: each request count split as evenly as whole numbers allow. */
const sliceConfig = (config, index, slices) => ({
  ...config,
  ...Object.fromEntries(Object.keys(WARM_UP).map((name) => [name, Math.floor(((index + 1) * config[name]) / slices) - Math.floor((index * config[name]) / slices)])),
});

/**
 * One round: each workload on ours and its floor twin, then on distribution;
 * those that need ours to redirect are skipped when it does not. A
 * request-bound workload is warmed up on each first.
 */
async function runRound({ round, rounds, workloads, servers, context, results }) {
  // Alternating, so whatever going first or second costs falls on ours and its floor alike.
  const order = round % 2 === 0 ? ["floor", "ours", "distribution"] : ROLES;
  for (const workload of workloads) {
    if (workload.needsRedirect && !context.redirects) {
      results.unsupported(workload, "ours", workload.needsRedirect);
      continue;
    }
    const roles = rolesOf(workload, servers);
    const runnable = order.filter((role) => {
      if (!roles[role]) return false;
      const reason = workload.unsupported?.(roles[role].state);
      if (reason) results.unsupported(workload, role, reason);
      return !reason;
    });
    // Ours and its twin take turns, so the machine's drift within the round falls on both alike.
    const twins = runnable.filter((role) => role !== "distribution");
    const turns = workload.floorTarget && twins.length === 2 ? [twins, ...runnable.filter((role) => role === "distribution").map((role) => [role])] : runnable.map((role) => [role]);
    for (const turn of turns) await runTurns({ workload, turn, roles, round, rounds, servers, context, results });
  }
}

/**
 * Runs a workload on the roles of `turn`: on two, in the round's slices, the
 * order reversed every other slice (A B, B A, A B, ...), each role's slices
 * then merged into one outcome; on one, in one go.
 */
async function runTurns({ workload, turn, roles, round, rounds, servers, context, results }) {
  const slices = turn.length > 1 ? context.config.slices : 1;
  const warmUps = new Map();
  for (const role of turn) warmUps.set(role, workload.floorTarget ? await workload.run({ ...context, round, config: warmUpConfig(context.config) }, roles[role]) : null);
  const parts = new Map(turn.map((role) => [role, []]));
  for (let slice = 0; slice < slices; slice++) {
    for (const role of slice % 2 === 0 ? turn : [...turn].reverse()) {
      const config = slices > 1 ? sliceConfig(context.config, slice, slices) : context.config;
      parts.get(role).push(await measuredRun({ workload, role, server: roles[role], servers, context: { ...context, round, config } }));
    }
  }
  for (const role of turn) {
    const server = roles[role];
    const outcome = mergeRuns(parts.get(role));
    outcome.round = round;
    // A wrong answer while warming up is still a wrong answer.
    const warmUp = warmUps.get(role);
    if (warmUp) outcome.failures.push(...warmUp.failures.map((failure) => `warming up: ${failure}`));
    results.record(workload, role, outcome);
    // Each slice's first figure too, in the log only: how far a figure moves within one round.
    const slicesOf = parts.get(role).length > 1 ? ` (slices: ${parts.get(role).map((part) => formatNumber(part.values[workload.figures[0].key])).join(" ")})` : "";
    log(`[round ${round}/${rounds}] ${workload.id} ${server.name}: ${describe(workload, outcome)}${slicesOf}`);
  }
}

/** One timed run of a workload on one server, with the CPU its processes took. */
async function measuredRun({ workload, role, server, servers, context }) {
  const watched = [server, ...(role === "ours" ? (workload.alsoUses ?? []).map((name) => servers.instances[name]) : [])];
  const pidsBefore = watched.map((s) => s.workerPids());
  const { result: outcome, wallMs, shares } = await measureCpu(
    watched.flatMap((s) => s.processes()),
    () => workload.run(context, server),
  );
  outcome.cpu = shares;
  outcome.wallMs = wallMs;
  // wrangler dev restarts the worker when its sources or dependencies change under it: say so, the figures are void.
  for (const [i, s] of watched.entries()) {
    if (s.workerPids() !== pidsBefore[i]) outcome.failures.push(`${s.name}'s processes changed during the run (${pidsBefore[i]} → ${s.workerPids()}): restarted`);
  }
  for (const s of watched) if (!s.alive()) throw new Error(`${s.name} died during ${workload.id}, round ${context.round}; its log ends:\n${logTail(s)}`);
  return outcome;
}

/** The outcome of a run made in slices: its figures over all their samples, its CPU shares over their whole time. */
function mergeRuns(runs) {
  if (runs.length === 1) return runs[0];
  const wallMs = runs.reduce((sum, run) => sum + run.wallMs, 0);
  const cpu = {};
  for (const run of runs) for (const [label, share] of Object.entries(run.cpu)) cpu[label] = (cpu[label] ?? 0) + (share * run.wallMs) / wallMs;
  return { ...mergeOutcomes(runs), cpu, wallMs };
}

const withClient = (server, state = {}) => ({ ...server, client: new RegistryClient(server.name, server.baseUrl), state });

/** Starts ours then distribution; both are recorded in `started` so any exit stops them. */
async function startPair({ binary, workDir, started }) {
  started.push(await startOurs({ repoDir: REPO_DIR, workDir }));
  started.push(await startDistribution({ binary, workDir }));
  const pair = started.slice(-2).map((s) => withClient(s));
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
      const [ours, distribution] = await startPair(servers);
      try {
        await runRound({ round, rounds: config.rounds, workloads: [workload], servers: { instances: { ours }, distribution }, context, results });
      } finally {
        for (const server of [ours, distribution]) {
          await server.stop();
          rmSync(server.dataDir, { recursive: true, force: true });
        }
      }
    }
  }
}

// The other instances of ours, started only when ours redirects blob GETs and a selected workload reads one.
const VARIANTS = [
  { name: "ours-direct", vars: { BLOB_REDIRECT: "none" }, setup: setupDirect },
  { name: "ours-redirect", vars: { REDIRECT_MIN_BYTES: "1" }, setup: setupRedirect },
];

/**
 * The servers of the main phase, set up (untimed): ours, distribution if a
 * workload runs on it, the variants of ours, and the floor with the answers
 * its twins replay. Returns them and a line about each for the report.
 */
async function startMain({ workloads, serverSpec, context }) {
  const { binary, workDir, started } = serverSpec;
  const { data, config } = context;
  const start = async (launch, state) => {
    const server = await launch();
    started.push(server);
    return withClient(server, state);
  };
  const ours = await start(() => startOurs({ repoDir: REPO_DIR, workDir }));
  const distribution = workloads.some((w) => w.peer !== false) ? await start(() => startDistribution({ binary, workDir })) : undefined;
  const servers = { instances: { ours }, distribution, floors: {} };
  log(`setup (untimed) …`);
  const reads = (prefix) => workloads.some((w) => w.id.startsWith(prefix));
  const needs = { tags: reads("tags-"), referrers: reads("referrers-") };
  for (const server of [ours, distribution].filter(Boolean)) server.state = await setupServer(server.client, data, config, log, needs);
  const probe = await fetch(new URL("/v2/", ours.baseUrl));
  await probe.arrayBuffer();
  const metered = probe.headers.has("registry-cost");
  const lines = [
    `ours: \`npm start\` with COST_HEADER=on, ${ours.baseUrl}; Registry-Cost header ${metered ? "present" : "absent (no meter on this revision)"}; blob GET of the big blob answered ${ours.state.redirects ? "with a redirect" : "directly"}, of a 64 KiB blob ${ours.state.smallRedirects ? "with a redirect" : "directly"}`,
  ];
  context.redirects = ours.state.redirects;
  for (const variant of VARIANTS) {
    const used = workloads.some((w) => [w.instance, ...(w.alsoUses ?? [])].includes(variant.name));
    if (!used) continue;
    const vars = Object.entries(variant.vars).map(([k, v]) => `${k}=${v}`).join(" ");
    if (!context.redirects) {
      lines.push(`${variant.name} (${vars}): not started, ours does not redirect blob GETs`);
      continue;
    }
    const server = await start(() => startOurs({ repoDir: REPO_DIR, workDir, name: variant.name, vars: variant.vars }), ours.state);
    await variant.setup(server.client, data, config, log);
    servers.instances[variant.name] = server;
    lines.push(`${variant.name}: a second \`npm start\` with ${vars}, ${server.baseUrl}`);
  }
  if (distribution) lines.push(`distribution: ${distribution.baseUrl}`);
  // A floor for each instance of ours, serving the twins of its workloads only: so each floor is busy, and idle, when its instance is.
  for (const instance of Object.keys(servers.instances)) {
    const twins = workloads.filter((w) => w.floor && (w.instance ?? "ours") === instance);
    if (twins.length === 0) continue;
    log(`floor of ${instance}: recording its answers for the twins …`);
    const floor = await start(() => startFloor({ repoDir: REPO_DIR, workDir, twinOf: instance }), ours.state);
    await prepareFloor({ floor, workloads: twins, context, instances: servers.instances, log });
    servers.floors[instance] = floor;
    lines.push(`floor of ${instance}: bench/floor/worker.js under the same wrangler dev, ${floor.baseUrl}, replaying ${instance}'s answers`);
  }
  log(`setup: ${[ours, distribution].filter(Boolean).map((s) => `${s.name} ${JSON.stringify(s.state)}`).join(", ")}`);
  return { servers, lines };
}

function hasFailures(results) {
  return results.entries().some(({ roles }) => Object.values(roles).some((side) => side.outcomes.some((o) => o.failures.length > 0)));
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

/** --only and --skip: workload ids, or "memory" for every memory workload. */
function selection(config) {
  const all = [...MEMORY_WORKLOADS, ...MAIN_WORKLOADS];
  const expand = (ids) => (ids ? new Set([...ids].flatMap((id) => (id === "memory" ? MEMORY_WORKLOADS.map((w) => w.id) : [id]))) : null);
  const only = expand(config.only);
  const skip = expand(config.skip) ?? new Set();
  // A mistyped id would otherwise run nothing and say nothing.
  const known = new Set(all.map((w) => w.id));
  const unknown = [...(only ?? []), ...skip].filter((id) => !known.has(id));
  if (unknown.length > 0) throw new Error(`no workload ${unknown.join(", ")}; the ids are memory (all memory workloads), ${[...known].join(", ")}`);
  return (list) => list.filter((w) => (!only || only.has(w.id)) && !skip.has(w.id));
}

async function main() {
  const config = loadConfig();
  if (config.help) {
    console.log(usage());
    return 0;
  }
  const selected = selection(config);
  const memoryWorkloads = selected(MEMORY_WORKLOADS);
  const mainWorkloads = selected(MAIN_WORKLOADS);
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
  let instances = [];
  let fatal = null;
  try {
    log("data: generating shared content …");
    const data = makeSharedData(config);
    const context = { config, data, instances: {}, redirects: false };
    const serverSpec = { binary, workDir, started };

    if (memoryWorkloads.length > 0) {
      log("memory phase: a fresh pair of servers each round …");
      await memoryPhase({ workloads: memoryWorkloads, config, context, results, servers: serverSpec });
    }
    if (mainWorkloads.length > 0) {
      const main = await startMain({ workloads: mainWorkloads, serverSpec, context });
      instances = main.lines;
      context.instances = main.servers.instances;
      for (let round = 1; round <= config.rounds; round++) {
        await runRound({ round, rounds: config.rounds, workloads: mainWorkloads, servers: main.servers, context, results });
      }
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
  const report = renderReport({ results, rows, targets, instances, machine, bundle, config, startedAt, elapsedMs: now() - start });
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
  return hasFailures(results) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
