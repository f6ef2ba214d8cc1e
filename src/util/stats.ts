// The one percentile of the project (arena verdicts, benchmarks): nearest rank, so the value is
// always a real sample — the ceil(p/100·n)-th smallest, clamped to the first and the last.

/** Nearest-rank percentile of xs (p in 0..100); NaN for no samples; rounded to `decimals` if given. */
export function pct(xs: readonly number[], p: number, decimals?: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const v = s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  if (decimals === undefined) return v;
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}
