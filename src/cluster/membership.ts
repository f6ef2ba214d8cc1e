// A node's membership in the cluster: its row in cluster_nodes, a heartbeat, and a session
// advisory lock held for as long as its database session lives, so a control replica can tell
// a dead or cut-off node from a slow one.
//
// Fencing (threat: a node cut off from the database keeps running sandboxes nobody records, or
// that the control plane has already declared lost and replaced). When the node cannot write
// its heartbeat for `fenceAfterMs`, it fences itself: `onFence` (freeze every sandbox) at once,
// `onDestroy` after `graceMs` if still fenced. When the link returns and the node is still `up`
// in its epoch, `onUnfence` thaws; if a control replica declared it lost meanwhile, the node's
// sandboxes are already recorded lost, so it destroys them (`onDestroy`) and must rejoin.
import pg from 'pg';
import { errorMessage, PraetorError } from '../errors.ts';
import { CLUSTER_SCHEMA, LIVE_STATES, NodeCapacitySchema, NodeId, type NodeCapacity } from './schema.ts';

export interface MembershipOptions {
  url: string;
  nodeId: string;
  /** where control replicas reach this node's API (https://host:port). */
  address: string;
  /** where control replicas reach this node's E2B API (https://host:port), when it serves one. */
  e2bAddress?: string | undefined;
  capacity: NodeCapacity;
  heartbeatMs?: number;
  /** fence after this long without a successful heartbeat (default 5 heartbeats). */
  fenceAfterMs?: number;
  /** destroy fenced sandboxes after this long fenced (default 30 s). */
  graceMs?: number;
  onFence?: (why: string) => void;
  onUnfence?: () => void;
  onDestroy?: (why: string) => void;
  log?: (msg: string) => void;
}

export const nodeLockKey = (nodeId: string) => ({ text: `SELECT hashtext('praetor-node:' || $1::text) AS k`, values: [nodeId] });

