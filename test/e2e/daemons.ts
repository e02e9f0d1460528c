import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { run, type RunResult } from "./clients";

const STARTUP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
/** Enough of a daemon's log to explain a failed start or stop. */
const OUTPUT_TAIL_CHARS = 20_000;

/**
 * A daemon run by a test file in its own process group, writing only under `dir`, keeping the
 * tail of its log.
 */
class Daemon {
  private output = "";
  /** How the process ended, once it has. */
  private ending: string | undefined;
  private readonly ended: Promise<void>;

  private constructor(
    private readonly name: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    const collect = (chunk: Uint8Array) => {
      this.output = (this.output + new TextDecoder().decode(chunk)).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    this.ended = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.ending = signal ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
      child.once("error", (error) => {
        this.ending = `error ${error.message}`;
        resolve();
      });
    });
  }

  static spawn(command: string, args: readonly string[], dir: string): Daemon {
    // Its own group, so that stopping it reaches any process it started.
    return new Daemon(command, dir, spawn(command, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] }));
  }

  /** Polls `probe` (a client call) until it succeeds; fails early, with the log, if the daemon exits. */
  async waitUntilReady(probe: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (this.ending) throw new Error(`${this.name} exited (${this.ending}) before it was ready:\n${this.output}`);
      try {
        await probe();
        return;
      } catch (error) {
        lastError = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`${this.name} was not ready within ${STARTUP_TIMEOUT_MS / 1000} s (${String(lastError)}):\n${this.output}`);
  }

  /**
   * SIGTERM and time to shut down (a daemon unmounts and removes its sockets), then SIGKILL to
   * whatever is left of the group, then unmounts what it left mounted under its directory.
   * Throws, once nothing is left, unless the daemon exited 0.
   */
  async stop(): Promise<void> {
    if (this.child.pid === undefined) return;
    const group = -this.child.pid;
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(group, name);
      } catch {
        // Nothing left in the group.
      }
    };
    signal("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.ended.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    signal("SIGKILL");
    await this.ended;
    await unmountUnder(this.dir);
    if (timedOut) throw new Error(`${this.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM:\n${this.output}`);
    if (this.ending !== "code 0") throw new Error(`${this.name} stopped with ${this.ending}:\n${this.output}`);
  }
}

/**
 * Unmounts every mount point under `dir`, deepest first. dockerd bind-mounts its data root onto
 * itself and undoes it only on a clean shutdown, not when it fails to start or is killed.
 */
async function unmountUnder(dir: string): Promise<void> {
  // Mount points are listed by their real paths.
  const root = await realpath(dir);
  const mountInfo = await readFile("/proc/self/mountinfo", "utf8");
  // The fifth field is the mount point, with spaces and the like written as octal escapes.
  const mountPoints = mountInfo
    .split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((mountPoint) => mountPoint.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mountPoints) await run("umount", [mountPoint]);
}

/** Starts a daemon writing under `dir` and waits for `probe`; if it never gets ready, stops it before throwing. */
async function startDaemon(command: string, args: readonly string[], dir: string, probe: () => Promise<unknown>): Promise<Daemon> {
  const daemon = Daemon.spawn(command, args, dir);
  try {
    await daemon.waitUntilReady(probe);
  } catch (error) {
    // The start's error, with the log, says more than the stop's would.
    await daemon.stop().catch(() => {});
    throw error;
  }
  return daemon;
}

/** containerd with its config, root, state and socket under one directory, and `ctr` talking to it. */
export class Containerd {
  private constructor(
    readonly socket: string,
    private readonly daemon: Daemon,
  ) {}

  static async start(dir: string): Promise<Containerd> {
    await mkdir(dir, { recursive: true });
    const config = join(dir, "config.toml");
    await writeFile(config, containerdConfig(dir));
    const socket = join(dir, "containerd.sock");
    const daemon = await startDaemon("containerd", ["--config", config], dir, () => run("ctr", ["--address", socket, "version"]));
    return new Containerd(socket, daemon);
  }

