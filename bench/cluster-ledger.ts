// `praetor bench cluster-ledger --json`: one ledger across nodes on a real PostgreSQL (private,
// on a unix socket, like the tests'). Three node writers (real processes) append to their own
// chains as fast as they acknowledge, while a control replica's anchoring loop anchors their
// checkpoints; each round every writer is killed with SIGKILL at a random moment, and every
// record it had acknowledged must still be in its chain (issue 14's target: recordsLost 0).
// Anchor lag is what an attacker's window is: from a node signing a checkpoint to the cluster
// chain anchoring it (dominated by the anchoring interval). The run ends with verify --cluster.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ClusterLedger, clusterChainUrl, createClusterLedgerKey, nodeLedgerPublicKey, verifyCluster } from '../src/audit/index.ts';
import { crashNodeWriter, recordsLost } from '../test/cluster/node-ledger-crash.ts';
import { postgresAvailable, startPostgres } from '../test/helpers/postgres.ts';
import { pct } from './stats.ts';

const NODES = ['bench-a', 'bench-b', 'bench-c'];
const ANCHOR_MS = 1000;

export async function benchClusterLedger(opts: { trials?: number; progress?: (m: string) => void } = {}): Promise<Record<string, number | string | boolean>> {
  if (!postgresAvailable()) throw new Error('bench cluster-ledger needs PostgreSQL 15 and root (installed by npm test\'s setup)');
  const rounds = opts.trials ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'praetor-bench-cl-'));
  const server = await startPostgres();
  try {
    const url = await server.createDatabase('bench_cluster_ledger');
    const { keyFile, pubkeyFile } = createClusterLedgerKey(join(dir, 'ca'));
    const cl = await ClusterLedger.open({ url, keyFile });
    const states = new Map(NODES.map((n) => [n, mkdtempSync(join(dir, `${n}-`))]));
    for (const [n, s] of states) await cl.pinNodeKey(n, nodeLedgerPublicKey(s));
    const problems: string[] = [];
    const loop = cl.startAnchoring({ intervalMs: ANCHOR_MS, onProblem: (n, e) => problems.push(`${n}: ${e.message}`), onError: (e) => problems.push(String(e)) });
    let acked = 0;
    let lost = 0;
    let kills = 0;
    let writeMs = 0;
    try {
      for (let r = 0; r < rounds; r++) {
        opts.progress?.(`cluster-ledger: round ${r + 1}/${rounds}, 3 node writers, kill -9 each`);
        const t0 = performance.now();
        const res = await Promise.all(NODES.map((n) => crashNodeWriter({ url, nodeId: n, stateDir: states.get(n)!, prefix: `r${r}`, atLeast: 5000 + Math.floor(Math.random() * 10_000) })));
        writeMs += performance.now() - t0;
        for (const [i, k] of res.entries()) {
          if (k.killedBy !== 'SIGKILL') throw new Error(`${NODES[i]} was not killed by SIGKILL`);
          kills++;
          acked += k.acked;
          lost += await recordsLost(url, NODES[i]!, `r${r}`, k.acked);
        }
        // Let the loop see the restarted chains' tails sealed by the next open (the next round).
        await new Promise((res) => setTimeout(res, ANCHOR_MS * 1.5));
      }
    } finally {
      await loop.stop();
    }
    await cl.anchorAll();
    opts.progress?.('cluster-ledger: verify --cluster');
    const t1 = performance.now();
    const v = await verifyCluster({ url, pubkeyFile });
    const verifyMs = performance.now() - t1;
    const lags = await anchorLags(url);
    await cl.close();
    if (!v.ok) problems.push(...v.problems.map((p) => p.message));
    const records = v.nodes.reduce((s, n) => s + n.records, 0);
    return {
      nodes: NODES.length, rounds, kills, anchorIntervalMs: ANCHOR_MS,
      recordsAcknowledged: acked, recordsLost: lost,
      appendsPerSecAllNodes: Math.round(acked / (writeMs / 1000)),
      anchors: lags.length, anchorLagP50Ms: Math.round(pct(lags, 50)), anchorLagP99Ms: Math.round(pct(lags, 99)), anchorLagMaxMs: Math.round(Math.max(...lags)),
      verifyClusterOk: v.ok, verifyClusterMs: Math.round(verifyMs), recordsVerified: records,
      verifyRecordsPerSec: Math.round(records / (verifyMs / 1000)),
      problems: problems.slice(0, 5).join(' | '),
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ms from each anchored checkpoint's signing (node clock) to its anchor (control clock). */
async function anchorLags(url: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: clusterChainUrl(url) });
  await c.connect();
  try {
    const { rows } = await c.query<{ body: string }>("SELECT body FROM ledger_records WHERE kind = 'cluster.anchor'");
    return rows.map((r) => JSON.parse(r.body) as { ts: number; checkpointTs: number | null })
      .filter((a) => a.checkpointTs !== null).map((a) => a.ts / 1e6 - a.checkpointTs!);
  } finally {
    await c.end();
  }
}
