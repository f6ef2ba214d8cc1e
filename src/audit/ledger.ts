// The ledger as its owner sees it: append() queues (it must never block the event bus),
// flush() resolves once everything appended so far is durable, and the first write failure
// turns the ledger unhealthy for good, calls onError, and makes further appends throw — the
// owner stops creating sandboxes rather than running them unrecorded (fail closed).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { isPraetorError, PraetorError } from '../errors.ts';
import type { PraetorEvent } from '../events/index.ts';
import { inProcessBackend, sqliteWorkerBackend, type Backend } from './backends.ts';
import { canonicalJson } from './canonical.ts';
import { auditDir, loadOrCreateSigningKey } from './keys.ts';
import { PENDING_STRIDE, POSTGRES_URL, pushPending, type Flat } from './store.ts';

export const LedgerOptionsSchema = z.object({
  path: z.string().min(1).optional().describe('SQLite ledger file (default <stateDir>/audit/ledger.db)'),
  url: z.string().regex(POSTGRES_URL, 'must start with postgres://').optional()
    .describe('PostgreSQL connection URL for shared deployments; wins over path'),
  stateDir: z.string().min(1).describe('state directory holding the signing key and the witness'),
  batchMs: z.number().positive().max(1000).default(5).describe('longest an event waits before its batch is committed'),
  batchSize: z.number().int().positive().max(100_000).default(2000).describe('events that trigger a commit without waiting for batchMs'),
  checkpointEvery: z.number().int().positive().default(10_000).describe('records between signed checkpoints'),
  checkpointMs: z.number().int().positive().default(1000).describe('longest a record waits for a signed checkpoint'),
  inProcess: z.boolean().default(false).describe('run the SQLite writer on the calling thread (tests, tools)'),
  onError: z.custom<(err: PraetorError) => void>((v) => typeof v === 'function').optional()
    .describe('called once when the ledger cannot write; the owner must stop creating sandboxes'),
}).strict();
export type LedgerOptions = z.input<typeof LedgerOptionsSchema>;

export function defaultLedgerPath(stateDir: string): string {
  return join(auditDir(stateDir), 'ledger.db');
}

export class Ledger {
  readonly ledgerId: string;
  readonly location: string;
  readonly #backend: Backend;
  readonly #batchMs: number;
  readonly #batchSize: number;
  readonly #onError: ((err: PraetorError) => void) | undefined;
  #buf: Flat = [];
  #timer: NodeJS.Timeout | null = null;
  #appended = 0;
  #acked = 0;
  #waiters: { target: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #error: PraetorError | null = null;
  #closed = false;

  constructor(backend: Backend, location: string, o: { batchMs: number; batchSize: number; onError?: ((err: PraetorError) => void) | undefined }) {
    this.#backend = backend;
    this.ledgerId = backend.ledgerId;
    this.location = location;
    this.#batchMs = o.batchMs;
    this.#batchSize = o.batchSize;
    this.#onError = o.onError;
    backend.hold(false);
  }

  /** False once a write has failed; the owner must then stop creating sandboxes. */
  get healthy(): boolean {
    return this.#error === null && !this.#closed;
  }
  get error(): PraetorError | null {
    return this.#error;
  }
  /** Records durably committed. */
  get acknowledged(): number {
    return this.#acked;
  }
  /** Appended but not yet durable: producers that can wait should when this grows large. */
  get backlog(): number {
    return this.#appended - this.#acked;
  }

