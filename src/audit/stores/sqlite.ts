// Embedded default store: node:sqlite in WAL mode with synchronous=FULL, so a commit returns
// only after the WAL is on disk (durable), and one transaction per batch makes that one fsync
// per batch instead of one per event. Readers (verify, trace, export) open the file read-only
// and never take the writer's lock.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PraetorError } from '../../errors.ts';
import { RECORD_COLS, ROW_STRIDE, recordFromRaw, type ChainRow, type CheckpointRow, type ColumnMismatch, type Flat, type LedgerStore, type RawRecord, type RecordRow } from '../store.ts';
import { runChecks } from './sqlite-checks.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_records (
  seq INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, sandbox_id TEXT,
  episode_id TEXT, step INTEGER, tool_call_id TEXT, model_call_id TEXT, pid INTEGER,
  body TEXT NOT NULL, hash TEXT NOT NULL);
-- Trace looks records up by episode, and by sandbox only for those without an episode (sensor
-- events); partial indexes keep every insert from paying for lookups nobody makes.
CREATE INDEX IF NOT EXISTS ledger_records_episode ON ledger_records (episode_id) WHERE episode_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ledger_records_sandbox ON ledger_records (sandbox_id, ts) WHERE episode_id IS NULL;
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
  n INTEGER PRIMARY KEY, seq INTEGER NOT NULL, payload TEXT NOT NULL, sig TEXT NOT NULL);
