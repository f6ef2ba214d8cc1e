/* eslint-disable @typescript-eslint/no-explicit-any */
// `praetor bench <what> [--json]`: benchmarks with JSON results. Each benchmark lives in bench/
// and returns one object; `all` runs them in sequence and writes bench/results/<what>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { PraetorError } from '../errors.ts';
import { parseFlags, parseNumberFlag, say } from './common.ts';
import { createProgress } from './progress.ts';

type Bench = (o: any) => Promise<unknown>; // each bench takes its own subset of the options

const BENCHES: Record<string, { summary: string; load: () => Promise<Bench> }> = {
  sandbox: { summary: 'cold/warm start vs raw bwrap and runsc, overhead and idle capacity', load: async () => (await import('../../bench/sandbox.ts')).benchSandbox as Bench },
  net: { summary: 'egress gateway throughput and added connect latency', load: async () => (await import('../../bench/net.ts')).benchNet as Bench },
  detect: { summary: 'exec→alert and alert→contained latency, engine throughput, sensor overhead', load: async () => (await import('../../bench/detect.ts')).benchDetect as Bench },
  ledger: { summary: 'durable appends per second and verify speed', load: async () => (await import('../../bench/ledger.ts')).benchLedger as Bench },
  rules: { summary: 'rule engine events per second on one core', load: async () => (await import('../../bench/rules-engine.ts')).benchRulesEngine as Bench },
  sensors: { summary: 'exec→event latency and sensor overhead', load: async () => (await import('../../bench/sensors.ts')).benchSensors as Bench },
  api: { summary: 'exec over HTTP vs in-process, episode steps per second', load: async () => (await import('../../bench/api.ts' as string)).benchApi as Bench },
  soak: { summary: '50 episodes stepping for --minutes (default 10): errors and memory trend', load: async () => (await import('../../bench/soak.ts')).benchSoak as Bench },
  e2b: { summary: 'create + first command through the e2b SDK vs Praetor\'s own SDK (p50)', load: async () => (await import('../../bench/e2b.ts')).benchE2b as Bench },
  cli: { summary: 'praetor run wall times: resident guard warm and cold, --no-detect, --timeout 1, 20 in parallel, vs node and bwrap', load: async () => (await import('../../bench/cli.ts')).benchCli as Bench },
  dashboard: { summary: 'rule firing to alert drawn; longest frame with 500 sandboxes', load: async () => (await import('../../bench/dashboard.ts' as string)).benchDashboard as Bench },
  cluster: { summary: 'cluster coordination on PostgreSQL: node loss detection (kill -9), placement', load: async () => (await import('../../bench/cluster.ts')).benchCluster as Bench },
  'cluster-ledger': { summary: 'one ledger across nodes: records lost after kill -9 of node writers, anchor lag, cluster-wide verify speed', load: async () => (await import('../../bench/cluster-ledger.ts')).benchClusterLedger as Bench },
};

const USAGE = `praetor bench <${Object.keys(BENCHES).join('|')}|all> [--json] [--runs N] [--max-idle N] [--trials N] [--events N] [--minutes N] [--out DIR]

${Object.entries(BENCHES).map(([k, b]) => `  ${k.padEnd(10)} ${b.summary}`).join('\n')}`;

export async function main(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  const { values: v } = parseFlags(rest, {
    json: { type: 'boolean' }, runs: { type: 'string' }, 'max-idle': { type: 'string' }, trials: { type: 'string' },
    events: { type: 'string' }, out: { type: 'string' }, minutes: { type: 'string' },
  }, USAGE);
  if (what === '--help' || what === '-h') { process.stdout.write(`usage: ${USAGE}\n`); return 0; }
  const names = what === 'all' ? Object.keys(BENCHES) : [what ?? ''];
  for (const n of names) if (!BENCHES[n]) throw new PraetorError('BAD_ARGUMENT', what ? `unknown benchmark "${what}"` : 'which benchmark?', { hint: `one of ${Object.keys(BENCHES).join(', ')}, all` });
  const opts = {
    runs: parseNumberFlag('runs', v.runs, { int: true, min: 1 }),
    maxIdle: parseNumberFlag('max-idle', v['max-idle'], { int: true, min: 1 }),
    trials: parseNumberFlag('trials', v.trials, { int: true, min: 1 }),
    events: parseNumberFlag('events', v.events, { int: true, min: 1 }),
    minutes: parseNumberFlag('minutes', v.minutes, { min: 0.1 }),
    progress: (m: string) => { if (bar) bar.tick(0, m); else if (!v.json || process.stderr.isTTY) say(m); },
  };
  // `all` runs for many minutes: on a terminal one bar (benchmarks done, elapsed, the current
  // step); in logs the plain lines below. A single benchmark keeps its own messages.
  const bar = names.length > 1 && process.stderr.isTTY ? createProgress({ label: 'benchmarks', total: names.length }) : undefined;
  const results: Record<string, unknown> = {};
  let failed = 0;
  for (const n of names) {
    const started = Date.now();
    bar?.tick(0, n);
    try {
      const fn = await BENCHES[n]!.load();
      results[n] = await fn(opts);
    } catch (e) {
      failed++;
      results[n] = { error: e instanceof Error ? e.message : String(e) };
      if (names.length === 1) throw e;
    }
    if (names.length > 1) {
      const line = `${n}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`;
      if (bar) { bar.note(line); bar.tick(1); } else say(line);
    }
    // One benchmark on its own is recorded too (`praetor bench cli --json` → bench/results/cli.json).
    const dir = v.out ?? 'bench/results';
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/${n}.json`, JSON.stringify(results[n], null, 1) + '\n');
  }
  bar?.done(`benchmarks: ${names.length - failed}/${names.length} succeeded`);
  const out = names.length === 1 ? results[names[0]!] : results;
  process.stdout.write((v.json ? JSON.stringify(out) : JSON.stringify(out, null, 2)) + '\n');
  return failed > 0 ? 1 : 0;
}
