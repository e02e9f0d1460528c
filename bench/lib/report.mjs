/** Turns the recorded outcomes into medians, ratios, target checks and a Markdown report. */
import { formatSummary, summarizeCosts } from "./meter.mjs";
import { median, ratio } from "./stats.mjs";

/** Who runs each workload: ours (an instance of our registry), its floor twin, and the peer. */
export const ROLES = ["ours", "floor", "distribution"];

/** What ours must reach of its floor twin's rate on every request-bound workload. */
export const FLOOR_TARGET = 0.9;

/** Outcomes by workload and role, in the order workloads were first recorded. */
export class Results {
  #byWorkload = new Map();

  #entry(workload) {
    if (!this.#byWorkload.has(workload.id)) {
      this.#byWorkload.set(workload.id, { workload, roles: Object.fromEntries(ROLES.map((r) => [r, { outcomes: [], unsupported: null }])) });
    }
    return this.#byWorkload.get(workload.id);
  }

  record(workload, role, outcome) {
    this.#entry(workload).roles[role].outcomes.push(outcome);
  }

  unsupported(workload, role, reason) {
    this.#entry(workload).roles[role].unsupported = reason;
  }

  entries() {
    return [...this.#byWorkload.values()];
  }
}

function figureMedian(side, key) {
  const values = side.outcomes.map((o) => o.values[key]).filter(Number.isFinite);
  return values.length > 0 ? median(values) : NaN;
}

/**
 * ours / floor round by round, whose median the verdict takes: each round runs
 * ours and its floor twin in turns, so drift in the machine (its rates moved
 * by half within a run) hits both sides of a ratio alike, where a ratio of
 * medians may pair ours' median from one round with the floor's from another.
 */
function roundRatios(ours, floor, key, higherIsBetter) {
  const ratios = [];
  for (const outcome of ours.outcomes) {
    const twin = floor.outcomes.find((o) => o.round === outcome.round);
    const value = twin ? ratio(outcome.values[key], twin.values[key], higherIsBetter) : NaN;
    if (Number.isFinite(value)) ratios.push(value);
  }
  return ratios;
}

const failuresOf = (side) => side.outcomes.reduce((n, o) => n + o.failures.length, 0);
const ran = (side) => side.outcomes.length > 0;

