/**
 * The one place figures are computed: clocks, medians, percentiles and the
 * ours/distribution ratio, so every workload reports the same way.
 */

/** Milliseconds since an arbitrary origin, from a monotonic clock (wall time jumps would corrupt short timings). */
export function now() {
  return performance.now();
}

/** Runs `fn` and returns its result with the elapsed milliseconds. */
export async function timed(fn) {
  const start = now();
  const result = await fn();
  return { result, ms: now() - start };
}

/** The p-th percentile (0..100) of `values`, by linear interpolation between closest ranks. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

export function median(values) {
  return percentile(values, 50);
}

/**
 * ours/distribution as "how many times better ours is": >1 always means ours
 * wins, whether the figure is a rate (higher is better) or a time or a size
 * (lower is better).
 */
export function ratio(ours, theirs, higherIsBetter) {
  if (!Number.isFinite(ours) || !Number.isFinite(theirs) || ours <= 0 || theirs <= 0) return NaN;
  return higherIsBetter ? ours / theirs : theirs / ours;
}

export const MiB = 1024 * 1024;

/** Bytes over milliseconds as MiB/s. */
export function mibPerSecond(bytes, ms) {
  return bytes / MiB / (ms / 1000);
}

/** Operations over milliseconds as operations per second. */
export function perSecond(count, ms) {
  return count / (ms / 1000);
}
