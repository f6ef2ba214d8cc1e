// A node pool's bootstrap token (the chart's one Secret for every DaemonSet pod): control
// replicas register it with a budget of joins and an expiry; each join mints a distinct node
// identity and is counted and recorded in PostgreSQL, so the token cannot be replayed past its
// count, cannot re-key a node that already joined, and dies at its expiry. Real PostgreSQL, real
// TLS joins through a control replica's join endpoint on 127.0.0.1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import {
  createJoinToken, generateJoinToken, joinCluster, loadIdentity, redeemJoinToken, registerBootstrapToken, startJoinServer,
} from '../../src/cluster/pki.ts';
import { PraetorError } from '../../src/errors.ts';
import { nodeBinary } from '../topology/index.ts';
import { pkiFixture, refused, skip, type PkiFixture } from './pki-fixture.ts';

const POOL_TOKEN = generateJoinToken();
let f: PkiFixture;
after(async () => { await f?.close(); });

before(async () => {
  if (skip) return;
  f = await pkiFixture('bootstrap', { bootstrap: { token: POOL_TOKEN, maxJoins: 3, ttlMs: 3_600_000 } });
});

const joinAs = (nodeId: string, token = POOL_TOKEN) => joinCluster({ controlUrl: f.controlUrl, token, nodeId, advertise: 'https://127.0.0.1:7443', dir: f.at(nodeId), caFile: f.at('ca', 'ca.pem') });

test('one bootstrap token admits the node pool: each join a distinct node identity, counted and recorded; the join after the budget is refused', { skip }, async () => {
  assert.match(f.logs.join('\n'), /bootstrap join token registered: 0 of 3 joins made, valid until/);
  const ids = ['pool-a', 'pool-b', 'pool-c'];
  const joined = await Promise.all(ids.map((n) => joinAs(n)));
  assert.deepEqual(joined.map((r) => r.nodeId), ids);
  const fps = ids.map((n) => loadIdentity(f.at(n), 'node'));
  assert.deepEqual(fps.map((i) => i.id), ids, 'each certificate names its own node');
  assert.equal(new Set(fps.map((i) => i.fingerprint256)).size, 3, 'three distinct certificates');
  assert.equal(new Set(fps.map((i) => i.keyPem)).size, 3, 'three distinct keys');
  const { rows: [tok] } = await f.pool.query(`SELECT joins, max_joins FROM cluster_join_tokens WHERE max_joins = 3`);
  assert.deepEqual(tok, { joins: 3, max_joins: 3 });
  const { rows: red } = await f.pool.query(`SELECT node_id FROM cluster_join_redemptions ORDER BY node_id`);
  assert.deepEqual(red.map((r) => r.node_id), ids, 'every join is recorded with its node');
  const { rows: certs } = await f.pool.query(`SELECT node_id, fingerprint256 FROM cluster_node_certs ORDER BY node_id`);
  assert.deepEqual(certs.map((c) => [c.node_id, c.fingerprint256]), fps.map((i) => [i.id, i.fingerprint256]), 'the current certificate of each node is recorded');
  // The fourth node: the budget is spent.
  const e = await refused(joinAs('pool-d'), 'JOIN_TOKEN_USED', /bootstrap join token is used up: all 3 of its joins were made/);
  assert.match(e.hint!, /rotate the bootstrap token/);
  assert.ok(!existsSync(f.at('pool-d', 'cert.pem')), 'the refused node did not join');
});

test('a restarted control replica (or an edited budget) does not refill the token: its budget is fixed when first registered', { skip }, async () => {
  const logs: string[] = [];
  const again = await startJoinServer({ pool: f.pool, caDir: f.at('control-0'), identityDir: f.at('control-0'), host: '127.0.0.1', log: (m) => logs.push(m), bootstrap: { token: POOL_TOKEN, maxJoins: 10, ttlMs: 7 * 86_400_000 } });
  try {
    assert.match(logs.join('\n'), /bootstrap join token already registered: 3 of 3 joins made, used up \(its budget was fixed at 3 when first registered; rotate the token to admit more nodes\)/);
    await refused(joinCluster({ controlUrl: again.url, token: POOL_TOKEN, nodeId: 'pool-e', advertise: 'https://127.0.0.1:7443', dir: f.at('pool-e'), caFile: f.at('ca', 'ca.pem') }), 'JOIN_TOKEN_USED', /used up/);
  } finally { await again.close(); }
});