/** One row per workload figure: medians over rounds for each role, the ratios (to the floor, paired by round), failures, and (first row) the meter. */
export function summarize(results) {
  const rows = [];
  for (const { workload, roles } of results.entries()) {
    // undefined: the workload keeps no operations (redirect-threshold); null: they carried no Registry-Cost.
    const operations = roles.ours.outcomes.flatMap((o) => o.operations ?? []);
    const meter = operations.length > 0 ? summarizeCosts(operations) : undefined;
    for (const [index, figure] of workload.figures.entries()) {
      const value = (role) => (roles[role].unsupported ? NaN : figureMedian(roles[role], figure.key));
      const ours = value("ours");
      const floorRatios = roles.floor.unsupported ? [] : roundRatios(roles.ours, roles.floor, figure.key, figure.higherIsBetter);
      rows.push({
        id: workload.id,
        title: workload.title,
        workload,
        figure,
        primary: index === 0,
        ours,
        floor: value("floor"),
        theirs: value("distribution"),
        ran: Object.fromEntries(ROLES.map((role) => [role, ran(roles[role])])),
        unsupported: Object.fromEntries(ROLES.map((role) => [role, roles[role].unsupported])),
        vsFloor: median(floorRatios),
        floorRatios,
        vsPeer: ratio(ours, value("distribution"), figure.higherIsBetter),
        failures: Object.fromEntries(ROLES.map((role) => [role, failuresOf(roles[role])])),
        meter,
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
const verdict = (met) => (met === null ? "n/a" : met ? "PASS" : "**FAIL**");

// Durable Object requests per push of each shape: none for a monolithic POST, one for POST then PUT, two for docker's three requests.
const PUSH_DO_TARGETS = [
  { id: "push-small-monolithic", most: 0 },
  { id: "push-small-post-put", most: 1 },
  { id: "push-small", most: 2 },
];

/** The project's targets, judged on the medians (ours / floor: of per-round ratios; memory on the worst round). */
export function evaluateTargets(rows, results) {
  const find = (id, key) => rows.find((r) => r.id === id && r.figure.key === key && r.ran.ours);
  const targets = [];
  for (const row of rows.filter((r) => r.primary && r.workload.floorTarget && r.ran.ours)) {
    targets.push({
      target: `${row.id}: ours ≥ ${FLOOR_TARGET}× its floor twin (${row.figure.label})`,
      // Each round's ratio beside their median, so the spread the verdict rests on is in view.
      value: `${formatRatio(row.vsFloor)}${row.floorRatios.length > 1 ? ` (rounds: ${row.floorRatios.map((r) => r.toFixed(2)).join(" ")})` : ""}`,
      met: Number.isFinite(row.vsFloor) ? row.vsFloor >= FLOOR_TARGET : null,
    });
  }
  for (const { id, most } of PUSH_DO_TARGETS) {
    const row = find(id, "rate");
    if (!row) continue;
    const requests = row.meter?.total.doRequests;
    targets.push({
      target: `${id}: ${most === 0 ? "no Durable Object request" : `at most ${most} Durable Object request(s)`} per push (meter)`,
      value: requests === undefined ? "n/a (no Registry-Cost header)" : String(requests),
      met: requests === undefined ? null : requests <= most,
    });
  }
  targets.push(...layoutTargets(rows));
  for (const kind of ["tags", "referrers"]) {
    const first = find(`${kind}-first`, "rate");
    const deep = find(`${kind}-deep`, "rate");
    if (!first || !deep) continue;
    const factor = first.ours / deep.ours;
    targets.push({
      target: `ours: a ${kind} deep page costs ≤ 1.5× a first page (req/s first / deep)`,
      value: Number.isFinite(factor) ? `${factor.toFixed(2)}× (${formatNumber(deep.ours)} vs ${formatNumber(first.ours)} req/s)` : "n/a",
      met: Number.isFinite(factor) ? factor <= 1.5 : null,
    });
  }
  targets.push(...memoryTargets(results));
  return targets;
}

/**
 * A blob stored in parts must pull as fast as one stored as one object, on
 * each path. Where the floor shows the simulator itself reads parts slower,
 * ours passes if it reads parts at ≥ 0.9× the floor's parts.
 */
function layoutTargets(rows) {
  const targets = [];
  for (const direct of [false, true]) {
    const suffix = direct ? "-direct" : "";
    const single = rows.find((r) => r.id === `pull-big${suffix}` && r.ran.ours);
    const parts = rows.find((r) => r.id === `pull-big-parts${suffix}` && r.ran.ours);
    if (!single || !parts) continue;
    const ours = parts.ours / single.ours;
    const floor = parts.floor / single.floor;
    const simulatorBound = Number.isFinite(floor) && floor < FLOOR_TARGET;
    const met = Number.isFinite(ours) ? ours >= FLOOR_TARGET || (simulatorBound && parts.vsFloor >= FLOOR_TARGET) : null;
    targets.push({
      target: `pull-big-parts${suffix} ≥ ${FLOOR_TARGET}× pull-big${suffix} (${direct ? "direct path" : "a redirect followed if given"}), or, where the simulator reads parts slower, ≥ ${FLOOR_TARGET}× the floor's parts`,
      value: `ours parts / one object ${formatRatio(ours)}; floor ${formatRatio(floor)}; ours / floor on parts ${formatRatio(parts.vsFloor)}${met && ours < FLOOR_TARGET ? " (bound by the simulator)" : ""}`,
      met,
    });
  }
  return targets;
}

/** The Workers limit: 128 MB for an isolate, its heap and ArrayBuffers. */
function memoryTargets(results) {
  const targets = [];
  const limitMiB = 128e6 / 2 ** 20;
  const memory = results.entries().filter((e) => e.workload.concurrency !== undefined);
  for (const concurrency of [...new Set(memory.map((e) => e.workload.concurrency))]) {
    const group = memory.filter((e) => e.workload.concurrency === concurrency);
    const uploads = concurrency === 1 ? "one big streamed upload" : `${concurrency} concurrent big streamed uploads`;
    // An upload turned away (429) or failed leaves less to hold: the memory of the others proves nothing.
    const failed = group.reduce((n, m) => n + failuresOf(m.roles.ours), 0);
    const judge = (key, describe) => {
      const peaks = group.flatMap((m) => m.roles.ours.outcomes.map((o) => o.values[key])).filter(Number.isFinite);
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

/** A role's cell: its median, or why it has none. */
function cell(row, role, value) {
  if (row.unsupported[role]) return role === "distribution" ? "unsupported by peer" : "skipped";
  if (!row.ran[role]) return "–";
  return formatNumber(value);
}

function mainTable(rows) {
  // A workload ours skipped is one line: its figures are all empty.
  const shown = rows.filter((r) => r.primary || !r.unsupported.ours);
  return table(
    ["workload", "figure", "ours", "floor", "ours / floor", "distribution", "ours / distribution", "billable operations per client operation (ours, median)", "failures ours / floor / distribution"],
    shown.map((r) => [
      r.primary ? `${r.id}: ${r.title}${r.workload.instance && r.workload.instance !== "ours" ? ` [${r.workload.instance}]` : ""}` : "",
      r.figure.label,
      cell(r, "ours", r.ours),
      cell(r, "floor", r.floor),
      r.ran.floor ? `${formatRatio(r.vsFloor)}${r.primary && r.workload.floorTarget && Number.isFinite(r.vsFloor) ? (r.vsFloor >= FLOOR_TARGET ? " PASS" : " **FAIL**") : ""}` : "",
      cell(r, "distribution", r.theirs),
      r.ran.distribution ? formatRatio(r.vsPeer) : "",
      r.primary && r.ran.ours ? (r.meter === undefined ? "–" : formatSummary(r.meter)) : r.primary && r.unsupported.ours ? `skipped: ${r.unsupported.ours}` : "",
      r.primary ? ROLES.map((role) => (r.ran[role] ? String(r.failures[role]) : "–")).join(" / ") : "",
    ]),
  );
}

/** A blob in one object against one in parts, on each path and on the floor: what the simulator allows. */
function layoutTable(rows) {
  const pair = (suffix, pick) => {
    const single = rows.find((r) => r.id === `pull-big${suffix}`);
    const parts = rows.find((r) => r.id === `pull-big-parts${suffix}`);
    if (!single || !parts) return null;
    const a = pick(single);
    const b = pick(parts);
    return Number.isFinite(a) || Number.isFinite(b) ? [formatNumber(a), formatNumber(b), formatRatio(b / a)] : null;
  };
  const lines = [
    ["ours (main instance: a redirect followed if given)", pair("", (r) => r.ours)],
    ["ours, direct (BLOB_REDIRECT=none)", pair("-direct", (r) => r.ours)],
    ["floor (one R2 get of an object stored the same way)", pair("", (r) => r.floor)],
    ["distribution (context)", pair("", (r) => r.theirs)],
  ].filter(([, values]) => values !== null);
  if (lines.length === 0) return null;
  return table(["pulled from", "one object MiB/s", "R2 parts MiB/s", "parts / one object"], lines.map(([label, values]) => [label, ...values]));
}

/** redirect-threshold: what a redirect adds to a pull of each size. */
function thresholdTable(rows) {
  const row = rows.find((r) => r.id === "redirect-threshold" && r.ran.ours);
  if (!row) return null;
  const values = (key) => rows.find((r) => r.id === "redirect-threshold" && r.figure.key === key)?.ours ?? NaN;
  const sizes = row.workload.figures.filter((f) => f.key.startsWith("direct-")).map((f) => ({ kib: f.key.slice("direct-".length), label: f.label.replace(/ direct.*/, "") }));
  return table(
    ["blob", "direct ms", "via redirect ms (both hops)", "the redirect adds, ms", "adds, % of direct"],
    sizes.map(({ kib, label }) => {
      const direct = values(`direct-${kib}`);
      const redirected = values(`redirect-${kib}`);
      return [label, formatNumber(direct), formatNumber(redirected), formatNumber(redirected - direct), Number.isFinite(direct) ? `${(((redirected - direct) / direct) * 100).toFixed(0)}%` : "–"];
    }),
  );
}

function notesOf(results) {
  const lines = [];
  for (const { workload, roles } of results.entries()) {
    for (const role of ROLES) {
      const side = roles[role];
      if (side.unsupported) lines.push(`- ${workload.id}, ${role}: ${side.unsupported}`);
      const notes = [...new Set(side.outcomes.flatMap((o) => o.notes ?? []))];
      if (notes.length > 0) lines.push(`- ${workload.id}, ${role}: ${notes.join("; ")}`);
      const failures = side.outcomes.flatMap((o) => o.failures);
      if (failures.length > 0) lines.push(`- ${workload.id}, ${role}: ${failures.length} failure(s), e.g. ${[...new Set(failures)].slice(0, 3).join(" / ")}`);
    }
    const operations = roles.ours.outcomes.flatMap((o) => o.operations ?? []);
    const redirected = operations.filter((hops) => hops.some((hop) => hop.status >= 300 && hop.status < 400)).length;
    if (redirected > 0) lines.push(`- ${workload.id}, ours: ${redirected} of ${operations.length} operations were redirected`);
    const meter = summarizeCosts(operations);
    if (meter?.unmetered > 0) lines.push(`- ${workload.id}, ours: ${meter.unmetered} of ${operations.length} operations had a response without Registry-Cost (left out of the meter column)`);
  }
  return lines;
}

// CPU time is counted in 10 ms ticks: shorter runs give noise, not shares.
const MIN_CPU_WALL_MS = 300;

/** Median share of one core per process label over the rounds long enough to measure, busiest first. */
function cpuSummary(side, role) {
  if (side.unsupported) return role === "distribution" ? "unsupported" : "skipped";
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
  return table(
    ["workload", ...ROLES],
    results.entries().map(({ workload, roles }) => [workload.id, ...ROLES.map((role) => cpuSummary(roles[role], role) || "–")]),
  );
}

const KiB = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

export function renderReport({ results, rows, targets, instances, machine, bundle, config, startedAt, elapsedMs }) {
  const out = [];
  out.push(`Run of ${startedAt.toISOString()} — ${config.quick ? "quick (smoke) mode" : "full mode"}, ${config.rounds} rounds, ${(elapsedMs / 60000).toFixed(1)} min.`);
  out.push("");
  out.push(
    `Each workload runs on ours and on its floor twin (bench/floor/worker.js replaying ours' recorded answers: the same status, headers and body, or one R2 get of the blob stored the same way), then on distribution, round after round; within a round, ours and its twin take turns in ${config.slices} slices of its requests (ours, twin, twin, ours, …; the twin first in even rounds), each one's figures computed over its slices together. Figures are medians over rounds (rates and percentiles computed per round first). A ratio is how many times better ours is, >1 meaning ours wins: rate_ours / rate_other, or time_other / time_ours; ours / floor is the median of the per-round ratios, ours / distribution the ratio of the medians. ` +
      `Request-bound workloads must reach ${FLOOR_TARGET}× of their floor; distribution is context, not a target. ` +
      "Billable operations: the Registry-Cost header of ours' responses, summed over the requests of one client operation (a pull that follows a redirect, a push's POST, PATCH and PUT), median over all operations of all rounds, each hop shown in brackets when there are several (307: the redirect; final: where it points). Abbreviations: D1 q queries, r rows read, w rows written; R2 A/B Class A/B operations; DO req requests; bytes in/out through the Worker. n/a: the responses carried no Registry-Cost header. " +
      "Failures count every wrong answer over all rounds; failed operations are excluded from the figures.",
  );
  out.push("");
  if (instances.length > 0) {
    out.push(...instances.map((line) => `- ${line}`));
    out.push("");
  }
  out.push(mainTable(rows));
  out.push("");
  out.push("### Targets");
  out.push("");
  out.push(table(["target", "measured", "verdict"], targets.map((t) => [t.target, t.value, verdict(t.met)])));
  out.push("");
  const layouts = layoutTable(rows);
  if (layouts) {
    out.push("### A blob stored in parts against one stored as one object");
    out.push("");
    out.push("The same big blob size pushed in one request (ours stores one R2 object) and in chunks (R2 parts), pulled on each path; the floor reads the same bytes stored the same way with one R2 get, which is what the local R2 simulator allows.");
    out.push("");
    out.push(layouts);
    out.push("");
  }
  const threshold = thresholdTable(rows);
  if (threshold) {
    out.push("### Redirect threshold (for REDIRECT_MIN_BYTES)");
    out.push("");
    out.push("Each size pulled one at a time, alternately from an instance that streams it (BLOB_REDIRECT=none) and from one that redirects every blob GET (REDIRECT_MIN_BYTES=1), both hops timed. Locally the final hop is the Worker's own download route, so the redirect only adds; in production it also costs the client one more round trip to the edge, which is not measured here and should be added to the second column.");
    out.push("");
    out.push(threshold);
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
  const settings = Object.entries(config).filter(([key]) => !["help", "report", "only", "skip", "bundle"].includes(key));
  out.push(settings.map(([key, value]) => `${key}=${value}`).join(", "));
  return out.join("\n");
}
