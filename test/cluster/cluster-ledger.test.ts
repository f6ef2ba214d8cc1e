// One ledger across nodes, on a real PostgreSQL 15: node chains written concurrently and
// anchored in the cluster chain; the whole single-node tamper suite (test/audit/tamper-cases.ts)
// applied to a node chain and caught by verify --cluster, naming the node and the record; one
// writer per chain; a restarted node (also after kill -9) continues its chain and loses nothing
// it acknowledged; the cluster chain's own tampering; the CLI's exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  ClusterLedger, clusterChainUrl, createClusterLedgerKey, nodeChainSchema, nodeChainUrl, nodeLedgerPublicKey, openLedger, openNodeLedger,
  recordHash, verifyCluster, type ClusterVerifyReport,
} from '../../src/audit/index.ts';
import { NodeId as LedgerNodeId } from '../../src/audit/node-chain.ts';
import { NodeId } from '../../src/cluster/schema.ts';
import { isPraetorError } from '../../src/errors.ts';
import type { PraetorEvent } from '../../src/events/schema.ts';
import { episodeEvents, eventStream } from '../audit/events.ts';
import { TAMPER_CASES, TAMPER_LEDGER_OPTIONS, TAMPER_RECORDS, writeTamperLedger, type TamperTarget } from '../audit/tamper-cases.ts';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { crashNodeWriter, recordsLost } from './node-ledger-crash.ts';

if (!postgresAvailable()) throw new Error('PostgreSQL 15 (/usr/lib/postgresql/15/bin) and root are needed for the cluster ledger test');

const BIN = new URL('../../bin/praetor', import.meta.url).pathname;
const NODES = ['node-a', 'node-b', 'node-c'];

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return await fn(c); } finally { await c.end(); }
}

/** The attacker's view of one node chain: raw SQL on its schema. */
const nodeTarget: TamperTarget = {
  backend: 'postgres',
  where: (db) => ({ url: db }),
  exec: (db, sql) => withClient(db, async (c) => { await c.query(sql); }),
  query: (db, sql) => withClient(db, async (c) => (await c.query(sql)).rows as Record<string, unknown>[]),
  wipe: (db) => withClient(db, async (c) => { await c.query('DROP TABLE ledger_records, ledger_checkpoints, ledger_meta'); }),
};

type Cluster = { url: string; keyFile: string; pubkeyFile: string; cl: ClusterLedger; states: Map<string, string> };

