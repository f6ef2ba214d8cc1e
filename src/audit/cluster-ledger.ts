// The cluster chain: one more hash chain in the shared database (schema praetor_cluster_ledger,
// the single-node table layout) that pins each node's ledger key when it joins and anchors the
// node chains' signed checkpoints. It is signed by the cluster ledger key (cluster-key.ts) that
// only control replicas hold. Any control replica may write, one at a time: every write is one
// transaction under the chain's writer lock, so there is never a second writer and no replica's
// in-memory head can go stale. Every write carries its own signed checkpoint, so a record that
// is not sealed is never the writer's: the writer refuses to extend such a chain (fail closed)
// rather than sign over a forgery. Threat: an attacker with write access to the database who
// rewrites a node chain consistently, or cuts it back to an older checkpoint, still cannot
// change what the cluster key anchored.
import type { KeyObject } from 'node:crypto';
import pg from 'pg';
import { errorMessage, isPraetorError, PraetorError } from '../errors.ts';
import { newId } from '../util/index.ts';
import { canonicalJson } from './canonical.ts';
import { checkpointLinkHash, genesisHash, LEDGER_FORMAT, recordHash, type CheckpointStatement } from './chain.ts';
import { loadClusterLedgerKey, parseNodePublicKey, type ClusterLedgerKey } from './cluster-key.ts';
import { parseClusterRecord, type Anchor, type ClusterRecord, type NodePinned } from './cluster-records.ts';
import { verifyStatement } from './keys.ts';
import { checkClusterUrl, checkNodeId, CLUSTER_SCHEMA, clusterChainUrl, ensureSchema, nodeChainSchema } from './node-chain.ts';
import { RECORD_COLS, type CheckpointRow } from './store.ts';
import { LOCK_KEY, POSTGRES_DDL } from './stores/postgres.ts';
import { writeWitness } from './witness.ts';
import { signCheckpoint } from './writer.ts';

export type ClusterLedgerOptions = {
  /** The cluster database (postgres://…). */
  url: string;
  /** The cluster ledger private key (ledger-key.pem beside the cluster CA). */
  keyFile: string;
  /** Optional: keep a witness of the newest cluster checkpoint here (detects the chain cut back). */
  stateDir?: string | undefined;
};

export type PinResult = { nodeId: string; keyId: string; pinned: boolean; clusterSeq: number | null };
export type AnchorResult = { nodeId: string; anchored: boolean; seq: number; hash: string | null; ledgerId: string | null; clusterSeq: number | null; reason?: string };
export type AnchorRound = { anchored: AnchorResult[]; failed: { nodeId: string; error: PraetorError }[] };

type Head = { seq: number; hash: string; cp: CheckpointStatement; cpRow: CheckpointRow };
type Pending = { result: AnchorResult; body: Anchor | null };

function tampered(message: string): PraetorError {
  return new PraetorError('LEDGER_TAMPERED', message, { hint: 'run praetor audit verify --cluster URL --pubkey FILE; the cluster key does not sign over a chain it cannot vouch for' });
}

function unavailable(msg: string, cause: unknown): PraetorError {
  return new PraetorError('LEDGER_UNAVAILABLE', `${msg}: ${errorMessage(cause)}`, { hint: 'check that the cluster database is reachable and writable', cause });
}

export class ClusterLedger {
  readonly ledgerId: string;
  readonly keyId: string;
  readonly #pool: pg.Pool;
  readonly #key: ClusterLedgerKey;
  readonly #stateDir: string | undefined;
  // What this replica has read of the chain so far: pins and each node's newest anchor.
  #synced = 0;
  readonly #pins = new Map<string, NodePinned & { publicKeyObj: KeyObject }>();
  readonly #anchors = new Map<string, Anchor>();

  private constructor(pool: pg.Pool, key: ClusterLedgerKey, ledgerId: string, stateDir: string | undefined) {
    this.#pool = pool;
    this.#key = key;
    this.keyId = key.keyId;
    this.ledgerId = ledgerId;
    this.#stateDir = stateDir;
  }

