// One hash chain per node in the cluster's shared PostgreSQL. Each chain lives in a PostgreSQL
// schema of its own (praetor_node_<id>), reached through the connection's search_path: the
// single-node store already scopes every table, object check and its writer lock to
// current_schema(), so a node chain is the exact single-node ledger, written and verified by the
// same code (a chain-id column would have touched every query, key and index the verifier
// checks). Threat: two writers extending one chain from the same head would fork it; the
// store's session advisory lock on the schema refuses the second one, and PostgreSQL releases
// it when the first one's session dies (kill -9, cut link), so a restarted node continues.
import { hash } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { errorMessage, isPraetorError, PraetorError } from '../errors.ts';
import { loadOrCreateSigningKey } from './keys.ts';
import { openLedger, type Ledger, type LedgerOptions } from './ledger.ts';
import { POSTGRES_URL, type LedgerStore } from './store.ts';

/** Where the cluster chain lives; node chains are in NODE_SCHEMA_PREFIX + id. */
export const CLUSTER_SCHEMA = 'praetor_cluster_ledger';
export const NODE_SCHEMA_PREFIX = 'praetor_node_';

/**
 * A node id as the cluster registers it (src/cluster/schema.ts NodeId; a test pins the two
 * equal). Kept here so the ledger does not import cluster/, which sits above server/ → audit/.
 */
export const NodeId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a node id is 1-63 lowercase letters, digits and dashes').describe('node name, unique in the cluster');

export function checkNodeId(nodeId: string): string {
  const r = NodeId.safeParse(nodeId);
  if (!r.success) throw new PraetorError('BAD_ARGUMENT', `node id "${nodeId}": ${r.error.issues[0]!.message}`, { hint: 'use the node id the node registered with (praetor nodes)' });
  return nodeId;
}

export function checkClusterUrl(url: string): string {
  if (!POSTGRES_URL.test(url)) throw new PraetorError('BAD_ARGUMENT', 'the cluster ledger needs a postgres:// URL', { hint: 'pass the cluster database URL (postgres://…), the one given to --cluster' });
  return url;
}

/**
 * The schema holding a node's chain. Node ids have no underscores, so mapping '-' to '_' is
 * one-to-one; ids too long for PostgreSQL's 63-byte names keep a prefix and a digest.
 */
export function nodeChainSchema(nodeId: string): string {
  const id = checkNodeId(nodeId).replaceAll('-', '_');
  if (NODE_SCHEMA_PREFIX.length + id.length <= 63) return NODE_SCHEMA_PREFIX + id;
  return `${NODE_SCHEMA_PREFIX}${id.slice(0, 33)}_${hash('sha256', nodeId, 'hex').slice(0, 16)}`;
}

/** The URL with its search_path set to one schema: every store query then lands there. */
export function scopedUrl(url: string, schema: string, extra = ''): string {
  const u = new URL(checkClusterUrl(url));
  const prev = u.searchParams.get('options');
  u.searchParams.set('options', `${prev ? `${prev} ` : ''}-c search_path=${schema}${extra}`);
  return u.toString();
}

/** A URL on which the single-node tools (audit verify --db, export, trace) see that node's chain. */
export function nodeChainUrl(url: string, nodeId: string): string {
  return scopedUrl(url, nodeChainSchema(nodeId));
}
export function clusterChainUrl(url: string): string {
  return scopedUrl(url, CLUSTER_SCHEMA);
}

/** Creates a schema once; two starters racing are serialised by a transaction lock. */
export async function ensureSchema(url: string, schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  try {
    await c.connect();
    await c.query('BEGIN');
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('praetor-ledger-schema'))`);
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await c.query('COMMIT');
  } catch (e) {
    throw new PraetorError('LEDGER_UNAVAILABLE', `cannot create the ledger schema ${schema}: ${errorMessage(e)}`, {
      hint: 'check that the cluster database is reachable and that praetor may CREATE SCHEMA in it', cause: e,
    });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The server probes a node writer's idle link (about 25 s to give up): when a node host dies
 * without closing its connection, its chain's writer lock is released then, not after the
 * operating system's two hours, so the node that comes back can continue its chain.
 */
const WRITER_KEEPALIVES = ' -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';

export type NodeLedgerOptions = Omit<LedgerOptions, 'url' | 'path' | 'inProcess'> & {
  /** The cluster database (postgres://…), shared by every node and control replica. */
  url: string;
  /** This node's id, as it registered in the cluster. */
  nodeId: string;
};

/**
 * Opens this node's chain (creating it on first start) and takes its single-writer lock. A
 * restart with the same state directory continues the chain: same key, next seq, the tail a
 * crash left sealed by the open. A second writer gets CONFLICT naming the node.
 */
export async function openNodeLedger(o: NodeLedgerOptions): Promise<Ledger> {
  const { url, nodeId, ...rest } = o;
  const schema = nodeChainSchema(nodeId);
  await ensureSchema(checkClusterUrl(url), schema);
  try {
    return await openLedger({ ...rest, url: scopedUrl(url, schema, WRITER_KEEPALIVES) });
  } catch (e) {
    if (isPraetorError(e) && e.code === 'CONFLICT') {
      throw new PraetorError('CONFLICT', `node ${nodeId}'s ledger chain (schema ${schema}) is being written by another process`, {
        hint: 'one writer per node chain: stop the other praetor serving this node id, or give this node its own id', cause: e,
      });
    }
    throw e;
  }
}

/** The node's ledger public key (PEM), what the control plane pins when the node joins. */
export function nodeLedgerPublicKey(stateDir: string): string {
  return loadOrCreateSigningKey(stateDir).publicPem;
}

/** A read-only store on a node's chain (trace, export from any control replica). */
export async function openNodeReader(url: string, nodeId: string): Promise<LedgerStore> {
  const { PostgresStore } = await import('./stores/postgres.ts');
  return PostgresStore.connect(nodeChainUrl(url, nodeId), { writer: false });
}

/**
 * The pinned nodes whose chains hold records of an episode (usually one: an episode's sandboxes
 * live on one node). A query for trace from any control replica, not a check: verify --cluster
 * says whether the records are genuine.
 */
export async function findEpisodeNodes(url: string, episodeId: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: checkClusterUrl(url) });
  try {
    await c.connect();
    const has = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${CLUSTER_SCHEMA}.ledger_records`]);
    if (has.rows[0]?.t == null) return [];
    const ids = (await c.query<{ id: string }>(`SELECT DISTINCT body::jsonb->>'nodeId' AS id FROM ${CLUSTER_SCHEMA}.ledger_records WHERE kind = 'cluster.node_pinned'`)).rows
      .map((r) => r.id).filter((id) => NodeId.safeParse(id).success).sort();
    const out: string[] = [];
    for (const id of ids) {
      const s = nodeChainSchema(id);
      const t = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${s}.ledger_records`]);
      if (t.rows[0]?.t == null) continue;
      if ((await c.query(`SELECT 1 FROM ${s}.ledger_records WHERE episode_id = $1 LIMIT 1`, [episodeId])).rows.length > 0) out.push(id);
    }
    return out;
  } catch (e) {
    throw new PraetorError('LEDGER_UNAVAILABLE', `cannot read the cluster ledger: ${errorMessage(e)}`, { hint: 'check the --cluster URL', cause: e });
  } finally {
    await c.end().catch(() => undefined);
  }
}
