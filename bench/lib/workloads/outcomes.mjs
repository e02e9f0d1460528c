/**
 * What a workload's run() returns: { values: { figureKey: number }, failures:
 * [message], notes: [text], operations: [[hop]], samples? }. operations are
 * the responses each successful client operation saw, for the cost meter;
 * samples, what a pool's or a sequence's figures are computed from. A wrong
 * answer is a failure, kept out of the figures; run() never throws for one.
 */
import { asOperation } from "../meter.mjs";
import { runPool } from "../pool.mjs";
import { median, mibPerSecond, percentile, perSecond, timed } from "../stats.mjs";

export const rate = (unit) => ({ key: "rate", label: unit, higherIsBetter: true });
export const P50 = { key: "p50", label: "p50 ms", higherIsBetter: false };
export const P99 = { key: "p99", label: "p99 ms", higherIsBetter: false };
export const LATENCY = { key: "latency", label: "median ms", higherIsBetter: false };

// fetch says only "fetch failed"; its cause says what failed (a reset connection, say).
export const messageOf = (error) => (error instanceof Error ? `${error.message}${error.cause ? ` (${messageOf(error.cause)})` : ""}` : String(error));

/**
 * How each kind of outcome's figures come from its samples (the run's wall
 * time and each successful operation's latency), so outcomes of one workload
 * run in slices can be merged into the figures of one run (mergeOutcomes).
 */
const FIGURES = {
  /** A concurrent pool: successful operations per second and their latency percentiles. */
  pool: ({ ms, latencies }) => ({
    rate: latencies.length > 0 ? perSecond(latencies.length, ms) : NaN,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  }),
  /** Sequential operations: their median latency. */
  latency: ({ latencies }) => ({ latency: median(latencies) }),
};

function sampledOutcome(kind, pool) {
  const samples = { kind, ms: pool.ms, latencies: pool.latencies };
  return { values: FIGURES[kind](samples), samples, failures: pool.failures.map(messageOf), operations: pool.operations };
}

/** Figures of a concurrent pool: successful operations per second and their latency percentiles. */
export function poolOutcome(pool) {
  return sampledOutcome("pool", pool);
}

/** One timed transfer of `bytes`, as MiB/s; a failed check gives no figure. */
export async function transferOutcome(bytes, fn) {
  try {
    const { result, ms } = await timed(() => asOperation(fn));
    return { values: { rate: mibPerSecond(bytes, ms) }, failures: [], operations: [result.hops] };
  } catch (error) {
    return { values: { rate: NaN }, failures: [messageOf(error)], operations: [] };
  }
}

/** `repeats` sequential requests; the figure is their median latency. */
export async function latencyOutcome(repeats, fn) {
  return sampledOutcome("latency", await runPool({ count: repeats, concurrency: 1, task: fn }));
}

/** One outcome from the outcomes of slices of one run (pool or latency outcomes of one kind): its figures over all their samples. */
export function mergeOutcomes(slices) {
  const kind = slices[0].samples?.kind;
  if (!kind || slices.some((o) => o.samples?.kind !== kind)) throw new Error("mergeOutcomes: only pool or latency outcomes of one kind merge");
  const samples = { kind, ms: slices.reduce((sum, o) => sum + o.samples.ms, 0), latencies: slices.flatMap((o) => o.samples.latencies) };
  return {
    values: FIGURES[kind](samples),
    samples,
    failures: slices.flatMap((o) => o.failures),
    operations: slices.flatMap((o) => o.operations),
    notes: [...new Set(slices.flatMap((o) => o.notes ?? []))],
  };
}
