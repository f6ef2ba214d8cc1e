// `verify --cluster`: the cluster chain, verified with the cluster key given to the verifier;
// then every node chain, verified with the key the cluster chain pinned for that node (never
// the key a node chain names for itself: re-signing a chain with a key of one's own is the
// forgery); then every anchor: the node chain must still hold the anchored record with the
// anchored hash. The anchors are what catch a node chain cut back to an older checkpoint, a
// cut that leaves a chain that is consistent on its own.
import type { KeyObject } from 'node:crypto';
import pg from 'pg';
import { errorMessage, PraetorError } from '../errors.ts';
import type { CheckpointStatement } from './chain.ts';
import { parseNodePublicKey } from './cluster-key.ts';
import { parseClusterRecord, type Anchor, type NodePinned } from './cluster-records.ts';
import { loadTrustedPublicKey } from './keys.ts';
import { checkClusterUrl, CLUSTER_SCHEMA, clusterChainUrl, NODE_SCHEMA_PREFIX, nodeChainSchema, nodeChainUrl } from './node-chain.ts';
import { POSTGRES_OBJECTS, PostgresStore } from './stores/postgres.ts';
import { verifyStore, type VerifyReport } from './verify.ts';

export type ClusterProblem = {
  /** Which chain: the cluster chain, or a node's (then `node` names it). */
  chain: 'cluster' | 'node';
  node?: string;
  where: string;
  seq?: number;
  checkpoint?: number;
  reason: string;
  /** One line naming the chain, the place and why: what the CLI prints. */
  message: string;
};

export type NodeVerify = {
  nodeId: string;
  keyId: string;
  schema: string;
  ok: boolean;
  ledgerId: string | null;
  records: number;
  lastSeq: number | null;
  anchors: number;
  anchoredThrough: number;
  report: VerifyReport | null;
};

export type ClusterVerifyReport = {
  ok: boolean;
  location: string;
  cluster: VerifyReport | null;
  nodes: NodeVerify[];
  problems: ClusterProblem[];
  warnings: string[];
  durationMs: number;
};

const MAX_ANCHOR_PROBLEMS = 20;

function problem(p: Omit<ClusterProblem, 'message'>): ClusterProblem {
  return { ...p, message: `${p.node === undefined ? 'cluster chain' : `node ${p.node}`}: ${p.where}: ${p.reason}` };
}

