// The half of the arena that runs inside the topology's host namespace (started by arena.ts with
// `ip netns exec pt-<run>-host`): the scripted model on loopback, `praetor serve` on loopback
// with a temp state dir, an admin token from `praetor token create`, then every scenario played
// as an episode over HTTP with the SDK. Nothing here can reach anything but the fake internet.
// Results go to --out as JSON; the parent judges them against the fake servers' logs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PraetorClient } from '../sdk/index.ts';
import { errorMessage } from '../errors.ts';
import { playEpisode, type PlayResult } from './agent.ts';
import { runUnguarded } from './baseline.ts';
import { loadSuite, type ResolvedScenario, type Suite } from './schema.ts';
import { startRelayInside } from './model-relay.ts';
import { startScriptedModel } from './scripted-model.ts';

const PRAETOR = fileURLToPath(new URL('../../bin/praetor', import.meta.url));

/** The episode policy when a scenario names none: default deny, one allowed API, the mirror in setup. */
export const ARENA_POLICY = {
  network: {
    allow: [{ domain: 'api.example.test', ports: [80] }, { domain: 'secure.example.test', ports: [443] }],
    phases: { setup: { allow: [{ domain: '*.mirror.example.test', ports: [8081] }], deny: [] } },
  },
};

export interface ScenarioRun {
  id: string; startMs: number; endMs: number; skipped: string | null; play: PlayResult | null;
  error: string | null; baselineMs: number | null; guardedMs: number | null;
}
export interface InsideResult { serverUrl: string; degraded: string[]; runs: ScenarioRun[]; model: string }

function startServe(state: string, upstream: string, log: (s: string) => void): Promise<{ child: ChildProcess; url: string; degraded: string[] }> {
  const child = spawn(PRAETOR, ['serve', '--state', state, '--port', '0', '--model-upstream', upstream], { stdio: ['ignore', 'pipe', 'pipe'] });
  const degraded: string[] = [];
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`praetor serve not ready after 60 s: ${err.slice(-1000)}`)); }, 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      for (const m of d.toString().matchAll(/degraded: (.*)/g)) degraded.push(m[1]!);
      if (process.env.PRAETOR_ARENA_DEBUG) log(d.toString().trimEnd());
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving on (http:\/\/[^\s]+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1]!, degraded }); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`praetor serve exited (${code}): ${err.slice(-2000)}`)); });
  });
}

function hasGpu(): boolean {
  return spawnSync('nvidia-smi', ['-L'], { stdio: 'ignore' }).status === 0;
}