  /** Opens the cluster chain (creating it on first use); refuses a key other than the chain's. */
  static async open(o: ClusterLedgerOptions): Promise<ClusterLedger> {
    const key = loadClusterLedgerKey(o.keyFile);
    await ensureSchema(checkClusterUrl(o.url), CLUSTER_SCHEMA);
    // One connection: writes are serialised by the chain lock anyway. A pool (of one) replaces a
    // connection a database failover broke.
    const pool = new pg.Pool({ connectionString: clusterChainUrl(o.url), max: 1 });
    pool.on('error', () => { /* an idle connection died; the next write reconnects */ });
    try {
      const ledgerId = await tx(pool, async (c) => {
        await c.query(POSTGRES_DDL);
        const meta = await readMeta(c);
        if (Object.keys(meta).length === 0) {
          const id = newId('lg-cluster', 8);
          for (const [k, v] of Object.entries({ format: LEDGER_FORMAT, ledger_id: id, created_ts: String(Date.now()), key_id: key.keyId })) {
            await c.query('INSERT INTO ledger_meta (key, value) VALUES ($1, $2)', [k, v]);
          }
          const g = genesisHash(id);
          const genesis = signCheckpoint({ v: 1, ledger: id, n: 1, seq: 0, hash: g, ts: Date.now(), keyId: key.keyId, prev: '', prunedThrough: 0, prunedHash: g, reason: 'open' }, key.privateKey);
          await c.query('INSERT INTO ledger_checkpoints (n, seq, payload, sig) VALUES ($1, $2, $3, $4)', [1, 0, genesis.row.payload, genesis.row.sig]);
          if (o.stateDir !== undefined) writeWitness(o.stateDir, id, genesis.row);
          return id;
        }
        if (meta.format !== LEDGER_FORMAT || meta.ledger_id === undefined) throw tampered(`the cluster chain's meta is not a ${LEDGER_FORMAT} ledger`);
        if (meta.key_id !== key.keyId) {
          throw new PraetorError('CONFLICT', `the cluster chain is signed by key ${meta.key_id}, ${o.keyFile} holds key ${key.keyId}`, {
            hint: 'mount the cluster\'s own ledger-key.pem (the one created with its CA) on every control replica',
          });
        }
        return meta.ledger_id;
      });
      const cl = new ClusterLedger(pool, key, ledgerId, o.stateDir);
      await cl.#tx(async (c) => { await cl.#head(c); await cl.#sync(c); });
      return cl;
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Pins a node's ledger public key (SPKI PEM), once, when it joins. Pinning the same key again
   * is a no-op; another key for a pinned node is refused: re-keying a node would let whoever
   * holds the new key rewrite its history.
   */
  async pinNodeKey(nodeId: string, publicKeyPem: string): Promise<PinResult> {
    checkNodeId(nodeId);
    const k = parseNodePublicKey(publicKeyPem, nodeId);
    return this.#tx(async (c) => {
      const head = await this.#head(c);
      await this.#sync(c);
      const have = this.#pins.get(nodeId);
      if (have !== undefined) {
        if (have.keyId === k.keyId) return { nodeId, keyId: k.keyId, pinned: false, clusterSeq: null };
        throw new PraetorError('CONFLICT', `node ${nodeId} is pinned to ledger key ${have.keyId}; refusing key ${k.keyId}`, {
          hint: 'a node keeps its key for life (its state directory must persist); a reinstalled host joins under a new node id',
        });
      }
      const meta = await nodeMeta(c, nodeId);
      if (meta?.key_id !== undefined && meta.key_id !== k.keyId) {
        throw new PraetorError('CONFLICT', `node ${nodeId}'s chain is already signed by key ${meta.key_id}, not by the key offered (${k.keyId})`, { hint: 'join with the state directory that wrote the chain, or under a new node id' });
      }
      const seq = await this.#append(c, head, [{ kind: 'cluster.node_pinned', ts: Date.now() * 1e6, nodeId, keyId: k.keyId, publicKey: k.publicPem }]);
      return { nodeId, keyId: k.keyId, pinned: true, clusterSeq: seq };
    });
  }

  /** Anchors a record the node reported (seq, hash) after checking the node chain holds it. */
  async anchorCheckpoint(nodeId: string, seq: number, hash: string): Promise<AnchorResult> {
    checkNodeId(nodeId);
    if (!Number.isInteger(seq) || seq < 1 || !/^[0-9a-f]{64}$/.test(hash)) throw new PraetorError('BAD_ARGUMENT', `anchor ${seq}/${hash} is not a record seq and SHA-256 hash`, { hint: 'pass the seq and hash of a node checkpoint' });
    return this.#one(nodeId, { seq, hash });
  }

  /** Reads the node's newest signed checkpoint, checks it against the pinned key and anchors it. */
  anchorNode(nodeId: string): Promise<AnchorResult> {
    return this.#one(checkNodeId(nodeId), null);
  }