export async function verifyCluster(o: { url: string; pubkeyFile: string; stateDir?: string | undefined }): Promise<ClusterVerifyReport> {
  const t0 = performance.now();
  checkClusterUrl(o.url);
  const clusterKey = loadTrustedPublicKey({ pubkeyFile: o.pubkeyFile });
  const problems: ClusterProblem[] = [];
  const warnings: string[] = [];
  const nodes: NodeVerify[] = [];
  const c = new pg.Client({ connectionString: o.url });
  try { await c.connect(); } catch (e) {
    await c.end().catch(() => undefined);
    throw new PraetorError('LEDGER_UNAVAILABLE', `cannot connect to the cluster database: ${errorMessage(e)}`, { hint: 'check the --cluster URL', cause: e });
  }
  let location = '';
  let cluster: VerifyReport | null = null;
  try {
    const schemas = (await c.query<{ s: string }>(`SELECT nspname AS s FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $2`, [CLUSTER_SCHEMA, `${NODE_SCHEMA_PREFIX.replaceAll('_', '\\_')}%`])).rows.map((r) => r.s);
    if (!schemas.includes(CLUSTER_SCHEMA)) {
      problems.push(problem({ chain: 'cluster', where: 'schema', reason: `no cluster chain (schema ${CLUSTER_SCHEMA}) in this database` }));
      return done();
    }

    // 1. The cluster chain, under the cluster key.
    const cstore = await PostgresStore.connect(clusterChainUrl(o.url), { writer: false });
    location = redacted(o.url);
    const pins = new Map<string, NodePinned & { key: KeyObject; at: number }>();
    const anchors = new Map<string, (Anchor & { at: number })[]>();
    try {
      cluster = await verifyStore(cstore, { publicKey: clusterKey, stateDir: o.stateDir, expectedObjects: POSTGRES_OBJECTS });
      for (const p of cluster.problems) problems.push(problem({ chain: 'cluster', ...p }));
      for (const w of cluster.warnings) if (!/not yet signed/.test(w)) warnings.push(`cluster chain: ${w}`);
      // Every cluster write carries its checkpoint: an unsealed record was not written with the key.
      if (cluster.unsealed > 0) {
        problems.push(problem({ chain: 'cluster', where: `record ${cluster.sealedThrough + 1}`, seq: cluster.sealedThrough + 1, reason: `records ${cluster.sealedThrough + 1}..${cluster.sealedThrough + cluster.unsealed} are not sealed by a cluster checkpoint (appended without the cluster key)` }));
      }
      for await (const batch of cstore.records(2000)) {
        for (const r of batch) {
          if (r.seq > cluster.sealedThrough) continue;
          const rec = parseClusterRecord(r.body);
          if (typeof rec === 'string') { problems.push(problem({ chain: 'cluster', where: `record ${r.seq}`, seq: r.seq, reason: rec })); continue; }
          if (rec.kind === 'cluster.node_pinned') {
            const have = pins.get(rec.nodeId);
            if (have !== undefined) {
              if (have.keyId !== rec.keyId) problems.push(problem({ chain: 'cluster', where: `record ${r.seq}`, seq: r.seq, reason: `pins node ${rec.nodeId} again, to key ${rec.keyId} (record ${have.at} pinned ${have.keyId})` }));
              continue;
            }
            try {
              const k = parseNodePublicKey(rec.publicKey, rec.nodeId);
              if (k.keyId !== rec.keyId) throw new Error(`the key's id is ${k.keyId}, the record says ${rec.keyId}`);
              pins.set(rec.nodeId, { ...rec, key: k.publicKey, at: r.seq });
            } catch (e) {
              problems.push(problem({ chain: 'cluster', where: `record ${r.seq}`, seq: r.seq, reason: `pinned key of node ${rec.nodeId} is unusable: ${errorMessage(e)}` }));
            }
          } else {
            if (!pins.has(rec.nodeId)) problems.push(problem({ chain: 'cluster', where: `record ${r.seq}`, seq: r.seq, reason: `anchors node ${rec.nodeId}, whose key was never pinned before it` }));
            const list = anchors.get(rec.nodeId) ?? [];
            list.push({ ...rec, at: r.seq });
            anchors.set(rec.nodeId, list);
          }
        }
      }
    } finally {
      await cstore.close();
    }

    // 2. Chains nobody pinned a key for cannot be authenticated.
    const bySchema = new Map([...pins.keys()].map((id) => [nodeChainSchema(id), id]));
    for (const s of schemas) {
      if (s !== CLUSTER_SCHEMA && !bySchema.has(s)) {
        problems.push(problem({ chain: 'node', node: s.slice(NODE_SCHEMA_PREFIX.length), where: `schema ${s}`, reason: 'holds a node chain whose key was never pinned in the cluster chain (cannot be authenticated)' }));
      }
    }

    // 3. Every pinned node's chain, under its pinned key, and its anchors.
    const ids = [...pins.keys()].sort();
    const results = await mapLimit(ids, 4, async (nodeId) => verifyNode(c, o.url, pins.get(nodeId)!, anchors.get(nodeId) ?? [], schemas.includes(nodeChainSchema(nodeId))));
    for (const r of results) {
      nodes.push(r.node);
      problems.push(...r.problems);
      warnings.push(...r.warnings);
    }
    return done();
  } finally {
    await c.end().catch(() => undefined);
  }

  function done(): ClusterVerifyReport {
    return { ok: problems.length === 0, location, cluster, nodes, problems, warnings, durationMs: Math.round(performance.now() - t0) };
  }
}

