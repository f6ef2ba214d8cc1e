// Issue 17 §6: the ledger fails closed for running sandboxes too. The ledger lives on a tiny
// tmpfs that the test fills to the last byte (a real ENOSPC, not a mock); through the guard that
// both `praetor run` and the server use, a running sandbox is then frozen (the test reads its
// cgroup's frozen state itself), new ones are refused, and every step is an event. Freeing the
// disk resumes it and records the outage's events late; an outage longer than the grace period
// destroys it, and what could not be recorded is kept in a local file.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { verifyLedger } from '../../src/audit/index.ts';
import { isPraetorError } from '../../src/errors.ts';
import { EventBus, type PraetorEvent } from '../../src/events/index.ts';
import { startGuard } from '../../src/runner/index.ts';
import { SandboxManager, type Sandbox } from '../../src/sandbox/index.ts';

const dir = mkdtempSync('/tmp/pt-ledger-hold-');
const mounts: string[] = [];
after(() => {
  for (const m of mounts.splice(0)) try { execFileSync('umount', [m]); } catch { spawnSync('umount', ['-l', m]); }
  rmSync(dir, { recursive: true, force: true });
});

function tinyDisk(name: string): string {
  const mnt = `${dir}/${name}`;
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  mounts.push(mnt);
  return mnt;
}
/** Fills the tmpfs to the last byte (dd stops at ENOSPC). */
function fill(mnt: string): void { spawnSync('dd', ['if=/dev/zero', `of=${mnt}/filler`, 'bs=16k'], { stdio: 'ignore' }); }

/** Read by the test itself, not through the code under test. */
function frozen(sb: Sandbox): boolean {
  const u = sb.cgroup.unifiedDir;
  if (u && existsSync(`${u}/cgroup.freeze`)) return /^frozen 1$/m.test(readFileSync(`${u}/cgroup.events`, 'utf8'));
  return readFileSync(`${sb.cgroup.v1('freezer')}/freezer.state`, 'utf8').trim() === 'FROZEN';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await sleep(50)) if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
}

async function setup(name: string, graceMs: number) {
  const mnt = tinyDisk(name);
  const state = `${dir}/${name}-state`;
  const bus = new EventBus();
  const seen: PraetorEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  const guard = await startGuard({ bus, stateDir: state, detect: false, log: () => {}, ledgerPath: `${mnt}/ledger.db`, ledgerGraceMs: graceMs });
  const manager = await SandboxManager.open({ stateDir: `${state}-sb`, bus });
  const sb = await manager.create({});
  guard.watch(sb);
  const ticker = sb.spawn(['/bin/sh', '-c', 'while :; do sleep 0.05; done']);
  /** Publishes large events until the ledger's writes fail on the full disk (bounded). */
  const breakLedger = async () => {
    fill(mnt);
    for (let i = 0; i < 400 && !guard.ledger!.error; i++) {
      for (let k = 0; k < 10; k++) bus.publish({ kind: 'tool.call', sandboxId: sb.id, tool: 'bash', input: `outage-${i}-${k} ${'x'.repeat(4000)}` });
      await sleep(10);
    }
    assert.ok(guard.ledger!.error, 'the ledger failed on the full disk');
  };
  const close = async () => { ticker.kill(); await manager.close(); await guard.close(); };
  return { mnt, state, bus, seen, guard, manager, sb, breakLedger, close };
}

