// `praetor bench net`: bulk TCP throughput through the egress gateway vs direct (the same
// transfer from praetor's own namespace to the same server, in the same run), and the latency
// the gateway adds to connection setup (connect → first response byte of a tiny GET), with 1,
// 10 and 100 concurrent sandboxes. Builds its own topology; nothing leaves it.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createTopology, nodeBinary, type Topology } from '../src/testbed/index.ts';
import { exec, startGatewayFixture, type TestSandbox } from '../test/net/fixture.ts';
import { pct } from './stats.ts';

const NODE = nodeBinary();
const CLIENT = fileURLToPath(new URL('./net-client.ts', import.meta.url));

export interface NetBenchOptions { concurrency?: number[]; bulkBytes?: number; latencySamples?: number; tls?: boolean }
export interface NetBenchLevel {
  sandboxes: number; gatewayMBps: number; directMBps: number; throughputRatio: number;
  gatewayP50Ms: number; gatewayP99Ms: number; directP50Ms: number; directP99Ms: number;
  connectAddedP50Ms: number; connectAddedP99Ms: number;
}
export interface NetBenchResult {
  throughputRatio: number; connectAddedP50Ms: number; connectAddedP99Ms: number;
  levels: NetBenchLevel[]; bulkBytesPerLevel: number; latencySamplesPerSandbox: number;
  targets: { throughputRatio: 0.5; connectAddedP50Ms: 1; tlsThroughputRatio: 0.5; tlsHandshakeAddedP50Ms: 5 }; cpus: number;
  /** Intercepted TLS (terminated, inspected, re-encrypted) bulk throughput / direct TLS to the same server. */
  tlsThroughputRatio?: number;
  /** Added latency from connect to the first response byte of a tiny HTTPS GET (both handshakes, inspection), p50. */
  tlsHandshakeAddedP50Ms?: number;
  tls?: { gatewayMBps: number; directMBps: number; gatewayP50Ms: number; directP50Ms: number; gatewayP99Ms: number; directP99Ms: number; addedP99Ms: number };
  /** 1-minute load average before and after: the machine may be shared; read numbers with it. */
  loadAvg: { before: number; after: number };
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function client(ns: string, args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const r = await exec('ip', ['netns', 'exec', ns, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), NODE, CLIENT, ...args], 300_000);
  if (r.code !== 0) throw new Error(`bench client in ${ns} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function level(t: Topology, sbs: TestSandbox[], k: number, bulkBytes: number, samples: number): Promise<NetBenchLevel> {
  const ip = t.servers.web.ip; const per = Math.max(1 << 20, Math.floor(bulkBytes / k / 3));
  const bulk = async (nss: string[]) => {
    const t0 = process.hrtime.bigint();
    const rs = await Promise.all(nss.map((ns) => client(ns, ['bulk', ip, '80', String(per)])));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return rs.reduce((a, r) => a + (r.bytes as number), 0) / secs / 1e6;
  };
  const lat = async (nss: string[], n: number) => (await Promise.all(nss.map((ns) => client(ns, ['latency', ip, '80', String(n)])))).flatMap((r) => r.samplesMs as number[]);
  const gwNs = sbs.slice(0, k).map((s) => s.ns);
  const directNs = Array.from({ length: k }, () => t.hostNs);
  // Alternate direct and gateway in rounds so drift in the machine's load (other work on a
  // shared host) hits both alike; samples are merged across rounds.
  const rounds = 3; let directMBps = 0; let gatewayMBps = 0; const dLat: number[] = []; const gLat: number[] = [];
  const latN = Math.max(5, Math.ceil(samples / rounds));
  for (let r = 0; r < rounds; r++) {
    directMBps += await bulk(directNs) / rounds;
    gatewayMBps += await bulk(gwNs) / rounds;
    dLat.push(...await lat(directNs, latN));
    gLat.push(...await lat(gwNs, latN));
  }
  const l = {
    sandboxes: k, gatewayMBps: round(gatewayMBps, 1), directMBps: round(directMBps, 1), throughputRatio: round(gatewayMBps / directMBps),
    gatewayP50Ms: round(pct(gLat, 50)), gatewayP99Ms: round(pct(gLat, 99)), directP50Ms: round(pct(dLat, 50)), directP99Ms: round(pct(dLat, 99)),
    connectAddedP50Ms: 0, connectAddedP99Ms: 0,
  };
  l.connectAddedP50Ms = round(l.gatewayP50Ms - l.directP50Ms); l.connectAddedP99Ms = round(l.gatewayP99Ms - l.directP99Ms);
  return l;
}

/**
 * TLS interception: one sandbox whose policy allows tls.example.test by name (inspect: tls by
 * default, the fake server's CA as network.upstreamCa) against the same HTTPS transfers from
 * praetor's own namespace straight to the server. Both sides resolve the name once first.
 */
async function tlsLevel(t: Topology, fx: Awaited<ReturnType<typeof startGatewayFixture>>, bulkBytes: number, samples: number) {
  const sb = await fx.sandbox({ allow: [{ domain: 'tls.example.test', ports: [443] }], upstreamCa: t.tlsCertPath });
  const caFile = `${t.dir}/praetor-ca-${sb.id}.pem`;
  writeFileSync(caFile, sb.caCertPem!);
  const gw = { PT_TLS_NAME: 'tls.example.test', PT_TLS_CA: caFile };
  const direct = { PT_TLS_NAME: 'tls.example.test', PT_TLS_CA: t.tlsCertPath };
  const per = Math.max(1 << 20, Math.floor(bulkBytes / 3));
  const bulk = async (ns: string, env: Record<string, string>) => { const r = await client(ns, ['bulk', '-', '443', String(per)], env); return (r.bytes as number) / (r.seconds as number) / 1e6; };
  const lat = async (ns: string, env: Record<string, string>, k: number) => (await client(ns, ['latency', '-', '443', String(k)], env)).samplesMs as number[];
  // Warm-up: the first connection mints the leaf and fills caches on both sides.
  await lat(sb.ns, gw, 3); await lat(t.hostNs, direct, 3);
  let dM = 0; let gM = 0; const dL: number[] = []; const gL: number[] = []; const rounds = 3;
  const k = Math.max(5, Math.ceil(samples / rounds));
  for (let r = 0; r < rounds; r++) {
    dM += await bulk(t.hostNs, direct) / rounds; gM += await bulk(sb.ns, gw) / rounds;
    dL.push(...await lat(t.hostNs, direct, k)); gL.push(...await lat(sb.ns, gw, k));
  }
  await sb.destroy();
  return { gatewayMBps: round(gM, 1), directMBps: round(dM, 1), gatewayP50Ms: round(pct(gL, 50)), directP50Ms: round(pct(dL, 50)), gatewayP99Ms: round(pct(gL, 99)), directP99Ms: round(pct(dL, 99)) };
}

export async function benchNet(opts: NetBenchOptions = {}): Promise<NetBenchResult> {
  const conc = opts.concurrency ?? [1, 10, 100];
  // 300 latency samples a side (100 a round): the added p50 is a difference of two medians of
  // sub-millisecond times on a shared machine, and 100 samples left it swinging by ±0.3 ms.
  const bulkBytes = opts.bulkBytes ?? 1 << 30; const samples = opts.latencySamples ?? 300;
  const loadBefore = os.loadavg()[0]!;
  const t = await createTopology({ servers: ['web', 'dns', ...(opts.tls === false ? [] : ['tls'])] });
  let fx: Awaited<ReturnType<typeof startGatewayFixture>> | undefined;
  try {
    // The gateway's production poll interval; and no event stream to this process, which reads
    // none: serialising every flow to a pipe would add a third busy process on a small machine.
    fx = await startGatewayFixture(t, { PT_POLL_MS: '500', PT_EVENTS: '0' });
    const max = Math.max(...conc);
    const sbs: TestSandbox[] = [];
    // IP literal + CIDR rule: the benchmark measures the gateway, not the test DNS server.
    for (let i = 0; i < max; i++) sbs.push(await fx.sandbox({ allow: [{ cidr: `${t.servers.web.ip}/32`, ports: [80] }] }));
    const levels: NetBenchLevel[] = [];
    for (const k of conc) levels.push(await level(t, sbs, k, bulkBytes, k >= 100 ? 20 : samples));
    const one = levels.find((l) => l.sandboxes === 1) ?? levels[0]!;
    const tlsR = opts.tls === false ? undefined : await tlsLevel(t, fx, bulkBytes, samples);
    return {
      ...(tlsR ? { tlsThroughputRatio: round(tlsR.gatewayMBps / tlsR.directMBps), tlsHandshakeAddedP50Ms: round(tlsR.gatewayP50Ms - tlsR.directP50Ms), tls: { ...tlsR, addedP99Ms: round(tlsR.gatewayP99Ms - tlsR.directP99Ms) } } : {}),
      throughputRatio: Math.min(...levels.map((l) => l.throughputRatio)),
      connectAddedP50Ms: one.connectAddedP50Ms, connectAddedP99Ms: one.connectAddedP99Ms,
      levels, bulkBytesPerLevel: bulkBytes, latencySamplesPerSandbox: samples,
      targets: { throughputRatio: 0.5, connectAddedP50Ms: 1, tlsThroughputRatio: 0.5, tlsHandshakeAddedP50Ms: 5 }, cpus: os.cpus().length,
      loadAvg: { before: round(loadBefore, 2), after: round(os.loadavg()[0]!, 2) },
    };
  } finally {
    await fx?.close();
    await t.teardown();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const tlsOnly = process.argv.includes('--tls-only');
  const r = await benchNet(quick || tlsOnly ? { concurrency: tlsOnly ? [1] : [1, 10], bulkBytes: 256 << 20, latencySamples: 50 } : {});
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
}
