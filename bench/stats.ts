// The few statistics the report quotes: percentiles of latency samples, medians of repeated runs,
// and ratios of medians (never medians of ratios, so each figure stays traceable to raw runs).

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return percentileSorted(sorted, p);
}

export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

/** Median of the finite values (the middle one, or the mean of the two middle ones); NaN for none. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export type LatencySummary = { n: number; p50: number; p95: number; p99: number; max: number };

export function summarize(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentileSorted(sorted, 50),
    p95: percentileSorted(sorted, 95),
    p99: percentileSorted(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/** a / b, NaN unless both are finite and b is not zero. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}

/** Spread of repeated runs as (max - min) / median, to flag noisy cells. */
export function spread(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length < 2) return 0;
  const m = median(finite);
  return m === 0 ? Number.NaN : (Math.max(...finite) - Math.min(...finite)) / m;
}

/** A latency histogram: [microseconds, count] pairs, ascending. */
export type Histogram = [number, number][];

/**
 * wrk 4.1's histogram without the samples its coordinated-omission correction adds before done():
 * for every latency n ≥ 2·interval it adds data[n] samples at n−interval, n−2·interval, … while
 * above interval, where interval = runtime / (requests / connections). Rebuilt from the top down,
 * each bucket minus what the buckets above it added.
 */
export function uncorrectWrkHistogram(
  corrected: Histogram,
  runtimeUs: number,
  requests: number,
  connections: number,
): Histogram {
  const perConnection = Math.floor(requests / connections);
  if (perConnection <= 0 || corrected.length === 0) return corrected;
  const interval = Math.floor(runtimeUs / perConnection);
  if (interval <= 0) return corrected;
  const counts = new Map(corrected);
  const original = new Map<number, number>();
  const ascending = [...counts.keys()].sort((a, b) => a - b);
  for (let i = ascending.length - 1; i >= 0; i--) {
    const us = ascending[i]!;
    let n = counts.get(us)!;
    if (us > interval) {
      for (let above = us + interval; above <= ascending[ascending.length - 1]!; above += interval) {
        if (above >= 2 * interval) n -= original.get(above) ?? 0;
      }
    }
    if (n > 0) original.set(us, n);
  }
  return [...original.entries()].sort((a, b) => a[0] - b[0]);
}

/** Latency summary (ms) of a histogram in microseconds, nearest rank as `summarize`. */
export function summarizeHistogram(histogram: Histogram): LatencySummary {
  const total = histogram.reduce((s, [, c]) => s + c, 0);
  const at = (p: number): number => {
    if (total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * total));
    let seen = 0;
    for (const [us, c] of histogram) {
      seen += c;
      if (seen >= rank) return us / 1000;
    }
    return histogram[histogram.length - 1]![0] / 1000;
  };
  return {
    n: total,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: total === 0 ? Number.NaN : histogram[histogram.length - 1]![0] / 1000,
  };
}
