// Join tokens in the cluster database. Threat: a token is a capability to become a node (to
// receive sandboxes and their data), so only its SHA-256 is stored (a database read does not
// yield a usable token), it expires, and it admits a bounded number of joins: one UPDATE counts
// a join only while the count is below the token's budget and the token unexpired, so racing
// joins cannot exceed it. Two kinds:
//  - one-time tokens (`praetor cluster token create`), optionally bound to one node id, so a
//    leaked token cannot mint that id's twin;
//  - bootstrap tokens for a node pool (the Helm chart's Secret, seeded by control replicas, or
//    `token create --joins N`): up to N joins, each by a distinct node id that holds no current
//    certificate, each recorded (cluster_join_redemptions), so the token can neither be
//    replayed past its count nor re-key a node that already joined.
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { PraetorError } from '../errors.ts';
import { CLUSTER_ID } from './pki-identity.ts';

export const JOIN_TOKENS_SCHEMA = `
CREATE TABLE IF NOT EXISTS cluster_join_tokens (
  token_hash text PRIMARY KEY,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at timestamptz,
  used_by_node text,
  for_node text);
ALTER TABLE cluster_join_tokens ADD COLUMN IF NOT EXISTS max_joins integer NOT NULL DEFAULT 1;
ALTER TABLE cluster_join_tokens ADD COLUMN IF NOT EXISTS joins integer NOT NULL DEFAULT 0;
-- tokens spent before join counting existed stay spent
UPDATE cluster_join_tokens SET joins = 1 WHERE used_at IS NOT NULL AND joins = 0;
CREATE TABLE IF NOT EXISTS cluster_join_redemptions (
  token_hash text NOT NULL,
  node_id text NOT NULL,
  joined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (token_hash, node_id));
CREATE TABLE IF NOT EXISTS cluster_node_certs (
  node_id text PRIMARY KEY,
  fingerprint256 text NOT NULL,
  not_after timestamptz NOT NULL,
  issued_at timestamptz NOT NULL DEFAULT now(),
  issued_by text NOT NULL);
`;

const PREFIX = 'pjt_';
export const TOKEN_SHAPE = /^pjt_[A-Za-z0-9_-]{43}$/;
export const MAX_TOKEN_TTL_MS = 7 * 86_400_000;
/** the most joins one bootstrap token may admit (a node pool, not an open door). */
export const MAX_TOKEN_JOINS = 10_000;

