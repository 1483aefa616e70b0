/**
 * Latency histograms with logarithmic buckets (the DDSketch scheme): bucket `i` holds the values in
 * (γ^(i-1), γ^i] with γ = (1 + α) / (1 - α), and stands for 2γ^i / (γ + 1), which is within α of
 * every value in the bucket. With α = 0.5 % a percentile read from the histogram is within 0.5 % of
 * the exact (nearest-rank) percentile, whatever the range, because histograms add exactly: the
 * minute rows of any range merge into one histogram by adding counts per bucket.
 *
 * Stored as a sparse JSON object `{ "<index>": count }`. Latencies from 1 µs to 1 h span at most
 * ln(3.6e9) / ln(γ) ≈ 2,200 buckets, so a row stays bounded however many requests it counts.
 */
export const RELATIVE_ACCURACY = 0.005;
const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);
/** Latencies below this (ms) count in its bucket: 1 µs. */
export const MIN_LATENCY_MS = 0.001;

export type Histogram = Map<number, number>;

export function bucketIndex(latencyMs: number): number {
  const value = Number.isFinite(latencyMs) && latencyMs > MIN_LATENCY_MS ? latencyMs : MIN_LATENCY_MS;
  return Math.ceil(Math.log(value) / LOG_GAMMA - 1e-9);
}

/** The value a bucket stands for: within RELATIVE_ACCURACY of everything in it. */
export function bucketValue(index: number): number {
  return (2 * Math.pow(GAMMA, index)) / (GAMMA + 1);
}

export function addLatency(histogram: Histogram, latencyMs: number, count = 1): void {
  const index = bucketIndex(latencyMs);
  histogram.set(index, (histogram.get(index) ?? 0) + count);
}

export function mergeInto(target: Histogram, source: Histogram): void {
  for (const [index, count] of source) target.set(index, (target.get(index) ?? 0) + count);
}

export function histogramToJson(histogram: Histogram): Record<string, number> {
  return Object.fromEntries([...histogram].sort((a, b) => a[0] - b[0]).map(([index, count]) => [String(index), count]));
}

export function histogramFromJson(json: unknown): Histogram {
  const histogram: Histogram = new Map();
  if (!json || typeof json !== 'object') return histogram;
  for (const [index, count] of Object.entries(json as Record<string, unknown>)) {
    const n = Number(count);
    if (Number.isInteger(Number(index)) && n > 0) histogram.set(Number(index), n);
  }
  return histogram;
}

/**
 * Nearest-rank percentiles (the value at rank ⌈q·n⌉ of the sorted latencies) for each q in
 * `quantiles`, clamped to `max` (the highest latency seen, which the top bucket may overshoot).
 */
export function percentiles(histogram: Histogram, quantiles: readonly number[], max = Infinity): number[] {
  const buckets = [...histogram].filter(([, count]) => count > 0).sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return quantiles.map(() => 0);
  return quantiles.map((q) => {
    const rank = Math.min(total, Math.max(1, Math.ceil(q * total - 1e-9)));
    let seen = 0;
    for (const [index, count] of buckets) {
      seen += count;
      if (seen >= rank) return Math.min(bucketValue(index), max);
    }
    return Math.min(bucketValue(buckets[buckets.length - 1]![0]), max);
  });
}
