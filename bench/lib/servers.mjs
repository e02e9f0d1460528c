/**
 * Starting and stopping the registries under test (and the floor Worker),
 * each in its own process group so the whole tree (npm → wrangler → workerd)
 * goes at the end.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A free loopback port, chosen by the kernel. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function tail(path, lines = 30) {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Spawns `command` detached (its own process group), output to `logPath`. */
function spawnGroup(command, args, { cwd, env, logPath }) {
  const log = openSync(logPath, "a");
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", log, log] });
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return child;
}

/** Polls GET /v2/ until it answers 200; fails early if the server died. */
async function waitReady(baseUrl, child, logPath, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  let exited = null;
  child.exited.then((status) => (exited = status));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`server exited (${JSON.stringify(exited)}) before answering:\n${tail(logPath)}`);
    try {
      const response = await fetch(new URL("/v2/", baseUrl));
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`server at ${baseUrl} not ready after ${timeoutMs} ms:\n${tail(logPath)}`);
}

/** SIGTERM to the group, SIGKILL if it lingers. Only ever the group this module started. */
async function stopGroup(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const signal = (name) => {
    try {
      process.kill(-child.pid, name);
    } catch {
      // Already gone.
    }
  };
  signal("SIGTERM");
  const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), 5000));
  if ((await Promise.race([child.exited, timeout])) === "timeout") signal("SIGKILL");
  // workerd may outlive its parent briefly; make sure nothing of the group is left.
  signal("SIGKILL");
}

/** Every process on the machine as pid → { ppid, comm }, from /proc. */
function processTable() {
  const table = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // comm is in parentheses and may hold spaces; fields after it are space separated.
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      table.set(Number(entry), { ppid, comm });
    } catch {
      // The process ended while we looked.
    }
  }
  return table;
}

function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/**
 * wrangler dev runs two workerd: a proxy bound to the public port, and the
 * one that runs the worker with its Durable Objects, D1 and R2 simulators.
 */
function ourProcessLabel(pid, port) {
  const command = commandLine(pid);
  if (!command.includes("workerd")) return "wrangler (node)";
  return command.includes(`entry=127.0.0.1:${port} `) ? "proxy workerd" : "worker workerd";
}

/** Pids of the descendants of `root` whose command name is `comm`. */
export function descendantsNamed(root, comm) {
  const table = processTable();
  const found = [];
  const frontier = [root];
  while (frontier.length > 0) {
    const parent = frontier.pop();
    for (const [pid, info] of table) {
      if (info.ppid !== parent) continue;
      frontier.push(pid);
      if (info.comm === comm) found.push(pid);
    }
  }
  return found;
}

/**
 * Our registry under `wrangler dev`, as `npm start` runs it, over a fresh
 * state directory, with COST_HEADER=on so each response says what it cost;
 * `vars` are passed on to wrangler as `--var NAME:VALUE` (a second instance
 * with BLOB_REDIRECT=none, say). WRANGLER_LOG=warn turns off wrangler's
 * per-request log line, which costs an extra loopback HTTP call into
 * wrangler's Node process on every request in the simulator and exists
 * nowhere in production (the peer's access log is off too).
 */
export async function startOurs({ repoDir, workDir, name = "ours", vars = {} }) {
  const port = await freePort();
  const stateDir = mkdtempSync(join(workDir, `${name}-state-`));
  const logPath = join(workDir, `${name}.log`);
  const inspectorPort = await freePort();
  const env = { ...wranglerEnv(), REGISTRY_STATE: stateDir, COST_HEADER: "on" };
  const args = ["start", "--", "--port", String(port), "--ip", "127.0.0.1", "--inspector-port", String(inspectorPort)];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  const { child, server } = await launch("npm", args, { cwd: repoDir, env, logPath, port });
  return {
    ...server,
    name,
    vars,
    dataDir: stateDir,
    ...wranglerProcesses(child, port),
    /** The workerd processes serving our registry (wrangler runs a proxy and the worker itself). */
    memoryPids: () => descendantsNamed(child.pid, "workerd"),
    processLabel: (pid) => ourProcessLabel(pid, port),
    /** wrangler's DevTools socket: the worker's isolate, whose heap is what the Workers memory limit counts. */
    inspectorUrl: `ws://127.0.0.1:${inspectorPort}/ws`,
  };
}

