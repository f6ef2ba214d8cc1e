// Nothing leaks: 200 create/destroy cycles, a praetor SIGKILLed mid-run (reaped by gc and by the
// next start), and praetor running inside `ip netns exec` (its own mount namespace, where it
// mounts the cgroup hierarchies itself).
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { SandboxManager } from '../../src/sandbox/index.ts';
import { openManager } from './helpers.ts';

const PRAETOR = new URL('../../bin/praetor', import.meta.url).pathname;

function snapshot(m: SandboxManager) {
  const group = m.host.cgroupGroup;
  const cg = [m.host.cgroups.unified, ...Object.values(m.host.cgroups.v1)].filter(Boolean)
    .flatMap((r) => { try { return readdirSync(`${r}/${group}`).filter((d) => d.startsWith('sb-')); } catch { return []; } });
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`${m.stateDir}/sandboxes/`)).length;
  // Live (non-zombie) processes in this state's cgroup group; other tests on the machine don't count.
  const procs = execFileSync('ps', ['-eo', 'pid=,stat=']).toString().split('\n').filter((l) => {
    const [pid, stat] = l.trim().split(/\s+/);
    if (!pid || stat?.startsWith('Z')) return false;
    try { return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${group}/`); } catch { return false; }
  }).length;
  const dirs = existsSync(`${m.stateDir}/sandboxes`) ? readdirSync(`${m.stateDir}/sandboxes`).length : 0;
  return { cg: cg.length, mounts, procs, dirs };
}

test('200 create/destroy cycles leave nothing behind', async () => {
  const m = await openManager();
  const before = snapshot(m);
  for (let i = 0; i < 200; i++) {
    const sb = await m.create({});
    if (i % 20 === 0) assert.equal((await sb.exec(['true'])).code, 0);
    await sb.destroy();
  }
  const afterAll = snapshot(m);
  assert.deepEqual(afterAll, before);
});

// These tests are about the process that owns its sandboxes (SIGKILLed, under `ip netns exec`):
// the in-process `praetor run`, not the resident guard (test/cli/guard.test.ts covers that one).
const IN_PROCESS = { ...process.env, PRAETOR_NO_GUARD: '1' };

function waitFor(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  return new Promise((res) => {
    const tick = () => { if (ok()) res(true); else if (Date.now() > end) res(false); else setTimeout(tick, 20); };
    tick();
  });
}

test('a SIGKILLed praetor: its sandbox dies with it, gc reaps the rest', async () => {
  const state = mkdtempSync('/tmp/pt-test-kill-');
  after(() => rmSync(state, { recursive: true, force: true }));
  const child = spawn(PRAETOR, ['run', '--no-detect', '--state', state, '--', 'sh', '-c', 'sleep 1000 & sleep 1000'], { stdio: 'ignore', env: IN_PROCESS });
  const sbDir = `${state}/sandboxes`;
  // A sandbox directory is assembled under a dot name and renamed into place: wait for the rename.
  const placed = () => (existsSync(sbDir) ? readdirSync(sbDir).filter((d) => d.startsWith('sb-')) : []);
  assert.ok(await waitFor(() => placed().length === 1 && existsSync(`${sbDir}/${placed()[0]}/owner.json`), 10_000), 'sandbox created');
  const id = placed()[0]!;
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const m = await SandboxManager.open({ stateDir: state, gcOnOpen: false });
  const cgroupProcs = `${m.host.cgroups.unified ?? m.host.cgroups.v1.pids}/${m.host.cgroupGroup}/${id}/cgroup.procs`;
  // --die-with-parent and the closed control pipe end every process of the sandbox.
  assert.ok(await waitFor(() => !existsSync(cgroupProcs) || readFileSync(cgroupProcs, 'utf8').trim() === '', 5000), 'sandbox processes died with praetor');
  const r = spawnSync(PRAETOR, ['gc', '--json', '--state', state], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).reaped, [id]);
  assert.equal(existsSync(`${sbDir}/${id}`), false);
  assert.equal(existsSync(cgroupProcs), false);
});

test('the next start reaps what a dead praetor owned', async () => {
  const state = mkdtempSync('/tmp/pt-test-kill2-');
  after(() => rmSync(state, { recursive: true, force: true }));
  const child = spawn(PRAETOR, ['run', '--no-detect', '--state', state, '--', 'sleep', '1000'], { stdio: 'ignore', env: IN_PROCESS });
  const sbDir = `${state}/sandboxes`;
  assert.ok(await waitFor(() => existsSync(sbDir) && readdirSync(sbDir).some((d) => d.startsWith('sb-')), 10_000));
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const m = await SandboxManager.open({ stateDir: state });
  assert.equal(m.lastGc?.reaped.length, 1);
  assert.deepEqual(readdirSync(sbDir), []);
});

test('praetor under `ip netns exec` mounts its own cgroups and runs', async () => {
  const ns = `pt-${randomBytes(3).toString('hex')}-host`;
  execFileSync('ip', ['netns', 'add', ns]);
  const state = mkdtempSync('/tmp/pt-test-ns-');
  after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(state, { recursive: true, force: true });
  });
  const r = spawnSync('ip', ['netns', 'exec', ns, PRAETOR, 'run', '--no-detect', '--state', state, '--', 'sh', '-c', 'cat /proc/net/dev | tail -n +3 | cut -d: -f1; echo ok'], { encoding: 'utf8', timeout: 30_000, env: IN_PROCESS });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.replace(/ /g, ''), 'lo\nok\n');
  assert.deepEqual(readdirSync(`${state}/sandboxes`), []);
});