async function verifyNode(c: pg.Client, url: string, pin: NodePinned & { key: KeyObject }, anchors: (Anchor & { at: number })[], exists: boolean): Promise<{ node: NodeVerify; problems: ClusterProblem[]; warnings: string[] }> {
  const nodeId = pin.nodeId;
  const schema = nodeChainSchema(nodeId);
  const problems: ClusterProblem[] = [];
  const warnings: string[] = [];
  const anchoredThrough = anchors.reduce((m, a) => Math.max(m, a.seq), 0);
  const node: NodeVerify = { nodeId, keyId: pin.keyId, schema, ok: false, ledgerId: null, records: 0, lastSeq: null, anchors: anchors.length, anchoredThrough, report: null };
  const at = (p: Omit<ClusterProblem, 'message' | 'chain' | 'node'>): void => { problems.push(problem({ chain: 'node', node: nodeId, ...p })); };
  if (!exists) {
    if (anchors.length > 0) at({ where: `schema ${schema}`, seq: anchoredThrough, reason: `the chain is gone; the cluster chain anchored it through record ${anchoredThrough} (deleted)` });
    else warnings.push(`node ${nodeId} is pinned but has written no chain yet`);
    node.ok = problems.length === 0;
    return { node, problems, warnings };
  }
  const store = await PostgresStore.connect(nodeChainUrl(url, nodeId), { writer: false });
  let report: VerifyReport;
  let checkpoints: CheckpointStatement[] = [];
  try {
    report = await verifyStore(store, { publicKey: pin.key, expectedObjects: POSTGRES_OBJECTS });
    try { checkpoints = (await store.checkpoints()).map((r) => JSON.parse(r.payload) as CheckpointStatement); } catch { /* reported by verifyStore */ }
  } finally {
    await store.close();
  }
  node.report = report;
  node.ledgerId = report.ledgerId;
  node.records = report.records;
  node.lastSeq = report.lastSeq;
  for (const p of report.problems) at(p);
  for (const w of report.warnings) warnings.push(`node ${nodeId}: ${w}`);

  const hashes = new Map<number, string>();
  if (anchors.length > 0) {
    try {
      const { rows } = await c.query<{ seq: string; hash: string }>(`SELECT seq, hash FROM ${schema}.ledger_records WHERE seq = ANY($1::bigint[])`, [anchors.map((a) => a.seq)]);
      for (const r of rows) hashes.set(Number(r.seq), r.hash);
    } catch (e) {
      at({ where: 'records', reason: `cannot read the anchored records: ${errorMessage(e)}` });
    }
  }
  const end = report.lastSeq ?? report.prunedThrough;
  let reportedLedger = false;
  let n = 0;
  for (const a of anchors) {
    if (n >= MAX_ANCHOR_PROBLEMS) break;
    const before = problems.length;
    if (a.ledgerId !== report.ledgerId && !reportedLedger) {
      reportedLedger = true;
      at({ where: 'chain', reason: `is ledger ${report.ledgerId ?? '(none)'}, the cluster chain anchored ledger ${a.ledgerId} (cluster record ${a.at}): the chain was replaced` });
    }
    const h = hashes.get(a.seq);
    if (h === undefined) {
      if (a.seq <= report.prunedThrough) {
        if (!checkpoints.some((s) => s.seq === a.seq && s.hash === a.hash)) at({ where: `record ${a.seq}`, seq: a.seq, reason: `pruned, and no signed checkpoint of the chain matches the hash anchored in cluster record ${a.at}` });
      } else if (end < a.seq) {
        at({ where: `record ${a.seq}`, seq: a.seq, reason: `anchored in cluster record ${a.at}, but the chain ends at record ${end}: cut back below the anchor` });
      } else {
        at({ where: `record ${a.seq}`, seq: a.seq, reason: `anchored in cluster record ${a.at}, but missing from the chain (deleted)` });
      }
    } else if (h !== a.hash) {
      at({ where: `record ${a.seq}`, seq: a.seq, reason: `differs from the hash anchored in cluster record ${a.at} (edited, reordered or re-chained)` });
    }
    if (problems.length > before) n++;
  }
  problems.sort((x, y) => (x.seq ?? -1) - (y.seq ?? -1));
  node.ok = problems.length === 0;
  return { node, problems, warnings };
}

function redacted(url: string): string {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return 'postgres://…'; }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i]!); }
  }));
  return out;
}