  /** One anchoring round over every pinned node, in one cluster transaction (one checkpoint). */
  async anchorAll(): Promise<AnchorRound> {
    return this.#tx(async (c) => {
      const head = await this.#head(c);
      await this.#sync(c);
      const out: AnchorRound = { anchored: [], failed: [] };
      const pending: Pending[] = [];
      for (const nodeId of [...this.#pins.keys()].sort()) {
        await c.query('SAVEPOINT node');
        try {
          pending.push(await this.#prepare(c, nodeId, null));
          await c.query('RELEASE SAVEPOINT node');
        } catch (e) {
          await c.query('ROLLBACK TO SAVEPOINT node');
          out.failed.push({ nodeId, error: isPraetorError(e) ? e : unavailable(`cannot read node ${nodeId}'s chain`, e) });
        }
      }
      const bodies = pending.flatMap((p) => (p.body ? [p.body] : []));
      const first = bodies.length > 0 ? await this.#append(c, head, bodies) : 0;
      let i = 0;
      for (const p of pending) out.anchored.push(p.body ? { ...p.result, anchored: true, clusterSeq: first + i++ } : p.result);
      return out;
    });
  }

  /**
   * Anchors every pinned node every `intervalMs` until stopped. Safe to run on every control
   * replica: rounds are serialised by the chain lock and a checkpoint already anchored is
   * skipped. A node whose chain fails the checks is reported once per distinct problem.
   */
  startAnchoring(o: { intervalMs?: number; onProblem?: (nodeId: string, err: PraetorError) => void; onError?: (err: unknown) => void } = {}): { stop(): Promise<void> } {
    const reported = new Map<string, string>();
    let running: Promise<void> | null = null;
    const round = async (): Promise<void> => {
      try {
        const r = await this.anchorAll();
        for (const f of r.failed) {
          if (reported.get(f.nodeId) !== f.error.message) o.onProblem?.(f.nodeId, f.error);
          reported.set(f.nodeId, f.error.message);
        }
        for (const a of r.anchored) reported.delete(a.nodeId);
      } catch (e) {
        o.onError?.(e);
      }
    };
    const timer = setInterval(() => { running ??= round().finally(() => { running = null; }); }, o.intervalMs ?? 5000);
    timer.unref();
    return { stop: async () => { clearInterval(timer); await running; } };
  }