export async function ensureClusterSchema(c: pg.ClientBase): Promise<void> {
  // Concurrent CREATE … IF NOT EXISTS can still collide on the catalog: serialize it.
  await c.query('BEGIN');
  try {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('praetor-cluster-schema'))`);
    await c.query(CLUSTER_SCHEMA);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

type Resolved = Required<Omit<MembershipOptions, 'onFence' | 'onUnfence' | 'onDestroy' | 'log' | 'e2bAddress'>> & Pick<MembershipOptions, 'onFence' | 'onUnfence' | 'onDestroy' | 'log' | 'e2bAddress'>;

export class NodeMembership {
  readonly nodeId: string;
  readonly epoch: number;
  readonly ordinal: number;
  /** ids of sandboxes this node had live in an earlier epoch, now recorded ended (for gc). */
  readonly reclaimed: string[];
  readonly #o: Resolved;
  #client: pg.Client;
  #timer: NodeJS.Timeout | undefined;
  #lastOk = Date.now();
  #fencedAt: number | undefined;
  #lost = false;
  #beating = false;
  #closed = false;

  private constructor(o: Resolved, client: pg.Client, row: { epoch: number; ordinal: number }, reclaimed: string[]) {
    this.#o = o;
    this.#client = client;
    this.nodeId = o.nodeId;
    this.epoch = row.epoch;
    this.ordinal = row.ordinal;
    this.reclaimed = reclaimed;
  }

  get fenced(): boolean { return this.#fencedAt !== undefined; }
  /** declared lost by the control plane: this membership is over; rejoin with a new one. */
  get lost(): boolean { return this.#lost; }

  static async join(opts: MembershipOptions): Promise<NodeMembership> {
    const id = NodeId.safeParse(opts.nodeId);
    if (!id.success) throw new PraetorError('BAD_ARGUMENT', `node id "${opts.nodeId}": ${id.error.issues[0]!.message}`, { hint: 'pass --node-id NAME, e.g. the host name in lowercase' });
    const cap = NodeCapacitySchema.parse(opts.capacity);
    const heartbeatMs = opts.heartbeatMs ?? 1000;
    const o = { ...opts, capacity: cap, heartbeatMs, fenceAfterMs: opts.fenceAfterMs ?? heartbeatMs * 5, graceMs: opts.graceMs ?? 30_000 };
    const client = await connect(o.url, heartbeatMs);
    try {
      await ensureClusterSchema(client);
      const { rows: [k] } = await client.query(nodeLockKey(o.nodeId));
      const { rows: [l] } = await client.query('SELECT pg_try_advisory_lock($1) AS ok', [k.k]);
      if (!l.ok) throw new PraetorError('CONFLICT', `node ${o.nodeId} is already joined by a live process`, { hint: 'stop the other process, or give this node another --node-id' });
      await client.query('BEGIN');
      const { rows: [row] } = await client.query(
        `INSERT INTO cluster_nodes (node_id, ordinal, address, cpus, memory_bytes, max_sandboxes, epoch, state, heartbeat_at, joined_at, e2b_address)
         VALUES ($1, nextval('cluster_node_ordinal'), $2, $3, $4, $5, 1, 'up', now(), now(), $6)
         ON CONFLICT (node_id) DO UPDATE SET epoch = cluster_nodes.epoch + 1, state = 'up', address = $2, cpus = $3,
           memory_bytes = $4, max_sandboxes = $5, heartbeat_at = now(), joined_at = now(), e2b_address = $6
         RETURNING epoch, ordinal`,
        [o.nodeId, o.address, cap.cpus, cap.memoryBytes, cap.maxSandboxes, o.e2bAddress ?? null]);
      // Sandboxes of an earlier epoch died with that process (its sandboxes are its children):
      // record them ended so their capacity and quota return, and tell the caller for gc.
      const { rows: old } = await client.query(
        `UPDATE cluster_sandboxes SET state = 'ended', ended_at = now(), end_reason = 'node restarted: reclaimed by gc'
         WHERE node_id = $1 AND node_epoch < $2 AND state IN ${LIVE_STATES} RETURNING sandbox_id`, [o.nodeId, row.epoch]);
      await client.query('COMMIT');
      const m = new NodeMembership(o, client, { epoch: Number(row.epoch), ordinal: Number(row.ordinal) }, old.map((r) => String(r.sandbox_id)));
      m.#start();
      return m;
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
  }

  #start(): void {
    this.#timer = setInterval(() => { void this.#beat(); }, this.#o.heartbeatMs);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    if (this.#beating || this.#closed || this.#lost) return;
    this.#beating = true;
    try {
      const r = await this.#client.query(`UPDATE cluster_nodes SET heartbeat_at = now() WHERE node_id = $1 AND epoch = $2 AND state = 'up' RETURNING 1`, [this.nodeId, this.epoch]);
      if (r.rowCount === 0) {
        this.#declaredLost('the control plane declared this node lost (or a newer process joined under its id)');
        return;
      }
      this.#lastOk = Date.now();
      if (this.#fencedAt !== undefined) {
        this.#fencedAt = undefined;
        this.#o.log?.(`node ${this.nodeId}: database reachable again, still up in epoch ${this.epoch}: unfencing`);
        this.#o.onUnfence?.();
      }
    } catch (e) {
      this.#failed(e);
    } finally {
      this.#beating = false;
    }
  }

  #failed(e: unknown): void {
    const since = Date.now() - this.#lastOk;
    if (this.#fencedAt === undefined && since >= this.#o.fenceAfterMs) {
      this.#fencedAt = Date.now();
      this.#o.log?.(`node ${this.nodeId}: no heartbeat for ${since} ms (${errorMessage(e)}): fencing`);
      this.#o.onFence?.(`the database has not been reachable for ${since} ms`);
    }
    if (this.#fencedAt !== undefined && Date.now() - this.#fencedAt >= this.#o.graceMs) {
      this.#declaredLost(`fenced for more than ${this.#o.graceMs} ms`);
      return;
    }
    // A broken session is replaced; the advisory lock died with it, which is what tells the
    // control plane this node may be gone. The new session takes the lock again.
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    const old = this.#client;
    old.removeAllListeners('error');
    old.on('error', () => undefined);
    void old.end().catch(() => undefined);
    try {
      const c = await connect(this.#o.url, this.#o.heartbeatMs);
      const { rows: [k] } = await c.query(nodeLockKey(this.nodeId));
      const { rows: [l] } = await c.query('SELECT pg_try_advisory_lock($1) AS ok', [k.k]);
      if (!l.ok) { await c.end(); return; } // the old session still holds it: try next beat
      if (this.#lost || this.#closed) { await c.end(); return; } // over meanwhile: release the lock at once
      this.#client = c;
    } catch { /* still unreachable: the next beat tries again */ }
  }

  #declaredLost(why: string): void {
    if (this.#lost) return;
    this.#lost = true;
    if (this.#timer) clearInterval(this.#timer);
    // This membership is over: its session (and the lock a reconnect may have taken again) must
    // go, or the node could never join again under its own id.
    const c = this.#client;
    c.removeAllListeners('error');
    c.on('error', () => undefined);
    void c.end().catch(() => undefined);
    this.#o.log?.(`node ${this.nodeId}: ${why}: destroying its sandboxes`);
    this.#o.onDestroy?.(why);
  }

  /** Leaves the cluster cleanly: state `left`, lock released. */
  async leave(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    try {
      await this.#client.query(`UPDATE cluster_nodes SET state = 'left' WHERE node_id = $1 AND epoch = $2`, [this.nodeId, this.epoch]);
    } finally {
      await this.#client.end().catch(() => undefined);
    }
  }

  /** Stops heartbeating without touching the row (tests: a process that just dies). */
  async abandon(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#client.end().catch(() => undefined);
  }
}

async function connect(url: string, heartbeatMs: number): Promise<pg.Client> {
  // A cut link must fail a query, not hang it: bound every query and the connect itself.
  const c = new pg.Client({ connectionString: url, query_timeout: Math.max(1000, heartbeatMs * 2), connectionTimeoutMillis: Math.max(1000, heartbeatMs * 2), keepAlive: true });
  c.on('error', () => undefined); // surfaced by the next query instead
  try {
    await c.connect();
  } catch (e) {
    await c.end().catch(() => undefined);
    throw new PraetorError('LEDGER_UNAVAILABLE', `cannot reach the cluster database: ${errorMessage(e)}`, { hint: 'check --cluster URL and that PostgreSQL is reachable from this node', cause: e });
  }
  return c;
}
