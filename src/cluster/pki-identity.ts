// Who a cluster certificate says its holder is. The role and the id live in one SAN URI,
// `urn:praetor:node:<nodeId>` or `urn:praetor:control:<name>`, written only by the cluster CA
// (the CSR's own subject and extensions are ignored when signing). Threat: a node that could
// pass for a control replica, or for another node, could issue calls to its peers or receive
// the calls (and the sandboxes' data) meant for another host; so every check here fails closed:
// no URI, two URIs, an unknown role or a malformed id all mean "no identity".
import { X509Certificate as NodeX509, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import '../x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import { PraetorError, errorMessage } from '../errors.ts';

export type ClusterRole = 'node' | 'control';
export const CLUSTER_ROLES: readonly ClusterRole[] = ['node', 'control'];

/** An id as a SAN URI carries it: the node-id rule (lowercase, digits, dashes, ≤ 63). */
export const CLUSTER_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Files of an identity directory (a node's or a control replica's). */
export const IDENTITY_FILES = { cert: 'cert.pem', key: 'key.pem', ca: 'ca.pem' } as const;

export function roleUrn(role: ClusterRole, id: string): string {
  return `urn:praetor:${role}:${id}`;
}

export interface PeerIdentity { role: ClusterRole; id: string }

/** The one praetor identity in a certificate's SAN URIs, or undefined (none, several, malformed). */
export function identityOfCert(cert: x509.X509Certificate): PeerIdentity | undefined {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  const ours = uris.filter((u) => u.startsWith('urn:praetor:'));
  if (ours.length !== 1) return undefined;
  const m = /^urn:praetor:(node|control):([a-z0-9][a-z0-9-]{0,62})$/.exec(ours[0]!);
  return m ? { role: m[1] as ClusterRole, id: m[2]! } : undefined;
}

/** The identity in a DER certificate as a TLS peer sent it (getPeerCertificate().raw). */
export function identityOfDer(raw: Buffer | undefined): PeerIdentity | undefined {
  if (!raw || raw.length === 0) return undefined;
  try { return identityOfCert(new x509.X509Certificate(raw)); } catch { return undefined; }
}

/**
 * The certificates of a CA bundle. ca.pem may hold several CAs while a cluster rotates its CA
 * (old and new side by side); a certificate signed by any of them is the cluster's.
 */
export function caBundle(pem: string): NodeX509[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM certificate in the CA bundle');
  return blocks.map((b) => new NodeX509(b));
}

/** Whether `cert` is signed by one of the bundle's CAs. */
export function signedByBundle(cert: NodeX509, bundle: NodeX509[]): boolean {
  return bundle.some((ca) => ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey));
}

export interface ClusterIdentity {
  dir: string;
  role: ClusterRole;
  id: string;
  certPem: string;
  keyPem: string;
  caPem: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
}

function readPem(dir: string, name: string, what: string, hint: string): string {
  try { return readFileSync(join(dir, name), 'utf8'); } catch (e) {
    throw new PraetorError('CERT_INVALID', `cannot read the ${what} ${join(dir, name)}: ${errorMessage(e)}`, { hint, cause: e });
  }
}

export function renewHint(role: ClusterRole, id: string): string {
  return role === 'node'
    ? `make a join token (\`praetor cluster token create --cluster URL --node ${id}\`) and rejoin node ${id} (\`praetor cluster join\`), which writes a new key and certificate`
    : `issue a new certificate with \`praetor cluster issue-control --dir CA_DIR --name ${id} --out DIR\` and restart that replica`;
}

/**
 * Reads and checks an identity directory (cert.pem, key.pem, ca.pem): the certificate is
 * signed by ca.pem, matches key.pem, carries exactly one identity of the expected role, and is
 * valid now (skipDates: all but that, for a report of an expired one). Synchronous, so TLS option builders can call it at start-up and on rotation.
 */
