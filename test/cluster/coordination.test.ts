// Cluster coordination on a real PostgreSQL: membership, best-of-K placement, cluster-wide
// quotas and capacity under concurrent replicas, node loss (kill -9 of a real process), fencing
// when a node's link to the database is cut, and a short outage that must not reap anyone.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { ClusterControl } from '../../src/cluster/control.ts';
import { NodeMembership } from '../../src/cluster/membership.ts';
import { nodeOrdinalOf } from '../../src/cluster/schema.ts';
import { PraetorError } from '../../src/errors.ts';
import { TenantSettingsSchema } from '../../src/config/index.ts';
import { nodeBinary } from '../topology/index.ts';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { cuttableLink } from './pg-link.ts';

const skip = postgresAvailable() ? false : 'needs PostgreSQL 15 and root (installed by npm test\'s setup)';
let pg: TestPostgres | undefined;
if (!skip) { pg = await startPostgres(); after(() => pg?.stop()); }

const cap = (n: number) => ({ cpus: n, memoryBytes: n * 2 ** 30, maxSandboxes: n });
const settings = (over: Partial<Record<string, number>> = {}) => TenantSettingsSchema.parse(over);
const small = { cpus: 1, memoryBytes: 2 ** 30 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function fresh(): Promise<{ url: string; members: NodeMembership[]; controls: ClusterControl[] }> {
  const url = await pg!.createDatabase();
  const members: NodeMembership[] = [];
  const controls: ClusterControl[] = [];
  after(async () => {
    for (const m of members) await m.abandon().catch(() => undefined);
    for (const c of controls) await c.close().catch(() => undefined);
  });
  return { url, members, controls };
}

function codeOf(e: unknown): string { return e instanceof PraetorError ? e.code : `not a PraetorError: ${String(e)}`; }

test('nodes join with distinct ordinals; sandbox ids name their node; placement spreads; capacity and quotas hold under two racing replicas', { skip }, async () => {
  const { url, members, controls } = await fresh();
  for (const id of ['node-a', 'node-b', 'node-c']) members.push(await NodeMembership.join({ url, nodeId: id, address: `https://${id}:7443`, capacity: cap(6) }));
  assert.equal(new Set(members.map((m) => m.ordinal)).size, 3);
  await assert.rejects(NodeMembership.join({ url, nodeId: 'node-a', address: 'x', capacity: cap(1) }), (e) => codeOf(e) === 'CONFLICT', 'one live process per node id');
  await assert.rejects(NodeMembership.join({ url, nodeId: 'Bad_Name', address: 'x', capacity: cap(1) }), (e) => codeOf(e) === 'BAD_ARGUMENT');
  const a = await ClusterControl.open({ url });
  const b = await ClusterControl.open({ url });
  controls.push(a, b);

  // 24 reservations for 18 slots from two replicas at once, over 12 tenants: exactly 18 land.
  const results = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).place(`t${i % 12}`, settings(), small)));
  const ok = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<ClusterControl['place']>>>).value);
  const failed = results.filter((r) => r.status === 'rejected').map((r) => codeOf((r as PromiseRejectedResult).reason));
  assert.equal(ok.length, 18, `placed ${ok.length}; failures ${failed.join(',')}`);
  assert.deepEqual([...new Set(failed)], ['CLUSTER_FULL']);
  const nodes = await a.nodes();
  for (const n of nodes) assert.equal(n.used.sandboxes, 6, `${n.nodeId} holds ${n.used.sandboxes}: never over capacity, and every slot used`);
  for (const p of ok) {
    assert.equal(nodeOrdinalOf(p.sandboxId), nodes.find((n) => n.nodeId === p.nodeId)!.ordinal, `${p.sandboxId} names ${p.nodeId}`);
  }
  for (const p of ok) await a.end(p.sandboxId, 'test');

  // Spread: 9 sandboxes on 3 empty nodes of 6 each, best-of-2: no node takes more than 5.
  const spread = [];
  for (let i = 0; i < 9; i++) spread.push(await (i % 2 ? a : b).place('spread', settings(), small));
  const per = new Map<string, number>();
  for (const p of spread) per.set(p.nodeId, (per.get(p.nodeId) ?? 0) + 1);
  assert.equal(per.size, 3, `all three nodes used: ${JSON.stringify([...per])}`);
  assert.ok(Math.max(...per.values()) <= 5, `spread ${JSON.stringify([...per])}`);
  for (const p of spread) await b.end(p.sandboxId, 'test');

  // A tenant's quota is cluster-wide: 12 racing requests through two replicas, limit 4.
  const q = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).place('capped', settings({ maxSandboxes: 4 }), small)));
  assert.equal(q.filter((r) => r.status === 'fulfilled').length, 4);
  assert.deepEqual([...new Set(q.filter((r) => r.status === 'rejected').map((r) => codeOf((r as PromiseRejectedResult).reason)))], ['QUOTA_EXCEEDED']);

  // `praetor nodes` reads the same rows.
  const cli = spawnSync(new URL('../../bin/praetor', import.meta.url).pathname, ['nodes', '--cluster', url, '--json'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const listed = JSON.parse(cli.stdout) as Array<{ nodeId: string; state: string; used: { sandboxes: number } }>;
  assert.deepEqual(listed.map((n) => [n.nodeId, n.state]), [['node-a', 'up'], ['node-b', 'up'], ['node-c', 'up']]);
  assert.equal(listed.reduce((x, n) => x + n.used.sandboxes, 0), 4, 'the capped tenant\'s 4 live sandboxes');
  const table = spawnSync(new URL('../../bin/praetor', import.meta.url).pathname, ['nodes', '--cluster', url], { encoding: 'utf8' });
  assert.match(table.stdout, /^NODE\s+STATE/);
});