test('racing joins never exceed the budget', { skip }, async () => {
  const t = await createJoinToken(f.pool, 3_600_000, { maxJoins: 2 });
  const results = await Promise.allSettled(['race-1', 'race-2', 'race-3', 'race-4', 'race-5', 'race-6'].map((n) => redeemJoinToken(f.pool, t.token, n)));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
  for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as PraetorError).code, 'JOIN_TOKEN_USED', String(r.reason));
  assert.equal((await f.pool.query(`SELECT count(*)::int AS n FROM cluster_join_redemptions WHERE node_id LIKE 'race-%'`)).rows[0].n, 2);
});

test('a bootstrap token re-keys no node that already holds a certificate, nor admits one node id twice', { skip }, async () => {
  const t = await createJoinToken(f.pool, 3_600_000, { maxJoins: 5 });
  const e = await refused(joinAs('pool-a', t.token), 'CONFLICT', /node pool-a already holds a certificate .*a bootstrap token admits new nodes only/);
  assert.match(e.hint!, /--node pool-a/);
  await joinAs('fresh-1', t.token);
  // Same id again with the same token: refused, and the refused attempts spent nothing.
  await refused(joinAs('fresh-1', t.token), 'CONFLICT');
  const { rows: [row] } = await f.pool.query(`SELECT joins FROM cluster_join_tokens WHERE token_hash = encode(sha256($1::bytea), 'hex')`, [t.token]);
  assert.equal(row.joins, 1, 'only the successful join counted');
  // A one-time token bound to the node still re-keys it (the operator's explicit act).
  const bound = await createJoinToken(f.pool, 3_600_000, { nodeId: 'pool-a' });
  await joinAs('pool-a', bound.token);
});

test('an expired bootstrap token and a malformed one are refused with typed errors; the node does not join', { skip }, async () => {
  const t = await createJoinToken(f.pool, 3_600_000, { maxJoins: 4 });
  await f.pool.query(`UPDATE cluster_join_tokens SET expires_at = now() - interval '1 minute' WHERE token_hash = encode(sha256($1::bytea), 'hex')`, [t.token]);
  const e = await refused(joinAs('late-1', t.token), 'JOIN_TOKEN_EXPIRED', /expired at .* \(0 of its 4 joins made\)/);
  assert.match(e.hint!, /rotate the bootstrap token/);
  assert.ok(!existsSync(f.at('late-1', 'cert.pem')));
  await refused(registerBootstrapToken(f.pool, 'pjt_short', { maxJoins: 2, ttlMs: 60_000 }), 'JOIN_TOKEN_INVALID', /malformed/);
  await refused(createJoinToken(f.pool, 60_000, { nodeId: 'n1', maxJoins: 3 }), 'BAD_ARGUMENT', /bound to node n1 admits that one node once/);
  await refused(createJoinToken(f.pool, 60_000, { maxJoins: 0 }), 'BAD_ARGUMENT', /admits 1 to 10000 joins/);
});

test('praetor cluster token create --joins N and token generate', { skip }, () => {
  const cli = (...args: string[]) => spawnSync(nodeBinary(), [new URL('../../src/cli/main.ts', import.meta.url).pathname, 'cluster', ...args], { encoding: 'utf8', timeout: 60_000 });
  let r = cli('token', 'create', '--cluster', f.dbUrl, '--joins', '8', '--ttl', '2h', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { joins: number }).joins, 8);
  r = cli('token', 'generate');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^pjt_[A-Za-z0-9_-]{43}$/);
  r = cli('token', 'create', '--cluster', f.dbUrl, '--joins', '3', '--node', 'x');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /admits that one node once[\s\S]*fix:/);
});