export function loadIdentity(dir: string, expect: ClusterRole, o: { now?: Date; skipDates?: boolean } = {}): ClusterIdentity {
  const setup = expect === 'node' ? 'join this node with `praetor cluster join` (or `praetor serve --role node` with a join token)' : 'issue one with `praetor cluster issue-control --dir CA_DIR --name NAME --out DIR`';
  const certPem = readPem(dir, IDENTITY_FILES.cert, `${expect} certificate`, setup);
  const keyPem = readPem(dir, IDENTITY_FILES.key, `${expect} key`, setup);
  const caPem = readPem(dir, IDENTITY_FILES.ca, 'cluster CA bundle', `copy the cluster's ca.pem (from \`praetor cluster init\`) into ${dir}`);
  let cert: NodeX509; let cas: NodeX509[]; let parsed: x509.X509Certificate;
  try {
    cert = new NodeX509(certPem); cas = caBundle(caPem); parsed = new x509.X509Certificate(certPem);
  } catch (e) {
    throw new PraetorError('CERT_INVALID', `${dir}: cert.pem or ca.pem is not a PEM certificate: ${errorMessage(e)}`, { hint: setup, cause: e });
  }
  if (!signedByBundle(cert, cas)) {
    throw new PraetorError('CERT_INVALID', `${join(dir, IDENTITY_FILES.cert)} is not signed by the cluster CA in ${join(dir, IDENTITY_FILES.ca)}`, { hint: `put this cluster's ca.pem beside it, or ${setup}` });
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('the key does not match the certificate');
  } catch (e) {
    throw new PraetorError('CERT_INVALID', `${join(dir, IDENTITY_FILES.key)} does not belong to ${join(dir, IDENTITY_FILES.cert)}: ${errorMessage(e)}`, { hint: setup, cause: e });
  }
  const who = identityOfCert(parsed);
  if (!who) throw new PraetorError('CERT_INVALID', `${join(dir, IDENTITY_FILES.cert)} carries no praetor identity (SAN URI urn:praetor:ROLE:ID)`, { hint: setup });
  if (who.role !== expect) {
    throw new PraetorError('CERT_WRONG_ROLE', `${join(dir, IDENTITY_FILES.cert)} is a ${who.role} certificate (${who.id}), and a ${expect} certificate is needed here`, { hint: `point this at the ${expect}'s identity directory, or ${setup}` });
  }
  const id: ClusterIdentity = {
    dir, role: who.role, id: who.id, certPem, keyPem, caPem,
    notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo), fingerprint256: cert.fingerprint256,
  };
  if (!o.skipDates) assertCurrent(id, o.now);
  return id;
}

/** CERT_EXPIRED after notAfter, CERT_INVALID before notBefore (a clock that is off). */
export function assertCurrent(id: Pick<ClusterIdentity, 'role' | 'id' | 'notBefore' | 'notAfter' | 'dir'>, now = new Date()): void {
  if (now.getTime() > id.notAfter.getTime()) {
    throw new PraetorError('CERT_EXPIRED', `the ${id.role} certificate of ${id.id} in ${id.dir} expired on ${id.notAfter.toISOString()}`, { hint: renewHint(id.role, id.id) });
  }
  if (now.getTime() < id.notBefore.getTime()) {
    throw new PraetorError('CERT_INVALID', `the ${id.role} certificate of ${id.id} in ${id.dir} is not valid before ${id.notBefore.toISOString()}`, { hint: 'check this host\'s clock (NTP); certificates are checked against it' });
  }
}

export interface ExpiryReport {
  role: ClusterRole; id: string; notAfter: string; msLeft: number; expired: boolean;
  /** under a fifth of its lifetime left: time to rotate. */
  renewSoon: boolean;
  message: string;
}

/** How long an identity has left, in words an operator can act on (for status and logs). */
export function expiryReport(id: Pick<ClusterIdentity, 'role' | 'id' | 'notBefore' | 'notAfter'>, now = new Date()): ExpiryReport {
  const msLeft = id.notAfter.getTime() - now.getTime();
  const lifetime = Math.max(1, id.notAfter.getTime() - id.notBefore.getTime());
  const expired = msLeft < 0;
  const renewSoon = !expired && msLeft < lifetime / 5;
  const days = (Math.abs(msLeft) / 86_400_000).toFixed(1);
  const what = `${id.role} certificate ${id.id}`;
  const message = expired ? `${what} expired ${days} days ago (${id.notAfter.toISOString()}); ${renewHint(id.role, id.id)}`
    : `${what} expires in ${days} days (${id.notAfter.toISOString()})${renewSoon ? `; renew it now: ${renewHint(id.role, id.id)}` : ''}`;
  return { role: id.role, id: id.id, notAfter: id.notAfter.toISOString(), msLeft, expired, renewSoon, message };
}
