// POST /cluster/v1/join on a control replica: a node trades a join token and a CSR for a node
// certificate; POST /cluster/v1/renew: a node trades its current certificate (and a statement
// signed with its key, pki-renew.ts) for a new one, e.g. for a new address. The replica holds the CA key (a mounted Secret); the node never does.
// Threat: a token holder asking for more than a node is: the CSR's subject, SANs and
// extensions are all ignored, and the certificate names exactly the node id the token was
// redeemed for, with the node role and nothing else. The token is claimed in the same
// transaction that signs, so a failure to sign leaves it usable; a bad CSR is refused before
// the token is touched.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import '../x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import type pg from 'pg';
import { z } from 'zod';
import { PraetorError, errorMessage, isPraetorError } from '../errors.ts';
import { loadClusterCa, NODE_CERT_MS, signLeaf } from './pki-ca.ts';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { ensureJoinTokenSchema, recordNodeCert, redeemJoinToken, registerBootstrapToken } from './pki-join-tokens.ts';
import { RENEW_PATH, RenewRequestSchema, checkRenewal } from './pki-renew.ts';
import { NodeId } from './schema.ts';

export const JOIN_PATH = '/cluster/v1/join';

export const JoinRequestSchema = z.object({
  token: z.string().min(1).max(200).describe('the join token from `praetor cluster token create` (or the node pool\'s bootstrap token)'),
  nodeId: NodeId,
  csr: z.string().min(1).max(16_384).describe('PEM PKCS#10 request for the node\'s own ECDSA P-256 key'),
  advertise: z.string().min(1).max(300).describe('https://host:port where control replicas reach this node; its host goes into the certificate'),
}).strict();
export type JoinRequest = z.infer<typeof JoinRequestSchema>;

export const JoinResponseSchema = z.object({
  nodeId: NodeId,
  cert: z.string().describe('the node certificate (PEM), signed by the cluster CA'),
  ca: z.string().describe('the cluster CA certificate (PEM)'),
  notAfter: z.string().describe('when the certificate expires (ISO 8601); rejoin before'),
}).strict();
export type JoinResponse = z.infer<typeof JoinResponseSchema>;

/** The host of an advertise address (https://host:port, host:port or host), for the SAN. */
export function advertiseHost(advertise: string): string {
  let u: URL;
  try { u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(advertise) ? advertise : `https://${advertise}`); } catch {
    throw new PraetorError('BAD_ARGUMENT', `advertise address "${advertise.slice(0, 100)}" is not host:port or https://host:port`, { hint: 'for example --advertise https://10.0.0.5:7443' });
  }
  if (u.protocol !== 'https:' || !u.hostname || u.pathname.replace(/\/$/, '') !== '' || u.username || u.search) {
    throw new PraetorError('BAD_ARGUMENT', `advertise address "${advertise.slice(0, 100)}" must be https://host:port with no path`, { hint: 'node links are TLS only: for example --advertise https://node-1.praetor.svc:7443' });
  }
  return u.hostname.replace(/^\[(.*)\]$/, '$1');
}

async function checkedCsr(pem: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try { csr = new x509.Pkcs10CertificateRequest(pem); } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `csr is not a PEM certificate request: ${errorMessage(e)}`, { hint: 'send the CSR that joinCluster() makes (PKCS#10, PEM)', cause: e });
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
    throw new PraetorError('BAD_ARGUMENT', `csr key is ${alg.name ?? '?'} ${alg.namedCurve ?? ''}; cluster certificates use ECDSA P-256`, { hint: 'make the node key with ECDSA P-256 (joinCluster() does)' });
  }
  // Proof that the caller holds the private key: otherwise anyone could get a certificate for
  // a public key copied from another node's certificate and replay its identity later.
  if (!await csr.verify().catch(() => false)) {
    throw new PraetorError('BAD_ARGUMENT', 'csr signature does not verify', { hint: 'sign the CSR with the key it names (joinCluster() does)' });
  }
  return csr;
}

export interface JoinRouteOptions {
  pool: pg.Pool;
  /** the directory holding ca.pem and ca-key.pem (the mounted CA Secret). */
  caDir: string;
  /** node certificate lifetime (default 30 days). */
  validityMs?: number;
  /** one line per join and per refusal (node id, reason; never the token). */
  log?: (msg: string) => void;
  /**
   * A node pool's bootstrap token (the chart's Secret): registered on first sight with this
   * budget of joins and life; later starts leave it as it is (registerBootstrapToken).
   */
  bootstrap?: { token: string; maxJoins: number; ttlMs: number };
}

