import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { createGunzip } from "node:zlib";

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** How a command ended, whether it succeeded or not. */
export interface Outcome extends RunResult {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Written to the command's standard input, which is then closed (e.g. a password for --password-stdin). */
  input?: string;
  /** The working directory, if not this process's. */
  cwd?: string;
}

/** Runs a command to completion and says how it ended; a command that fails is no error here (see `run`). */
export function attempt(command: string, args: readonly string[], options: RunOptions = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"], env: { ...process.env, ...options.env } });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    child.stdin?.end(options.input);
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * Runs a command to completion, with `env` added to this process's environment; a non-zero exit
 * throws with the command line and its stderr.
 */
export function run(command: string, args: readonly string[], env?: Record<string, string>): Promise<RunResult> {
  return runWith(command, args, env ? { env } : {});
}

/** `run` with standard input or an environment: a non-zero exit throws with the command line and its stderr. */
export async function runWith(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const { code, signal, stdout, stderr } = await attempt(command, args, options);
  if (code === 0) return { stdout, stderr };
  const tail = stderr.length > 8000 ? `…${stderr.slice(-8000)}` : stderr;
  throw new Error(`${command} ${args.join(" ")} failed (${signal ?? `exit ${code}`}):\n${tail}`);
}

/** skopeo against a plain-HTTP registry; every TLS flag is given since copy takes two transports. */
export const skopeo = {
  copy: (source: string, destination: string, ...flags: string[]) =>
    run("skopeo", ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", ...flags, source, destination]),
  /** `copy` with --debug, whose stderr lists every request skopeo made. */
  copyDebug: async (source: string, destination: string, ...flags: string[]) =>
    (await run("skopeo", ["--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", ...flags, source, destination])).stderr,
  /**
   * `skopeo inspect`: the image's digest, architecture and more; for an index, of the platform
   * chosen by `globalFlags` such as --override-arch.
   */
  inspect: async (reference: string, ...globalFlags: string[]): Promise<unknown> =>
    JSON.parse((await run("skopeo", [...globalFlags, "inspect", "--tls-verify=false", reference])).stdout),
  inspectRaw: async (reference: string) => (await run("skopeo", ["inspect", "--tls-verify=false", "--raw", reference])).stdout,
  listTags: async (reference: string) => JSON.parse((await run("skopeo", ["list-tags", "--tls-verify=false", reference])).stdout) as { Tags: string[] },
  delete: (reference: string) => run("skopeo", ["delete", "--tls-verify=false", reference]),
};

/** What skopeo or buildah, run with --debug, say they did to the destination repository. */
export interface TransferLog {
  /** Mount attempts: POST …/blobs/uploads/?mount=<digest>&from=<repository>. */
  mounts: { digest: string; from: string }[];
  /** How many mounts the registry answered 201 (`... mount OK`) and 202 (an upload session instead). */
  mountedCount: number;
  refusedCount: number;
  /** Blobs not sent because the destination had them, found by HEAD or made so by a mount. */
  skipped: string[];
  /** Blobs whose bytes were sent: the `digest` of each PUT closing an upload. */
  uploaded: string[];
}

/**
 * Reads containers/image's debug messages. Layers are copied concurrently, so the messages of
 * different blobs interleave: each fact is read from a message that names its digest, and the
 * mount outcomes, which name none, are only counted.
 */
export function parseTransferLog(stderr: string): TransferLog {
  const messages = [...stderr.matchAll(/level=debug msg="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
  const log: TransferLog = { mounts: [], mountedCount: 0, refusedCount: 0, skipped: [], uploaded: [] };
  for (const message of messages) {
    const mount = /^Trying to mount (\S+)$/.exec(message);
    if (mount) {
      const query = new URL(mount[1]!, "http://registry").searchParams;
      log.mounts.push({ digest: query.get("mount") ?? "", from: query.get("from") ?? "" });
    }
    if (message === "... mount OK") log.mountedCount++;
    if (message.startsWith("... started an upload instead of mounting")) log.refusedCount++;
    const skipped = /^Skipping blob (\S+) \(already present\)/.exec(message);
    if (skipped) log.skipped.push(skipped[1]!);
    const put = /^PUT (\S+\/blobs\/uploads\/\S+)$/.exec(message);
    if (put) log.uploaded.push(new URL(put[1]!).searchParams.get("digest") ?? "");
  }
  return log;
}

export interface ImageFile {
  /** Where the file goes in the image. */
  path: string;
  /** The file on this machine. */
  source: string;
}

export interface ImageSpec {
  /** Local name for the image, e.g. "localhost/app". */
  name: string;
  files: ImageFile[];
  arch?: string;
  os?: string;
  /** An image to build on, making the result one layer longer. */
  base?: string;
}

/**
 * A temporary directory with its own buildah and podman storage, so tests share no images with
 * the machine or with each other. Delete it with `remove()`. (Run as root, the clients still
 * share one blob-info cache, /var/lib/containers/cache: it remembers which repositories of the
 * registry hold a blob, and turns later pushes of that blob into mounts.)
 */
export class Workspace {
  private constructor(readonly dir: string) {}

  static async create(label: string): Promise<Workspace> {
    return new Workspace(await mkdtemp(join(tmpdir(), `e2e-${label}-`)));
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  private storageFlags(name: string): string[] {
    return ["--root", this.path(name, "root"), "--runroot", this.path(name, "run"), "--storage-driver", "vfs"];
  }

  buildah(...args: string[]): Promise<RunResult> {
    return run("buildah", [...this.storageFlags("buildah"), ...args]);
  }

  /**
   * podman with storage apart from buildah's, so a pull really pulls instead of finding the built
   * image; and its own tmpdir, where podman keeps libpod state (default /run/libpod, shared).
   */
  podman(...args: string[]): Promise<RunResult> {
    return run("podman", this.podmanArgs(...args));
  }

  /** The arguments `podman()` runs podman with, for `attempt` and `runWith`. */
  podmanArgs(...args: string[]): string[] {
    return [...this.storageFlags("podman"), "--tmpdir", this.path("podman", "tmp"), "--events-backend", "none", ...args];
  }

  /** Writes a file under the workspace and returns its path. */
  async file(name: string, content: Uint8Array | string): Promise<string> {
    const path = this.path("files", name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    return path;
  }

  /** Writes `size` random (incompressible) bytes, in pieces so memory stays flat. */
  async randomFile(name: string, size: number): Promise<string> {
    const path = this.path("files", name);
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, "w");
    try {
      for (let written = 0; written < size; written += RANDOM_PIECE) await handle.write(randomBytes(Math.min(RANDOM_PIECE, size - written)));
    } finally {
      await handle.close();
    }
    return path;
  }

  /** Builds an image with buildah from scratch (or `base`), committed in OCI format. Returns its image ID. */
  async buildImage(spec: ImageSpec): Promise<string> {
    const platform = [...(spec.arch ? ["--arch", spec.arch] : []), ...(spec.os ? ["--os", spec.os] : [])];
    const container = (await this.buildah("from", ...platform, spec.base ?? "scratch")).stdout.trim();
    try {
      for (const file of spec.files) await this.buildah("copy", container, file.source, file.path);
      // `from scratch` has no platform of its own; say it in the config too.
      if (platform.length > 0) await this.buildah("config", ...platform, container);
      return (await this.buildah("commit", "--quiet", "--format", "oci", container, spec.name)).stdout.trim();
    } finally {
      await this.buildah("rm", container);
    }
  }

  /** Extracts a layer blob (tar, gzip or not) into a fresh directory and returns it. */
  async extractLayer(blob: string): Promise<string> {
    const into = await mkdtemp(join(this.dir, "layer-"));
    await run("tar", ["-xf", blob, "-C", into]);
    return into;
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

const RANDOM_PIECE = 1024 * 1024;

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** sha256 of a file, streamed (layers can be hundreds of MiB). */
export async function sha256File(path: string): Promise<string> {
  return sha256Stream(createReadStream(path));
}

/** sha256 of a gzip file's decompressed bytes: a compressed layer's DiffID. */
export async function sha256Gunzipped(path: string): Promise<string> {
  return sha256Stream(createReadStream(path).pipe(createGunzip()));
}

async function sha256Stream(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

let counter = 0;
/** A repository name no other test, and no other run against the same registry, uses. */
export function uniqueRepo(label: string): string {
  return `e2e/${label}-${Date.now().toString(36)}${(counter++).toString(36)}${randomHex(4)}`;
}

function randomHex(bytes: number): string {
  return Array.from(randomBytes(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  mediaType?: string;
  manifests: Descriptor[];
}

export const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
} as const;

/** An OCI image layout directory (what `skopeo copy … oci:<dir>` and `buildah push … oci:<dir>` write). */
export class OciLayout {
  constructor(readonly dir: string) {}

  blobPath(digest: string): string {
    const [algorithm, hex] = digest.split(":");
    return join(this.dir, "blobs", algorithm!, hex!);
  }

  blob(digest: string): Promise<Uint8Array> {
    return readFile(this.blobPath(digest));
  }

  async json<T>(digest: string): Promise<T> {
    return JSON.parse(new TextDecoder().decode(await this.blob(digest))) as T;
  }

  /** The descriptor index.json holds for `tag`. */
  async tagged(tag: string): Promise<Descriptor> {
    const index = JSON.parse(await readFile(join(this.dir, "index.json"), "utf8")) as ImageIndex;
    const found = index.manifests.filter((d) => d.annotations?.["org.opencontainers.image.ref.name"] === tag);
    if (found.length !== 1) throw new Error(`${this.dir} has ${found.length} entries tagged ${tag}`);
    return found[0]!;
  }
}

/** A request to the registry's HTTP API, e.g. registryFetch(host, `/v2/${repo}/blobs/${digest}`, { method: "HEAD" }). */
export function registryFetch(registry: string, path: string, init?: RequestInit): Promise<Response> {
  return fetch(`http://${registry}${path}`, init);
}
