/**
 * Settings: full-run defaults, quick-run (smoke) defaults, each overridable by
 * an environment variable BENCH_<NAME> or a flag --<name> <value> (flags win).
 */

// name: [full, quick, what it is]
const SETTINGS = {
  rounds: [5, 2, "rounds per workload; each round runs ours, then its floor twin, then distribution"],
  smallBlobs: [200, 24, "64 KiB blobs pushed per round and push shape (concurrency 8)"],
  smallBlobKib: [64, 64, "size of a small blob, KiB"],
  pullBlobs: [100, 16, "distinct small blobs pulled from"],
  pullRequests: [2000, 200, "small-blob GETs per round (concurrency 16), and as many of the redirect hop and of the final hop"],
  bigMib: [256, 16, "size of the big blob, MiB"],
  chunkMib: [8, 4, "chunk size of the chunked big pushes (ours stores them as R2 parts), MiB"],
  memoryMib: [1024, 64, "size of each streamed upload whose peak memory is measured (one alone, then four at once), MiB"],
  liveMib: [256, 32, "size of each stream of the second, unmeasured push that reads the isolate's live memory half way, MiB"],
  manifestRequests: [3000, 300, "GETs (and as many HEADs) per round of a manifest by tag, by digest, and of GET /v2/ and blob HEAD (concurrency 32)"],
  manifestPuts: [500, 50, "manifest PUTs per round (concurrency 8)"],
  tags: [10000, 500, "tags in the tag-listing repository"],
  referrers: [1000, 250, "referrers of the referrers subject"],
  pageRequests: [1000, 60, "requests per round for a first or deep page of tags or referrers (concurrency 8)"],
  thresholdPulls: [30, 6, "sequential pulls per blob size and path per round in redirect-threshold"],
  walks: [10, 2, "all-pages walks per round with n=100 (100 pages of tags, 10 of referrers)"],
  pageWalks: [100, 10, "all-pages walks per round without n: ours answers each in one page, so one walk is one request"],
  slices: [4, 2, "slices per round in which a workload with a floor twin alternates between ours and the twin (ours, twin, twin, ours, ...)"],
  setupConcurrency: [8, 8, "concurrency of the untimed setup pushes"],
};

const FLAGS_WITHOUT_VALUE = new Set(["quick", "no-bundle", "help"]);

function parseArgs(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split("=", 2);
    if (FLAGS_WITHOUT_VALUE.has(name)) flags[name] = inline ?? "1";
    else flags[name] = inline ?? argv[++i];
  }
  return flags;
}

const envName = (name) => `BENCH_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
const flagName = (name) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const truthy = (value) => value !== undefined && value !== "" && value !== "0" && value !== "false";

export function usage() {
  const lines = ["npm run bench -- [--quick] [--rounds N] [--only id,id] [--skip id,id] [--report FILE] [--no-bundle] [--<setting> N]", "", "settings (full / quick default; env BENCH_<NAME>):"];
  for (const [name, [full, quick, what]] of Object.entries(SETTINGS)) lines.push(`  --${flagName(name)} (${envName(name)})  ${full} / ${quick}  ${what}`);
  lines.push("", "BENCH_QUICK=1 or --quick: small sizes that still run every workload.");
  lines.push("BENCH_ONLY / --only: comma-separated workload ids to run (default all); memory-upload* run first, each round on fresh servers.");
  lines.push("BENCH_SKIP / --skip: comma-separated workload ids not to run, e.g. --skip memory-upload,memory-upload-sized,memory-upload-x4,memory-upload-sized-x4.");
  lines.push("BENCH_REPORT / --report: also write the results as Markdown to FILE.");
  return lines.join("\n");
}

export function loadConfig(argv = process.argv.slice(2), env = process.env) {
  const flags = parseArgs(argv);
  const quick = truthy(flags.quick ?? env.BENCH_QUICK);
  const config = { quick, help: truthy(flags.help) };
  for (const [name, [full, quickValue]] of Object.entries(SETTINGS)) {
    const raw = flags[flagName(name)] ?? env[envName(name)];
    const value = raw === undefined ? (quick ? quickValue : full) : Number(raw);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
    config[name] = value;
  }
  // The deep-page workloads ask for n=100 after the entry 101 from the end, and the first page must have a next.
  for (const name of ["tags", "referrers"]) if (config[name] < 201) throw new Error(`${name} must be at least 201 for the paging workloads`);
  // Every slice makes at least one request (walks are the fewest).
  const fewest = Math.min(config.walks, config.pageWalks);
  if (!Number.isInteger(config.slices) || config.slices > fewest) throw new Error(`slices must be a whole number of at most walks and pageWalks (${fewest}), got ${config.slices}`);
  const ids = (list) => (list ? new Set(list.split(",").map((s) => s.trim()).filter(Boolean)) : null);
  config.only = ids(flags.only ?? env.BENCH_ONLY);
  config.skip = ids(flags.skip ?? env.BENCH_SKIP);
  config.report = flags.report ?? env.BENCH_REPORT ?? null;
  config.bundle = !truthy(flags["no-bundle"] ?? env.BENCH_NO_BUNDLE);
  return config;
}
