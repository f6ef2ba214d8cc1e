// `praetor bench cluster --json`: the coordination layer on a real PostgreSQL (private, on a
// unix socket, like the tests'). Node loss is measured end to end: a real node process is
// killed with SIGKILL and a control replica polls as it would in production; the clock runs
// from the kill to the transaction that records the node lost. Placement is the reservation
// transaction that every create pays, alone and with two replicas racing.
// Issue 14's target: a node's loss detected within 10 s p99.
// The routed control plane (real node and control processes: create → exec routed and direct,
// steps per second, records lost after kill -9 of a node) is bench/cluster-routed.ts.
import { spawn } from 'node:child_process';
import { ClusterControl } from '../src/cluster/control.ts';
import { NodeMembership } from '../src/cluster/membership.ts';
import { TenantSettingsSchema } from '../src/config/index.ts';
import { postgresAvailable, startPostgres } from '../test/helpers/postgres.ts';
import { nodeBinary } from '../src/testbed/index.ts';
import { pct } from './stats.ts';
import { benchRouted } from './cluster-routed.ts';

const HEARTBEAT_MS = 1000; // the node default
const LOST_AFTER_MS = 5000; // the control default
const POLL_MS = 500; // how often a control replica runs detectLost

export async function benchCluster(opts: { trials?: number; routedTrials?: number; episodes?: number; progress?: (m: string) => void } = {}): Promise<Record<string, number | string>> {
  if (!postgresAvailable()) throw new Error('bench cluster needs PostgreSQL 15 and root (installed by npm test\'s setup)');
  const trials = opts.trials ?? 20;
  const pg = await startPostgres();
  try {
    const url = await pg.createDatabase('bench_cluster');
    const ctl = await ClusterControl.open({ url });
    const ctl2 = await ClusterControl.open({ url });
    const settings = TenantSettingsSchema.parse({ maxSandboxes: 100_000, maxCpus: 100_000, maxMemoryBytes: 2 ** 50 });
    const members: NodeMembership[] = [];
    try {
      for (const id of ['bench-a', 'bench-b', 'bench-c']) members.push(await NodeMembership.join({ url, nodeId: id, address: `https://${id}`, capacity: { cpus: 10_000, memoryBytes: 2 ** 50, maxSandboxes: 10_000 }, heartbeatMs: HEARTBEAT_MS }));

      opts.progress?.('cluster: placement');
      const want = { cpus: 1, memoryBytes: 2 ** 30 };
      const lone: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t = performance.now();
        await ctl.place(`t${i % 10}`, settings, want);
        lone.push(performance.now() - t);
      }
      const racing = 400;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: racing }, (_, i) => (i % 2 ? ctl : ctl2).place(`r${i % 20}`, settings, want)));
      const racingSec = (performance.now() - t0) / 1000;

      opts.progress?.(`cluster: node loss, ${trials} kill -9s`);
      const detect: number[] = [];
      const batch = 10;
      for (let start = 0; start < trials; start += batch) {
        const n = Math.min(batch, trials - start);
        detect.push(...await Promise.all(Array.from({ length: n }, (_, i) => lossTrial(url, ctl, `victim-${start + i}`))));
      }
      opts.progress?.('cluster: routed control plane');
      const routed = await benchRouted(await pg.createDatabase('bench_routed'), { trials: opts.routedTrials ?? 30, episodes: opts.episodes ?? 50, ...(opts.progress ? { progress: opts.progress } : {}) });
      return {
        trials,
        ...routed,
        heartbeatMs: HEARTBEAT_MS, lostAfterMs: LOST_AFTER_MS, detectPollMs: POLL_MS,
        nodeLossDetectP50Ms: Math.round(pct(detect, 50)), nodeLossDetectP99Ms: Math.round(pct(detect, 99)), nodeLossDetectMaxMs: Math.round(Math.max(...detect)),
        placeP50Ms: +pct(lone, 50).toFixed(2), placeP99Ms: +pct(lone, 99).toFixed(2),
        placementsPerSecTwoReplicas: Math.round(racing / racingSec),
      };
    } finally {
      for (const m of members) await m.leave().catch(() => undefined);
      await ctl.close(); await ctl2.close();
    }
  } finally {
    await pg.stop();
  }
}

/** One node process joins, is killed with SIGKILL; returns ms from the kill to recorded lost. */
async function lossTrial(url: string, ctl: ClusterControl, nodeId: string): Promise<number> {
  const child = spawn(nodeBinary(), [new URL('../test/cluster/member-process.ts', import.meta.url).pathname,
    JSON.stringify({ url, nodeId, address: `https://${nodeId}`, capacity: { cpus: 1, memoryBytes: 2 ** 30, maxSandboxes: 1 }, heartbeatMs: HEARTBEAT_MS })], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => { child.stdout!.once('data', () => resolve()); child.once('exit', (c) => reject(new Error(`member ${nodeId} exited ${c}`))); });
    // Let it heartbeat a little, so the kill lands at a random phase of its heartbeat.
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * (1 + Math.random())));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    const killedAt = performance.now();
    await exited;
    for (;;) {
      const lost = await ctl.detectLost(LOST_AFTER_MS);
      if ((await ctl.nodes()).find((n) => n.nodeId === nodeId)?.state === 'lost' || lost.some((l) => l.nodeId === nodeId)) return performance.now() - killedAt;
      if (performance.now() - killedAt > 60_000) throw new Error(`${nodeId} not detected lost within 60 s`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
