// Test fixture: a gateway in the topology's host namespace (via harness.ts) and sandboxes as
// network namespaces `pt-<run>-s<N>` holding a sleeping process, attached like the lead's
// runtime will attach them. Everything is removed by close(), also after a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PraetorEvent } from '../../src/events/index.ts';
import { nodeBinary, type ExecResult, type Topology } from '../topology/index.ts';
import { run } from '../../src/testbed/netns.ts';

const NODE = nodeBinary();
const HARNESS = fileURLToPath(new URL('./harness.ts', import.meta.url));

export type { ExecResult };
/** The topology's runner (code 0 on success, 128+signal when killed, 137 after timeoutMs). */
export function exec(cmd: string, args: string[], timeoutMs = 15_000): Promise<ExecResult> {
  return run(cmd, args, { timeoutMs });
}

export interface TestSandbox {
  id: string; ns: string; pid: number; gatewayIp: string; sandboxIp: string; env: Record<string, string>;
  /** The interception CA the gateway gave this sandbox (PEM), when TLS inspection is on. */
  caCertPem?: string;
  secrets?: Array<{ name: string; domain: string; sha256: string }>;
  /** Runs a command inside the sandbox's namespace (its resolv.conf is the gateway's). */
  exec(cmd: string, args: string[], timeoutMs?: number): Promise<ExecResult>;
  setPhase(phase: string): Promise<void>;
  isolate(): Promise<void>;
  /** SandboxNet.containing: a containment whose trigger was sinceAgoMs ago, lasting forMs more; how many flows it cut. */
  containing(sinceAgoMs: number, forMs: number): Promise<number>;
  destroy(): Promise<void>;
}

