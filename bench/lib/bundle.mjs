/** Size of what `wrangler deploy` would upload, from a dry run into a temp dir. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile());
}

/** Source maps and wrangler's README are written by --outdir but never uploaded as code. */
const isDeployed = (path) => !path.endsWith(".map") && !path.endsWith("README.md");

export function bundleSize(repoDir) {
  const outdir = mkdtempSync(join(tmpdir(), "registry-bundle-"));
  try {
    const run = spawnSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], {
      cwd: repoDir,
      encoding: "utf8",
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false" },
      timeout: 180_000,
    });
    const output = `${run.stdout}\n${run.stderr}`;
    if (run.status !== 0) throw new Error(`wrangler deploy --dry-run failed (${run.status}):\n${output.slice(-2000)}`);
    const files = filesUnder(outdir).map((path) => {
      const bytes = readFileSync(path);
      return { name: path.slice(outdir.length + 1), size: bytes.length, gzip: gzipSync(bytes).length, deployed: isDeployed(path) };
    });
    const sum = (list, key) => list.reduce((total, file) => total + file[key], 0);
    const deployed = files.filter((file) => file.deployed);
    return {
      files,
      totalBytes: sum(files, "size"),
      totalGzipBytes: sum(files, "gzip"),
      deployedBytes: sum(deployed, "size"),
      deployedGzipBytes: sum(deployed, "gzip"),
      // Wrangler's own figure, e.g. "Total Upload: 309.52 KiB / gzip: 67.75 KiB".
      wranglerLine: output.match(/Total Upload:[^\n]*/)?.[0]?.trim() ?? null,
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