  /** The pinned nodes and their key ids, as this replica last read the chain. */
  pinnedNodes(): { nodeId: string; keyId: string }[] {
    return [...this.#pins.values()].map((p) => ({ nodeId: p.nodeId, keyId: p.keyId }));
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }

  async #one(nodeId: string, target: { seq: number; hash: string } | null): Promise<AnchorResult> {
    return this.#tx(async (c) => {
      const head = await this.#head(c);
      await this.#sync(c);
      const p = await this.#prepare(c, nodeId, target);
      if (p.body === null) return p.result;
      return { ...p.result, anchored: true, clusterSeq: await this.#append(c, head, [p.body]) };
    });
  }

  /** Checks a node's chain against its pin and its last anchor; the anchor to write, if any. */
  async #prepare(c: pg.ClientBase, nodeId: string, target: { seq: number; hash: string } | null): Promise<Pending> {
    const pin = this.#pins.get(nodeId);
    if (pin === undefined) throw new PraetorError('NOT_FOUND', `node ${nodeId} has no ledger key pinned in the cluster chain`, { hint: 'pin it when the node joins: clusterLedger.pinNodeKey(nodeId, nodeLedgerPublicKey(stateDir))' });
    const none = (reason: string, ledgerId: string | null = null): Pending => ({ result: { nodeId, anchored: false, seq: 0, hash: null, ledgerId, clusterSeq: null, reason }, body: null });
    const meta = await nodeMeta(c, nodeId);
    if (meta === null) return none('the node has no chain yet');
    const ledgerId = meta.ledger_id ?? '';
    if (meta.key_id !== pin.keyId) throw tampered(`node ${nodeId}'s chain names signing key ${meta.key_id ?? 'none'}, the key pinned for it is ${pin.keyId}`);
    const s = nodeChainSchema(nodeId);
    let seq: number;
    let hash: string;
    let checkpoint: number | null = null;
    let checkpointTs: number | null = null;
    let prunedThrough = 0;
    if (target !== null) ({ seq, hash } = target);
    else {
      const row = (await c.query<{ n: number; payload: string; sig: string }>(`SELECT n, payload, sig FROM ${s}.ledger_checkpoints ORDER BY n DESC LIMIT 1`)).rows[0];
      if (row === undefined) return none('the node has no checkpoint yet', ledgerId);
      if (!verifyStatement(pin.publicKeyObj, row.payload, row.sig)) throw tampered(`node ${nodeId} checkpoint ${row.n}: signature does not verify with the key pinned for the node`);
      const st = JSON.parse(row.payload) as CheckpointStatement;
      if (st.ledger !== ledgerId) throw tampered(`node ${nodeId} checkpoint ${row.n} is signed for ledger ${st.ledger}, the chain is ${ledgerId}`);
      ({ seq, hash } = st);
      checkpoint = st.n;
      checkpointTs = st.ts;
      prunedThrough = st.prunedThrough;
      if (seq === 0) return none('nothing recorded yet', ledgerId);
    }
    const rec = (await c.query<{ hash: string }>(`SELECT hash FROM ${s}.ledger_records WHERE seq = $1`, [seq])).rows[0];
    if (rec === undefined ? seq > prunedThrough : rec.hash !== hash) {
      throw tampered(`node ${nodeId} record ${seq}: ${rec === undefined ? 'missing' : 'differs'} from the ${checkpoint === null ? 'checkpoint the node reported' : `node's signed checkpoint ${checkpoint}`}`);
    }
    const last = this.#anchors.get(nodeId);
    if (last !== undefined) {
      if (last.ledgerId !== ledgerId) throw tampered(`node ${nodeId}'s chain is ledger ${ledgerId}, the cluster anchored ledger ${last.ledgerId} (replaced)`);
      if (seq === last.seq && hash !== last.hash) throw tampered(`node ${nodeId} record ${seq}: differs from the hash the cluster anchored`);
      if (seq < last.seq && target === null) throw tampered(`node ${nodeId}'s chain went back: the cluster anchored record ${last.seq}, its newest checkpoint seals ${seq} (cut back)`);
      if (seq <= last.seq) return none(seq === last.seq ? 'already anchored' : 'older than the newest anchor', ledgerId);
    }
    return {
      result: { nodeId, anchored: false, seq, hash, ledgerId, clusterSeq: null },
      body: { kind: 'cluster.anchor', ts: Date.now() * 1e6, nodeId, ledgerId, seq, hash, checkpoint, checkpointTs },
    };
  }

  /** The chain's head, refusing one this key did not seal (fail closed). */
  async #head(c: pg.ClientBase): Promise<Head> {
    const cpRow = (await c.query<{ n: number; seq: string; payload: string; sig: string }>('SELECT n, seq, payload, sig FROM ledger_checkpoints ORDER BY n DESC LIMIT 1')).rows[0];
    if (cpRow === undefined) throw tampered('the cluster chain has no checkpoint');
    if (!verifyStatement(this.#key.publicKey, cpRow.payload, cpRow.sig)) throw tampered(`cluster checkpoint ${cpRow.n}: signature does not verify with the cluster key`);
    const cp = JSON.parse(cpRow.payload) as CheckpointStatement;
    if (cp.ledger !== this.ledgerId || cp.n !== cpRow.n) throw tampered(`cluster checkpoint ${cpRow.n} is not this chain's`);
    const tail = (await c.query<{ seq: string; hash: string }>('SELECT seq, hash FROM ledger_records ORDER BY seq DESC LIMIT 1')).rows[0];
    const seq = tail === undefined ? cp.prunedThrough : Number(tail.seq);
    const hash = tail === undefined ? cp.prunedHash : tail.hash;
    if (seq !== cp.seq || hash !== cp.hash) {
      throw tampered(seq > cp.seq
        ? `cluster records ${cp.seq + 1}..${seq} are not sealed by a cluster checkpoint (appended without the cluster key)`
        : `the cluster chain ends at record ${seq}, its checkpoint ${cp.n} seals record ${cp.seq} with another hash`);
    }
    return { seq, hash, cp, cpRow: { ...cpRow, seq: Number(cpRow.seq) } };
  }

  /** Reads the records this replica has not seen (another replica may have written them). */
  async #sync(c: pg.ClientBase): Promise<void> {
    const { rows } = await c.query<{ seq: string; body: string }>('SELECT seq, body FROM ledger_records WHERE seq > $1 ORDER BY seq', [this.#synced]);
    for (const r of rows) this.#learn(Number(r.seq), r.body);
  }

  #learn(seq: number, body: string): void {
    const rec = parseClusterRecord(body);
    if (typeof rec === 'string') throw tampered(`cluster record ${seq}: ${rec}`);
    if (rec.kind === 'cluster.node_pinned') {
      if (!this.#pins.has(rec.nodeId)) this.#pins.set(rec.nodeId, { ...rec, publicKeyObj: parseNodePublicKey(rec.publicKey, rec.nodeId).publicKey });
    } else this.#anchors.set(rec.nodeId, rec);
    this.#synced = seq;
  }

  /** Appends records and the checkpoint sealing them, in the caller's transaction. */
  async #append(c: pg.ClientBase, head: Head, bodies: ClusterRecord[]): Promise<number> {
    let seq = head.seq;
    let prev = head.hash;
    const cols: (string | number | null)[][] = Array.from({ length: 11 }, () => []);
    const texts: [number, string][] = [];
    for (const b of bodies) {
      const body = canonicalJson(b);
      seq++;
      prev = recordHash(prev, seq, body);
      const row = [seq, b.ts, b.kind, null, null, null, null, null, null, body, prev];
      row.forEach((v, i) => cols[i]!.push(v));
      texts.push([seq, body]);
    }
    await c.query(`INSERT INTO ledger_records (${RECORD_COLS}) SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[])`, cols);
    const signed = signCheckpoint({
      v: 1, ledger: this.ledgerId, n: head.cp.n + 1, seq, hash: prev, ts: Date.now(), keyId: this.keyId,
      prev: checkpointLinkHash(head.cpRow.payload, head.cpRow.sig), prunedThrough: head.cp.prunedThrough, prunedHash: head.cp.prunedHash, reason: 'interval',
    }, this.#key.privateKey);
    await c.query('INSERT INTO ledger_checkpoints (n, seq, payload, sig) VALUES ($1, $2, $3, $4)', [signed.row.n, signed.row.seq, signed.row.payload, signed.row.sig]);
    // Learned now, used only once the transaction commits (a failed one throws out of #tx and
    // this replica re-reads from #synced, which #learn moves only past committed rows).
    this.#onCommit.push(() => {
      for (const [s, b] of texts) this.#learn(s, b);
      if (this.#stateDir !== undefined) {
        try { writeWitness(this.#stateDir, this.ledgerId, signed.row); } catch (e) { process.emitWarning(`cluster ledger witness not written: ${String(e)}`); }
      }
    });
    return head.seq + 1;
  }

  #onCommit: (() => void)[] = [];
  #queue: Promise<unknown> = Promise.resolve();

  /** One operation at a time on this replica (the chain lock serialises replicas). */
  #tx<T>(fn: (c: pg.ClientBase) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.#onCommit = [];
      try {
        const out = await tx(this.#pool, fn);
        for (const f of this.#onCommit) f();
        return out;
      } finally {
        this.#onCommit = [];
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }
}

/** One transaction under the cluster chain's writer lock (the single-node writer's lock key). */
async function tx<T>(pool: pg.Pool, fn: (c: pg.ClientBase) => Promise<T>): Promise<T> {
  let c: pg.PoolClient;
  try { c = await pool.connect(); } catch (e) { throw unavailable('cannot connect to the cluster database', e); }
  let broken = false;
  try {
    await c.query('BEGIN');
    await c.query('SET LOCAL synchronous_commit = on');
    // A stuck holder (a single-node tool pointed at this schema) must not hang every replica.
    await c.query("SET LOCAL lock_timeout = '15s'");
    await c.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => { broken = true; });
    if (isPraetorError(e)) throw e;
    broken = true;
    throw unavailable('cluster ledger write failed', e);
  } finally {
    c.release(broken);
  }
}

async function readMeta(c: pg.ClientBase, schema?: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const r of (await c.query<{ key: string; value: string }>(`SELECT key, value FROM ${schema === undefined ? '' : `${schema}.`}ledger_meta`)).rows) out[r.key] = r.value;
  return out;
}

/** A node chain's meta, or null when the node has not written a chain yet. */
async function nodeMeta(c: pg.ClientBase, nodeId: string): Promise<Record<string, string> | null> {
  const s = nodeChainSchema(nodeId);
  const { rows } = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${s}.ledger_meta`]);
  if (rows[0]?.t === null || rows[0] === undefined) return null;
  const checks = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename IN ('ledger_records', 'ledger_checkpoints')`, [s]);
  if (checks.rows[0]!.n !== 2) throw tampered(`node ${nodeId}'s chain (schema ${s}) is missing its records or checkpoints table`);
  const meta = await readMeta(c, s);
  return Object.keys(meta).length === 0 ? null : meta;
}