`;

/** Objects a genuine SQLite ledger holds; anything else (a trigger, a view) is suspect. */
export const SQLITE_OBJECTS = [
  'table:ledger_meta', 'index:sqlite_autoindex_ledger_meta_1', 'table:ledger_records',
  'index:ledger_records_episode', 'index:ledger_records_sandbox', 'table:ledger_checkpoints',
].sort();

const MANY = 50;

export class SqliteStore implements LedgerStore {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  readonly #db: DatabaseSync;
  #insert: StatementSync | undefined;
  #insertMany: StatementSync | undefined;
  #checks: Promise<{ integrity: string | null; mismatches: ColumnMismatch[] }> | undefined;
  #insertCp: StatementSync | undefined;

  constructor(path: string, opts: { readOnly: boolean }) {
    this.location = path;
    try {
      this.#db = openDb(path, opts.readOnly);
      this.#db.exec('PRAGMA busy_timeout = 5000');
      if (!opts.readOnly) {
        this.#db.exec('PRAGMA journal_mode = WAL');
        // FULL: a commit is on disk before it is acknowledged; NORMAL could lose acked batches.
        this.#db.exec('PRAGMA synchronous = FULL');
        this.#db.exec('PRAGMA wal_autocheckpoint = 10000');
      }
    } catch (e) {
      throw unavailable(`cannot open the ledger ${path}${opts.readOnly ? ' for reading' : ''}`, e);
    }
  }

  async createSchema(): Promise<void> {
    this.#db.exec(SCHEMA);
  }

  async readMeta(): Promise<Record<string, string>> {
    if (!this.#hasTable('ledger_meta')) return {};
    const out: Record<string, string> = {};
    for (const r of this.#db.prepare('SELECT key, value FROM ledger_meta').all() as { key: string; value: string }[]) out[r.key] = r.value;
    return out;
  }

  async insertMeta(meta: Record<string, string>): Promise<void> {
    const st = this.#db.prepare('INSERT INTO ledger_meta (key, value) VALUES (?, ?)');
    this.#tx(() => { for (const [k, v] of Object.entries(meta)) st.run(k, v); });
  }

  async tail(): Promise<{ seq: number; hash: string } | null> {
    const r = this.#db.prepare('SELECT seq, hash FROM ledger_records ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    return r ?? null;
  }

  async lastCheckpoint(): Promise<CheckpointRow | null> {
    const r = this.#db.prepare('SELECT n, seq, payload, sig FROM ledger_checkpoints ORDER BY n DESC LIMIT 1').get() as CheckpointRow | undefined;
    return r ? { ...r } : null;
  }

  async append(rows: Flat, checkpoint: CheckpointRow | null): Promise<void> {
    const one = `(${Array(ROW_STRIDE).fill('?').join(',')})`;
    this.#insert ??= this.#db.prepare(`INSERT INTO ledger_records (${RECORD_COLS}) VALUES ${one}`);
    // Multi-row statements: per-statement overhead, not SQLite, dominates single-row inserts.
    this.#insertMany ??= this.#db.prepare(`INSERT INTO ledger_records (${RECORD_COLS}) VALUES ${Array(MANY).fill(one).join(',')}`);
    const ins = this.#insert;
    const many = this.#insertMany;
    const chunk = MANY * ROW_STRIDE;
    this.#tx(() => {
      let i = 0;
      for (; i + chunk <= rows.length; i += chunk) many.run(...rows.slice(i, i + chunk));
      for (; i < rows.length; i += ROW_STRIDE) ins.run(...rows.slice(i, i + ROW_STRIDE));
      if (checkpoint) this.#putCheckpoint(checkpoint);
    });
  }

  async prune(throughSeq: number, checkpoint: CheckpointRow): Promise<void> {
    this.#tx(() => {
      this.#db.prepare('DELETE FROM ledger_records WHERE seq <= ?').run(throughSeq);
      this.#putCheckpoint(checkpoint);
    });
  }

  async *records(batchSize: number): AsyncIterable<RecordRow[]> {
    if (!this.#hasTable('ledger_records')) return;
    let batch: RecordRow[] = [];
    for (const r of this.#db.prepare(`SELECT ${RECORD_COLS} FROM ledger_records ORDER BY seq`).iterate() as Iterable<RawRecord>) {
      batch.push(recordFromRaw(r));
      if (batch.length >= batchSize) { yield batch; batch = []; }
    }
    if (batch.length > 0) yield batch;
  }

  async checkpoints(): Promise<CheckpointRow[]> {
    if (!this.#hasTable('ledger_checkpoints')) return [];
    return (this.#db.prepare('SELECT n, seq, payload, sig FROM ledger_checkpoints ORDER BY n').all() as CheckpointRow[]).map((r) => ({ ...r }));
  }

  async objects(): Promise<string[]> {
    return (this.#db.prepare('SELECT type, name FROM sqlite_master').all() as { type: string; name: string }[])
      .map((o) => `${o.type}:${o.name}`).sort();
  }

  async *chain(batchSize: number): AsyncIterable<ChainRow[]> {
    if (!this.#hasTable('ledger_records')) return;
    const st = this.#db.prepare('SELECT seq, body, hash FROM ledger_records ORDER BY seq');
    st.setReturnArrays(true);
    let batch: ChainRow[] = [];
    for (const r of st.iterate() as Iterable<ChainRow>) {
      batch.push(r);
      if (batch.length >= batchSize) { yield batch; batch = []; }
    }
    if (batch.length > 0) yield batch;
  }

  async integrity(): Promise<string | null> {
    // quick_check: page and record structure without the index cross-check's sorting; the
    // indexed columns themselves are compared with the hashed body by columnMismatches.
    return (await this.#offThreadChecks()).integrity;
  }

  async columnMismatches(limit: number): Promise<ColumnMismatch[]> {
    return (await this.#offThreadChecks(limit)).mismatches;
  }

  /** Both checks in one worker, started by whichever is asked first. */
  #offThreadChecks(limit = 20): Promise<{ integrity: string | null; mismatches: ColumnMismatch[] }> {
    if (this.location === ':memory:') return Promise.resolve(runChecks(this.location, limit));
    this.#checks ??= new Promise((resolve, reject) => {
      const w = new Worker(new URL('./sqlite-checks.ts', import.meta.url), { workerData: { sqliteChecks: true, path: this.location, limit } });
      w.once('message', (m: { ok: boolean; error?: string; integrity: string | null; mismatches: ColumnMismatch[] }) => {
        if (m.ok) resolve(m); else resolve({ integrity: `check failed: ${m.error}`, mismatches: [] });
      });
      w.once('error', reject);
      w.once('exit', () => resolve({ integrity: 'check worker exited without an answer', mismatches: [] }));
    });
    return this.#checks;
  }

  async episodeRecords(episodeId: string): Promise<RecordRow[]> {
    return (this.#db.prepare(`SELECT ${RECORD_COLS} FROM ledger_records WHERE episode_id = ? ORDER BY seq`).all(episodeId) as RawRecord[]).map(recordFromRaw);
  }

  async sandboxRecords(sandboxIds: string[], fromTs: number, toTs: number): Promise<RecordRow[]> {
    const st = this.#db.prepare(`SELECT ${RECORD_COLS} FROM ledger_records WHERE sandbox_id = ? AND ts >= ? AND ts <= ? AND episode_id IS NULL ORDER BY seq`);
    return sandboxIds.flatMap((s) => (st.all(s, fromTs, toTs) as RawRecord[]).map(recordFromRaw)).sort((a, b) => a.seq - b.seq);
  }

  async episodes(): Promise<string[]> {
    return (this.#db.prepare('SELECT DISTINCT episode_id AS e FROM ledger_records WHERE episode_id IS NOT NULL').all() as { e: string }[]).map((r) => r.e);
  }

  async lastSeqBefore(ts: number): Promise<number> {
    return (this.#db.prepare('SELECT coalesce(max(seq), 0) AS s FROM ledger_records WHERE ts < ?').get(ts) as { s: number }).s;
  }

  async close(): Promise<void> {
    if (!this.#db.isOpen) return;
    // Fold the WAL into the main file so the ledger is one self-contained file at rest.
    try { this.#db.exec('PRAGMA wal_checkpoint(TRUNCATE)'); } catch { /* read-only or busy: harmless */ }
    // At rest, a plain rollback-journal file: copyable and readable on read-only media without
    // its -wal/-shm companions. The next writer switches WAL back on.
    if (this.#insert !== undefined || this.#insertCp !== undefined) {
      try { this.#db.exec('PRAGMA journal_mode = DELETE'); } catch { /* a reader holds it open: stays WAL */ }
    }
    this.#db.close();
  }

  #putCheckpoint(c: CheckpointRow): void {
    this.#insertCp ??= this.#db.prepare('INSERT INTO ledger_checkpoints (n, seq, payload, sig) VALUES (?, ?, ?, ?)');
    this.#insertCp.run(c.n, c.seq, c.payload, c.sig);
  }

  #hasTable(name: string): boolean {
    return this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  #tx(fn: () => void): void {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      throw unavailable(`cannot write the ledger ${this.location}`, e);
    }
    try {
      fn();
      this.#db.exec('COMMIT');
    } catch (e) {
      try { this.#db.exec('ROLLBACK'); } catch { /* already rolled back by SQLite */ }
      throw unavailable(`cannot write the ledger ${this.location}`, e);
    }
  }
}

function openDb(path: string, readOnly: boolean): DatabaseSync {
  try {
    return new DatabaseSync(path, { readOnly, open: true });
  } catch (e) {
    if (!readOnly) throw e;
    // A ledger on read-only media (an evidence copy, a ro mount) cannot get the WAL's shared
    // memory file; nothing can change it there, so reading it as immutable is exact.
    const u = pathToFileURL(path);
    u.searchParams.set('immutable', '1');
    return new DatabaseSync(u, { readOnly: true, open: true });
  }
}

function unavailable(msg: string, cause: unknown): PraetorError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new PraetorError('LEDGER_UNAVAILABLE', `${msg}${detail}`, {
    hint: 'free disk space or make the ledger file and its directory writable; praetor refuses to run sandboxes unrecorded',
    cause,
  });
}