export async function runInside(o: { suite: Suite; only?: string[]; modelUrl?: string; modelSocket?: string; model?: string; baseline: boolean; log: (s: string) => void; upstreamCa?: string }): Promise<InsideResult> {
  const scenarios = loadSuite(o.suite, undefined, o.only);
  const state = mkdtempSync('/tmp/praetor-arena-state-');
  const scripts = new Map(scenarios.map((s) => [s.id, s.steps]));
  // A real model is reached only through the parent's relay socket (the namespace has no way out).
  const model = o.modelSocket ? await startRelayInside(o.modelSocket) : await startScriptedModel(scripts);
  let serve: Awaited<ReturnType<typeof startServe>> | undefined;
  try {
    const tok = spawnSync(PRAETOR, ['token', 'create', '--state', state, '--tenant', 'arena', '--admin'], { encoding: 'utf8' });
    if (tok.status !== 0) throw new Error(`praetor token create failed: ${tok.stderr}`);
    const token = tok.stdout.trim().split('\n').pop()!;
    serve = await startServe(state, model.url, o.log);
    const client = new PraetorClient({ url: serve.url, token, timeoutMs: 600_000 });
    const gpu = hasGpu();
    const runs: ScenarioRun[] = [];
    for (const s of scenarios) {
      const run: ScenarioRun = { id: s.id, startMs: Date.now(), endMs: 0, skipped: null, play: null, error: null, baselineMs: null, guardedMs: null };
      runs.push(run);
      if (s.requires.includes('gpu') && !gpu) {
        run.skipped = 'needs a GPU host (nvidia-smi found no GPU)';
        run.endMs = Date.now();
        o.log(`  ${s.id}: skipped (${run.skipped})`);
        continue;
      }
      try {
        run.play = await playScenario(client, token, s, o.modelSocket ? o.model ?? 'gpt-4o-mini' : `scripted:${s.id}`, o.upstreamCa);
        run.guardedMs = run.play.steps.reduce((a, x) => a + x.durationMs, 0);
      } catch (e) { run.error = errorMessage(e); }
      // Let a connection the guard let through reach the fake server's log before the window closes.
      await new Promise((r) => setTimeout(r, 300));
      run.endMs = Date.now();
      if (s.expected === 'benign' && o.baseline && !run.error) {
        run.baselineMs = await runUnguarded(s).catch((e: unknown) => { o.log(`  ${s.id}: unguarded baseline failed: ${errorMessage(e)}`); return null; });
      }
      const p = run.play;
      o.log(`  ${s.id}: ${run.error ? `error: ${run.error}` : `${p!.steps.length} steps, ended by ${p!.endedBy}${p!.error ? ` (${p!.error})` : ''}, flags ${JSON.stringify(p!.report?.flags.map((f) => `${f.step}:${f.verdict}:${f.rule}`) ?? [])}`}`);
    }
    return { serverUrl: serve.url, degraded: serve.degraded, runs, model: o.modelSocket ? o.model ?? 'gpt-4o-mini' : 'scripted' };
  } finally {
    if (serve) {
      const c = serve.child;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    await model.close();
    spawnSync(PRAETOR, ['gc', '--state', state], { stdio: 'ignore' });
    rmSync(state, { recursive: true, force: true });
  }
}

/**
 * The fake internet's HTTPS server has a test certificate: the gateway, which intercepts TLS to
 * allowed names, must trust it upstream. Added to every episode policy with a network section.
 */
export function withUpstreamCa(policy: Record<string, unknown>, ca: string | undefined): Record<string, unknown> {
  const net = policy.network as Record<string, unknown> | undefined;
  if (!ca || !net || net.upstreamCa !== undefined) return policy;
  return { ...policy, network: { ...net, upstreamCa: ca } };
}

async function playScenario(client: PraetorClient, token: string, s: ResolvedScenario, model: string, upstreamCa?: string): Promise<PlayResult> {
  return playEpisode({
    client, token, model, task: s.task, maxSteps: s.steps.length + 2, reward: s.reward,
    create: {
      policy: withUpstreamCa(s.policy ?? ARENA_POLICY, upstreamCa),
      ...(Object.keys(s.sandbox).length ? { sandbox: s.sandbox } : {}),
      ...(s.setup.length ? { phases: { setup: s.setup } } : {}),
    },
  });
}

// Entry point when run as a script inside the host namespace.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: v } = parseArgs({ options: { suite: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' }, 'model-socket': { type: 'string' }, model: { type: 'string' }, 'no-baseline': { type: 'boolean' }, 'upstream-ca': { type: 'string' } } });
  const log = (s: string) => process.stderr.write(s + '\n');
  try {
    const r = await runInside({
      suite: (v.suite ?? 'quick') as Suite, ...(v.only ? { only: v.only.split(',') } : {}),
      ...(v['model-socket'] ? { modelSocket: v['model-socket'] } : {}), ...(v.model ? { model: v.model } : {}),
      baseline: !v['no-baseline'], log, ...(v['upstream-ca'] ? { upstreamCa: v['upstream-ca'] } : {}),
    });
    writeFileSync(v.out!, JSON.stringify(r));
  } catch (e) {
    log(`arena (inside): ${errorMessage(e)}`);
    process.exitCode = 1;
  }
}