export interface GatewayFixture {
  events: PraetorEvent[];
  table: string;
  waitEvent(pred: (e: PraetorEvent) => boolean, timeoutMs?: number): Promise<PraetorEvent>;
  sandbox(policy: unknown, opts?: { phase?: string; attach?: boolean; egressTokens?: Array<{ name: string; value: string; kind: 'canary' | 'placeholder' }> }): Promise<TestSandbox>;
  /** Rotates the gateway's interception CA (see Gateway.rotateCa): the new CA and the bundle new sandboxes get. */
  rotateCa(graceMs: number): Promise<{ certPem: string; bundlePem: string }>;
  /** SIGKILLs the gateway process (a crashed praetor), leaving its table, links and slots. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

export async function startGatewayFixture(t: Topology, env: Record<string, string> = {}): Promise<GatewayFixture> {
  // The gateway's state (its interception CA) in a dir this fixture removes, also after a crash().
  const state = env.PT_STATE ? null : mkdtempSync(join(tmpdir(), 'praetor-gw-state-'));
  const child: ChildProcess = spawn('ip', ['netns', 'exec', t.hostNs, NODE, HARNESS], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...(state ? { PT_STATE: state } : {}), ...env } });
  if (state) child.once('exit', () => rmSync(state, { recursive: true, force: true }));
  const events: PraetorEvent[] = [];
  const waiters = new Set<() => void>();
  const pending = new Map<number, (r: { ok: boolean; result?: unknown; error?: string }) => void>();
  let ready!: (v: { table: string }) => void; let failed!: (e: Error) => void;
  const readyP = new Promise<{ table: string }>((res, rej) => { ready = res; failed = rej; });
  child.once('exit', (code) => failed(new Error(`gateway harness exited with ${code}`)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let m: { event?: PraetorEvent; id?: number; ready?: boolean; table?: string; ok?: boolean; result?: unknown; error?: string };
    try { m = JSON.parse(line); } catch { return; }
    if (m.ready) ready({ table: m.table! });
    else if (m.event) { events.push(m.event); for (const w of waiters) w(); }
    else if (m.id !== undefined) { pending.get(m.id)?.(m as never); pending.delete(m.id); }
  });
  const timer = setTimeout(() => failed(new Error('gateway harness did not start in 20 s')), 20_000);
  const { table } = await readyP.finally(() => clearTimeout(timer));
  let seq = 0;
  child.once('exit', () => { for (const [, done] of pending) done({ ok: false, error: 'gateway harness exited' }); pending.clear(); });
  const call = (op: string, args: Record<string, unknown> = {}): Promise<unknown> => new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) { reject(new Error('gateway harness exited')); return; }
    const id = ++seq;
    pending.set(id, (r) => (r.ok ? resolve(r.result) : reject(new Error(r.error))));
    child.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n');
  });
  const sandboxes = new Set<TestSandbox>();
  // If the test process dies before close() (a crash, a broken pipe), still remove what we made.
  const cleanups = new Map<TestSandbox, () => void>();
  const onExit = () => { for (const c of cleanups.values()) c(); child.kill('SIGKILL'); };
  process.once('exit', onExit);
  let n = 0;
  const prefix = t.hostNs.replace(/-host$/, '');

  const fixture: GatewayFixture = {
    events, table,
    waitEvent(pred, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => { const e = events.find(pred); if (e) { done(); resolve(e); } };
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        const timer = setTimeout(() => { done(); reject(new Error(`no matching event in ${timeoutMs} ms; got: ${events.map((e) => e.kind).join(',')}`)); }, timeoutMs);
        waiters.add(check); check();
      });
    },
    async sandbox(policy, opts = {}) {
      const id = `sb-${(++n).toString(16).padStart(12, '0')}`;
      const ns = `${prefix}-s${n}`;
      const prepared = await call('prepare', { sandboxId: id, policy, ...(opts.phase ? { phase: opts.phase } : {}), ...(opts.egressTokens ? { egressTokens: opts.egressTokens } : {}) }) as { resolvConf: string; env: Record<string, string>; gatewayIp: string; sandboxIp: string; caCertPem?: string; secrets?: TestSandbox['secrets'] };
      await exec('ip', ['netns', 'add', ns]);
      mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${ns}/resolv.conf`, prepared.resolvConf);
      writeFileSync(`/etc/netns/${ns}/hosts`, '127.0.0.1 localhost\n');
      const sleeper = spawn('ip', ['netns', 'exec', ns, 'sleep', '600'], { stdio: 'ignore' });
      let destroyed = false;
      const sb: TestSandbox = {
        id, ns, pid: sleeper.pid!, gatewayIp: prepared.gatewayIp, sandboxIp: prepared.sandboxIp, env: prepared.env,
        ...(prepared.caCertPem ? { caCertPem: prepared.caCertPem } : {}), ...(prepared.secrets ? { secrets: prepared.secrets } : {}),
        exec: (cmd, args, timeoutMs) => exec('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs),
        setPhase: async (phase) => { await call('setPhase', { sandboxId: id, phase }); },
        isolate: async () => { await call('isolate', { sandboxId: id }); },
        containing: async (sinceAgoMs, forMs) => ((await call('containing', { sandboxId: id, sinceAgoMs, forMs })) as { cut: number }).cut,
        async destroy() {
          if (destroyed) return; destroyed = true; sandboxes.delete(sb); cleanups.delete(sb);
          await call('detach', { sandboxId: id }).catch(() => {});
          sleeper.kill('SIGKILL');
          await exec('ip', ['netns', 'del', ns]);
          rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
        },
      };
      sandboxes.add(sb);
      cleanups.set(sb, () => { try { sleeper.kill('SIGKILL'); } catch { /* gone */ } spawnSync('ip', ['netns', 'del', ns]); rmSync(`/etc/netns/${ns}`, { recursive: true, force: true }); });
      // ip netns exec execs sleep, so the pid ends up inside the namespace; wait until it has.
      const want = statSync(`/run/netns/${ns}`).ino;
      for (let i = 0; i < 200; i++) {
        try { if (statSync(`/proc/${sleeper.pid}/ns/net`).ino === want) break; } catch { /* not yet */ }
        await new Promise((r) => setTimeout(r, 5));
      }
      if (opts.attach !== false) await call('attach', { sandboxId: id, pid: sleeper.pid });
      return sb;
    },
    rotateCa: async (graceMs) => await call('rotateCa', { graceMs }) as { certPem: string; bundlePem: string },
    async crash() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    },
    async close() {
      process.off('exit', onExit);
      for (const sb of [...sandboxes]) await sb.destroy();
      child.stdin!.end();
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const k = setTimeout(() => { child.kill('SIGKILL'); }, 10_000);
        child.once('exit', () => { clearTimeout(k); resolve(); });
      });
    },
  };
  return fixture;
}
