// One interface, two backends (SQLite embedded, PostgreSQL shared), one test suite. The store
// only moves rows; the chain, the signatures and every security decision live above it so a
// backend cannot weaken them.
import type { PraetorEvent } from '../events/index.ts';

/** A stored record: the canonical event plus the envelope ids copied out for trace queries. */
export type RecordRow = {
  seq: number;
  ts: number;
  kind: string;
  sandboxId: string | null;
  episodeId: string | null;
  step: number | null;
  toolCallId: string | null;
  modelCallId: string | null;
  pid: number | null;
  body: string;
  hash: string;
};

/** What the chain walk needs of a record: [seq, body, hash]. Arrays, not objects: 1M rows. */
export type ChainRow = [seq: number, body: string, hash: string];
/** A record whose indexed column disagrees with its hashed body. */
export type ColumnMismatch = { seq: number; column: string };

export type CheckpointRow = { n: number; seq: number; payload: string; sig: string };

/**
 * Records on their way to the store travel as flat arrays, not objects: copying a batch to the
 * writer thread and binding it to SQL is several times cheaper that way at 50k events/s.
 * Pending (before hashing), stride 9: body, ts, kind, sandboxId, episodeId, step, toolCallId,
 * modelCallId, pid. Rows (hashed), stride 11, in column order: seq, ts, kind, sandbox_id,
 * episode_id, step, tool_call_id, model_call_id, pid, body, hash.
 */
export type Flat = (string | number | null)[];

/** A `--db` value naming the shared PostgreSQL ledger; anything else is a SQLite file path. */
export const POSTGRES_URL = /^postgres(ql)?:\/\//;

/** The ledger a `--db` value names, as openLedger takes it. */
export function ledgerAt(db: string): { url: string } | { path: string } {
  return POSTGRES_URL.test(db) ? { url: db } : { path: db };
}

/** The record columns, in the order of ROW_STRIDE rows. */
export const RECORD_COLS = 'seq, ts, kind, sandbox_id, episode_id, step, tool_call_id, model_call_id, pid, body, hash';

/** A record as a backend returns it (PostgreSQL hands bigint seq back as a string). */
export type RawRecord = {
  seq: number | string; ts: number; kind: string; sandbox_id: string | null; episode_id: string | null;
  step: number | null; tool_call_id: string | null; model_call_id: string | null; pid: number | null;
  body: string; hash: string;
};

export function recordFromRaw(r: RawRecord): RecordRow {
  return {
    seq: Number(r.seq), ts: r.ts, kind: r.kind, sandboxId: r.sandbox_id, episodeId: r.episode_id,
    step: r.step, toolCallId: r.tool_call_id, modelCallId: r.model_call_id, pid: r.pid, body: r.body, hash: r.hash,
  };
}
export const PENDING_STRIDE = 9;
export const ROW_STRIDE = 11;

export const META_KEYS = ['format', 'ledger_id', 'created_ts', 'key_id'] as const;

export interface LedgerStore {
  readonly backend: 'sqlite' | 'postgres';
  /** Human-readable location (file path, or URL without password). */
  readonly location: string;
  /** Creates the tables when missing (writers only). */
  createSchema(): Promise<void>;
  readMeta(): Promise<Record<string, string>>;
  insertMeta(meta: Record<string, string>): Promise<void>;
  tail(): Promise<{ seq: number; hash: string } | null>;
  lastCheckpoint(): Promise<CheckpointRow | null>;
  /** One durable transaction: rows and, when given, the checkpoint sealing them. */
  append(rows: Flat, checkpoint: CheckpointRow | null): Promise<void>;
  /** One transaction: deletes records with seq <= throughSeq and adds the prune checkpoint. */
  prune(throughSeq: number, checkpoint: CheckpointRow): Promise<void>;
  /** Full rows in seq order, in batches (export). */
  records(batchSize: number): AsyncIterable<RecordRow[]>;
  /** [seq, body, hash] in seq order, in batches: the verifier's hot loop. */
  chain(batchSize: number): AsyncIterable<ChainRow[]>;
  /**
   * Records whose indexed columns differ from their body, first `limit` by seq. Done by the
   * database (JSON in C, and off the verifier's thread for SQLite) because parsing a million
   * bodies in JS costs more than the whole hash walk.
   */
  columnMismatches(limit: number): Promise<ColumnMismatch[]>;
  checkpoints(): Promise<CheckpointRow[]>;
  /** Every schema object (`type:name`) the backend holds for the ledger, for the unknown-object check. */
  objects(): Promise<string[]>;
  /** Backend's own structural check (SQLite integrity_check); null when fine or not applicable. */
  integrity(): Promise<string | null>;
  /** Records of an episode, plus episode-less records of the given sandboxes within [fromTs, toTs]. */
  episodeRecords(episodeId: string): Promise<RecordRow[]>;
  sandboxRecords(sandboxIds: string[], fromTs: number, toTs: number): Promise<RecordRow[]>;
  episodes(): Promise<string[]>;
  /** Highest seq whose event ts is before `ts` (ns), 0 if none: time-based retention. */
  lastSeqBefore(ts: number): Promise<number>;
  close(): Promise<void>;
}

/** Appends an event's body and envelope ids (the indexed columns) to a pending batch. */
export function pushPending(out: Flat, e: PraetorEvent, body: string): void {
  out.push(body, e.ts, e.kind, e.sandboxId ?? null, e.episodeId ?? null, e.step ?? null,
    e.toolCallId ?? null, e.modelCallId ?? null, e.pid ?? null);
}
