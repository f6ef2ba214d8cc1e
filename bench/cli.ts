// `praetor bench cli`: what a user waits for, whole-process wall times of the real CLI (issue 16).
// `praetor run -- true` through a warm resident guard, the first run when no guard is up (it
// starts one), --no-detect, `--timeout 1 -- sleep 30`, 20 runs in parallel, and `node -e 0` and
// raw bwrap for the ratios. Each state directory is the benchmark's own; every guard it starts
// is stopped by its pid file.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { pct } from './stats.ts';

const PRAETOR = new URL('../bin/praetor', import.meta.url).pathname;

function wall(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ ms: number; code: number | null }> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, ...env } });
    c.once('error', rej);
    c.once('exit', (code) => res({ ms: performance.now() - t0, code }));
  });
}

async function series(n: number, fn: () => Promise<{ ms: number; code: number | null }>, want = 0): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fn();
    if (r.code !== want) throw new Error(`a benchmark run exited ${r.code}, expected ${want}`);
    out.push(r.ms);
  }
  return out;
}

const stopGuard = (state: string) => spawnSync(PRAETOR, ['daemon', 'stop', '--state', state], { stdio: 'ignore' });
const r2 = (x: number) => Math.round(x * 100) / 100;

export async function benchCli(o: { runs?: number; progress?: (m: string) => void } = {}): Promise<Record<string, unknown>> {
  const runs = o.runs ?? 20;
  const say = o.progress ?? (() => {});
  const load = loadavg()[0]!;
  const state = mkdtempSync('/tmp/pt-bench-cli-');
  const states = [state];
  try {
    say(`node -e 0 and raw bwrap, ${runs} runs each`);
    const node = await series(runs, () => wall(process.execPath, ['-e', '0']));
    const bwrap = await series(runs, () => wall('/usr/bin/bwrap', ['--ro-bind', '/', '/', '--unshare-all', '--die-with-parent', '/bin/true']));

    say(`cold: the first run with no guard up (starts one), ${runs} times`);
    const cold: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = mkdtempSync('/tmp/pt-bench-cli-cold-');
      states.push(s);
      const r = await wall(PRAETOR, ['run', '--state', s, '--', 'true']);
      if (r.code !== 0) throw new Error(`cold run exited ${r.code}`);
      cold.push(r.ms);
      stopGuard(s);
      rmSync(s, { recursive: true, force: true });
    }

    say('warm guard: run -- true, --no-detect, --timeout 1');
    await wall(PRAETOR, ['daemon', 'start', '--state', state]);
    await wall(PRAETOR, ['run', '--state', state, '--', 'true']); // sensor ready, rules compiled
    const warm = await series(runs, () => wall(PRAETOR, ['run', '--state', state, '--', 'true']));
    const noDetect = await series(runs, () => wall(PRAETOR, ['run', '--state', state, '--no-detect', '--', 'true']));
    const timeout = await series(runs, () => wall(PRAETOR, ['run', '--state', state, '--timeout', '1', '--', 'sleep', '30']), 124);

    say('20 runs in parallel through the guard');
    const par: number[] = [];
    for (let i = 0; i < Math.max(3, Math.ceil(runs / 7)); i++) {
      const t0 = performance.now();
      const rs = await Promise.all(Array.from({ length: 20 }, () => wall(PRAETOR, ['run', '--state', state, '--', 'true'])));
      if (rs.some((r) => r.code !== 0)) throw new Error(`a parallel run exited ${rs.find((r) => r.code !== 0)!.code}`);
      par.push(performance.now() - t0);
    }

    say('in-process (no guard): --no-detect, and a few with detection');
    const inProc = { PRAETOR_NO_GUARD: '1' };
    const noDetectInProcess = await series(runs, () => wall(PRAETOR, ['run', '--state', state, '--no-detect', '--', 'true'], inProc));
    const trueInProcess = await series(3, () => wall(PRAETOR, ['run', '--state', state, '--', 'true'], inProc));
    const timeoutInProcess = await series(3, () => wall(PRAETOR, ['run', '--state', state, '--timeout', '1', '--', 'sleep', '30'], inProc), 124);

    const runTrueP50Ms = pct(warm, 50, 1);
    const nodeBootP50Ms = pct(node, 50, 1);
    return {
      runs,
      loadAvg1m: r2(load),
      runTrueP50Ms, runTrueP90Ms: pct(warm, 90, 1),
      runTrueColdMs: pct(cold, 50, 1), runTrueColdMaxMs: pct(cold, 100, 1),
      runNoDetectP50Ms: pct(noDetect, 50, 1),
      timeout1sWallMs: pct(timeout, 50, 1), timeout1sWallMaxMs: pct(timeout, 100, 1),
      nodeBootP50Ms, bwrapP50Ms: pct(bwrap, 50, 2),
      parallel20WallMs: pct(par, 50, 1),
      ratioToNodeBoot: r2(runTrueP50Ms / nodeBootP50Ms),
      inProcess: {
        runNoDetectP50Ms: pct(noDetectInProcess, 50, 1),
        runTrueP50Ms: pct(trueInProcess, 50, 1), runTrueRuns: trueInProcess.length,
        timeout1sWallMs: pct(timeoutInProcess, 50, 1),
      },
      targets: { runTrueP50Ms: 150, runTrueColdMs: 2500, timeout1sWallMs: 1500 },
    };
  } finally {
    for (const s of states) { stopGuard(s); rmSync(s, { recursive: true, force: true }); }
  }
}
