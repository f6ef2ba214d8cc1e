// The routed control plane, measured with real processes: three `praetor serve --role node`
// (--no-detect: the measurement is the routing, and three kernel sensors would eat this
// machine's two cores) and one `--role control` replica, on loopback, on the bench's PostgreSQL.
// Node links are mutual TLS, as in production (the nodes join through the replica).
//  - create → first exec through the control replica, and straight to a node, interleaved in
//    the same run (a node's own create also reserves, so both pay one placement transaction).
//    Straight to a node is over mutual TLS too, with a control certificate and a keep-alive
//    agent per node, as a replica calls it: the difference is the routing hop, not the handshake;
//  - steps per second with 50 episodes stepped concurrently through the replica;
//  - acknowledged steps whose tool.call record is missing from the node's ledger after the node
//    is killed with SIGKILL mid-load (issue 14's target: 0).
// Issue 14's target: routing adds at most 5 ms p50 to create → first exec.
import https from 'node:https';
import { DatabaseSync } from 'node:sqlite';
import { controlClientTlsOptions } from '../src/cluster/pki-tls.ts';
import { createToken } from '../src/server/auth.ts';
import { ordinalOfId } from '../src/cluster/schema.ts';
import { ClusterProcs, type Proc } from '../test/cluster/cluster-procs.ts';
import { pct } from './stats.ts';

const SMALL = { cpus: 0.02, memory: '32m' };

