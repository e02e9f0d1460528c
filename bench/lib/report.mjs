/** Turns the recorded outcomes into medians, ratios, target checks and a Markdown report. */
import { median, ratio } from "./stats.mjs";

export const SERVERS = ["ours", "distribution"];

/** Outcomes by workload and server, in the order workloads were first recorded. */
export class Results {
  #byWorkload = new Map();

  #entry(workload) {
    if (!this.#byWorkload.has(workload.id)) {
      this.#byWorkload.set(workload.id, { workload, servers: Object.fromEntries(SERVERS.map((s) => [s, { outcomes: [], unsupported: null }])) });
    }
    return this.#byWorkload.get(workload.id);
  }

  record(workload, server, outcome) {
    this.#entry(workload).servers[server].outcomes.push(outcome);
  }

  unsupported(workload, server, reason) {
    this.#entry(workload).servers[server].unsupported = reason;
  }

  entries() {
    return [...this.#byWorkload.values()];
  }
}

function figureMedian(side, key) {
  const values = side.outcomes.map((o) => o.values[key]).filter(Number.isFinite);
  return values.length > 0 ? median(values) : NaN;
}

const failuresOf = (side) => side.outcomes.reduce((n, o) => n + o.failures.length, 0);

/** One row per workload figure: medians over rounds, the ratio, failures. */
export function summarize(results) {
  const rows = [];
  for (const { workload, servers } of results.entries()) {
    for (const [index, figure] of workload.figures.entries()) {
      const ours = figureMedian(servers.ours, figure.key);
      const theirs = servers.distribution.unsupported ? NaN : figureMedian(servers.distribution, figure.key);
      rows.push({
        id: workload.id,
        title: workload.title,
        figure,
        primary: index === 0,
        reference: Boolean(workload.reference),
        ours,
        theirs,
        unsupported: servers.distribution.unsupported,
        ratio: ratio(ours, theirs, figure.higherIsBetter),
        failures: { ours: failuresOf(servers.ours), distribution: failuresOf(servers.distribution) },
      });
    }
  }
  return rows;
}

export function formatNumber(value) {
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

const formatRatio = (value) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : "n/a");
const verdict = (met) => (met === null ? "n/a" : met ? "met" : "**missed**");

/** The project's targets, judged on the medians (memory on the worst round). */
export function evaluateTargets(rows, results) {
  const find = (id, key) => rows.find((r) => r.id === id && r.figure.key === key);
  const targets = [];
  for (const row of rows.filter((r) => r.primary && !r.reference)) {
    targets.push({
      target: `ours ≥ distribution: ${row.id}`,
      value: row.unsupported ? "peer unsupported" : formatRatio(row.ratio),
      met: row.unsupported || !Number.isFinite(row.ratio) ? null : row.ratio >= 1,
    });
  }
  for (const id of ["manifest-get", "manifest-head"]) {
    const row = find(id, "rate");
    if (row) targets.push({ target: `${id} ≥ 2× distribution`, value: formatRatio(row.ratio), met: Number.isFinite(row.ratio) ? row.ratio >= 2 : null });
  }
  for (const kind of ["tags", "referrers"]) {
    const first = find(`${kind}-first`, "latency");
    const deep = find(`${kind}-deep`, "latency");
    if (!first || !deep) continue;
    const factor = deep.ours / first.ours;
    targets.push({
      target: `ours: ${kind} deep page ≤ 1.5× first page`,
      value: Number.isFinite(factor) ? `${factor.toFixed(2)}× (${formatNumber(deep.ours)} vs ${formatNumber(first.ours)} ms)` : "n/a",
      met: Number.isFinite(factor) ? factor <= 1.5 : null,
    });
  }
  // The Workers limit: 128 MB for an isolate, its heap and ArrayBuffers.
  const limitMiB = 128e6 / 2 ** 20;
  const memory = results.entries().filter((e) => e.workload.concurrency !== undefined);
  for (const concurrency of [...new Set(memory.map((e) => e.workload.concurrency))]) {
    const group = memory.filter((e) => e.workload.concurrency === concurrency);
    const uploads = concurrency === 1 ? "one big streamed upload" : `${concurrency} concurrent big streamed uploads`;
    // An upload turned away (429) or failed leaves less to hold: the memory of the others proves nothing.
    const failed = group.reduce((n, m) => n + failuresOf(m.servers.ours), 0);
    const judge = (key, describe) => {
      const peaks = group.flatMap((m) => m.servers.ours.outcomes.map((o) => o.values[key])).filter(Number.isFinite);
      if (peaks.length === 0) return { value: "n/a", met: null };
      const worst = Math.max(...peaks);
      return { value: `${describe(worst)}${failed > 0 ? `; ${failed} upload(s) failed` : ""}`, met: failed === 0 && worst < limitMiB };
    };
    targets.push({
      target: `ours: peak isolate memory during ${uploads} < 128 MB (122 MiB), the Workers limit`,
      ...judge("isolate", (v) => `${v.toFixed(1)} MiB (worst round, with and without Content-Length; Worker and Durable Objects in one isolate, garbage included)`),
    });
    targets.push({
      target: `ours: peak RSS during ${uploads} < 128 MB (122 MiB)`,
      ...judge("peak", (v) => `${v.toFixed(0)} MiB (worst round, with and without Content-Length; all workerd processes: the runtime and simulators too)`),
    });
  }
  return targets;
}

