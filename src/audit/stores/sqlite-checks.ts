// The SQLite verifier's second thread: page-level integrity and the column-versus-body check
// run here, in C, on their own connection, while the main thread walks the hash chain.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../../errors.ts';

export const MISMATCH_SQL = `
SELECT seq, CASE
  WHEN NOT json_valid(body) THEN 'body (not JSON)'
  WHEN kind IS NOT body->>'$.kind' THEN 'kind'
  WHEN ts IS NOT CAST(body->>'$.ts' AS REAL) THEN 'ts'
  WHEN sandbox_id IS NOT body->>'$.sandboxId' THEN 'sandbox_id'
  WHEN episode_id IS NOT body->>'$.episodeId' THEN 'episode_id'
  WHEN step IS NOT body->>'$.step' THEN 'step'
  WHEN tool_call_id IS NOT body->>'$.toolCallId' THEN 'tool_call_id'
  WHEN model_call_id IS NOT body->>'$.modelCallId' THEN 'model_call_id'
  WHEN pid IS NOT body->>'$.pid' THEN 'pid'
END AS col FROM ledger_records WHERE col IS NOT NULL ORDER BY seq LIMIT ?`;

export function runChecks(path: string, limit: number): { integrity: string | null; mismatches: { seq: number; column: string }[] } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare('PRAGMA quick_check').all() as Record<string, string>[];
    const msgs = rows.map((r) => Object.values(r)[0]).filter((m) => m !== 'ok');
    const integrity = msgs.length === 0 ? null : msgs.slice(0, 3).join('; ');
    const mismatches = (db.prepare(MISMATCH_SQL).all(limit) as { seq: number; col: string }[]).map((r) => ({ seq: r.seq, column: r.col }));
    return { integrity, mismatches };
  } finally {
    db.close();
  }
}

if (parentPort && workerData?.sqliteChecks === true) {
  const d = workerData as { path: string; limit: number };
  try {
    parentPort.postMessage({ ok: true, ...runChecks(d.path, d.limit) });
  } catch (e) {
    parentPort.postMessage({ ok: false, error: errorMessage(e) });
  }
}