export async function benchRouted(url: string, o: { trials: number; episodes: number; progress?: (m: string) => void }): Promise<Record<string, number>> {
  const procs = new ClusterProcs(url);
  const token = createToken(procs.tokensDir, 'bench').token;
  const agents = new Map<string, https.Agent>();
  const agentFor = (p: Proc) => {
    let a = agents.get(p.name);
    if (!a) agents.set(p.name, a = new https.Agent({ keepAlive: true, ...controlClientTlsOptions(procs.clientDir, p.name) }));
    return a;
  };
  const send = (to: Proc, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> => {
    if (to.role !== 'node') {
      return fetch(`${to.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
        .then(async (r) => ({ status: r.status, text: await r.text() }));
    }
    const u = new URL(path, to.url);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(u, { method, agent: agentFor(to), headers: { authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    });
  };
  const post = async (to: Proc, path: string, body: unknown): Promise<any> => {
    const r = await send(to, 'POST', path, body);
    const j = JSON.parse(r.text);
    if (r.status !== 200) throw Object.assign(new Error(`${path}: ${r.status} ${r.text}`), { status: r.status });
    return j;
  };
  const del = (to: Proc, path: string) => send(to, 'DELETE', path);
  try {
    o.progress?.('cluster: starting a control replica and 3 nodes (mutual TLS links; the nodes join through the replica)');
    const control = await procs.control('bc');
    const nodes = await Promise.all(['bn1', 'bn2', 'bn3'].map((n) => procs.node(n, ['--no-detect', '--capacity', '64'])));

    o.progress?.(`cluster: create → first exec, ${o.trials} routed and ${o.trials} direct`);
    const routed: number[] = [];
    const direct: number[] = [];
    const execRouted: number[] = [];
    const execDirect: number[] = [];
    for (let i = 0; i < o.trials + 2; i++) {
      const node = nodes[i % nodes.length]!;
      let t = performance.now();
      const a = await post(control, '/v1/sandboxes', SMALL);
      await post(control, `/v1/sandboxes/${a.id}/exec`, { command: ['true'] });
      const r = performance.now() - t;
      t = performance.now();
      const b = await post(node, '/v1/sandboxes', SMALL);
      await post(node, `/v1/sandboxes/${b.id}/exec`, { command: ['true'] });
      const d = performance.now() - t;
      if (i >= 2) { routed.push(r); direct.push(d); } // the first two warm the processes up
      // The exec alone, through the replica and straight to the sandbox's node, alternating
      // (many samples: the create's few hundred ms of noise hide a few ms of routing).
      const home = nodes.find((n) => ordinalOfNode(n) === ordinalOfId(a.id))!;
      for (let j = 0; j < 10; j++) {
        t = performance.now(); await post(control, `/v1/sandboxes/${a.id}/exec`, { command: ['true'] }); execRouted.push(performance.now() - t);
        t = performance.now(); await post(home, `/v1/sandboxes/${a.id}/exec`, { command: ['true'] }); execDirect.push(performance.now() - t);
      }
      await del(control, `/v1/sandboxes/${a.id}`);
      await del(node, `/v1/sandboxes/${b.id}`);
    }

    o.progress?.(`cluster: ${o.episodes} episodes stepped through the control replica, then kill -9 of a node`);
    const eps: Array<{ id: string; acked: number[] }> = [];
    for (let i = 0; i < o.episodes; i += 10) {
      eps.push(...await Promise.all(Array.from({ length: Math.min(10, o.episodes - i) }, async () => ({ id: (await post(control, '/v1/episodes', { task: 'bench', sandbox: SMALL, max_steps: 100_000 })).episode_id as string, acked: [] as number[] }))));
    }
    let stop = false;
    let steps = 0;
    const loops = eps.map(async (ep) => {
      while (!stop) {
        try {
          const s = await post(control, `/v1/episodes/${ep.id}/step`, { action: { tool: 'bash', arguments: { command: 'true' } } });
          ep.acked.push(s.step);
          steps++;
        } catch { if (!stop) await new Promise((r) => setTimeout(r, 50)); }
      }
    });
    await new Promise((r) => setTimeout(r, 1000)); // warm
    const s0 = steps; const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 4000));
    const stepsPerSec = (steps - s0) / ((performance.now() - t0) / 1000);
    const victim = nodes[0]!;
    await procs.kill9(victim);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(loops);
    const onVictim = eps.filter((e) => ordinalOfId(e.id) === ordinalOfNode(victim));
    const db = new DatabaseSync(`${victim.stateDir}/audit/ledger.db`, { readOnly: true });
    let acked = 0;
    let lost = 0;
    try {
      const q = db.prepare(`SELECT DISTINCT step FROM ledger_records WHERE kind = 'tool.call' AND episode_id = ?`);
      for (const e of onVictim) {
        const have = new Set(q.all(e.id).map((r) => Number((r as { step: number }).step)));
        acked += e.acked.length;
        lost += e.acked.filter((s) => !have.has(s)).length;
      }
    } finally { db.close(); }
    return {
      routedCreateExecP50Ms: +pct(routed, 50).toFixed(2), directCreateExecP50Ms: +pct(direct, 50).toFixed(2),
      routedAddedP50Ms: +(pct(routed, 50) - pct(direct, 50)).toFixed(2),
      // Every link of this run is mutual TLS. The median of the paired differences (each routed
      // create → exec minus the direct one right after it): a create's few hundred ms vary with
      // the shared machine's load, and pairing cancels what both of a pair saw.
      routedAddedMtlsP50Ms: +pct(routed.map((r, i) => r - direct[i]!), 50).toFixed(2),
      routedExecP50Ms: +pct(execRouted, 50).toFixed(2), directExecP50Ms: +pct(execDirect, 50).toFixed(2),
      routedExecAddedP50Ms: +(pct(execRouted, 50) - pct(execDirect, 50)).toFixed(2),
      routedTrials: routed.length,
      episodes: eps.length, stepsPerSec: Math.round(stepsPerSec),
      ackedStepsOnKilledNode: acked, recordsLost: lost,
    };
  } finally {
    for (const a of agents.values()) a.destroy();
    await procs.stopAll();
  }
}

/** A node's ordinal, from its joined line (nodes start in parallel, so names do not say it). */
function ordinalOfNode(p: Proc): number {
  return Number(/ordinal (\d+)/.exec(p.log())?.[1] ?? -1);
}
