// Containment that proves itself (issue 17 §1, §2, §8 async waits), against real sandboxes and
// real cgroups. Each test here fails on the code before the fix:
//   - a kill-tree without a triggering pid (every gateway and resource verdict) spared agent
//     processes named `exe`, `bwrap` or `.praetor-init` (by cp or by prctl(PR_SET_NAME));
//   - `pids()` of a missing cgroup came back [] instead of failing;
//   - a freeze that never took effect was recorded ok, and nothing escalated;
//   - isolate was recorded ok for a sandbox with only lo;
//   - waiting for a freeze blocked the event loop (Atomics.wait).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { contain } from '../../src/contain/index.ts';
import { EventBus, type PraetorEvent } from '../../src/events/index.ts';
import type { AlertEvent } from '../../src/rules/index.ts';
import type { Sandbox } from '../../src/sandbox/index.ts';
import { Cgroup } from '../../src/sandbox/cgroup.ts';
import { openManager, sh } from '../sandbox/helpers.ts';

const m = await openManager();

type Containment = Extract<PraetorEvent, { kind: 'containment' }>;

function alertFor(sb: Sandbox, actions: AlertEvent['actions'], rule = 'test verdict'): AlertEvent {
  return { kind: 'alert', id: `al-${Math.random().toString(36).slice(2)}`, ts: Date.now() * 1e6, sandboxId: sb.id, rule, priority: 'CRITICAL', tags: [], output: rule, evidence: [], maturity: 'stable', actions };
}
/** A trigger without a pid: what the egress gateway and the resource windows raise. */
function pidless(sb: Sandbox): PraetorEvent {
  return { kind: 'net.flow', id: 'ev-1', ts: Date.now() * 1e6, sandboxId: sb.id } as unknown as PraetorEvent;
}
async function run(sb: Sandbox, alert: AlertEvent, trigger: PraetorEvent, t: Partial<Parameters<typeof contain>[1]> = {}): Promise<Containment[]> {
  const bus = new EventBus();
  const got: Containment[] = [];
  bus.subscribe((e) => { if (e.kind === 'containment') got.push(e); });
  await contain(bus, { sandbox: sb, ...t }, alert, trigger);
  return got;
}
function alive(pid: number): boolean {
  try { return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); } catch { return false; }
}
function comm(pid: number): string {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return ''; }
}
async function waitFor(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) { if (ok()) return; await new Promise((r) => setTimeout(r, 25)); }
  assert.fail(`timed out waiting for ${what}`);
}

test('a pid-less kill-tree kills agent processes that call themselves exe, bwrap or .praetor-init; the runtime survives', async () => {
  const sb = await m.create({});
  const runtime = new Set(sb.runtimeProcesses.map((p) => p.pid));
  assert.ok(runtime.size >= 2, `the runtime's processes were recorded by identity: ${JSON.stringify(sb.runtimeProcesses)}`);
  // Renamed by copying (comm comes from the file name) and by prctl(PR_SET_NAME).
  const script = [
    'mkdir -p /tmp/d && for n in exe bwrap .praetor-init; do cp /bin/sleep /tmp/d/$n; (/tmp/d/$n 300 &) ; done',
    `for n in exe bwrap .praetor-init runsc-gofer; do (/usr/bin/python3 -c "import ctypes,time; ctypes.CDLL(None).prctl(15, b'$n', 0, 0, 0); time.sleep(300)" &); done`,
    'echo started',
  ].join('\n');
  const r = await sb.exec(sh(script));
  assert.equal(r.stdout.trim(), 'started', r.stderr);
  let agents: number[] = [];
  await waitFor(() => {
    agents = sb.cgroup.pids().filter((p) => !runtime.has(p));
    return agents.length === 7 && agents.every((p) => ['exe', 'bwrap', '.praetor-init', 'runsc-gofer'].includes(comm(p)));
  }, '7 self-named agent processes');
  const names = agents.map(comm).sort();
  assert.deepEqual(names, ['.praetor-init', '.praetor-init', 'bwrap', 'bwrap', 'exe', 'exe', 'runsc-gofer'], 'they really carry the runtime names');

  const ev = await run(sb, alertFor(sb, ['alert', 'kill-tree']), pidless(sb));
  const kt = ev.find((e) => e.action === 'kill-tree');
  assert.ok(kt, JSON.stringify(ev));
  assert.equal(kt.ok, true, JSON.stringify(kt));
  assert.equal(kt.outcome, 'verified');
  assert.equal(kt.targets, 7, JSON.stringify(kt));
  for (const p of agents) assert.equal(alive(p), false, `agent process ${p} is gone`);
  // The runtime's own processes are untouched: the sandbox still runs commands.
  for (const p of runtime) assert.equal(alive(p), true, `runtime process ${p} spared`);
  assert.equal((await sb.exec(['true'])).code, 0, 'the sandbox still works after the kill-tree');
  await sb.destroy();
});

