// What a control replica asks of the cluster database: the nodes, a placement for a new
// sandbox, and which nodes are gone. Replicas are stateless and active-active; every decision
// that two replicas could race on is one transaction:
//  - a tenant's quota is checked under a transaction advisory lock on the tenant, so two
//    replicas cannot both admit the tenant's last allowed sandbox;
//  - a node's capacity is re-counted under a row lock on the node, so two reservations cannot
//    both take its last CPU.
// Placement is best-of-K (K random nodes that fit, the freest wins): near-even spread without
// every replica piling onto the same "emptiest" node.
import { randomBytes, randomInt } from 'node:crypto';
import pg from 'pg';
import { PraetorError } from '../errors.ts';
import { checkQuota, type TenantSettings } from '../config/index.ts';
import { ensureClusterSchema, nodeLockKey } from './membership.ts';
import { clusterSandboxId, LIVE_STATES, type NodeRow } from './schema.ts';

export interface Placement { sandboxId: string; nodeId: string; address: string; e2bAddress: string | undefined; epoch: number }
export interface LostNode { nodeId: string; epoch: number; sandboxes: Array<{ sandboxId: string; tenant: string }> }

const NODES_SQL = `
SELECT n.node_id, n.ordinal, n.address, n.e2b_address, n.epoch, n.state, n.cpus, n.memory_bytes, n.max_sandboxes, n.degraded,
       (extract(epoch FROM now() - n.heartbeat_at) * 1000)::double precision AS age_ms,
       coalesce(u.c, 0)::int AS used_sandboxes, coalesce(u.cpus, 0)::double precision AS used_cpus, coalesce(u.mem, 0)::bigint AS used_mem
FROM cluster_nodes n
LEFT JOIN (SELECT node_id, count(*) AS c, sum(cpus) AS cpus, sum(memory_bytes) AS mem FROM cluster_sandboxes
           WHERE state IN ${LIVE_STATES} GROUP BY node_id) u USING (node_id)`;

function toNode(r: Record<string, unknown>): NodeRow {
  return {
    nodeId: String(r.node_id), ordinal: Number(r.ordinal), address: String(r.address), epoch: Number(r.epoch),
    e2bAddress: typeof r.e2b_address === 'string' ? r.e2b_address : undefined,
    state: r.state as NodeRow['state'], heartbeatAgeMs: Math.max(0, Number(r.age_ms)), degraded: (r.degraded as string[]) ?? [],
    capacity: { cpus: Number(r.cpus), memoryBytes: Number(r.memory_bytes), maxSandboxes: Number(r.max_sandboxes) },
    used: { sandboxes: Number(r.used_sandboxes), cpus: Number(r.used_cpus), memoryBytes: Number(r.used_mem) },
  };
}

const fits = (n: NodeRow, want: { cpus: number; memoryBytes: number }) =>
  n.used.sandboxes + 1 <= n.capacity.maxSandboxes && n.used.cpus + want.cpus <= n.capacity.cpus + 1e-9 && n.used.memoryBytes + want.memoryBytes <= n.capacity.memoryBytes;

/** The fraction of its tightest resource a node would have left after the reservation. */
const headroom = (n: NodeRow, want: { cpus: number; memoryBytes: number }) => Math.min(
  (n.capacity.maxSandboxes - n.used.sandboxes - 1) / n.capacity.maxSandboxes,
  (n.capacity.cpus - n.used.cpus - want.cpus) / n.capacity.cpus,
  (n.capacity.memoryBytes - n.used.memoryBytes - want.memoryBytes) / n.capacity.memoryBytes);

export interface ControlOptions {
  url: string;
  /** a node whose heartbeat is older than this is not placed on (default 3 s). */
  freshMs?: number;
  /** best-of-K (default 2). */
  k?: number;
  poolSize?: number;
}

export class ClusterControl {
  readonly #pool: pg.Pool;
  readonly #freshMs: number;
  readonly #k: number;

  private constructor(pool: pg.Pool, o: ControlOptions) {
    this.#pool = pool;
    this.#freshMs = o.freshMs ?? 3000;
    this.#k = o.k ?? 2;
  }

  static async open(o: ControlOptions): Promise<ClusterControl> {
    const pool = new pg.Pool({ connectionString: o.url, max: o.poolSize ?? 8, query_timeout: 10_000, connectionTimeoutMillis: 5000 });
    pool.on('error', () => undefined); // an idle client's broken link: the next checkout reconnects
    const c = await pool.connect().catch(async (e: unknown) => {
      await pool.end().catch(() => undefined);
      throw new PraetorError('LEDGER_UNAVAILABLE', `cannot reach the cluster database: ${e instanceof Error ? e.message : String(e)}`, { hint: 'check --cluster URL and that PostgreSQL is reachable' });
    });
    try { await ensureClusterSchema(c); } finally { c.release(); }
    return new ClusterControl(pool, o);
  }