test('kill -9 of a node process: detected as lost, its sandboxes lost, new sandboxes land elsewhere; it rejoins in a new epoch', { skip }, async () => {
  const { url, members, controls } = await fresh();
  const ctl = await ClusterControl.open({ url, freshMs: 1500 });
  controls.push(ctl);
  members.push(await NodeMembership.join({ url, nodeId: 'node-a', address: 'https://a', capacity: cap(16), heartbeatMs: 200 }));
  const child = spawn(nodeBinary(), [new URL('./member-process.ts', import.meta.url).pathname, JSON.stringify({ url, nodeId: 'node-k', address: 'https://k', capacity: cap(8), heartbeatMs: 200 })], { stdio: ['ignore', 'pipe', 'inherit'] });
  after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const joined = await new Promise<string>((resolve, reject) => { child.stdout!.once('data', (d: Buffer) => resolve(d.toString())); child.once('exit', (c) => reject(new Error(`member exited ${c}`))); });
  assert.match(joined, /"epoch":1/);
  const onK = [];
  for (let i = 0; i < 8 && onK.length < 2; i++) { const p = await ctl.place('t', settings(), small); if (p.nodeId === 'node-k') onK.push(p); }
  assert.ok(onK.length >= 1, 'some sandbox landed on node-k');
  assert.deepEqual(await ctl.detectLost(1000), [], 'a live node is never declared lost');

  child.kill('SIGKILL');
  const t0 = Date.now();
  let lost: Awaited<ReturnType<ClusterControl['detectLost']>> = [];
  while (lost.length === 0 && Date.now() - t0 < 20_000) { await sleep(100); lost = await ctl.detectLost(1000); }
  assert.equal(lost.length, 1, 'node-k detected lost');
  assert.equal(lost[0]!.nodeId, 'node-k');
  for (const p of onK) {
    assert.ok(lost[0]!.sandboxes.some((s) => s.sandboxId === p.sandboxId));
    assert.deepEqual(await ctl.sandboxState(p.sandboxId), { state: 'lost', nodeId: 'node-k', tenant: 't', endReason: 'node_lost' });
  }
  for (let i = 0; i < 4; i++) assert.equal((await ctl.place('t', settings(), small)).nodeId, 'node-a', 'new sandboxes land on the survivor');

  // The node comes back under its id: a new epoch, and nothing of the old one is left live.
  const back = await NodeMembership.join({ url, nodeId: 'node-k', address: 'https://k', capacity: cap(8), heartbeatMs: 200 });
  members.push(back);
  assert.equal(back.epoch, 2);
  assert.equal((await ctl.nodes()).find((n) => n.nodeId === 'node-k')!.state, 'up');
});