test('a freeze is recorded only once the kernel reports the cgroup frozen', async () => {
  const sb = await m.create({});
  const h = sb.spawn(sh('while :; do :; done'));
  const ev = await run(sb, alertFor(sb, ['alert', 'freeze']), pidless(sb));
  const fr = ev.find((e) => e.action === 'freeze');
  assert.ok(fr?.ok && fr.outcome === 'verified', JSON.stringify(ev));
  assert.match(readFileSync(`${sb.cgroup.unifiedDir}/cgroup.events`, 'utf8'), /^frozen 1$/m, 'really frozen');
  await sb.cgroup.freeze(false);
  h.kill();
  await h.done;
  await sb.destroy();
});

test('isolate on a sandbox with only lo is skipped, not ok', async () => {
  const sb = await m.create({});
  let called = 0;
  const ev = await run(sb, alertFor(sb, ['alert', 'isolate']), pidless(sb), { isolate: () => { called++; } });
  const iso = ev.find((e) => e.action === 'isolate');
  assert.ok(iso, JSON.stringify(ev));
  assert.equal(iso.ok, false, JSON.stringify(iso));
  assert.equal(iso.outcome, 'skipped');
  assert.match(String(iso.reason), /only lo/);
  assert.equal(called, 0, 'nothing to cut, nothing called');
  assert.ok(!ev.some((e) => e.action === 'destroy'), 'a skipped isolate is no failure: no escalation');
  await sb.destroy();
});

test('pids() of a cgroup that is gone throws instead of answering []', () => {
  const cg = new Cgroup(m.host.cgroups, `${m.host.cgroupGroup}/sb-000000000000`);
  assert.throws(() => cg.pids(), (e: Error & { code?: string }) => e.code === 'SANDBOX_FAILED' && /cgroup\.procs/.test(e.message));
  assert.equal(cg.empty(), true, 'a removed cgroup is empty');
});

// A freeze that the kernel never confirms cannot be produced on demand on a healthy kernel, so
// this one cgroup is a directory of plain files shaped like a v2 cgroup whose cgroup.events
// never says `frozen 1`, and whose cgroup.procs cannot be read.
function stuckCgroup(): { cg: Cgroup; dir: string } {
  const root = mkdtempSync('/tmp/pt-test-stuck-cg-');
  after(() => rmSync(root, { recursive: true, force: true }));
  const dir = `${root}/praetor-x/sb-stuck`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/cgroup.freeze`, '0');
  writeFileSync(`${dir}/cgroup.kill`, '');
  writeFileSync(`${dir}/cgroup.events`, 'populated 1\nfrozen 0\n');
  mkdirSync(`${dir}/cgroup.procs`); // reading it fails with EISDIR
  return { dir, cg: new Cgroup({ mode: 'v2', v1: {}, unified: root, v2Controllers: new Set() }, 'praetor-x/sb-stuck') };
}

test('a freeze that never takes effect fails, and containment escalates freeze → kill-tree → destroy, each an event', async () => {
  const { cg } = stuckCgroup();
  await assert.rejects(cg.freeze(true, 100), (e: Error & { code?: string }) => e.code === 'TIMEOUT');
  let destroyed = false;
  const sb = { id: 'sb-stuck', state: 'running', cgroup: cg, hostPid: undefined, runtimeProcesses: [], destroy: async () => { destroyed = true; } } as unknown as Sandbox;
  const ev = await run(sb, alertFor(sb, ['alert', 'freeze']), pidless(sb));
  assert.deepEqual(ev.map((e) => [e.action, e.ok, e.outcome, e.escalatedFrom ?? null]), [
    ['freeze', false, 'failed', null],
    ['kill-tree', false, 'failed', 'freeze'],
    ['destroy', false, 'failed', 'kill-tree'],
  ], JSON.stringify(ev, null, 1));
  assert.ok(destroyed, 'the sandbox was destroyed');
  assert.ok(ev.every((e) => e.ok === false), 'nothing unverified is recorded ok');
});

test('waiting for a freeze does not block the event loop', async () => {
  const { cg } = stuckCgroup();
  let ticks = 0;
  const iv = setInterval(() => { ticks++; }, 5);
  await cg.freeze(true, 300).catch(() => {});
  clearInterval(iv);
  assert.ok(ticks > 0, `timers ran while the freeze was awaited (${ticks} ticks)`);
});

test('a pid that is not (or no longer) in the sandbox cgroup is never signalled: a recycled pid cannot kill a host process', async () => {
  const { spawn } = await import('node:child_process');
  const { killConfirmed } = await import('../../src/sandbox/index.ts');
  const sb = await m.create({});
  const host = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await waitFor(() => comm(host.pid!) === 'sleep', 'the host process');
    const r = await killConfirmed([host.pid!], sb.cgroup.rel);
    assert.deepEqual(r.killed, []);
    assert.equal(alive(host.pid!), true, 'the host process was left alone');
  } finally {
    host.kill('SIGKILL');
    await sb.destroy();
  }
});