describe('cluster ledger', () => {
  let server: TestPostgres;
  const dirs: string[] = [];
  const clusters: ClusterLedger[] = [];
  const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), 'praetor-cl-')); dirs.push(d); return d; };
  before(async () => { server = await startPostgres(); });
  after(async () => {
    for (const cl of clusters) await cl.close();
    await server?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function newCluster(): Promise<Cluster> {
    const url = await server.createDatabase();
    const { keyFile, pubkeyFile } = createClusterLedgerKey(tmp());
    const cl = await ClusterLedger.open({ url, keyFile });
    clusters.push(cl);
    return { url, keyFile, pubkeyFile, cl, states: new Map() };
  }
  /** A node joins: its state directory's ledger key is pinned in the cluster chain. */
  async function joinNode(c: Cluster, nodeId: string): Promise<string> {
    const state = tmp();
    const r = await c.cl.pinNodeKey(nodeId, nodeLedgerPublicKey(state));
    assert.equal(r.pinned, true);
    c.states.set(nodeId, state);
    return state;
  }
  /** Three nodes, each writing the tamper ledger to its chain at the same time, then anchored. */
  async function tamperCluster(): Promise<Cluster> {
    const c = await newCluster();
    await Promise.all(NODES.map(async (id) => {
      const state = await joinNode(c, id);
      await writeTamperLedger(await openNodeLedger({ url: c.url, nodeId: id, stateDir: state, ...TAMPER_LEDGER_OPTIONS }));
    }));
    const round = await c.cl.anchorAll();
    assert.deepEqual(round.failed, []);
    assert.deepEqual(round.anchored.map((a) => [a.nodeId, a.anchored, a.seq]), NODES.map((n) => [n, true, TAMPER_RECORDS]));
    return c;
  }
  const nodeOf = (r: ClusterVerifyReport, id: string) => r.nodes.find((n) => n.nodeId === id)!;

  it('the ledger\'s node id rule is the cluster\'s', () => {
    assert.equal(LedgerNodeId.description, NodeId.description);
    for (const id of ['a', 'node-1', 'x'.repeat(63), '', '-a', 'A', 'a_b', 'x'.repeat(64), 'a.b']) {
      assert.equal(LedgerNodeId.safeParse(id).success, NodeId.safeParse(id).success, id);
    }
    assert.equal(nodeChainSchema('x'.repeat(63)).length <= 63, true, 'a long id still makes a PostgreSQL name');
    assert.notEqual(nodeChainSchema('x'.repeat(63)), nodeChainSchema(`${'x'.repeat(62)}y`));
  });

  it('three node chains written concurrently and anchored while they write verify as one ledger', async () => {
    const c = await newCluster();
    const states = await Promise.all(NODES.map((id) => joinNode(c, id)));
    const problems: string[] = [];
    const loop = c.cl.startAnchoring({ intervalMs: 20, onProblem: (n, e) => problems.push(`${n}: ${e.message}`), onError: (e) => problems.push(String(e)) });
    const per = 3000;
    await Promise.all(NODES.map(async (id, i) => {
      const l = await openNodeLedger({ url: c.url, nodeId: id, stateDir: states[i]!, checkpointEvery: 400 });
      let k = 0;
      for (const e of eventStream(per)) {
        l.append({ ...e, id: `${id}-${k}` } as PraetorEvent);
        if (++k % 100 === 0) await l.flush();
      }
      await l.close();
    }));
    await loop.stop();
    await c.cl.anchorAll();
    assert.deepEqual(problems, []);
    const r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    assert.equal(r.ok, true, r.problems.map((p) => p.message).join('\n'));
    assert.equal(r.cluster?.ok, true);
    assert.deepEqual(r.nodes.map((n) => [n.nodeId, n.records, n.lastSeq, n.anchoredThrough]), NODES.map((n) => [n, per, per, per]));
    for (const n of r.nodes) assert.ok(n.anchors >= 1, `${n.nodeId} anchored`);
    // The cluster chain holds three pins and the anchors, each sealed by the cluster key.
    assert.equal(r.cluster!.unsealed, 0);
    assert.equal(r.cluster!.records, 3 + r.nodes.reduce((s, n) => s + n.anchors, 0));
  });

  for (const [i, tc] of TAMPER_CASES.entries()) {
    const victim = NODES[i % NODES.length]!;
    it(`verify --cluster catches ${tc.name} on one node's chain (${victim})`, async () => {
      const c = await tamperCluster();
      const db = nodeChainUrl(c.url, victim);
      await tc.tamper({ t: nodeTarget, db, state: c.states.get(victim)!, newStateDir: tmp, open: (at, s) => openLedger({ url: at, stateDir: s, ...TAMPER_LEDGER_OPTIONS }) });
      const r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
      const text = r.problems.map((p) => p.message).join('\n');
      assert.equal(r.ok, false, 'tamper not detected');
      assert.equal(r.cluster?.ok, true, 'the cluster chain itself is intact');
      for (const p of r.problems) {
        assert.equal(p.node, victim, `only the tampered node is named: ${p.message}`);
        assert.ok(p.message.startsWith(`node ${victim}: `), p.message);
      }
      for (const other of NODES.filter((n) => n !== victim)) assert.equal(nodeOf(r, other).ok, true, `${other} is intact`);
      const report = nodeOf(r, victim).report!;
      if (tc.anchorReason === undefined) tc.check(report);
      else {
        assert.equal(report.ok, true, 'without the node\'s state directory its chain is self-consistent…');
        assert.match(text, tc.anchorReason, '…and the cluster\'s anchor catches the cut');
      }
      if (tc.seq !== undefined) assert.ok(r.problems.some((p) => p.seq === tc.seq), `a problem names record ${tc.seq}:\n${text}`);
    });
  }

  it('a chain signed from the start by a key other than the one pinned is refused by verify and by the anchorer', async () => {
    const c = await newCluster();
    await joinNode(c, 'node-a');
    const other = tmp(); // the node came up with another state directory: another key
    await writeTamperLedger(await openNodeLedger({ url: c.url, nodeId: 'node-a', stateDir: other, ...TAMPER_LEDGER_OPTIONS }));
    const round = await c.cl.anchorAll();
    assert.equal(round.failed[0]?.nodeId, 'node-a');
    assert.equal(round.failed[0]?.error.code, 'LEDGER_TAMPERED');
    assert.match(round.failed[0]!.error.message, /names signing key .* the key pinned for it/);
    const r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    assert.equal(r.ok, false);
    assert.match(r.problems.map((p) => p.message).join('\n'), /node node-a: meta: ledger names signing key \w+, the trusted key is/);
    await assert.rejects(c.cl.pinNodeKey('node-a', nodeLedgerPublicKey(other)), (e) => isPraetorError(e) && e.code === 'CONFLICT' && /pinned to ledger key/.test(e.message));
    assert.equal((await c.cl.pinNodeKey('node-a', nodeLedgerPublicKey(c.states.get('node-a')!))).pinned, false, 'pinning the same key again is a no-op');
  });

  it('a node chain whose key was never pinned is reported', async () => {
    const c = await newCluster();
    await openNodeLedger({ url: c.url, nodeId: 'stranger', stateDir: tmp() }).then((l) => l.close());
    const r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    assert.equal(r.ok, false);
    assert.match(r.problems[0]!.message, /node stranger: schema praetor_node_stranger: holds a node chain whose key was never pinned/);
  });

  it('refuses a second writer on one node chain, naming the node; the first keeps writing', async () => {
    const c = await newCluster();
    const state = await joinNode(c, 'node-a');
    const l = await openNodeLedger({ url: c.url, nodeId: 'node-a', stateDir: state });
    try {
      await assert.rejects(openNodeLedger({ url: c.url, nodeId: 'node-a', stateDir: state }),
        (e) => isPraetorError(e) && e.code === 'CONFLICT' && /node node-a's ledger chain .* is being written by another process/.test(e.message));
      // Another node's chain is its own: no conflict.
      const b = await openNodeLedger({ url: c.url, nodeId: 'node-b', stateDir: await joinNode(c, 'node-b') });
      await b.close();
      for (const e of eventStream(50)) l.append(e);
      await l.flush();
    } finally {
      await l.close();
    }
    await c.cl.anchorAll();
    assert.equal((await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile })).ok, true);
  });

  it('a restarted node continues its own chain (same key, same ledger, next seq); anchors before and after hold', async () => {
    const c = await newCluster();
    const state = await joinNode(c, 'node-a');
    const first = await openNodeLedger({ url: c.url, nodeId: 'node-a', stateDir: state });
    for (const e of eventStream(100)) first.append(e);
    await first.close();
    const a1 = await c.cl.anchorNode('node-a');
    assert.equal(a1.anchored, true);
    assert.equal(a1.seq, 100);
    const again = await openNodeLedger({ url: c.url, nodeId: 'node-a', stateDir: state });
    assert.equal(again.ledgerId, first.ledgerId, 'the same chain, not a fork');
    for (const e of eventStream(30)) again.append(e);
    await again.close();
    const a2 = await c.cl.anchorNode('node-a');
    assert.equal(a2.seq, 130, 'the next seq after 100');
    assert.equal((await c.cl.anchorNode('node-a')).anchored, false, 'an anchored checkpoint is not anchored twice');
    const r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    assert.equal(r.ok, true, r.problems.map((p) => p.message).join('\n'));
    assert.deepEqual([r.nodes[0]!.records, r.nodes[0]!.anchors, r.nodes[0]!.ledgerId], [130, 2, first.ledgerId]);
    // The anchorer notices a chain cut back below its newest anchor at once, not only verify.
    await nodeTarget.exec(nodeChainUrl(c.url, 'node-a'), 'DELETE FROM ledger_records WHERE seq > 100; DELETE FROM ledger_checkpoints WHERE seq > 100');
    await assert.rejects(c.cl.anchorNode('node-a'), (e) => isPraetorError(e) && e.code === 'LEDGER_TAMPERED' && /went back: the cluster anchored record 130/.test(e.message));
  });

  it('a node chain pruned with a signed prune still verifies against its anchors; records cut below one do not', async () => {
    const c = await newCluster();
    const state = await joinNode(c, 'node-p');
    const open = () => openNodeLedger({ url: c.url, nodeId: 'node-p', stateDir: state });
    let l = await open();
    for (const e of eventStream(100)) l.append(e);
    await l.close();
    assert.equal((await c.cl.anchorNode('node-p')).seq, 100);
    l = await open();
    for (const e of eventStream(50)) l.append(e);
    assert.equal(await l.prune(120), 100, 'pruned through the newest checkpoint at or below 120');
    await l.close();
    assert.equal((await c.cl.anchorNode('node-p')).seq, 150);
    let r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    assert.equal(r.ok, true, r.problems.map((p) => p.message).join('\n'));
    assert.equal(r.nodes[0]!.report!.prunedThrough, 100);
    // Records cut below the anchor, back to the prune point.
    await nodeTarget.exec(nodeChainUrl(c.url, 'node-p'), 'DELETE FROM ledger_records WHERE seq > 100');
    r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    assert.equal(r.ok, false);
    assert.match(r.problems.map((p) => p.message).join('\n'), /node node-p: record 150: anchored in cluster record \d+, but the chain ends at record 100: cut back below the anchor/);
  });

  it('kill -9 of a node writer loses no acknowledged record (recordsLost 0), and the node restarts on its chain', async () => {
    const c = await newCluster();
    const state = await joinNode(c, 'node-k');
    let total = 0;
    let ledgerId = '';
    for (let round = 0; round < 2; round++) {
      const prefix = `kill${round}`;
      const k = await crashNodeWriter({ url: c.url, nodeId: 'node-k', stateDir: state, prefix, atLeast: 2000 + Math.floor(Math.random() * 3000) });
      assert.equal(k.killedBy, 'SIGKILL');
      assert.ok(k.acked >= 2000);
      if (round === 0) ledgerId = k.ledgerId;
      else assert.equal(k.ledgerId, ledgerId, 'the restarted writer continued the same chain');
      assert.equal(await recordsLost(c.url, 'node-k', prefix, k.acked), 0, 'every acknowledged record is in the chain');
      total += k.acked;
      await c.cl.anchorNode('node-k');
    }
    // The next open seals the tail the kill left; the whole chain then verifies.
    await (await openNodeLedger({ url: c.url, nodeId: 'node-k', stateDir: state })).close();
    await c.cl.anchorNode('node-k');
    const r = await verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    assert.equal(r.ok, true, r.problems.map((p) => p.message).join('\n'));
    assert.ok(r.nodes[0]!.records >= total);
    assert.equal(r.nodes[0]!.report!.unsealed, 0);
  });

  it('an edited cluster chain is caught, and the anchorer refuses to extend it', async () => {
    const c = await tamperCluster();
    const curl = clusterChainUrl(c.url);
    const verify = () => verifyCluster({ url: c.url, pubkeyFile: c.pubkeyFile });
    // A forged pin appended with a correct hash chain: chained, but not sealed by the cluster key.
    const [tail] = await nodeTarget.query(curl, 'SELECT seq, hash FROM ledger_records ORDER BY seq DESC LIMIT 1');
    const seq = Number(tail!.seq) + 1;
    const body = JSON.stringify({ keyId: '0000000000000000', kind: 'cluster.node_pinned', nodeId: 'evil', publicKey: 'x', ts: 1 });
    await nodeTarget.exec(curl, `INSERT INTO ledger_records (seq, ts, kind, body, hash) VALUES (${seq}, 1, 'cluster.node_pinned', '${body}', '${recordHash(String(tail!.hash), seq, body)}')`);
    let r = await verify();
    assert.equal(r.ok, false);
    assert.match(r.problems[0]!.message, new RegExp(`cluster chain: record ${seq}: records ${seq}\\.\\.${seq} are not sealed by a cluster checkpoint`));
    await assert.rejects(c.cl.anchorAll(), (e) => isPraetorError(e) && e.code === 'LEDGER_TAMPERED' && /not sealed by a cluster checkpoint/.test(e.message));
    await nodeTarget.exec(curl, `DELETE FROM ledger_records WHERE seq = ${seq}`);
    assert.equal((await verify()).ok, true);
    // An anchor edited to point at another hash (re-pointing it at a forged node chain).
    await nodeTarget.exec(curl, `UPDATE ledger_records SET body = replace(body, '"seq":${TAMPER_RECORDS}', '"seq":${TAMPER_RECORDS - 1}') WHERE seq = 4`);
    r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.problems[0]!.chain, 'cluster');
    assert.match(r.problems[0]!.message, /^cluster chain: record 4: hash does not match/);
    // The same edit re-chained to the end: the cluster checkpoint's signature disagrees.
    const rows = await nodeTarget.query(curl, 'SELECT seq, body FROM ledger_records ORDER BY seq');
    let prev = String((await nodeTarget.query(curl, 'SELECT hash FROM ledger_records WHERE seq = 3'))[0]!.hash);
    for (const row of rows.filter((x) => Number(x.seq) >= 4)) {
      prev = recordHash(prev, Number(row.seq), String(row.body));
      await nodeTarget.exec(curl, `UPDATE ledger_records SET hash = '${prev}' WHERE seq = ${Number(row.seq)}`);
    }
    r = await verify();
    assert.equal(r.ok, false);
    assert.match(r.problems.map((p) => p.message).join('\n'), /cluster chain: record \d+: differs from the hash signed in checkpoint/);
    await assert.rejects(c.cl.anchorAll(), (e) => isPraetorError(e) && e.code === 'LEDGER_TAMPERED');
  });

  it('a cluster chain cut back (records and checkpoints together) is caught by a control replica\'s witness', async () => {
    const url = await server.createDatabase();
    const { keyFile, pubkeyFile } = createClusterLedgerKey(tmp());
    const witness = tmp();
    const cl = await ClusterLedger.open({ url, keyFile, stateDir: witness });
    clusters.push(cl);
    for (const id of NODES) await cl.pinNodeKey(id, nodeLedgerPublicKey(tmp()));
    await nodeTarget.exec(clusterChainUrl(url), 'DELETE FROM ledger_records WHERE seq > 1; DELETE FROM ledger_checkpoints WHERE seq > 1');
    assert.equal((await verifyCluster({ url, pubkeyFile })).ok, true, 'self-consistent without the witness');
    const r = await verifyCluster({ url, pubkeyFile, stateDir: witness });
    assert.equal(r.ok, false);
    assert.match(r.problems[0]!.message, /cluster chain: tail: rolled back/);
  });

  it('praetor trace --cluster finds the episode\'s node; praetor audit verify --cluster: exit 0 intact, 1 tampered (naming node and record), --json, 2 without a key', async () => {
    const c = await tamperCluster();
    const praetor = (...args: string[]) => spawnSync(BIN, ['audit', 'verify', ...args], { encoding: 'utf8', env: { ...process.env, PRAETOR_STATE: '/nonexistent-praetor-state' } });
    const lc = await openNodeLedger({ url: c.url, nodeId: 'node-c', stateDir: c.states.get('node-c')! });
    for (const e of episodeEvents({ episodeId: 'ep-only-c', sandboxId: 'sb-c', steps: 2 })) lc.append(e);
    await lc.close();
    await c.cl.anchorAll();
    const trace = (...args: string[]) => spawnSync(BIN, ['trace', ...args], { encoding: 'utf8', env: { ...process.env, PRAETOR_STATE: '/nonexistent-praetor-state' } });
    const tr = trace('ep-only-c', '--cluster', c.url);
    assert.equal(tr.status, 0, tr.stderr);
    assert.match(tr.stdout, /step 2 {2}reward 1/);
    assert.match(tr.stdout, /CONTAINMENT kill ok/);
    assert.equal(trace('ep-nowhere', '--cluster', c.url).status, 2);
    const ok = praetor('--cluster', c.url, '--pubkey', c.pubkeyFile);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /cluster ledger intact: 3 node chains/);
    await nodeTarget.exec(nodeChainUrl(c.url, 'node-b'), "UPDATE ledger_records SET body = replace(body, 'curl', 'wget') WHERE seq = 6");
    const bad = praetor('--cluster', c.url, '--pubkey', c.pubkeyFile);
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /CLUSTER LEDGER NOT INTACT.*\n.*node node-b: record 6: hash does not match/);
    const j = praetor('--cluster', c.url, '--pubkey', c.pubkeyFile, '--json');
    assert.equal(j.status, 1);
    const rep = JSON.parse(j.stdout) as ClusterVerifyReport;
    assert.equal(rep.ok, false);
    assert.equal(rep.problems[0]!.node, 'node-b');
    assert.equal(rep.problems[0]!.seq, 6);
    const nokey = praetor('--cluster', c.url);
    assert.equal(nokey.status, 2);
    assert.match(nokey.stderr, /--pubkey/);
    assert.equal(praetor('--cluster', 'not-a-url', '--pubkey', c.pubkeyFile).status, 2);
  });
});