export function joinTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function ensureJoinTokenSchema(pool: pg.Pool): Promise<void> {
  // CREATE … IF NOT EXISTS can still collide on the catalog when replicas start together.
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('praetor-cluster-join-tokens'))`);
    await client.query(JOIN_TOKENS_SCHEMA);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

export interface JoinToken { token: string; expiresAt: Date; forNode: string | undefined; maxJoins: number }

function checkBudget(ttlMs: number, maxJoins: number, nodeId: string | undefined): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) {
    throw new PraetorError('BAD_ARGUMENT', `a join token lives between 1 ms and 7 days, not ${ttlMs} ms`, { hint: 'pass --ttl 1h (a short life limits what a leaked token is worth)' });
  }
  if (!Number.isInteger(maxJoins) || maxJoins < 1 || maxJoins > MAX_TOKEN_JOINS) {
    throw new PraetorError('BAD_ARGUMENT', `a join token admits 1 to ${MAX_TOKEN_JOINS} joins, not ${maxJoins}`, { hint: 'pass --joins N, the number of nodes that will join with it (the node pool size)' });
  }
  if (nodeId !== undefined && !CLUSTER_ID.test(nodeId)) {
    throw new PraetorError('BAD_ARGUMENT', `"${nodeId.slice(0, 80)}" is not a valid node id`, { hint: 'use 1-63 lowercase letters, digits and dashes' });
  }
  if (nodeId !== undefined && maxJoins > 1) {
    throw new PraetorError('BAD_ARGUMENT', `a token bound to node ${nodeId} admits that one node once, not ${maxJoins} joins`, { hint: 'drop --node for a bootstrap token shared by a node pool, or drop --joins' });
  }
}

/** A new token (shown once; only its hash is stored), valid for ttlMs and `maxJoins` joins (default 1). */
export async function createJoinToken(pool: pg.Pool, ttlMs: number, o: { nodeId?: string | undefined; maxJoins?: number | undefined } = {}): Promise<JoinToken> {
  const maxJoins = o.maxJoins ?? 1;
  checkBudget(ttlMs, maxJoins, o.nodeId);
  await ensureJoinTokenSchema(pool);
  const token = PREFIX + randomBytes(32).toString('base64url');
  const r = await pool.query<{ expires_at: Date }>(
    `INSERT INTO cluster_join_tokens (token_hash, expires_at, for_node, max_joins) VALUES ($1, now() + make_interval(secs => $2::double precision / 1000), $3, $4) RETURNING expires_at`,
    [joinTokenHash(token), ttlMs, o.nodeId ?? null, maxJoins]);
  return { token, expiresAt: r.rows[0]!.expires_at, forNode: o.nodeId, maxJoins };
}

export interface BootstrapTokenState { created: boolean; joins: number; maxJoins: number; expiresAt: Date; expired: boolean }

/**
 * Registers a bootstrap token the operator chose (the chart's Secret) the first time a control
 * replica sees it; later starts find it and change nothing. Its budget and expiry are fixed
 * when it is first registered: a restart or an edited value cannot hand out more joins (threat:
 * a replayed or leaked token admitting nodes past its count). To admit more nodes, rotate the
 * token.
 */
export async function registerBootstrapToken(pool: pg.Pool, token: string, o: { maxJoins: number; ttlMs: number }): Promise<BootstrapTokenState> {
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token.trim())) {
    throw new PraetorError('JOIN_TOKEN_INVALID', 'the bootstrap join token is malformed (a join token looks like pjt_ followed by 43 characters of A-Z a-z 0-9 _ -)', { hint: 'generate one with `praetor cluster token generate` (or: echo pjt_$(head -c 32 /dev/urandom | basenc --base64url | tr -d =)) and put it in the join token Secret' });
  }
  checkBudget(o.ttlMs, o.maxJoins, undefined);
  await ensureJoinTokenSchema(pool);
  const hash = joinTokenHash(token.trim());
  const ins = await pool.query(
    `INSERT INTO cluster_join_tokens (token_hash, expires_at, max_joins) VALUES ($1, now() + make_interval(secs => $2::double precision / 1000), $3) ON CONFLICT (token_hash) DO NOTHING RETURNING 1`,
    [hash, o.ttlMs, o.maxJoins]);
  const { rows: [row] } = await pool.query<{ joins: number; max_joins: number; expires_at: Date; expired: boolean }>(
    `SELECT joins, max_joins, expires_at, expires_at <= now() AS expired FROM cluster_join_tokens WHERE token_hash = $1`, [hash]);
  return { created: (ins.rowCount ?? 0) > 0, joins: row!.joins, maxJoins: row!.max_joins, expiresAt: row!.expires_at, expired: row!.expired };
}

/** A token for the chart's Secret, made here without touching a database (control replicas register it). */
export function generateJoinToken(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

const CREATE_HINT = 'ask the operator for a new one: `praetor cluster token create --cluster URL`';
const BOOTSTRAP_HINT = 'rotate the bootstrap token (a new value in the chart\'s join token Secret, `praetor cluster token generate`), or make a one-time token: `praetor cluster token create --cluster URL --node ID`';

const isPool = (c: pg.ClientBase | pg.Pool): c is pg.Pool => typeof (c as pg.Pool).totalCount === 'number';

/**
 * Counts one join of `nodeId` against a token, atomically. Pass the client of an open
 * transaction to have the join undone when what follows (signing the certificate) fails; given
 * a pool, it runs in a transaction of its own. Throws JOIN_TOKEN_INVALID, JOIN_TOKEN_EXPIRED,
 * JOIN_TOKEN_USED (spent or used up) or CONFLICT (a bootstrap token and a node that already
 * holds a current certificate), each saying how to get a good one.
 */
export async function redeemJoinToken(client: pg.ClientBase | pg.Pool, token: string, nodeId: string): Promise<{ nodeId: string; usedAt: Date; joins: number; maxJoins: number }> {
  // A malformed token is refused without touching the database (nor hashing megabytes).
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) {
    throw new PraetorError('JOIN_TOKEN_INVALID', 'the join token is malformed (a join token looks like pjt_ followed by 43 characters)', { hint: `copy the whole token printed by \`praetor cluster token create\`, or ${CREATE_HINT}` });
  }
  if (!CLUSTER_ID.test(nodeId)) {
    throw new PraetorError('BAD_ARGUMENT', `"${nodeId.slice(0, 80)}" is not a valid node id`, { hint: 'use 1-63 lowercase letters, digits and dashes, e.g. the host name in lowercase' });
  }
  if (isPool(client)) {
    const c = await client.connect();
    try {
      await c.query('BEGIN');
      const r = await redeemJoinToken(c, token, nodeId);
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally { c.release(); }
  }
  const hash = joinTokenHash(token);
  // The row lock this UPDATE takes orders racing joins; each re-checks the count after the wait.
  const r = await client.query<{ used_at: Date; joins: number; max_joins: number }>(
    `UPDATE cluster_join_tokens SET joins = joins + 1, used_at = now(), used_by_node = $2
     WHERE token_hash = $1 AND joins < max_joins AND expires_at > now() AND (for_node IS NULL OR for_node = $2)
     RETURNING used_at, joins, max_joins`, [hash, nodeId]);
  if (r.rows.length === 1) {
    const row = r.rows[0]!;
    if (row.max_joins > 1) {
      // A pool's token mints new identities only: re-keying a node that has a current
      // certificate (its twin, to whoever holds the token) needs a token made for that node.
      const held = await client.query<{ not_after: Date }>(`SELECT not_after FROM cluster_node_certs WHERE node_id = $1 AND not_after > now()`, [nodeId]);
      if (held.rows.length) {
        throw new PraetorError('CONFLICT', `node ${nodeId} already holds a certificate (until ${held.rows[0]!.not_after.toISOString()}); a bootstrap token admits new nodes only`, {
          hint: `keep the node's identity directory (a node renews its own certificate), or re-key it with a one-time token: \`praetor cluster token create --cluster URL --node ${nodeId}\``,
        });
      }
    }
    const rec = await client.query(`INSERT INTO cluster_join_redemptions (token_hash, node_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1`, [hash, nodeId]);
    if (rec.rowCount === 0) {
      throw new PraetorError('JOIN_TOKEN_USED', `node ${nodeId} already joined with this token; each join with a token is a distinct node`, { hint: `keep the node's identity directory, or re-key it with \`praetor cluster token create --cluster URL --node ${nodeId}\`` });
    }
    return { nodeId, usedAt: row.used_at, joins: row.joins, maxJoins: row.max_joins };
  }
  // Not claimed: say why (read after the failed claim; the token is spent or dead either way).
  const why = await client.query<{ expired: boolean; used_at: Date | null; used_by_node: string | null; for_node: string | null; expires_at: Date; joins: number; max_joins: number }>(
    `SELECT expires_at <= now() AS expired, used_at, used_by_node, for_node, expires_at, joins, max_joins FROM cluster_join_tokens WHERE token_hash = $1`, [hash]);
  const row = why.rows[0];
  if (!row) throw new PraetorError('JOIN_TOKEN_INVALID', 'the join token is not known to this cluster', { hint: `check that the node joins the cluster the token was made for, or ${CREATE_HINT}` });
  if (row.joins >= row.max_joins) {
    if (row.max_joins === 1) {
      throw new PraetorError('JOIN_TOKEN_USED', `the join token was already used (by node ${row.used_by_node ?? '?'} at ${row.used_at?.toISOString() ?? '?'}); a join token works once`, { hint: CREATE_HINT });
    }
    throw new PraetorError('JOIN_TOKEN_USED', `the bootstrap join token is used up: all ${row.max_joins} of its joins were made (the last by node ${row.used_by_node ?? '?'} at ${row.used_at?.toISOString() ?? '?'})`, { hint: BOOTSTRAP_HINT });
  }
  if (row.expired) throw new PraetorError('JOIN_TOKEN_EXPIRED', `the join token expired at ${row.expires_at.toISOString()}${row.max_joins > 1 ? ` (${row.joins} of its ${row.max_joins} joins made)` : ''}`, { hint: row.max_joins > 1 ? BOOTSTRAP_HINT : `${CREATE_HINT} (use --ttl to give it longer)` });
  if (row.for_node !== null && row.for_node !== nodeId) {
    throw new PraetorError('JOIN_TOKEN_INVALID', `the join token is for node ${row.for_node}, not ${nodeId}`, { hint: `join as --node-id ${row.for_node}, or ${CREATE_HINT.replace('URL`', `URL --node ${nodeId}\``)}` });
  }
  // Claimable a moment ago but not now: another redemption won the race.
  throw new PraetorError('JOIN_TOKEN_USED', 'the join token was used by another join at the same time', { hint: CREATE_HINT });
}

/**
 * Records the certificate a join or a renewal issued as the node's current one. A renewal
 * passes the fingerprint of the certificate it presented: the swap succeeds only if that is
 * still the node's current certificate (threat: an old, stolen certificate renewed into a new
 * one after the node moved on; a replayed renewal). Returns false when it is not.
 */
export async function recordNodeCert(client: pg.ClientBase, o: { nodeId: string; fingerprint256: string; notAfter: Date; issuedBy: string; replaces?: string }): Promise<boolean> {
  if (o.replaces === undefined) {
    await client.query(
      `INSERT INTO cluster_node_certs (node_id, fingerprint256, not_after, issued_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (node_id) DO UPDATE SET fingerprint256 = $2, not_after = $3, issued_by = $4, issued_at = now()`,
      [o.nodeId, o.fingerprint256, o.notAfter, o.issuedBy]);
    return true;
  }
  const up = await client.query(`UPDATE cluster_node_certs SET fingerprint256 = $2, not_after = $3, issued_by = $4, issued_at = now() WHERE node_id = $1 AND fingerprint256 = $5 RETURNING 1`,
    [o.nodeId, o.fingerprint256, o.notAfter, o.issuedBy, o.replaces]);
  if (up.rowCount) return true;
  // A node that joined before certificates were recorded: its first renewal records it.
  const ins = await client.query(`INSERT INTO cluster_node_certs (node_id, fingerprint256, not_after, issued_by) VALUES ($1, $2, $3, $4) ON CONFLICT (node_id) DO NOTHING RETURNING 1`,
    [o.nodeId, o.fingerprint256, o.notAfter, o.issuedBy]);
  return (ins.rowCount ?? 0) > 0;
}

/** Drops tokens that can no longer be redeemed and are older than keepMs (default a day). */
export async function pruneJoinTokens(pool: pg.Pool | pg.ClientBase, keepMs = 86_400_000): Promise<number> {
  const r = await pool.query(`DELETE FROM cluster_join_tokens WHERE (joins >= max_joins OR expires_at <= now()) AND created_at < now() - make_interval(secs => $1::double precision / 1000)`, [keepMs]);
  await pool.query(`DELETE FROM cluster_join_redemptions r WHERE NOT EXISTS (SELECT 1 FROM cluster_join_tokens t WHERE t.token_hash = r.token_hash)`);
  return r.rowCount ?? 0;
}
