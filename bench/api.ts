// `praetor bench api --json`: what the HTTP API adds to an exec (round trip over HTTP on
// loopback vs the in-process sandbox.exec, same sandbox, interleaved so drift hits both), and
// episode steps per second with 50 concurrent episodes. Target: execAddedP50Ms ≤ 2.
import { mkdtempSync, rmSync } from 'node:fs';
import { createToken } from '../src/server/auth.ts';
import { startServer } from '../src/server/app.ts';
import { keepAliveClient } from './http.ts';
import { pct } from './stats.ts';

export interface BenchApiResult {
  execInProcessP50Ms: number; execHttpP50Ms: number; execAddedP50Ms: number; execAddedP99Ms: number;
  stepsPerSec: number; episodes: number; steps: number; iterations: number;
}

const r3 = (n: number) => Math.round(n * 1000) / 1000;

export async function benchApi(opts: { iterations?: number; episodes?: number; stepSeconds?: number } = {}): Promise<BenchApiResult> {
  const iterations = opts.iterations ?? 500;
  const nEp = opts.episodes ?? 50;
  const stateDir = mkdtempSync('/tmp/pt-bench-api-');
  const server = await startServer({ port: 0, stateDir, detect: false, gateway: false, rateLimit: { perSecond: 1e6, burst: 1e6 } });
  try {
    const token = createToken(stateDir, 'bench').token;
    const client = keepAliveClient(server.url, token, { maxSockets: 256 });
    const { call, post } = client;
    const sb = await post('/v1/sandboxes', {}) as { id: string };
    const live = server.core.manager.get(sb.id)!;
    const inproc: number[] = [];
    const overHttp: number[] = [];
    for (let i = 0; i < 20; i++) { await live.exec(['/bin/true']); await post(`/v1/sandboxes/${sb.id}/exec`, { command: ['/bin/true'] }); }
    for (let i = 0; i < iterations; i++) {
      let t = performance.now();
      await live.exec(['/bin/true']);
      inproc.push(performance.now() - t);
      t = performance.now();
      await post(`/v1/sandboxes/${sb.id}/exec`, { command: ['/bin/true'] });
      overHttp.push(performance.now() - t);
    }
    // Added latency per percentile: the distributions, not per-pair differences, are compared.
    const added50 = pct(overHttp, 50) - pct(inproc, 50);
    const added99 = pct(overHttp, 99) - pct(inproc, 99);

    const eps = await Promise.all(Array.from({ length: nEp }, () => post('/v1/episodes', { max_steps: 100_000 }) as Promise<{ episode_id: string }>));
    let steps = 0;
    const until = performance.now() + (opts.stepSeconds ?? 5) * 1000;
    const t0 = performance.now();
    await Promise.all(eps.map(async (e) => {
      while (performance.now() < until) {
        await post(`/v1/episodes/${e.episode_id}/step`, { action: { tool: 'bash', arguments: { command: 'true' } } });
        steps++;
      }
    }));
    const secs = (performance.now() - t0) / 1000;
    for (const e of eps) await call('DELETE', `/v1/episodes/${e.episode_id}`);
    client.close();
    return {
      execInProcessP50Ms: r3(pct(inproc, 50)), execHttpP50Ms: r3(pct(overHttp, 50)),
      execAddedP50Ms: r3(added50), execAddedP99Ms: r3(added99),
      stepsPerSec: Math.round(steps / secs), episodes: nEp, steps, iterations,
    };
  } finally {
    await server.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(JSON.stringify(await benchApi()) + '\n');
}
