// Issue 17 §6 through the server: its ledger goes through the same guard as `praetor run`, so a
// ledger whose disk fills freezes the sandboxes the API serves (not only refuses new ones), the
// health check says why, and freeing the disk brings everything back without a restart.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { startTestServer } from './helpers.ts';

const dir = mkdtempSync('/tmp/pt-srv-ledger-');
const mnt = `${dir}/mnt`;
mkdirSync(mnt);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
const t = await startTestServer({ db: `${mnt}/ledger.db`, ledgerGraceMs: 120_000 });
// Registered after the server's own teardown, so it runs after the server has closed its ledger.
after(() => {
  try { execFileSync('umount', [mnt]); } catch { spawnSync('umount', ['-l', mnt]); }
  rmSync(dir, { recursive: true, force: true });
});
const A = t.token('team-a');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !(await ok()); await sleep(100)) if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
}

test('a full ledger disk pauses the API\'s running sandboxes and refuses new ones; freeing it resumes them', async () => {
  const id = (await t.api(A, 'POST', '/v1/sandboxes', {})).json.id as string;
  assert.equal((await t.api(A, 'GET', `/v1/sandboxes/${id}`)).json.state, 'running');
  spawnSync('dd', ['if=/dev/zero', `of=${mnt}/filler`, 'bs=16k'], { stdio: 'ignore' });
  // What the agent does keeps producing events; on a full disk their commit fails.
  for (let i = 0; i < 400 && !t.server.core.ledgerError; i++) {
    for (let k = 0; k < 10; k++) t.server.core.bus.publish({ kind: 'tool.call', sandboxId: id, tool: 'bash', input: 'x'.repeat(4000) });
    await sleep(10);
  }
  assert.ok(t.server.core.ledgerError, 'the ledger failed');
  await until('the sandbox is paused', async () => (await t.api(A, 'GET', `/v1/sandboxes/${id}`)).json.state === 'paused');
  const h = await t.api(undefined, 'GET', '/healthz');
  assert.equal(h.status, 503);
  assert.equal(h.json.ok, false);
  const c = await t.api(A, 'POST', '/v1/sandboxes', {});
  assert.equal(c.status, 503);
  assert.equal(c.json.error.code, 'LEDGER_UNAVAILABLE');
  assert.notEqual((await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: ['true'] })).status, 200, 'no command runs unrecorded');
  const res = await t.api(A, 'POST', `/v1/sandboxes/${id}/resume`);
  assert.equal(res.status, 503, 'the owner cannot thaw it while the ledger is down');
  assert.equal(res.json.error.code, 'LEDGER_UNAVAILABLE');

  rmSync(`${mnt}/filler`);
  await until('the ledger recovers', async () => (await t.api(undefined, 'GET', '/healthz')).status === 200);
  await until('the sandbox runs again', async () => (await t.api(A, 'GET', `/v1/sandboxes/${id}`)).json.state === 'running');
  const ex = await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: ['echo', 'back'] });
  assert.equal(ex.json.stdout, 'back\n');
  assert.equal((await t.api(A, 'POST', '/v1/sandboxes', {})).status, 200, 'new sandboxes are accepted again');
});
