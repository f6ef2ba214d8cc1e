// The chain writer: the only code that assigns sequence numbers, computes hashes and signs
// checkpoints. It runs next to its store (in the SQLite worker, or in-process for PostgreSQL)
// and keeps the chain's head in memory, advancing it only after the store has committed, so a
// failed or interrupted batch leaves the chain exactly where the last durable commit put it.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { PraetorError } from '../errors.ts';
import { newId } from '../util/index.ts';
import { checkpointLinkHash, genesisHash, LEDGER_FORMAT, statementBytes, type CheckpointStatement } from './chain.ts';
import { recordHash } from './chain.ts';
import { signStatement } from './keys.ts';
import { PENDING_STRIDE, ROW_STRIDE, type CheckpointRow, type Flat, type LedgerStore } from './store.ts';
import { writeWitness } from './witness.ts';

export type WriterOptions = {
  privatePem: string;
  keyId: string;
  stateDir: string;
  /** Seal with a signed checkpoint after this many records… */
  checkpointEvery: number;
  /** …or this many milliseconds, whichever comes first. */
  checkpointMs: number;
};

export class ChainWriter {
  readonly ledgerId: string;
  readonly #store: LedgerStore;
  readonly #key: KeyObject;
  readonly #opts: WriterOptions;
  #seq: number;
  #hash: string;
  #cp: CheckpointStatement;
  #cpLink: string;
  #cpAt = Date.now();

  private constructor(store: LedgerStore, opts: WriterOptions, key: KeyObject, ledgerId: string, head: { seq: number; hash: string }, cp: Signed) {
    this.#store = store;
    this.#opts = opts;
    this.#key = key;
    this.ledgerId = ledgerId;
    this.#seq = head.seq;
    this.#hash = head.hash;
    this.#cp = cp.stmt;
    this.#cpLink = checkpointLinkHash(cp.row.payload, cp.row.sig);
  }

  /** Opens (creating when new) and seals whatever a crash left after the last checkpoint. */
  static async open(store: LedgerStore, opts: WriterOptions): Promise<ChainWriter> {
    await store.createSchema();
    let meta = await store.readMeta();
    const created = Object.keys(meta).length === 0;
    if (created) {
      const ledgerId = newId('lg', 8);
      meta = { format: LEDGER_FORMAT, ledger_id: ledgerId, created_ts: String(Date.now()), key_id: opts.keyId };
      await store.insertMeta(meta);
    }
    if (meta.format !== LEDGER_FORMAT || meta.ledger_id === undefined) {
      throw new PraetorError('LEDGER_UNAVAILABLE', `${store.location} is not a ${LEDGER_FORMAT} ledger (format ${meta.format ?? 'missing'})`, {
        hint: 'point --ledger at a praetor ledger or at a new path',
      });
    }
    if (meta.key_id !== opts.keyId) {
      // Appending under another key would produce a ledger no single key verifies.
      throw new PraetorError('LEDGER_UNAVAILABLE', `${store.location} was signed by key ${meta.key_id}, this state directory holds key ${opts.keyId}`, {
        hint: 'use the state directory (--state) that created this ledger, or start a new ledger',
      });
    }
    const ledgerId = meta.ledger_id;
    const key = createPrivateKey(opts.privatePem);
    const stored = await store.lastCheckpoint();
    let last: Signed;
    if (stored !== null) last = { row: stored, stmt: JSON.parse(stored.payload) as CheckpointStatement };
    else {
      const genesis = genesisHash(ledgerId);
      const stmt: CheckpointStatement = {
        v: 1, ledger: ledgerId, n: 1, seq: 0, hash: genesis, ts: Date.now(), keyId: opts.keyId,
        prev: '', prunedThrough: 0, prunedHash: genesis, reason: 'open',
      };
      last = signCheckpoint(stmt, key);
      await store.append([], last.row);
    }
    const head = (await store.tail()) ?? { seq: last.stmt.prunedThrough, hash: last.stmt.prunedHash };
    const w = new ChainWriter(store, opts, key, ledgerId, head, last);
    // Every open leaves a signed mark: it seals a crashed writer's tail, proves the ledger is
    // writable now (read-only or full disk fails here, before any sandbox starts), and records
    // the restart itself.
    if (!created) await w.seal('open');
    else writeWitness(opts.stateDir, ledgerId, last.row);
    return w;
  }