/** A wrangler dev tree's processes: its workerd pids (which change if it restarts the worker), and every busy one, for CPU accounting. */
function wranglerProcesses(child, port) {
  return {
    workerPids: () => descendantsNamed(child.pid, "workerd").join(","),
    processes: () =>
      [...descendantsNamed(child.pid, "workerd"), ...descendantsNamed(child.pid, "node")].map((pid) => ({ pid, label: ourProcessLabel(pid, port) })),
  };
}

/** The floor Worker (bench/floor) under the same wrangler dev as ours, over a fresh state directory: the twin of the instance of ours `twinOf`. */
export async function startFloor({ repoDir, workDir, twinOf = "ours" }) {
  const port = await freePort();
  const stateDir = mkdtempSync(join(workDir, `floor-of-${twinOf}-state-`));
  const logPath = join(workDir, `floor-of-${twinOf}.log`);
  // Its own inspector port, as ours has: several floors may run at once.
  const args = ["dev", "--config", "bench/floor/wrangler.toml", "--persist-to", stateDir, "--port", String(port), "--ip", "127.0.0.1", "--inspector-port", String(await freePort())];
  const { child, server } = await launch(join(repoDir, "node_modules/.bin/wrangler"), args, { cwd: repoDir, env: wranglerEnv(), logPath, port });
  return { ...server, name: "floor", dataDir: stateDir, ...wranglerProcesses(child, port) };
}

function wranglerEnv() {
  return {
    ...process.env,
    // Run wrangler on the same Node as the bench (the machine default may be too old).
    PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_LOG: "warn",
    // Off for ours (npm start's default) and the floor alike: each request's trace written to SQLite is the simulator's cost.
    X_LOCAL_OBSERVABILITY: "false",
  };
}

function distributionBinary() {
  for (const path of ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]) if (existsSync(path)) return path;
  return null;
}

/** The peer's binary, installed from Debian's package when missing and we may (root). */
export function ensureDistribution() {
  let binary = distributionBinary();
  if (binary) return binary;
  if (process.getuid?.() !== 0) throw new Error("docker-registry is missing; install Debian's docker-registry package (apt-get install docker-registry)");
  console.error("docker-registry missing: installing Debian's docker-registry package…");
  execFileSync("apt-get", ["update"], { stdio: "inherit" });
  execFileSync("apt-get", ["install", "-y", "docker-registry"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  binary = distributionBinary();
  if (!binary) throw new Error("docker-registry still missing after apt-get install");
  return binary;
}

export function distributionVersion(binary) {
  try {
    return execFileSync(binary, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/** CNCF distribution on the filesystem driver, deletes on, no auth, quiet logs. */
function distributionConfig({ port, dataDir }) {
  return `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${dataDir}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
`;
}

export async function startDistribution({ binary, workDir }) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(workDir, "distribution-data-"));
  const configPath = join(workDir, "distribution.yml");
  writeFileSync(configPath, distributionConfig({ port, dataDir }));
  const logPath = join(workDir, "distribution.log");
  const { child, server } = await launch(binary, ["serve", configPath], { cwd: workDir, env: process.env, logPath, port });
  return {
    ...server,
    name: "distribution",
    dataDir,
    workerPids: () => String(child.pid),
    memoryPids: () => [child.pid],
    processLabel: () => "docker-registry",
    processes: () => [{ pid: child.pid, label: "docker-registry" }],
  };
}

/** Starts a server's process group and waits for its /v2/; a server that never answers is stopped. */
async function launch(command, args, { cwd, env, logPath, port }) {
  const child = spawnGroup(command, args, { cwd, env, logPath });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitReady(baseUrl, child, logPath);
  } catch (error) {
    await stopGroup(child);
    throw error;
  }
  const server = {
    baseUrl,
    logPath,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: () => stopGroup(child),
  };
  return { child, server };
}

/** The last lines of a server's log, for reports of a server that died or restarted. */
export function logTail(server, lines = 15) {
  return tail(server.logPath, lines);
}

export function makeWorkDir() {
  return mkdtempSync(join(tmpdir(), "registry-bench-"));
}