test('a full ledger freezes the running sandbox, refuses new ones, and resumes it once the ledger records again', async () => {
  const t = await setup('recover', 120_000);
  try {
    assert.equal(frozen(t.sb), false);
    await t.breakLedger();
    await until('the sandbox is frozen', () => frozen(t.sb));
    assert.equal(t.sb.state, 'paused');
    assert.throws(() => t.sb.spawn(['true']), /paused/, 'nothing runs in it while the ledger is down');
    assert.throws(() => t.guard.ledger!.check(), (e: unknown) => isPraetorError(e) && e.code === 'LEDGER_UNAVAILABLE' && /frozen/.test(e.hint ?? ''));
    const late = await t.manager.create({});
    assert.throws(() => t.guard.watch(late), (e: unknown) => isPraetorError(e) && e.code === 'LEDGER_UNAVAILABLE', 'a new sandbox is refused');
    await late.destroy('refused: ledger down');
    const hold = t.seen.find((e) => e.kind === 'ledger.hold' && e.sandboxId === t.sb.id);
    assert.ok(hold && hold.kind === 'ledger.hold' && hold.action === 'freeze' && hold.ok, 'the freeze is an event, verified');
    assert.ok(t.seen.some((e) => e.kind === 'ledger.unavailable'));
    // still frozen a while later: the guard does not let it go while the disk stays full
    await sleep(1500);
    assert.equal(frozen(t.sb), true);

    rmSync(`${t.mnt}/filler`);
    await until('the ledger recovers', () => t.guard.ledger!.error === undefined);
    await until('the sandbox thaws', () => !frozen(t.sb));
    assert.equal(t.sb.state, 'running');
    assert.equal((await t.sb.exec(['echo', 'back'])).stdout, 'back\n');
    const kinds = t.seen.filter((e) => e.kind.startsWith('ledger.')).map((e) => e.kind === 'ledger.hold' ? `hold:${e.action}:${e.ok}` : e.kind);
    assert.deepEqual(kinds, ['ledger.unavailable', 'hold:freeze:true', 'ledger.recovered', 'hold:resume:true']);

    // The outage is in the ledger: its own events and what the agent did while it was down.
    await t.guard.flush();
    const db = new DatabaseSync(`${t.mnt}/ledger.db`, { readOnly: true });
    const bodies = (db.prepare('SELECT body FROM ledger_records').all() as Array<{ body: string }>).map((r) => JSON.parse(r.body) as PraetorEvent);
    db.close();
    for (const k of ['ledger.unavailable', 'ledger.hold', 'ledger.recovered', 'sandbox.paused', 'sandbox.resumed']) {
      assert.ok(bodies.some((e) => e.kind === k), `${k} recorded in the ledger`);
    }
    const rec = t.seen.find((e) => e.kind === 'ledger.recovered');
    assert.ok(rec && rec.kind === 'ledger.recovered' && rec.replayed > 0 && rec.dropped === 0);
    const ids = new Set(bodies.map((e) => e.id));
    const lost = t.seen.filter((e) => !ids.has(e.id) && e.kind !== 'sandbox.destroyed');
    assert.deepEqual(lost.map((e) => e.kind), [], 'no event published during the outage is missing from the ledger');
  } finally {
    await t.close();
  }
  const r = await verifyLedger({ db: `${t.mnt}/ledger.db`, stateDir: t.state });
  assert.equal(r.ok, true, JSON.stringify(r.problems));
});

test('an outage longer than the grace period destroys the frozen sandbox; unrecorded events go to a local file', async () => {
  const t = await setup('grace', 2000);
  try {
    await t.breakLedger();
    await until('the sandbox is frozen', () => frozen(t.sb));
    await until('the sandbox is destroyed after the grace period', () => t.seen.some((e) => e.kind === 'ledger.hold' && e.action === 'destroy'));
    assert.equal(t.sb.state, 'destroyed');
    const kinds = t.seen.filter((e) => e.kind === 'ledger.hold' && e.sandboxId === t.sb.id).map((e) => e.kind === 'ledger.hold' ? `${e.action}:${e.ok}` : '');
    assert.deepEqual(kinds, ['freeze:true', 'destroy:true']);
    assert.ok(t.seen.some((e) => e.kind === 'sandbox.destroyed' && e.sandboxId === t.sb.id && /ledger was down/.test(e.reason)));
  } finally {
    await t.close();
  }
  const files = readdirSync(`${t.state}/audit`).filter((f) => f.startsWith('ledger-outage-'));
  assert.equal(files.length, 1, 'the guard closed while the ledger was down: the queue is kept on local disk');
  const kept = readFileSync(`${t.state}/audit/${files[0]}`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PraetorEvent);
  assert.ok(kept.some((e) => e.kind === 'ledger.hold' && e.action === 'destroy'));
  assert.ok(kept.some((e) => e.kind === 'tool.call'), 'the agent-side events of the outage are kept too');
});

test('a sandbox contained while the ledger was down stays frozen after recovery (its owner decides)', async () => {
  const t = await setup('contained', 120_000);
  try {
    await t.breakLedger();
    await until('the sandbox is frozen', () => frozen(t.sb));
    t.bus.publish({ kind: 'containment', sandboxId: t.sb.id, action: 'kill-tree', ok: true, latencyMs: 1 });
    rmSync(`${t.mnt}/filler`);
    await until('the ledger recovers', () => t.guard.ledger!.error === undefined);
    await sleep(300);
    assert.equal(t.sb.state, 'paused');
    assert.equal(frozen(t.sb), true);
    assert.ok(!t.seen.some((e) => e.kind === 'ledger.hold' && e.action === 'resume'));
  } finally {
    await t.close();
  }
});
