// Shared-deployment store: PostgreSQL through pg, same interface and same test suite as SQLite.
// Durability comes from PostgreSQL's synchronous_commit (on by default; forced on for the
// writer's session so a server default of off cannot silently weaken acknowledgements). One
// writer per ledger: a session advisory lock, released by the server if the writer dies.
import pg from 'pg';
import { errorMessage, PraetorError } from '../../errors.ts';
import { RECORD_COLS, ROW_STRIDE, recordFromRaw, type ChainRow, type CheckpointRow, type ColumnMismatch, type Flat, type LedgerStore, type RawRecord, type RecordRow } from '../store.ts';

/** The ledger's tables in the current schema; the cluster chain writer (cluster-writer.ts) reuses it. */
export const POSTGRES_DDL = `
CREATE TABLE IF NOT EXISTS ledger_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_records (
  seq bigint PRIMARY KEY, ts double precision NOT NULL, kind text NOT NULL, sandbox_id text,
  episode_id text, step integer, tool_call_id text, model_call_id text, pid integer,
  body text NOT NULL, hash text NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_records_episode ON ledger_records (episode_id) WHERE episode_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ledger_records_sandbox ON ledger_records (sandbox_id, ts) WHERE episode_id IS NULL;
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
  n integer PRIMARY KEY, seq bigint NOT NULL, payload text NOT NULL, sig text NOT NULL);
`;

export const POSTGRES_OBJECTS = [
  'table:ledger_meta', 'index:ledger_meta_pkey', 'table:ledger_records', 'index:ledger_records_pkey',
  'index:ledger_records_episode', 'index:ledger_records_sandbox', 'table:ledger_checkpoints',
  'index:ledger_checkpoints_pkey',
].sort();

/** The writer lock of the ledger in the current schema: per schema, so each node chain has its own. */
export const LOCK_KEY = "hashtext('praetor-ledger:' || current_schema())";

function redact(url: string): string {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return 'postgres://…'; }
}

function unavailable(msg: string, cause: unknown): PraetorError {
  return new PraetorError('LEDGER_UNAVAILABLE', `${msg}: ${errorMessage(cause)}`, {
    hint: 'check that PostgreSQL is reachable, writable and not out of disk; praetor refuses to run sandboxes unrecorded', cause,
  });
}

export class PostgresStore implements LedgerStore {
  readonly backend = 'postgres' as const;
  readonly location: string;
  readonly #c: pg.Client;
  #broken: unknown = null;