const joinPlugin: FastifyPluginAsync<JoinRouteOptions> = async (app, o) => {
  const ca = await loadClusterCa(o.caDir);
  await ensureJoinTokenSchema(o.pool);
  const log = o.log ?? (() => {});
  if (o.bootstrap) {
    const b = await registerBootstrapToken(o.pool, o.bootstrap.token, o.bootstrap);
    const state = b.expired ? `expired at ${b.expiresAt.toISOString()}` : b.joins >= b.maxJoins ? 'used up' : `valid until ${b.expiresAt.toISOString()}`;
    log(`join: bootstrap join token ${b.created ? 'registered' : 'already registered'}: ${b.joins} of ${b.maxJoins} joins made, ${state}${!b.created && b.maxJoins !== o.bootstrap.maxJoins ? ` (its budget was fixed at ${b.maxJoins} when first registered; rotate the token to admit more nodes)` : ''}`);
  }
  // Encapsulated: this handler answers only this plugin's route, in the API's error shape.
  app.setErrorHandler((err, _req, reply) => {
    const pe = isPraetorError(err) ? err
      : (err as { statusCode?: number }).statusCode !== undefined && (err as { statusCode: number }).statusCode < 500
        ? new PraetorError('BAD_ARGUMENT', `malformed join request: ${errorMessage(err)}`, { hint: 'send JSON {token, nodeId, csr, advertise} with Content-Type: application/json' })
        : new PraetorError('INTERNAL', 'the join failed inside the control replica', { hint: 'see the control replica\'s log', cause: err });
    if (pe.code === 'INTERNAL') log(`join: internal error: ${err instanceof Error ? err.stack : errorMessage(err)}`);
    return reply.status(pe.httpStatus).send({ error: pe.toJSON() });
  });
  app.post(JOIN_PATH, { bodyLimit: 64 * 1024 }, async (req, reply) => {
    const parsed = JoinRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new PraetorError('BAD_ARGUMENT', `join request: ${i.path.join('.') || 'body'}: ${i.message}`, { hint: 'send JSON {token, nodeId, csr, advertise} (joinCluster() does)' });
    }
    const body = parsed.data;
    const host = advertiseHost(body.advertise);
    const csr = await checkedCsr(body.csr);
    const client = await o.pool.connect();
    try {
      await client.query('BEGIN');
      try {
        const used = await redeemJoinToken(client, body.token, body.nodeId);
        const leaf = await signLeaf(ca, { role: 'node', id: body.nodeId, publicKey: csr.publicKey, hosts: [host], validityMs: o.validityMs ?? NODE_CERT_MS });
        await recordNodeCert(client, { nodeId: body.nodeId, fingerprint256: new NodeX509(leaf.certPem).fingerprint256, notAfter: leaf.notAfter, issuedBy: 'join' });
        await client.query('COMMIT');
        log(`join: node ${body.nodeId} joined (advertise ${body.advertise}, serial ${leaf.serial}, until ${leaf.notAfter.toISOString()}; token join ${used.joins} of ${used.maxJoins})`);
        const res: JoinResponse = { nodeId: body.nodeId, cert: leaf.certPem, ca: ca.certPem, notAfter: leaf.notAfter.toISOString() };
        return reply.send(res);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (isPraetorError(e)) log(`join: node ${body.nodeId} refused: ${e.code}: ${e.message}`);
        throw e;
      }
    } finally {
      client.release();
    }
  });
  app.post(RENEW_PATH, { bodyLimit: 64 * 1024 }, async (req, reply) => {
    const parsed = RenewRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new PraetorError('BAD_ARGUMENT', `renew request: ${i.path.join('.') || 'body'}: ${i.message}`, { hint: 'send JSON {nodeId, cert, csr, advertise, signedAt, signature} (renewNodeIdentity() does)' });
    }
    const body = parsed.data;
    const host = advertiseHost(body.advertise);
    const csr = await checkedCsr(body.csr);
    const client = await o.pool.connect();
    try {
      const presented = checkRenewal(body, ca.certPem);
      await client.query('BEGIN');
      try {
        const leaf = await signLeaf(ca, { role: 'node', id: body.nodeId, publicKey: csr.publicKey, hosts: [host], validityMs: o.validityMs ?? NODE_CERT_MS });
        const swapped = await recordNodeCert(client, { nodeId: body.nodeId, fingerprint256: new NodeX509(leaf.certPem).fingerprint256, notAfter: leaf.notAfter, issuedBy: 'renewal', replaces: presented.fingerprint256 });
        if (!swapped) {
          throw new PraetorError('CERT_INVALID', `renewal of node ${body.nodeId} refused: the presented certificate is not the node's current one (a later join or renewal replaced it)`, {
            hint: `renew from the identity directory the node uses now, or rejoin with a one-time token: \`praetor cluster token create --cluster URL --node ${body.nodeId}\``,
          });
        }
        await client.query('COMMIT');
        log(`join: node ${body.nodeId} renewed its certificate (advertise ${body.advertise}, serial ${leaf.serial}, until ${leaf.notAfter.toISOString()})`);
        const res: JoinResponse = { nodeId: body.nodeId, cert: leaf.certPem, ca: ca.certPem, notAfter: leaf.notAfter.toISOString() };
        return reply.send(res);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    } catch (e) {
      if (isPraetorError(e)) log(`join: renewal of node ${body.nodeId} refused: ${e.code}: ${e.message}`);
      throw e;
    } finally {
      client.release();
    }
  });
};

/**
 * Registers POST /cluster/v1/join on `app` (loads the CA and creates the token table first, so
 * a replica without its CA Secret fails at start, not at the first join). The route takes no
 * API token: the join token is its credential, so a server with an API-token hook must let
 * JOIN_PATH through it.
 */
export async function registerJoinRoute(app: FastifyInstance, o: JoinRouteOptions): Promise<void> {
  await app.register(joinPlugin, o);
}
