// Small statistics over rounds and latency samples (pure).

/** Median; the mean of the two middle values for an even count. NaN for no values. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Spread of rounds: (max − min) / |median|, a fraction (0.05 = 5%). 0 for a single value; NaN
 * when the median is 0 and the values differ (a spread around nothing is undefined).
 */
export function spread(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  if (hi === lo) return 0;
  const m = Math.abs(median(xs));
  return m === 0 ? NaN : (hi - lo) / m;
}

/** Nearest-rank percentile of unsorted samples: the smallest value with at least p% of samples at or below it. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  return percentileSorted([...xs].sort((a, b) => a - b), p);
}

export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Rounds to `digits` decimals (for figures written to reports). */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
