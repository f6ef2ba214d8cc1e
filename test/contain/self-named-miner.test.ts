// Issue 17 §2: runtime processes are known by identity, not by name. A miner whose processes call
// themselves `exe` (cp of python3), `bwrap` and `.praetor-init` (prctl(PR_SET_NAME)) is stopped by
// a gateway verdict (a kill-tree with no triggering pid: the process that spoke Stratum is gone),
// and no byte of it reaches the pool. Runs in the test topology (TEST-NETWORK.md). On the code
// before this change the self-named hashers survived the kill-tree and kept writing.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createTopology, nodeBinary, type Topology } from '../topology/index.ts';

const DRIVER = fileURLToPath(new URL('./fixtures/gateway-verdict-driver.ts', import.meta.url));
const MINER = fileURLToPath(new URL('./fixtures/self-named-miner.py', import.meta.url));
let t: Topology;
const dir = mkdtempSync('/tmp/pt-test-selfnamed-');
before(async () => { t = await createTopology({ servers: ['dns', 'stratum'] }); });
after(async () => { try { await t?.teardown(); } finally { rmSync(dir, { recursive: true, force: true }); } });

test('a miner named exe, bwrap and .praetor-init dies on a pid-less gateway verdict; zero bytes reach the pool', async () => {
  const ws = `${dir}/ws`;
  mkdirSync(ws);
  chmodSync(ws, 0o777);
  const policy = `${dir}/policy.yaml`;
  writeFileSync(policy, 'network:\n  allow:\n    - { domain: "pool.example.test", ports: [3333] }\n');
  const r = await t.execInHost(nodeBinary(), [DRIVER, `${dir}/state`, policy, ws, MINER], { timeoutMs: 90_000 });
  let res: { contained: boolean; before: Record<string, number>; after: Record<string, number>; survivors: string[]; runtimeAlive: boolean; events: Array<Record<string, unknown>>; error?: string };
  try { res = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? ''); } catch { assert.fail(`driver output: ${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`); }
  const why = JSON.stringify({ ...res, events: res.events.filter((e) => e.kind !== 'net.flow').map((e) => ({ kind: e.kind, rule: e.rule, action: e.action, ok: e.ok, outcome: e.outcome, pid: e.pid, targets: e.targets, error: e.error, reason: e.reason })) }, null, 1);
  assert.equal(res.error, undefined, why);
  assert.equal(res.contained, true, why);
  const alert = res.events.find((e) => e.kind === 'alert' && e.rule === 'Mining protocol detected by the egress gateway');
  assert.ok(alert, `the gateway's Stratum verdict raised the alert: ${why}`);
  const kt = res.events.find((e) => e.kind === 'containment' && e.action === 'kill-tree' && e.alertId === alert.id);
  assert.ok(kt && kt.ok === true && kt.outcome === 'verified', `kill-tree verified: ${why}`);
  assert.ok(Number(kt.targets) >= 4, `every agent process was a target (the trigger was gone): ${why}`);
  for (const tag of ['exe-cp', 'bwrap', 'praetor-init', 'exe-prctl']) {
    assert.ok(res.before[tag]! > 0, `hasher ${tag} ran before the verdict: ${why}`);
    assert.equal(res.after[tag], res.before[tag], `hasher ${tag} wrote nothing after the kill-tree: ${why}`);
  }
  assert.deepEqual(res.survivors, [], `no agent process survived: ${why}`);
  assert.equal(res.runtimeAlive, true, `the runtime's own processes were spared: ${why}`);
  const data = (await t.log('stratum')).filter((e) => e.event === 'data');
  assert.deepEqual(data, [], 'zero bytes of the mining handshake reached the pool');
});
