// `praetor bench soak`: 50 episodes stepping against a real server (sensors and rules on) for
// a fixed time (10 minutes by default, `--minutes N`), counting errors and sampling the
// server's memory. "Flat" means the heap's trend over the second half is under 1 MiB/min:
// a leak per step or per event would show as a steady climb there. Run by `npm run bench`,
// never in CI.
import { mkdtempSync, rmSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

// A full GC before each memory sample, so the trend is what is retained, not garbage not yet
// collected.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
import { createToken } from '../src/server/auth.ts';
import { startServer } from '../src/server/app.ts';
import { keepAliveClient, type KeepAliveClient } from './http.ts';

function slopePerMin(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const num = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const den = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60_000;
}

export async function benchSoak(o: { minutes?: number; episodes?: number; progress?: (m: string) => void } = {}): Promise<Record<string, unknown>> {
  const minutes = o.minutes ?? 10;
  const nEp = o.episodes ?? 50;
  const log = o.progress ?? (() => {});
  const stateDir = mkdtempSync('/tmp/pt-bench-soak-');
  const server = await startServer({ port: 0, stateDir, detect: true, gateway: false, rateLimit: { perSecond: 1e6, burst: 1e6 } });
  let client: KeepAliveClient | undefined;
  try {
    const token = createToken(stateDir, 'soak').token;
    client = keepAliveClient(server.url, token, { maxSockets: 128 });
    const { post } = client;
    const eps = await Promise.all(Array.from({ length: nEp }, () => post('/v1/episodes', { max_steps: 100_000 }) as Promise<{ episode_id: string }>));
    const started = performance.now();
    const until = started + minutes * 60_000;
    const mem: Array<[number, number]> = [];
    const rss: Array<[number, number]> = [];
    const timer = setInterval(() => {
      gc();
      const m = process.memoryUsage();
      mem.push([performance.now() - started, m.heapUsed / 2 ** 20]);
      rss.push([performance.now() - started, m.rss / 2 ** 20]);
      log(`soak: ${((performance.now() - started) / 60_000).toFixed(1)}/${minutes} min, heap ${(m.heapUsed / 2 ** 20).toFixed(0)} MiB`);
    }, 10_000);
    let steps = 0;
    let errors = 0;
    const cmds = ['true', 'echo hello > /tmp/x && cat /tmp/x', 'ls /workspace', 'python3 -c "print(sum(range(1000)))"'];
    await Promise.all(eps.map(async (e, i) => {
      while (performance.now() < until) {
        try { await post(`/v1/episodes/${e.episode_id}/step`, { action: { tool: 'bash', arguments: { command: cmds[(steps + i) % cmds.length] } } }); steps++; } catch { errors++; }
      }
    }));
    clearInterval(timer);
    const half = mem.filter(([t]) => t >= (minutes * 60_000) / 2);
    const heapSlope = slopePerMin(half);
    return {
      minutes, episodes: nEp, steps, errors, stepsPerSec: Math.round(steps / (minutes * 60)),
      heapStartMiB: Math.round(mem[0]?.[1] ?? 0), heapEndMiB: Math.round(mem.at(-1)?.[1] ?? 0),
      rssStartMiB: Math.round(rss[0]?.[1] ?? 0), rssEndMiB: Math.round(rss.at(-1)?.[1] ?? 0),
      heapSlopeMiBPerMin: Math.round(heapSlope * 100) / 100,
      flatMemory: Math.abs(heapSlope) < 1,
    };
  } finally {
    client?.close();
    await server.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}
