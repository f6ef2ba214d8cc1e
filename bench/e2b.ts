// `praetor bench e2b --json`: create + first command through the official `e2b` SDK against
// Praetor's E2B API, against the same through Praetor's own TypeScript SDK (src/sdk), same
// server, interleaved so drift hits both. Each round creates a sandbox, runs `echo hi` and
// destroys it (the destroy is not timed). Target: e2bCreateFirstCommandP50Ms ≤ 1.5 × ownSdk.
// The E2B SDK runs its commands as `/bin/bash -l -c` (a login shell), Praetor's SDK as /bin/sh -c:
// that difference is part of what an E2B user pays, so it stays in the measurement.
import { mkdtempSync, rmSync } from 'node:fs';
import { createToken } from '../src/server/auth.ts';
import { startServer } from '../src/server/app.ts';
import { PraetorClient } from '../src/sdk/index.ts';
import { pct } from './stats.ts';

export interface BenchE2bResult {
  rounds: number;
  e2bCreateP50Ms: number; e2bFirstCommandP50Ms: number; e2bCreateFirstCommandP50Ms: number; e2bCreateFirstCommandP90Ms: number;
  ownSdkCreateP50Ms: number; ownSdkFirstCommandP50Ms: number; ownSdkCreateFirstCommandP50Ms: number; ownSdkCreateFirstCommandP90Ms: number;
  ratioP50: number; target: number; meetsTarget: boolean;
  /** the slowest answer to an unsupported call (pause) through the SDK; target ≤ 1000 ms. */
  unsupportedAnswerMaxMs: number;
  /** the slowest answer to ROCK's unsupported calls (archive, get_token); target ≤ 1000 ms. */
  rockUnsupportedAnswerMaxMs: number;
}

const r2 = (n: number) => Math.round(n * 100) / 100;

export async function benchE2b(opts: { runs?: number; progress?: (m: string) => void } = {}): Promise<BenchE2bResult> {
  const rounds = opts.runs ?? 20;
  const stateDir = mkdtempSync('/tmp/pt-bench-e2b-');
  const server = await startServer({ port: 0, stateDir, detect: false, gateway: false, rateLimit: { perSecond: 1e6, burst: 1e6 }, e2b: { port: 0 } });
  try {
    const token = createToken(stateDir, 'bench').token;
    const { Sandbox } = await import('e2b');
    const e2bOpts = { apiUrl: server.e2b!.url, sandboxUrl: server.e2b!.url, apiKey: token };
    const own = new PraetorClient({ url: server.url, token });
    const m = { e2bCreate: [] as number[], e2bCmd: [] as number[], e2bBoth: [] as number[], ownCreate: [] as number[], ownCmd: [] as number[], ownBoth: [] as number[] };
    const e2bRound = async (record: boolean) => {
      const t0 = performance.now();
      const sb = await Sandbox.create(e2bOpts);
      const t1 = performance.now();
      const r = await sb.commands.run('echo hi');
      const t2 = performance.now();
      if (r.stdout !== 'hi\n') throw new Error(`e2b: unexpected output ${JSON.stringify(r.stdout)}`);
      await sb.kill();
      if (record) { m.e2bCreate.push(t1 - t0); m.e2bCmd.push(t2 - t1); m.e2bBoth.push(t2 - t0); }
    };
    const ownRound = async (record: boolean) => {
      const t0 = performance.now();
      const sb = await own.createSandbox({});
      const t1 = performance.now();
      const r = await own.exec(sb.id, 'echo hi');
      const t2 = performance.now();
      if (r.stdout !== 'hi\n') throw new Error(`own SDK: unexpected output ${JSON.stringify(r.stdout)}`);
      await own.deleteSandbox(sb.id);
      if (record) { m.ownCreate.push(t1 - t0); m.ownCmd.push(t2 - t1); m.ownBoth.push(t2 - t0); }
    };
    for (let i = 0; i < 2; i++) { await e2bRound(false); await ownRound(false); } // warm both paths
    for (let i = 0; i < rounds; i++) {
      // Alternate which goes first, so a slow moment is shared fairly.
      if (i % 2 === 0) { await e2bRound(true); await ownRound(true); } else { await ownRound(true); await e2bRound(true); }
      opts.progress?.(`e2b bench: round ${i + 1}/${rounds}`);
    }
    // Unsupported calls answer at once in E2B's error shape (never a hang): time the SDK's pause.
    const probe = await Sandbox.create(e2bOpts);
    const unsupported: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const err = await probe.pause().then(() => undefined, (e: unknown) => e as Error);
      unsupported.push(performance.now() - t0);
      if (!err || !/not supported/.test(err.message)) throw new Error(`pause did not answer "not supported": ${String(err)}`);
    }
    await probe.kill();
    // ROCK's unsupported calls (archive, OSS token) answer in ROCK's envelope just as fast.
    const rockUnsupported: number[] = [];
    const R = `${server.url}/apis/envs/sandbox/v1`;
    const rockHeaders = { 'X-API-Key': token, 'content-type': 'application/json' };
    const started = await (await fetch(`${R}/start`, { method: 'POST', headers: rockHeaders, body: JSON.stringify({ image: 'host', memory: '512m', cpus: 1 }) })).json() as { result: { sandbox_id: string } };
    for (let i = 0; i < 20; i++) {
      for (const [method, url] of [['POST', `${R}/sandboxes/${started.result.sandbox_id}/archive`], ['GET', `${R}/get_token?account=primary`]] as const) {
        const t0 = performance.now();
        const res = await fetch(url, { method, headers: rockHeaders, ...(method === 'POST' ? { body: '{}' } : {}) });
        const body = await res.json() as { status: string; error: string };
        rockUnsupported.push(performance.now() - t0);
        if (res.status !== 200 || body.status !== 'Failed' || !/not supported/.test(body.error)) throw new Error(`ROCK ${url} did not answer Failed/not supported: ${JSON.stringify(body)}`);
      }
    }
    await fetch(`${R}/delete`, { method: 'POST', headers: rockHeaders, body: JSON.stringify({ sandbox_id: started.result.sandbox_id }) });
    const e2b50 = pct(m.e2bBoth, 50); const own50 = pct(m.ownBoth, 50);
    return {
      rounds,
      e2bCreateP50Ms: r2(pct(m.e2bCreate, 50)), e2bFirstCommandP50Ms: r2(pct(m.e2bCmd, 50)), e2bCreateFirstCommandP50Ms: r2(e2b50), e2bCreateFirstCommandP90Ms: r2(pct(m.e2bBoth, 90)),
      ownSdkCreateP50Ms: r2(pct(m.ownCreate, 50)), ownSdkFirstCommandP50Ms: r2(pct(m.ownCmd, 50)), ownSdkCreateFirstCommandP50Ms: r2(own50), ownSdkCreateFirstCommandP90Ms: r2(pct(m.ownBoth, 90)),
      ratioP50: r2(e2b50 / own50), target: 1.5, meetsTarget: e2b50 <= 1.5 * own50,
      unsupportedAnswerMaxMs: r2(Math.max(...unsupported)),
      rockUnsupportedAnswerMaxMs: r2(Math.max(...rockUnsupported)),
    };
  } finally {
    await server.close();
    await server.core.manager.gc().catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
  }
}
