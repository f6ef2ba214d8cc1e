// One-time join tokens in the cluster database. Threat: a token is a capability to become a
// node (to receive sandboxes and their data), so only its SHA-256 is stored (a database read
// does not yield a usable token), it expires, and it is redeemed at most once: one UPDATE that
// claims it only while unused and unexpired, so two nodes racing with the same token cannot
// both win. A token can be bound to one node id, so a leaked token cannot mint that id's twin.
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
`;

const PREFIX = 'pjt_';
const TOKEN_SHAPE = /^pjt_[A-Za-z0-9_-]{43}$/;
export const MAX_TOKEN_TTL_MS = 7 * 86_400_000;

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

export interface JoinToken { token: string; expiresAt: Date; forNode: string | undefined }

/** A new token (shown once; only its hash is stored), valid for ttlMs. */
export async function createJoinToken(pool: pg.Pool, ttlMs: number, o: { nodeId?: string } = {}): Promise<JoinToken> {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) {
    throw new PraetorError('BAD_ARGUMENT', `a join token lives between 1 ms and 7 days, not ${ttlMs} ms`, { hint: 'pass --ttl 1h (a short life limits what a leaked token is worth)' });
  }
  if (o.nodeId !== undefined && !CLUSTER_ID.test(o.nodeId)) {
    throw new PraetorError('BAD_ARGUMENT', `"${o.nodeId.slice(0, 80)}" is not a valid node id`, { hint: 'use 1-63 lowercase letters, digits and dashes' });
  }
  await ensureJoinTokenSchema(pool);
  const token = PREFIX + randomBytes(32).toString('base64url');
  const r = await pool.query<{ expires_at: Date }>(
    `INSERT INTO cluster_join_tokens (token_hash, expires_at, for_node) VALUES ($1, now() + make_interval(secs => $2::double precision / 1000), $3) RETURNING expires_at`,
    [joinTokenHash(token), ttlMs, o.nodeId ?? null]);
  return { token, expiresAt: r.rows[0]!.expires_at, forNode: o.nodeId };
}

const CREATE_HINT = 'ask the operator for a new one: `praetor cluster token create --cluster URL`';

/**
 * Claims a token for `nodeId`, atomically. Pass the client of an open transaction to make the
 * claim undone when what follows (signing the certificate) fails. Throws JOIN_TOKEN_INVALID,
 * JOIN_TOKEN_EXPIRED or JOIN_TOKEN_USED, each saying how to get a good one.
 */
export async function redeemJoinToken(client: pg.ClientBase | pg.Pool, token: string, nodeId: string): Promise<{ nodeId: string; usedAt: Date }> {
  // A malformed token is refused without touching the database (nor hashing megabytes).
  if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) {
    throw new PraetorError('JOIN_TOKEN_INVALID', 'the join token is malformed (a join token looks like pjt_ followed by 43 characters)', { hint: `copy the whole token printed by \`praetor cluster token create\`, or ${CREATE_HINT}` });
  }
  if (!CLUSTER_ID.test(nodeId)) {
    throw new PraetorError('BAD_ARGUMENT', `"${nodeId.slice(0, 80)}" is not a valid node id`, { hint: 'use 1-63 lowercase letters, digits and dashes, e.g. the host name in lowercase' });
  }
  const hash = joinTokenHash(token);
  const r = await client.query<{ used_at: Date }>(
    `UPDATE cluster_join_tokens SET used_at = now(), used_by_node = $2
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() AND (for_node IS NULL OR for_node = $2)
     RETURNING used_at`, [hash, nodeId]);
  if (r.rows.length === 1) return { nodeId, usedAt: r.rows[0]!.used_at };
  // Not claimed: say why (read after the failed claim; the token is spent or dead either way).
  const why = await client.query<{ expired: boolean; used_at: Date | null; used_by_node: string | null; for_node: string | null; expires_at: Date }>(
    `SELECT expires_at <= now() AS expired, used_at, used_by_node, for_node, expires_at FROM cluster_join_tokens WHERE token_hash = $1`, [hash]);
  const row = why.rows[0];
  if (!row) throw new PraetorError('JOIN_TOKEN_INVALID', 'the join token is not known to this cluster', { hint: `check that the node joins the cluster the token was made for, or ${CREATE_HINT}` });
  if (row.used_at) {
    throw new PraetorError('JOIN_TOKEN_USED', `the join token was already used (by node ${row.used_by_node ?? '?'} at ${row.used_at.toISOString()}); a join token works once`, { hint: CREATE_HINT });
  }
  if (row.expired) throw new PraetorError('JOIN_TOKEN_EXPIRED', `the join token expired at ${row.expires_at.toISOString()}`, { hint: `${CREATE_HINT} (use --ttl to give it longer)` });
  if (row.for_node !== null && row.for_node !== nodeId) {
    throw new PraetorError('JOIN_TOKEN_INVALID', `the join token is for node ${row.for_node}, not ${nodeId}`, { hint: `join as --node-id ${row.for_node}, or ${CREATE_HINT.replace('URL`', `URL --node ${nodeId}\``)}` });
  }
  // Claimable a moment ago but not now: another redemption won the race.
  throw new PraetorError('JOIN_TOKEN_USED', 'the join token was used by another join at the same time', { hint: CREATE_HINT });
}

/** Drops tokens that can no longer be redeemed and are older than keepMs (default a day). */
export async function pruneJoinTokens(pool: pg.Pool | pg.ClientBase, keepMs = 86_400_000): Promise<number> {
  const r = await pool.query(`DELETE FROM cluster_join_tokens WHERE (used_at IS NOT NULL OR expires_at <= now()) AND created_at < now() - make_interval(secs => $1::double precision / 1000)`, [keepMs]);
  return r.rowCount ?? 0;
}
