import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  interface ProvidedContext {
    /** host:port of the registry under test, with AUTH_MODE=none, as image references spell it (127.0.0.1:PORT). */
    registry: string;
    /**
     * The Worker's own listener inside that `npm start` (http://127.0.0.1:PORT), behind wrangler's
     * dev proxy, for requests whose transport the proxy would answer for the Worker.
     */
    workerOrigin: string;
    /** host:port of a second registry, started as `AUTH_MODE=token npm start`: access is checked. */
    securedRegistry: string;
    /** The bootstrap administrator's login, from the .dev.vars that `npm start` keeps. */
    admin: { username: string; password: string };
  }
}

const STARTUP_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 10_000;
/** Enough of the server's output to explain a failed start. */
const OUTPUT_TAIL_CHARS = 20_000;

export interface Running {
  /** host:port */
  address: string;
  workerOrigin: string;
  /** The last of what the server printed (the Worker's console.log lines among it). */
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts the registry the way `npm start` does (D1 migrations, then `wrangler dev`), once with
 * auth off and once with it on, each over a fresh state directory, for the whole e2e run, and
 * stops them afterwards.
 */
export default async function setup({ provide, config }: TestProject): Promise<() => Promise<void>> {
  // Both starts read .dev.vars: it is made once, before either runs.
  await new Promise<void>((resolve, reject) =>
    spawn("node", ["scripts/dev-vars.mjs"], { cwd: config.root, stdio: "ignore" }).on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`dev-vars.mjs exited with ${code}`)))),
  );
  const started = await Promise.allSettled([startRegistry(config.root, "none"), startRegistry(config.root, "token")]);
  const stopAll = () => Promise.all(started.map((s) => (s.status === "fulfilled" ? s.value.stop() : undefined))).then(() => {});
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    await stopAll();
    throw failed.reason;
  }
  const [open, secured] = started.map((s) => (s as PromiseFulfilledResult<Running>).value) as [Running, Running];
  provide("registry", open.address);
  provide("workerOrigin", open.workerOrigin);
  provide("securedRegistry", secured.address);
  provide("admin", await adminOf(config.root));
  return stopAll;
}

/** Starts that fail because a port was taken meanwhile are tried again, on new ports. */
const START_ATTEMPTS = 3;

/**
 * A registry as `npm start -- ...args` starts it, over a fresh state directory, on ports of its
 * own: also for a test file that needs other vars (`--var NAME:value`) than the shared ones.
 * Its caller stops it.
 */
export async function startRegistry(root: string, authMode: "none" | "token", args: string[] = []): Promise<Running> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(root, authMode, args);
    } catch (error) {
      // A free port is only free until someone binds it: wrangler binds its ports seconds after
      // they were chosen (migrations run first), while other servers on the machine bind theirs.
      if (attempt >= START_ATTEMPTS || !String(error).includes("Address already in use")) throw error;
    }
  }
}

async function startOnce(root: string, authMode: "none" | "token", args: string[]): Promise<Running> {
  const port = await freePort();
  // Left to itself, every wrangler dev probes from 9229 up for its inspector: two starting at once
  // (these two, or another checkout's) can pick the same port, and one fails "Address already in use".
  const inspectorPort = await freePort();
  const state = await mkdtemp(join(tmpdir(), `e2e-registry-${authMode}-`));
  // At debug level wrangler says where the Worker itself listens (its proxy forwards there).
  const server = spawn("npm", ["start", "--", "--port", String(port), "--inspector-port", String(inspectorPort), "--ip", "127.0.0.1", "--log-level", "debug", ...args], {
    cwd: root,
    env: { ...process.env, REGISTRY_STATE: state, AUTH_MODE: authMode, WRANGLER_SEND_METRICS: "false" },
    // Its own process group: npm, the shell, wrangler and workerd all stop together.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let workerOrigin: string | undefined;
  const collect = (chunk: Uint8Array) => {
    output = (output + new TextDecoder().decode(chunk)).slice(-OUTPUT_TAIL_CHARS);
    const worker = /"userWorkerUrl":\{"protocol":"http:","hostname":"([^"]+)","port":"(\d+)"\}/.exec(output);
    if (worker) workerOrigin ??= `http://${worker[1]}:${worker[2]}`;
  };
  server.stdout?.on("data", collect);
  server.stderr?.on("data", collect);

  const stop = async () => {
    await stopGroup(server);
    await rm(state, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(`http://127.0.0.1:${port}/v2/`, server, () => output);
    for (const deadline = Date.now() + 10_000; !workerOrigin && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 100));
    if (!workerOrigin) throw new Error(`wrangler did not say where the Worker listens:\n${output}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { address: `127.0.0.1:${port}`, workerOrigin, output: () => output, stop };
}

/** ADMIN_USERNAME and ADMIN_PASSWORD from .dev.vars. */
async function adminOf(root: string): Promise<{ username: string; password: string }> {
  const vars = await readFile(join(root, ".dev.vars"), "utf8");
  const value = (name: string) => new RegExp(`^${name}=(.*)$`, "m").exec(vars)?.[1] ?? "";
  return { username: value("ADMIN_USERNAME"), password: value("ADMIN_PASSWORD") };
}

/** A port nothing listens on: one the system just handed out and took back. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** Polls the base endpoint until the registry answers (200, or 401 with auth on); fails early, with the output, if the server exits. */
async function waitUntilReady(url: string, server: ChildProcess, output: () => string): Promise<void> {
  let exited: string | undefined;
  server.once("exit", (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the registry ${exited} before it was ready:\n${output()}`);
    try {
      if ((await fetch(url)).headers.get("Docker-Distribution-API-Version")) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`GET ${url} did not answer 200 within ${STARTUP_TIMEOUT_MS / 1000} s:\n${output()}`);
}

/** SIGTERM to the whole group, time to exit cleanly (wrangler removes its temp files), then SIGKILL. */
async function stopGroup(server: ChildProcess): Promise<void> {
  if (server.pid === undefined) return;
  const group = -server.pid;
  const signal = (name: string | number): boolean => {
    try {
      return process.kill(group, name);
    } catch {
      return false; // Nothing left in the group.
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  // Signal 0 only asks whether any process of the group is left.
  while (signal(0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  signal("SIGKILL");
}