test('a node that crashes and restarts before it is declared lost reclaims what it had', { skip }, async () => {
  const { url, members, controls } = await fresh();
  const ctl = await ClusterControl.open({ url });
  controls.push(ctl);
  const r1 = await NodeMembership.join({ url, nodeId: 'node-r', address: 'https://r', capacity: cap(2), heartbeatMs: 200 });
  const held = [await ctl.place('t', settings(), small), await ctl.place('u', settings(), small)];
  await ctl.confirm(held[0]!.sandboxId);
  await r1.abandon();
  const r2 = await NodeMembership.join({ url, nodeId: 'node-r', address: 'https://r', capacity: cap(2), heartbeatMs: 200 });
  members.push(r2);
  assert.equal(r2.epoch, r1.epoch + 1);
  assert.deepEqual(r2.reclaimed.sort(), held.map((h) => h.sandboxId).sort());
  for (const h of held) assert.equal((await ctl.sandboxState(h.sandboxId))!.endReason, 'node restarted: reclaimed by gc');
  assert.equal((await ctl.nodes())[0]!.used.sandboxes, 0, 'their capacity is free again');
});

test('a node cut off from the database fences at once and is destroyed once declared lost; a short outage only fences and thaws', { skip }, async () => {
  const { url, members, controls } = await fresh();
  const ctl = await ClusterControl.open({ url });
  controls.push(ctl);
  const link = await cuttableLink(url);
  const events: string[] = [];
  const m = await NodeMembership.join({
    url: link.url, nodeId: 'node-f', address: 'https://f', capacity: cap(4), heartbeatMs: 200, fenceAfterMs: 600, graceMs: 60_000,
    onFence: () => events.push('fence'), onUnfence: () => events.push('unfence'), onDestroy: (why) => events.push(`destroy: ${why}`),
  });
  members.push(m);
  await ctl.place('t', settings(), small);

  // A short outage (shorter than the control plane's lost bound): the node fences, nobody reaps it.
  await link.cut();
  const t0 = Date.now();
  while (!events.includes('fence') && Date.now() - t0 < 10_000) await sleep(50);
  assert.deepEqual(events, ['fence'], 'fenced while the database is unreachable');
  assert.deepEqual(await ctl.detectLost(5000), [], 'not declared lost inside the bound');
  await link.restore();
  while (!events.includes('unfence') && Date.now() - t0 < 20_000) await sleep(50);
  assert.deepEqual(events, ['fence', 'unfence'], 'thawed when the link returned, still up in its epoch');
  assert.equal((await ctl.nodes())[0]!.state, 'up');

  // A long one: the control plane declares it lost; when the link returns the node learns it
  // and destroys its sandboxes instead of thawing them.
  await link.cut();
  let lost: Awaited<ReturnType<ClusterControl['detectLost']>> = [];
  const t1 = Date.now();
  while (lost.length === 0 && Date.now() - t1 < 20_000) { await sleep(100); lost = await ctl.detectLost(1000); }
  assert.equal(lost[0]?.nodeId, 'node-f');
  assert.equal(lost[0]!.sandboxes.length, 1);
  assert.ok(events.filter((e) => e === 'fence').length === 2);
  await link.restore();
  const t2 = Date.now();
  while (!m.lost && Date.now() - t2 < 20_000) await sleep(50);
  assert.equal(m.lost, true);
  assert.match(events.at(-1)!, /^destroy: the control plane declared this node lost/);
  assert.ok(!events.slice(2).includes('unfence'), 'a lost node never thaws');
});