  ctr(...args: string[]): Promise<RunResult> {
    return run("ctr", ["--address", this.socket, ...args]);
  }

  stop(): Promise<void> {
    return this.daemon.stop();
  }
}

/** Every path containerd writes to lies under `dir` (TOML strings are JSON's, for plain paths). */
function containerdConfig(dir: string): string {
  const path = (name: string) => JSON.stringify(join(dir, name));
  return [
    "version = 2",
    `root = ${path("root")}`,
    `state = ${path("state")}`,
    // Kubernetes' CRI is not used; it would look for CNI networks under /etc.
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    "[grpc]",
    `address = ${path("containerd.sock")}`,
    // Where containerd installs managed binaries; /opt/containerd by default.
    '[plugins."io.containerd.internal.v1.opt"]',
    `path = ${path("opt")}`,
    "",
  ].join("\n");
}

export interface DockerdOptions {
  /** host:port that docker may reach over plain HTTP. */
  insecureRegistry: string;
}

/**
 * dockerd with every directory, socket and setting its own, and the `docker` client talking to
 * it. It runs on a containerd started for it: left alone, dockerd takes the machine's containerd
 * if one is running, or starts one that writes to /opt/containerd. Nothing here runs a container:
 * vfs storage needs no overlay mounts, and with no bridge, iptables or IP forwarding the host's
 * network stays as it is.
 */
export class Dockerd {
  private constructor(
    private readonly host: string,
    private readonly daemon: Daemon,
    private readonly containerd: Containerd,
  ) {}

  /** Starts containerd under `dir`/containerd, then dockerd under `dir`/dockerd. */
  static async start(dir: string, options: DockerdOptions): Promise<Dockerd> {
    const containerd = await Containerd.start(join(dir, "containerd"));
    try {
      const own = join(dir, "dockerd");
      await mkdir(own, { recursive: true });
      // Its own config file, so /etc/docker/daemon.json is not read, naming where the daemon's
      // identity key goes (/etc/docker/key.json by default).
      const config = join(own, "daemon.json");
      await writeFile(config, JSON.stringify({ "deprecated-key-path": join(own, "key.json") }));
      const host = `unix://${join(own, "docker.sock")}`;
      const daemon = await startDaemon(
        "dockerd",
        [
          ["--config-file", config],
          ["--containerd", containerd.socket],
          ["--data-root", join(own, "data")],
          ["--exec-root", join(own, "exec")],
          ["--pidfile", join(own, "docker.pid")],
          ["-H", host],
          ["--storage-driver", "vfs"],
          ["--bridge=none", "--iptables=false", "--ip-forward=false"],
          ["--insecure-registry", options.insecureRegistry],
        ].flat(),
        own,
        () => run("docker", ["-H", host, "version"]),
      );
      return new Dockerd(host, daemon, containerd);
    } catch (error) {
      await containerd.stop().catch(() => {}); // As in startDaemon: dockerd's error is the one to see.
      throw error;
    }
  }

  docker(...args: string[]): Promise<RunResult> {
    return run("docker", this.dockerArgs(...args));
  }

  /** The arguments `docker()` runs the client with, for `attempt` and `runWith`. */
  dockerArgs(...args: string[]): string[] {
    return ["-H", this.host, ...args];
  }

  /**
   * `docker build` with the classic builder, whose COPY steps need no container runtime.
   * Returns the image ID.
   */
  async build(context: string, tag: string): Promise<string> {
    const { stdout } = await run("docker", ["-H", this.host, "build", "--quiet", "--tag", tag, context], { DOCKER_BUILDKIT: "0" });
    return stdout.trim();
  }

  /** Stops dockerd, then its containerd, even if dockerd did not stop cleanly. */
  async stop(): Promise<void> {
    try {
      await this.daemon.stop();
    } finally {
      await this.containerd.stop();
    }
  }
}
