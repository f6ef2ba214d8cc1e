// kill -9 of a node's ledger writer (node-ledger-writer.ts in a child process), and the count of
// acknowledged records the chain lost. Shared by the cluster ledger test and bench cluster-ledger.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { nodeChainSchema } from '../../src/audit/index.ts';

const CHILD = new URL('./node-ledger-writer.ts', import.meta.url).pathname;

/** Runs the writer until it has acknowledged at least `atLeast` records, then SIGKILLs it. */
export async function crashNodeWriter(o: { url: string; nodeId: string; stateDir: string; prefix: string; atLeast: number }): Promise<{ acked: number; ledgerId: string; killedBy: string | null }> {
  const child = spawn(process.execPath, [CHILD, o.url, o.nodeId, o.stateDir, o.prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
  let acked = 0;
  let ledgerId = '';
  let err = '';
  let out = '';
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const lines = out.split('\n');
        out = lines.pop()!;
        for (const l of lines) {
          const [what, v] = l.split(' ');
          if (what === 'open') ledgerId = v!;
          if (what === 'acked') acked = Math.max(acked, Number(v));
        }
        if (acked >= o.atLeast) { child.kill('SIGKILL'); resolve(); }
      });
      child.once('exit', (code, sig) => { if (sig !== 'SIGKILL') reject(new Error(`node writer exited early (${code ?? sig}): ${err}`)); else resolve(); });
    });
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
  return { acked, ledgerId, killedBy: child.signalCode };
}

/** Acknowledged records (ids <prefix>-0 .. <prefix>-(acked-1)) missing from the node's chain. */
export async function recordsLost(url: string, nodeId: string, prefix: string, acked: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(DISTINCT body::jsonb->>'id')::int AS n FROM ${nodeChainSchema(nodeId)}.ledger_records WHERE body::jsonb->>'id' = ANY($1)`,
      [Array.from({ length: acked }, (_, i) => `${prefix}-${i}`)]);
    return acked - rows[0]!.n;
  } finally {
    await c.end();
  }
}
