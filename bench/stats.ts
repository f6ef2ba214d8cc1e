// The benchmarks' percentile is the project's one nearest-rank percentile.
export { pct } from '../src/util/stats.ts';
