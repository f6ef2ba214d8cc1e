// Acknowledged means recorded (issue 14's recordsLost 0): a real `praetor serve` process, its
// real SQLite ledger, and a real SIGKILL. The test makes the ledger's commit slow the only way a
// disk can, from outside: it holds the ledger file's write lock (another SQLite connection in
// BEGIN IMMEDIATE), so the writer's commit waits on it. A step, an exec and a file write sent
// meanwhile must not be answered until the lock is gone and their records are committed; once
// answered, the process is killed with SIGKILL at once, and each record is in the ledger.
// Before the fix, the answers came while the records were still waiting for their batch.
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { after, before, test } from 'node:test';
import { createToken } from '../../src/server/auth.ts';
import { ClusterProcs, type Proc } from './cluster-procs.ts';

const HOLD_MS = 1500;
let procs: ClusterProcs;
let token = '';

before(() => {
  procs = new ClusterProcs('postgres://unused.invalid/none');
  token = createToken(procs.tokensDir, 'alice').token;
});
after(async () => { await procs?.stopAll(); });

async function call(p: Proc, method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(`${p.url}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

/** Holds the ledger's write lock: the server's writer cannot commit until release(). */
function holdLedger(stateDir: string): { release(): void } {
  const db = new DatabaseSync(`${stateDir}/audit/ledger.db`);
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('BEGIN IMMEDIATE');
  return { release: () => { db.exec('ROLLBACK'); db.close(); } };
}

test('a step, an exec and a file write are answered only once their records are durable, and survive a SIGKILL right after', async () => {
  const stateDir = procs.stateDir('durable');
  const srv = await procs.start('durable', ['--no-detect'], stateDir);
  const ep = await call(srv, 'POST', '/v1/episodes', { task: 'durable', sandbox: { cpus: 0.1, memory: '64m' } });
  assert.equal(ep.status, 200, ep.text);
  const epId = ep.json.episode_id as string;
  const sbId = ep.json.sandbox_id as string;
  assert.equal((await call(srv, 'POST', `/v1/episodes/${epId}/step`, { action: { tool: 'bash', arguments: { command: 'true' } } })).status, 200, 'a first step');

  const lock = holdLedger(stateDir);
  const t0 = performance.now();
  const answeredAt: Record<string, number> = {};
  const timed = <T>(name: string, p: Promise<T>) => p.then((v) => { answeredAt[name] = performance.now() - t0; return v; });
  const step = timed('step', call(srv, 'POST', `/v1/episodes/${epId}/step`, { action: { tool: 'bash', arguments: { command: 'echo durable-step' } } }));
  const exec = timed('exec', call(srv, 'POST', `/v1/sandboxes/${sbId}/exec`, { command: ['echo', 'durable-exec'] }));
  const file = timed('file', call(srv, 'PUT', `/v1/sandboxes/${sbId}/files`, { path: '/tmp/durable.txt', content: 'kept' }));
  try {
    await new Promise((r) => setTimeout(r, HOLD_MS));
    // Nothing may have been answered while the ledger could not commit a single record.
    assert.deepEqual(Object.keys(answeredAt), [], `answered before their records could be durable: ${JSON.stringify(answeredAt)}`);
  } finally { lock.release(); }
  const [s, x, f] = await Promise.all([step, exec, file]);
  // Answered: kill at once, before any later batch could have saved a late record.
  await procs.kill9(srv);
  assert.equal(s.status, 200, s.text);
  assert.equal(x.status, 200, x.text);
  assert.equal(f.status, 200, f.text);
  assert.equal(x.json.stdout, 'durable-exec\n');

  const db = new DatabaseSync(`${stateDir}/audit/ledger.db`, { readOnly: true });
  try {
    const toolCall = db.prepare(`SELECT count(*) AS n FROM ledger_records WHERE kind = 'tool.call' AND episode_id = ? AND step = ?`).get(epId, s.json.step) as { n: number };
    assert.equal(toolCall.n, 1, `the acknowledged step ${s.json.step} has its tool.call record`);
    // The exec's, the step's and the write's commands ended before their answers: each command.end is in.
    const rows = (kind: string) => (db.prepare(`SELECT body FROM ledger_records WHERE kind = ? AND sandbox_id = ?`).all(kind, sbId) as Array<{ body: string }>).map((r) => JSON.parse(r.body) as { execId: string; argv?: string[] });
    const ended = new Set(rows('command.end').map((e) => e.execId));
    const started = rows('command.start');
    for (const what of ['durable-exec', 'durable-step', '/tmp/durable.txt']) {
      const c = started.find((e) => e.argv!.join(' ').includes(what));
      assert.ok(c, `the command for ${what} is recorded (${started.map((e) => e.argv!.join(' ')).join(' | ')})`);
      assert.ok(ended.has(c.execId), `the acknowledged command for ${what} has its command.end record`);
    }
  } finally { db.close(); }
});