  get head(): { seq: number; hash: string } {
    return { seq: this.#seq, hash: this.#hash };
  }

  /** Hashes and commits one batch (one transaction), adding a checkpoint when one is due. */
  async write(items: Flat): Promise<void> {
    let seq = this.#seq;
    let prev = this.#hash;
    const n = items.length / PENDING_STRIDE;
    const rows: Flat = new Array(n * ROW_STRIDE);
    for (let i = 0, p = 0, o = 0; i < n; i++, p += PENDING_STRIDE, o += ROW_STRIDE) {
      const body = items[p] as string;
      seq++;
      prev = recordHash(prev, seq, body);
      rows[o] = seq;
      for (let k = 1; k < PENDING_STRIDE; k++) rows[o + k] = items[p + k]!;
      rows[o + 9] = body;
      rows[o + 10] = prev;
    }
    const due = seq - this.#cp.seq >= this.#opts.checkpointEvery || Date.now() - this.#cpAt >= this.#opts.checkpointMs;
    const cp = due && seq > this.#cp.seq ? this.#next('interval', seq, prev, this.#cp.prunedThrough, this.#cp.prunedHash) : null;
    await this.#store.append(rows, cp?.row ?? null);
    this.#seq = seq;
    this.#hash = prev;
    if (cp) this.#advance(cp);
  }

  /** Seals records not yet covered by a checkpoint (idle timer, open, close). */
  async seal(reason: CheckpointStatement['reason']): Promise<void> {
    if (reason === 'interval' && this.#seq === this.#cp.seq) { this.#cpAt = Date.now(); return; }
    const cp = this.#next(reason, this.#seq, this.#hash, this.#cp.prunedThrough, this.#cp.prunedHash);
    await this.#store.append([], cp.row);
    this.#advance(cp);
  }

  /** Whether records wait for a checkpoint longer than checkpointMs. */
  get sealDue(): boolean {
    return this.#seq > this.#cp.seq && Date.now() - this.#cpAt >= this.#opts.checkpointMs;
  }

  /**
   * Retention: deletes records through the newest checkpoint at or below `throughSeq`. The prune
   * is itself a signed checkpoint naming where the chain now starts and the hash it continues
   * from, so verify can tell an authorised prune from records cut off the front.
   */
  async prune(throughSeq: number): Promise<number> {
    const anchors = (await this.#store.checkpoints())
      .map((c) => JSON.parse(c.payload) as CheckpointStatement)
      .filter((s) => s.seq <= throughSeq && s.seq > this.#cp.prunedThrough);
    const anchor = anchors.sort((a, b) => b.seq - a.seq)[0];
    if (anchor === undefined) return 0;
    const cp = this.#next('prune', this.#seq, this.#hash, anchor.seq, anchor.hash);
    await this.#store.prune(anchor.seq, cp.row);
    this.#advance(cp);
    return anchor.seq;
  }

  #next(reason: CheckpointStatement['reason'], seq: number, hash: string, prunedThrough: number, prunedHash: string): Signed {
    return signCheckpoint({
      v: 1, ledger: this.ledgerId, n: this.#cp.n + 1, seq, hash, ts: Date.now(), keyId: this.#opts.keyId,
      prev: this.#cpLink, prunedThrough, prunedHash, reason,
    }, this.#key);
  }

  #advance(cp: Signed): void {
    this.#cp = cp.stmt;
    this.#cpLink = checkpointLinkHash(cp.row.payload, cp.row.sig);
    this.#cpAt = Date.now();
    try {
      writeWitness(this.#opts.stateDir, this.ledgerId, cp.row);
    } catch (e) {
      // The ledger itself is intact; a missing witness only weakens rollback detection.
      process.emitWarning(`ledger witness not written: ${String(e)}`);
    }
  }
}

/** A signed checkpoint row, with the statement it was built from (no need to parse it back). */
export type Signed = { row: CheckpointRow; stmt: CheckpointStatement };

export function signCheckpoint(stmt: CheckpointStatement, key: KeyObject): Signed {
  const payload = statementBytes(stmt);
  return { row: { n: stmt.n, seq: stmt.seq, payload, sig: signStatement(key, payload) }, stmt };
}