  /** Queues one event. Serialises it now, so later mutation of the object cannot change the record. */
  append(e: PraetorEvent): void {
    if (this.#error) throw this.#error;
    if (this.#closed) throw new PraetorError('BAD_STATE', 'the ledger is closed', { hint: 'open a new ledger' });
    pushPending(this.#buf, e, canonicalJson(e));
    this.#appended++;
    if (this.#buf.length >= this.#batchSize * PENDING_STRIDE) this.#send();
    else this.#timer ??= setTimeout(() => this.#send(), this.#batchMs);
  }

  /** Resolves once every event appended before the call is durable; rejects if the ledger failed. */
  flush(): Promise<void> {
    this.#send();
    if (this.#error) return Promise.reject(this.#error);
    if (this.#acked >= this.#appended) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ target: this.#appended, resolve, reject }));
  }

  /** Deletes records through the newest checkpoint at or below seq; returns where the chain now starts. */
  async prune(throughSeq: number): Promise<number> {
    await this.flush();
    // Keep the process alive for the writer's answer (the idle writer thread is unref'd).
    this.#backend.hold(true);
    try {
      return await this.#backend.prune(throughSeq);
    } finally {
      this.#backend.hold(this.backlog > 0);
    }
  }

  /** Flushes, seals with a final checkpoint, releases the writer lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    let flushErr: unknown = null;
    try { await this.flush(); } catch (e) { flushErr = e; }
    this.#closed = true;
    await this.#backend.close();
    if (flushErr) throw flushErr;
  }

  #send(): void {
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = null; }
    if (this.#buf.length === 0 || this.#error) return;
    const items = this.#buf;
    this.#buf = [];
    this.#backend.hold(true);
    this.#backend.submit(items);
  }

  /** Called by the backend. */
  ack(acked: number): void {
    this.#acked = acked;
    if (acked >= this.#appended) this.#backend.hold(false);
    this.#waiters = this.#waiters.filter((w) => {
      if (w.target > acked) return true;
      w.resolve();
      return false;
    });
  }

  fail(err: unknown): void {
    if (this.#error) return;
    this.#error = isPraetorError(err) ? err : new PraetorError('LEDGER_UNAVAILABLE', `ledger write failed: ${String(err)}`, {
      hint: 'check the disk and the ledger file; praetor refuses to run sandboxes unrecorded', cause: err,
    });
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = null; }
    this.#buf = [];
    for (const w of this.#waiters) w.reject(this.#error);
    this.#waiters = [];
    this.#backend.hold(false);
    try { this.#onError?.(this.#error); } catch { /* the owner's handler must not hide the failure */ }
  }
}

/** Opens (creating on first use) a ledger; throws LEDGER_UNAVAILABLE when it cannot be written. */
export async function openLedger(options: LedgerOptions): Promise<Ledger> {
  const parsed = LedgerOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new PraetorError('BAD_ARGUMENT', `ledger option ${i.path.join('.') || '(root)'}: ${i.message}`, {
      hint: `valid options: ${Object.keys(LedgerOptionsSchema.shape).join(', ')}`, cause: parsed.error,
    });
  }
  const o = parsed.data;
  const key = loadOrCreateSigningKey(o.stateDir);
  const wopts = { privatePem: key.privatePem, keyId: key.keyId, stateDir: o.stateDir, checkpointEvery: o.checkpointEvery, checkpointMs: o.checkpointMs };
  let ledger: Ledger | null = null;
  // An error can arrive while the backend opens, before the Ledger exists: keep it for then.
  // An ack cannot matter then (nothing has been appended yet), so none is kept.
  const early: { err?: unknown } = {};
  const ev = {
    onAck: (n: number) => { ledger?.ack(n); },
    onError: (e: unknown) => { if (ledger) ledger.fail(e); else early.err = e; },
  };
  let backend: Backend;
  let location: string;
  if (o.url !== undefined) {
    const { PostgresStore } = await import('./stores/postgres.ts');
    const store = await PostgresStore.connect(o.url, { writer: true });
    location = store.location;
    backend = await inProcessBackend(store, wopts, ev);
  } else {
    const path = o.path ?? defaultLedgerPath(o.stateDir);
    location = path;
    try { mkdirSync(dirname(path), { recursive: true }); } catch (e) {
      throw new PraetorError('LEDGER_UNAVAILABLE', `cannot create the ledger directory ${dirname(path)}`, { hint: 'make it writable or choose another --ledger path', cause: e });
    }
    if (o.inProcess) {
      const { SqliteStore } = await import('./stores/sqlite.ts');
      const { acquireWriterLock } = await import('./lock.ts');
      const lock = acquireWriterLock(path);
      try {
        const b = await inProcessBackend(new SqliteStore(path, { readOnly: false }), wopts, ev);
        backend = { ...b, close: async () => { try { await b.close(); } finally { lock.release(); } } };
      } catch (e) { lock.release(); throw e; }
    } else {
      backend = await sqliteWorkerBackend(path, wopts, ev);
    }
  }
  ledger = new Ledger(backend, location, { batchMs: o.batchMs, batchSize: o.batchSize, onError: o.onError });
  if (early.err !== undefined) ledger.fail(early.err);
  return ledger;
}