  async close(): Promise<void> { await this.#pool.end(); }

  async nodes(): Promise<NodeRow[]> {
    const { rows } = await this.#pool.query(`${NODES_SQL} ORDER BY n.ordinal`);
    return rows.map(toNode);
  }

  /**
   * Reserves room for one sandbox of `tenant` on a live node, within the tenant's cluster-wide
   * quota. Throws QUOTA_EXCEEDED or CLUSTER_FULL; never over-commits a node or a tenant.
   */
  async place(tenant: string, settings: TenantSettings, want: { cpus: number; memoryBytes: number }, where: { only?: string; exclude?: readonly string[]; /** only nodes that serve the E2B API. */ e2b?: boolean } = {}): Promise<Placement> {
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('praetor-tenant:' || $1::text))`, [tenant]);
      const { rows: [u] } = await c.query(
        `SELECT count(*)::int AS n, coalesce(sum(cpus), 0)::double precision AS cpus, coalesce(sum(memory_bytes), 0)::bigint AS mem
         FROM cluster_sandboxes WHERE tenant = $1 AND state IN ${LIVE_STATES}`, [tenant]);
      checkQuota(tenant, settings, { sandboxes: u.n, cpus: Number(u.cpus), memoryBytes: Number(u.mem) }, want);
      const tried = new Set<string>(where.exclude ?? []);
      for (;;) {
        const { rows } = await c.query(`${NODES_SQL} WHERE n.state = 'up' AND n.heartbeat_at > now() - ($1::double precision * interval '1 millisecond')`, [this.#freshMs]);
        const candidates = rows.map(toNode).filter((n) => !tried.has(n.nodeId) && (where.only === undefined || n.nodeId === where.only) && (!where.e2b || n.e2bAddress !== undefined) && fits(n, want));
        if (candidates.length === 0) {
          throw new PraetorError('CLUSTER_FULL', `no live node${where.e2b ? ' serving the E2B API' : ''} has room for ${want.cpus} CPUs and ${want.memoryBytes} bytes`, { hint: where.e2b ? 'start nodes with --e2b-port PORT, retry later, or ask for less' : 'retry later, ask for less, or add nodes' });
        }
        const sample: NodeRow[] = [];
        while (sample.length < Math.min(this.#k, candidates.length)) {
          const pick = candidates.splice(randomInt(candidates.length), 1)[0]!;
          sample.push(pick);
        }
        const best = sample.reduce((a, b) => (headroom(b, want) > headroom(a, want) ? b : a));
        // Lock the node, then count again: another replica may have filled it since the read.
        const { rows: locked } = await c.query(`SELECT 1 FROM cluster_nodes WHERE node_id = $1 AND epoch = $2 AND state = 'up' FOR UPDATE`, [best.nodeId, best.epoch]);
        const { rows: again } = locked.length ? await c.query(`${NODES_SQL} WHERE n.node_id = $1`, [best.nodeId]) : { rows: [] };
        const now = again[0] ? toNode(again[0]) : undefined;
        if (!now || !fits(now, want)) { tried.add(best.nodeId); continue; }
        const sandboxId = clusterSandboxId(now.ordinal, randomBytes(6).toString('hex'));
        await c.query(
          `INSERT INTO cluster_sandboxes (sandbox_id, node_id, node_epoch, tenant, cpus, memory_bytes, state) VALUES ($1, $2, $3, $4, $5, $6, 'reserved')`,
          [sandboxId, now.nodeId, now.epoch, tenant, want.cpus, want.memoryBytes]);
        await c.query('COMMIT');
        return { sandboxId, nodeId: now.nodeId, address: now.address, e2bAddress: now.e2bAddress, epoch: now.epoch };
      }
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  /**
   * Whether `sandboxId` is reserved for `tenant` on this node in its current epoch: a node checks
   * the id a create carries before using it (threat: a caller naming an id it was not given,
   * another tenant's, or one reserved for another node).
   */
  async holdsReservation(sandboxId: string, node: { nodeId: string; epoch: number }, tenant: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query(`SELECT 1 FROM cluster_sandboxes WHERE sandbox_id = $1 AND node_id = $2 AND node_epoch = $3 AND tenant = $4 AND state = 'reserved'`, [sandboxId, node.nodeId, node.epoch, tenant]);
    return (rowCount ?? 0) > 0;
  }

  /** Live and lost sandboxes in the catalog (listing across nodes; admin: every tenant). */
  async catalog(tenant: string | undefined): Promise<Array<{ sandboxId: string; nodeId: string; tenant: string; state: string; createdAt: string }>> {
    const { rows } = await this.#pool.query(`SELECT sandbox_id, node_id, tenant, state, created_at FROM cluster_sandboxes
      WHERE state IN ('reserved', 'running', 'lost') AND ($1::text IS NULL OR tenant = $1) ORDER BY created_at`, [tenant ?? null]);
    return rows.map((r) => ({ sandboxId: String(r.sandbox_id), nodeId: String(r.node_id), tenant: String(r.tenant), state: String(r.state), createdAt: new Date(r.created_at as string).toISOString() }));
  }

  /** The node created the sandbox: it is running. False when the reservation is gone (expired, or the node was declared lost). */
  async confirm(sandboxId: string): Promise<boolean> {
    const r = await this.#pool.query(`UPDATE cluster_sandboxes SET state = 'running' WHERE sandbox_id = $1 AND state IN ('reserved', 'running') RETURNING 1`, [sandboxId]);
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * Ends reservations no node confirmed within `olderThanMs`: the replica that made one died
   * before forwarding the create, or the node died while creating. Their capacity and quota
   * return; a node that still finishes such a create finds it unconfirmable and destroys it.
   */
  async expireReservations(olderThanMs: number): Promise<number> {
    const r = await this.#pool.query(`UPDATE cluster_sandboxes SET state = 'ended', ended_at = now(), end_reason = 'reservation expired: no node confirmed it'
      WHERE state = 'reserved' AND created_at < now() - ($1::double precision * interval '1 millisecond')`, [olderThanMs]);
    return r.rowCount ?? 0;
  }

  /** The sandbox ended (or its creation failed): its capacity and quota return. */
  async end(sandboxId: string, reason: string): Promise<void> {
    await this.#pool.query(`UPDATE cluster_sandboxes SET state = 'ended', ended_at = now(), end_reason = $2 WHERE sandbox_id = $1 AND state IN ${LIVE_STATES}`, [sandboxId, reason]);
  }

  async sandboxState(sandboxId: string): Promise<{ state: string; nodeId: string; tenant: string; endReason: string | null } | undefined> {
    const { rows: [r] } = await this.#pool.query('SELECT state, node_id, tenant, end_reason FROM cluster_sandboxes WHERE sandbox_id = $1', [sandboxId]);
    return r ? { state: String(r.state), nodeId: String(r.node_id), tenant: String(r.tenant), endReason: r.end_reason === null ? null : String(r.end_reason) } : undefined;
  }

  /**
   * Declares lost every `up` node whose heartbeat is older than `lostAfterMs` AND whose session
   * lock is free (its database session is gone). Both, so that a database failover, which drops
   * every lock at once, does not reap nodes that are heartbeating again within `lostAfterMs`;
   * and a node with a live session but a wedged heartbeat is still caught once its session dies.
   * Its live sandboxes become `lost` in the same transaction.
   */
  async detectLost(lostAfterMs: number): Promise<LostNode[]> {
    const stale = (await this.nodes()).filter((n) => n.state === 'up' && n.heartbeatAgeMs > lostAfterMs);
    const out: LostNode[] = [];
    for (const n of stale) {
      const c = await this.#pool.connect();
      try {
        const { rows: [k] } = await c.query(nodeLockKey(n.nodeId));
        const { rows: [l] } = await c.query('SELECT pg_try_advisory_lock($1) AS free', [k.k]);
        if (!l.free) continue;
        await c.query('SELECT pg_advisory_unlock($1)', [k.k]);
        await c.query('BEGIN');
        const r = await c.query(`UPDATE cluster_nodes SET state = 'lost' WHERE node_id = $1 AND epoch = $2 AND state = 'up'
          AND heartbeat_at < now() - ($3::double precision * interval '1 millisecond') RETURNING 1`, [n.nodeId, n.epoch, lostAfterMs]);
        if (r.rowCount === 0) { await c.query('ROLLBACK'); continue; }
        const { rows } = await c.query(`UPDATE cluster_sandboxes SET state = 'lost', ended_at = now(), end_reason = 'node_lost'
          WHERE node_id = $1 AND state IN ${LIVE_STATES} RETURNING sandbox_id, tenant`, [n.nodeId]);
        await c.query('COMMIT');
        out.push({ nodeId: n.nodeId, epoch: n.epoch, sandboxes: rows.map((x) => ({ sandboxId: String(x.sandbox_id), tenant: String(x.tenant) })) });
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    }
    return out;
  }
}
