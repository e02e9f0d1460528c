/**
 * What a workload's run() returns: { values: { figureKey: number }, failures:
 * [message], notes: [text], operations: [[hop]] }. operations are the
 * responses each successful client operation saw, for the cost meter. A wrong
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

/** Figures of a concurrent pool: successful operations per second and their latency percentiles. */
export function poolOutcome(pool) {
  return {
    values: {
      rate: pool.latencies.length > 0 ? perSecond(pool.latencies.length, pool.ms) : NaN,
      p50: percentile(pool.latencies, 50),
      p99: percentile(pool.latencies, 99),
    },
    failures: pool.failures.map(messageOf),
    operations: pool.operations,
  };
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
  const pool = await runPool({ count: repeats, concurrency: 1, task: fn });
  return { values: { latency: median(pool.latencies) }, failures: pool.failures.map(messageOf), operations: pool.operations };
}