function table(header, rows) {
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function notesOf(results) {
  const lines = [];
  for (const { workload, servers } of results.entries()) {
    for (const server of SERVERS) {
      const side = servers[server];
      if (side.unsupported) lines.push(`- ${workload.id}, ${server}: ${side.unsupported}`);
      const notes = [...new Set(side.outcomes.flatMap((o) => o.notes ?? []))];
      if (notes.length > 0) lines.push(`- ${workload.id}, ${server}: ${notes.join("; ")}`);
      const failures = side.outcomes.flatMap((o) => o.failures);
      if (failures.length > 0) lines.push(`- ${workload.id}, ${server}: ${failures.length} failure(s), e.g. ${[...new Set(failures)].slice(0, 3).join(" / ")}`);
    }
  }
  return lines;
}

// CPU time is counted in 10 ms ticks: shorter runs give noise, not shares.
const MIN_CPU_WALL_MS = 300;

/** Median share of one core per process label over the rounds long enough to measure, busiest first. */
function cpuSummary(side) {
  const outcomes = side.outcomes.filter((o) => o.wallMs >= MIN_CPU_WALL_MS);
  if (side.outcomes.length > 0 && outcomes.length === 0) return "(runs too short to measure)";
  const labels = [...new Set(outcomes.flatMap((o) => Object.keys(o.cpu ?? {})))];
  const shares = labels.map((label) => ({ label, share: median(outcomes.map((o) => o.cpu?.[label]).filter(Number.isFinite)) }));
  return shares
    .filter((s) => s.share >= 0.005)
    .sort((a, b) => b.share - a.share)
    .map((s) => `${s.label} ${(s.share * 100).toFixed(0)}%`)
    .join(", ");
}

function cpuTable(results) {
  const rows = results.entries().map(({ workload, servers }) => [
    workload.id,
    cpuSummary(servers.ours) || "–",
    servers.distribution.unsupported ? "unsupported" : cpuSummary(servers.distribution) || "–",
  ]);
  return table(["workload", "ours", "distribution"], rows);
}

const KiB = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

/** The floor beside the workloads of ours it bounds. */
function floorTable(floor, rows) {
  return table(
    ["the floor's measure", "floor", "ours", "ours / floor", "failures"],
    floor.map((m) => {
      const ours = m.bounds ? rows.find((r) => r.id === m.bounds && r.figure.key === "rate") : null;
      return [
        `${m.title} (${m.unit})`,
        formatNumber(m.rate),
        ours ? `${formatNumber(ours.ours)} (${m.bounds})` : "–",
        ours ? formatRatio(ours.ours / m.rate) : "n/a",
        String(m.failures.length),
      ];
    }),
  );
}

export function renderReport({ results, rows, targets, floor, machine, bundle, config, startedAt, elapsedMs }) {
  const out = [];
  out.push(`Run of ${startedAt.toISOString()} — ${config.quick ? "quick (smoke) mode" : "full mode"}, ${config.rounds} rounds, ${(elapsedMs / 60000).toFixed(1)} min.`);
  out.push("");
  out.push("Ratio = how many times better ours is, so >1 means ours wins: throughput_ours / throughput_distribution for rates; time_distribution / time_ours for latencies; RSS_distribution / RSS_ours for memory. Medians are over rounds (rates and percentiles are computed per round first). Failures count every wrong answer over all rounds (ours / distribution); failed operations are excluded from the figures.");
  out.push("");
  out.push(
    table(
      ["workload", "figure", "ours", "distribution", "ratio", "failures"],
      rows.map((r) => [
        r.primary ? `${r.id}: ${r.title}` : "",
        r.figure.label,
        formatNumber(r.ours),
        r.unsupported ? "unsupported by peer" : formatNumber(r.theirs),
        r.unsupported ? "n/a" : formatRatio(r.ratio),
        r.primary ? `${r.failures.ours} / ${r.unsupported ? "–" : r.failures.distribution}` : "",
      ]),
    ),
  );
  out.push("");
  out.push("Billable operations per request: n/a (the cost meter has not landed).");
  out.push("");
  out.push("### Targets");
  out.push("");
  out.push(table(["target", "measured", "verdict"], targets.map((t) => [t.target, t.value, verdict(t.met)])));
  out.push("");
  if (floor) {
    out.push("### The floor: a Worker with no work of its own, under the same wrangler dev");
    out.push("");
    out.push("bench/floor/worker.js, measured by the same client in the same rounds as the registries. Ours does all the floor does and more, so ours / floor is what ours costs on top of the simulator; near 1×, there is nothing left to win in ours under wrangler dev.");
    out.push("");
    out.push(floorTable(floor, rows));
    out.push("");
  }
  if (bundle) {
    out.push("### Deployable bundle (`wrangler deploy --dry-run --outdir`)");
    out.push("");
    out.push(`- deployed modules: ${KiB(bundle.deployedBytes)} (gzip ${KiB(bundle.deployedGzipBytes)}); wrangler says "${bundle.wranglerLine ?? "?"}"`);
    out.push(`- whole output dir incl. source map and README: ${KiB(bundle.totalBytes)} (gzip ${KiB(bundle.totalGzipBytes)})`);
    out.push(`- files: ${bundle.files.map((f) => `${f.name} ${KiB(f.size)}`).join(", ")}`);
    out.push("");
  }
  out.push("### CPU while each workload ran (median share of one core; 2 cores in all)");
  out.push("");
  out.push(cpuTable(results));
  out.push("");
  out.push("### Machine");
  out.push("");
  for (const [key, value] of Object.entries(machine)) out.push(`- ${key}: ${value}`);
  out.push("");
  const notes = notesOf(results);
  if (notes.length > 0) {
    out.push("### Notes from the run");
    out.push("");
    out.push(...notes);
    out.push("");
  }
  out.push("### Settings");
  out.push("");
  const settings = Object.entries(config).filter(([key]) => !["help", "report", "only", "bundle"].includes(key));
  out.push(settings.map(([key, value]) => `${key}=${value}`).join(", "));
  return out.join("\n");
}