  private constructor(client: pg.Client, url: string) {
    this.#c = client;
    this.location = redact(url);
    // A dropped connection must surface as a failed write, not as an unhandled 'error' event.
    client.on('error', (e) => { this.#broken = e; });
  }

  static async connect(url: string, opts: { writer: boolean }): Promise<PostgresStore> {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
    } catch (e) {
      await c.end().catch(() => undefined);
      throw unavailable(`cannot connect to ${redact(url)}`, e);
    }
    const s = new PostgresStore(c, url);
    if (opts.writer) {
      try {
        await c.query('SET synchronous_commit = on');
        const r = await c.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS ok`);
        if (!r.rows[0]?.ok) {
          throw new PraetorError('CONFLICT', `the ledger at ${s.location} is being written by another praetor`, {
            hint: 'one writer per ledger: stop the other writer or use another database/schema',
          });
        }
      } catch (e) {
        await c.end().catch(() => undefined);
        throw e instanceof PraetorError ? e : unavailable(`cannot prepare ${s.location} for writing`, e);
      }
    }
    return s;
  }

  async createSchema(): Promise<void> {
    await this.#q(POSTGRES_DDL);
  }

  async readMeta(): Promise<Record<string, string>> {
    if (!(await this.#hasTable('ledger_meta'))) return {};
    const out: Record<string, string> = {};
    for (const r of (await this.#q<{ key: string; value: string }>('SELECT key, value FROM ledger_meta')).rows) out[r.key] = r.value;
    return out;
  }

  async insertMeta(meta: Record<string, string>): Promise<void> {
    await this.#tx(async () => {
      for (const [k, v] of Object.entries(meta)) await this.#q('INSERT INTO ledger_meta (key, value) VALUES ($1, $2)', [k, v]);
    });
  }

  async tail(): Promise<{ seq: number; hash: string } | null> {
    const r = (await this.#q<{ seq: string; hash: string }>('SELECT seq, hash FROM ledger_records ORDER BY seq DESC LIMIT 1')).rows[0];
    return r ? { seq: Number(r.seq), hash: r.hash } : null;
  }

  async lastCheckpoint(): Promise<CheckpointRow | null> {
    const r = (await this.#q<{ n: number; seq: string; payload: string; sig: string }>('SELECT n, seq, payload, sig FROM ledger_checkpoints ORDER BY n DESC LIMIT 1')).rows[0];
    return r ? { ...r, seq: Number(r.seq) } : null;
  }

  async append(rows: Flat, checkpoint: CheckpointRow | null): Promise<void> {
    await this.#tx(async () => {
      if (rows.length > 0) {
        // One statement per batch: unnest turns parallel arrays (one per column) into rows.
        const cols: Flat[] = Array.from({ length: ROW_STRIDE }, () => []);
        for (let i = 0; i < rows.length; i++) cols[i % ROW_STRIDE]!.push(rows[i]!);
        await this.#q(`INSERT INTO ledger_records (${RECORD_COLS}) SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[])`, cols);
      }
      if (checkpoint) await this.#putCheckpoint(checkpoint);
    });
  }

  async prune(throughSeq: number, checkpoint: CheckpointRow): Promise<void> {
    await this.#tx(async () => {
      await this.#q('DELETE FROM ledger_records WHERE seq <= $1', [throughSeq]);
      await this.#putCheckpoint(checkpoint);
    });
  }

  async *records(batchSize: number): AsyncIterable<RecordRow[]> {
    if (!(await this.#hasTable('ledger_records'))) return;
    // Keyset pages rather than OFFSET: each page costs the same however deep the ledger is.
    let after = -1;
    for (;;) {
      const { rows } = await this.#q<RawRecord>(`SELECT ${RECORD_COLS} FROM ledger_records WHERE seq > $1 ORDER BY seq LIMIT $2`, [after, batchSize]);
      if (rows.length === 0) return;
      const out = rows.map(recordFromRaw);
      after = out[out.length - 1]!.seq;
      yield out;
    }
  }

  async *chain(batchSize: number): AsyncIterable<ChainRow[]> {
    if (!(await this.#hasTable('ledger_records'))) return;
    let after = -1;
    for (;;) {
      const { rows } = await this.#q<{ seq: string; body: string; hash: string }>('SELECT seq, body, hash FROM ledger_records WHERE seq > $1 ORDER BY seq LIMIT $2', [after, batchSize]);
      if (rows.length === 0) return;
      const out = rows.map((r): ChainRow => [Number(r.seq), r.body, r.hash]);
      after = out[out.length - 1]![0];
      yield out;
    }
  }

  async columnMismatches(limit: number): Promise<ColumnMismatch[]> {
    try {
      const { rows } = await this.#q<{ seq: string; col: string }>(`
        SELECT seq, col FROM (SELECT seq, CASE
          WHEN kind IS DISTINCT FROM j->>'kind' THEN 'kind'
          WHEN ts IS DISTINCT FROM (j->>'ts')::float8 THEN 'ts'
          WHEN sandbox_id IS DISTINCT FROM j->>'sandboxId' THEN 'sandbox_id'
          WHEN episode_id IS DISTINCT FROM j->>'episodeId' THEN 'episode_id'
          WHEN step IS DISTINCT FROM (j->>'step')::numeric THEN 'step'
          WHEN tool_call_id IS DISTINCT FROM j->>'toolCallId' THEN 'tool_call_id'
          WHEN model_call_id IS DISTINCT FROM j->>'modelCallId' THEN 'model_call_id'
          WHEN pid IS DISTINCT FROM (j->>'pid')::numeric THEN 'pid'
        END AS col FROM (SELECT *, body::jsonb AS j FROM ledger_records) r) m
        WHERE col IS NOT NULL ORDER BY seq LIMIT $1`, [limit]);
      return rows.map((r) => ({ seq: Number(r.seq), column: r.col }));
    } catch (e) {
      // A body that is not JSON (or a non-numeric step/pid) makes the cast fail for the table.
      return [{ seq: 0, column: `(a body or column that cannot be compared: ${errorMessage(e)})` }];
    }
  }

  async checkpoints(): Promise<CheckpointRow[]> {
    if (!(await this.#hasTable('ledger_checkpoints'))) return [];
    return (await this.#q<{ n: number; seq: string; payload: string; sig: string }>('SELECT n, seq, payload, sig FROM ledger_checkpoints ORDER BY n')).rows
      .map((r) => ({ ...r, seq: Number(r.seq) }));
  }

  async objects(): Promise<string[]> {
    // Tables and indexes named like the ledger's, plus any trigger or rule attached to them.
    const { rows } = await this.#q<{ o: string }>(`
      SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'i' THEN 'index' WHEN 'v' THEN 'view' ELSE 'rel' END || ':' || c.relname AS o
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relname LIKE 'ledger\\_%'
      UNION ALL
      SELECT 'trigger:' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relname LIKE 'ledger\\_%' AND NOT t.tgisinternal
      UNION ALL
      SELECT 'rule:' || r.rulename FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relname LIKE 'ledger\\_%' AND c.relkind = 'r'`);
    return rows.map((r) => r.o).sort();
  }

  async integrity(): Promise<string | null> {
    return null; // PostgreSQL checks its own pages; verify re-derives everything it relies on.
  }

  async episodeRecords(episodeId: string): Promise<RecordRow[]> {
    return (await this.#q<RawRecord>(`SELECT ${RECORD_COLS} FROM ledger_records WHERE episode_id = $1 ORDER BY seq`, [episodeId])).rows.map(recordFromRaw);
  }

  async sandboxRecords(sandboxIds: string[], fromTs: number, toTs: number): Promise<RecordRow[]> {
    return (await this.#q<RawRecord>(`SELECT ${RECORD_COLS} FROM ledger_records WHERE sandbox_id = ANY($1) AND ts >= $2 AND ts <= $3 AND episode_id IS NULL ORDER BY seq`, [sandboxIds, fromTs, toTs])).rows.map(recordFromRaw);
  }

  async episodes(): Promise<string[]> {
    return (await this.#q<{ e: string }>('SELECT DISTINCT episode_id AS e FROM ledger_records WHERE episode_id IS NOT NULL')).rows.map((r) => r.e);
  }

  async lastSeqBefore(ts: number): Promise<number> {
    return Number((await this.#q<{ s: string }>('SELECT coalesce(max(seq), 0) AS s FROM ledger_records WHERE ts < $1', [ts])).rows[0]!.s);
  }

  async close(): Promise<void> {
    await this.#c.end().catch(() => undefined);
  }

  async #hasTable(name: string): Promise<boolean> {
    return (await this.#q('SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1', [name])).rows.length > 0;
  }

  async #putCheckpoint(c: CheckpointRow): Promise<void> {
    await this.#q('INSERT INTO ledger_checkpoints (n, seq, payload, sig) VALUES ($1, $2, $3, $4)', [c.n, c.seq, c.payload, c.sig]);
  }

  async #q<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#broken) throw unavailable(`connection to ${this.location} lost`, this.#broken);
    try {
      return await this.#c.query<R>(sql, params);
    } catch (e) {
      throw unavailable(`ledger query failed on ${this.location}`, e);
    }
  }

  async #tx(fn: () => Promise<void>): Promise<void> {
    await this.#q('BEGIN');
    try {
      await fn();
      await this.#q('COMMIT');
    } catch (e) {
      await this.#c.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }
}
