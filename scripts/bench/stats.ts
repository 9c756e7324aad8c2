// scripts/bench: small statistics for the SIP benchmark — percentiles over per-call samples, medians over runs.
// Pure functions; the benchmark feeds them the per-call timings SIPp logged.

/**
 * Nearest-rank percentile (the smallest sample with at least p% of the samples at or below it).
 * Sorts a copy; returns undefined for no samples.
 */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

export function median(values: readonly number[]): number | undefined {
  return percentile(values, 50);
}

export interface Spread {
  p50: number | undefined;
  p99: number | undefined;
  count: number;
}

export function spread(samples: readonly number[]): Spread {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), count: samples.length };
}
