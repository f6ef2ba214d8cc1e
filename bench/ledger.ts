// `praetor bench ledger --json`: durable append throughput on the embedded SQLite ledger (the
// real path: canonical JSON on the caller's thread, batched transactions with synchronous=FULL
// on the writer thread, signed checkpoints) and full verification speed over what was written.
// Targets: appendPerSec ≥ 50,000; verify 1,000,000 events in ≤ 10 s.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLedger, verifyLedger } from '../src/audit/index.ts';
import type { PraetorEvent } from '../src/events/schema.ts';
import { eventStream } from '../test/audit/events.ts';
import { pct } from './stats.ts';

export async function benchLedger(opts: { events?: number } = {}): Promise<Record<string, number>> {
  const n = opts.events ?? 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'praetor-bench-ledger-'));
  try {
    // A pool of realistic events (the ROME-shaped episode), given fresh ids as they are sent.
    const pool = [...eventStream(Math.min(n, 5800))];
    const ledger = await openLedger({ stateDir: dir });

    // Durable commit latency of a lone event (what a caller waiting on flush() sees).
    const lat: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      ledger.append({ ...pool[i % pool.length]!, id: `lat-${i}` } as PraetorEvent);
      await ledger.flush();
      lat.push(performance.now() - t);
    }

    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      ledger.append({ ...pool[i % pool.length]!, id: `ev-${i}` } as PraetorEvent);
      // Producers yield like a real event loop does; bounded backlog, as a well-behaved owner keeps.
      if ((i & 1023) === 1023) {
        await new Promise<void>((r) => setImmediate(r));
        if (ledger.backlog > 200_000) await ledger.flush();
      }
    }
    await ledger.flush();
    const appendMs = performance.now() - t0;
    await ledger.close();
    const bytes = statSync(join(dir, 'audit', 'ledger.db')).size;

    const t1 = performance.now();
    const r = await verifyLedger({ stateDir: dir });
    const verifyMs = performance.now() - t1;
    if (!r.ok) throw new Error(`bench ledger failed to verify: ${JSON.stringify(r.problems[0])}`);
    const total = n + lat.length;
    return {
      events: total,
      appendPerSec: Math.round(n / (appendMs / 1000)),
      appendMs: Math.round(appendMs),
      commitLatencyMsP50: pct(lat, 50, 2),
      commitLatencyMsP99: pct(lat, 99, 2),
      verifyPerSec: Math.round(r.records / (verifyMs / 1000)),
      verifyMs: Math.round(verifyMs),
      verifyMsPer1M: Math.round(verifyMs * (1_000_000 / r.records)),
      checkpoints: r.checkpoints,
      dbBytes: bytes,
      bytesPerEvent: Math.round(bytes / total),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const i = process.argv.indexOf('--events');
  const events = i > 0 ? Number(process.argv[i + 1]) : undefined;
  process.stdout.write(JSON.stringify(await benchLedger(events === undefined ? {} : { events })) + '\n');
}
