// Renewing a node's certificate without a join token: the node proves it holds the key of its
// current certificate by signing a statement that names its id, its (new) advertise address, the
// time, and the hash of a CSR for a new key. Used when the node's address changes (a rescheduled
// pod with a new IP: its kept certificate no longer names the address it registers) and when its
// certificate nears expiry. Threats and answers:
//  - a stolen, older certificate renewed into a fresh one: the control replica renews only the
//    node's *current* certificate (cluster_node_certs, swapped atomically), so once the node has
//    moved on, older ones renew nothing; an expired one never renews (that takes a new token);
//  - a replayed renewal: the statement is fresh for 5 minutes only, and a replay swaps nothing
//    (the certificate it presents is no longer current); it would only buy a certificate for a
//    key the replayer does not hold;
//  - a node asking for another identity: the new certificate names the id of the presented one.
import { X509Certificate as NodeX509, createHash, createPrivateKey, sign, verify } from 'node:crypto';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';
import { identityOfDer, renewHint } from './pki-identity.ts';
import { NodeId } from './schema.ts';

export const RENEW_PATH = '/cluster/v1/renew';
/** how far a renewal statement's time may be from the replica's clock. */
export const RENEW_FRESH_MS = 5 * 60_000;

export const RenewRequestSchema = z.object({
  nodeId: NodeId,
  cert: z.string().min(1).max(16_384).describe('the node\'s current certificate (PEM)'),
  csr: z.string().min(1).max(16_384).describe('PEM PKCS#10 request for the node\'s new ECDSA P-256 key'),
  advertise: z.string().min(1).max(300).describe('https://host:port where control replicas reach this node now'),
  signedAt: z.string().datetime().describe('when the node signed (ISO 8601)'),
  signature: z.string().min(1).max(1024).describe('base64 ECDSA SHA-256 signature of renewStatement() with the current certificate\'s key'),
}).strict();
export type RenewRequest = z.infer<typeof RenewRequestSchema>;

/** The bytes a renewal signs: a fixed label (not reusable as any other signature), then the fields. */
export function renewStatement(r: Pick<RenewRequest, 'nodeId' | 'advertise' | 'signedAt' | 'csr'>): Buffer {
  return Buffer.from(['praetor-node-renewal-v1', r.nodeId, r.advertise, r.signedAt, createHash('sha256').update(r.csr).digest('hex')].join('\n'));
}

/** The node's side: sign a renewal with the current key. */
export function signRenewal(keyPem: string, r: Omit<RenewRequest, 'signature' | 'signedAt'>, now = new Date()): RenewRequest {
  const signedAt = now.toISOString();
  const signature = sign('sha256', renewStatement({ ...r, signedAt }), createPrivateKey(keyPem)).toString('base64');
  return { ...r, signedAt, signature };
}

/**
 * The replica's side, before anything is signed: the presented certificate is a current node
 * certificate of this CA for `nodeId`, and the statement is fresh and signed by its key.
 * Returns the presented certificate's fingerprint (the one that must still be current).
 */
export function checkRenewal(r: RenewRequest, caCertPem: string, now = new Date()): { fingerprint256: string } {
  const refuse = (msg: string, code: 'CERT_INVALID' | 'CERT_EXPIRED' = 'CERT_INVALID') => new PraetorError(code, `renewal of node ${r.nodeId} refused: ${msg}`, { hint: renewHint('node', r.nodeId) });
  let cert: NodeX509;
  try { cert = new NodeX509(r.cert); } catch { throw refuse('the presented certificate is not a PEM certificate'); }
  const ca = new NodeX509(caCertPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw refuse('the presented certificate is not signed by this cluster\'s CA');
  const who = identityOfDer(cert.raw);
  if (who?.role !== 'node' || who.id !== r.nodeId) throw refuse(`the presented certificate is ${who ? `${who.role} ${who.id}` : 'no cluster identity'}, not node ${r.nodeId}`);
  if (now.getTime() > new Date(cert.validTo).getTime()) throw refuse(`the presented certificate expired on ${new Date(cert.validTo).toISOString()}; an expired certificate does not renew`, 'CERT_EXPIRED');
  if (now.getTime() < new Date(cert.validFrom).getTime()) throw refuse('the presented certificate is not valid yet (check the clocks)');
  const at = Date.parse(r.signedAt);
  if (!Number.isFinite(at) || Math.abs(now.getTime() - at) > RENEW_FRESH_MS) throw refuse(`the renewal was signed at ${r.signedAt}, more than ${RENEW_FRESH_MS / 60_000} minutes from this replica's clock (check NTP on both)`);
  let ok = false;
  try { ok = verify('sha256', renewStatement(r), cert.publicKey, Buffer.from(r.signature, 'base64')); } catch { ok = false; }
  if (!ok) throw refuse('the renewal is not signed by the key of the presented certificate');
  return { fingerprint256: cert.fingerprint256 };
}
