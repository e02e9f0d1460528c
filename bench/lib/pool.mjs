import { asOperation } from "./meter.mjs";
import { now } from "./stats.mjs";

/**
 * Runs task(0..count-1) with at most `concurrency` in flight. Returns the
 * wall time, the latency of each successful task, the responses each made
 * (for the cost meter) and the failures: a task that throws (a wrong status,
 * length or digest) counts as a failure and its time is kept out of the
 * latencies, so a wrong answer never counts as throughput.
 */
export async function runPool({ count, concurrency, task }) {
  let next = 0;
  const latencies = [];
  const operations = [];
  const failures = [];
  async function worker() {
    while (next < count) {
      const index = next++;
      const start = now();
      try {
        const { hops } = await asOperation(() => task(index));
        latencies.push(now() - start);
        operations.push(hops);
      } catch (error) {
        failures.push(error);
      }
    }
  }
  const start = now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { ms: now() - start, latencies, operations, failures };
}
