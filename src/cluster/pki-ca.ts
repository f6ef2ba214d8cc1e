// The cluster CA and the leaves it signs. Threat: whoever holds the CA key can mint a control
// certificate and command every node, so the key is written once (0600, never overwritten),
// lives only where control replicas mount it as a Secret, and never travels to a node: a node
// sends a CSR and gets back a certificate. ECDSA P-256 throughout (fast handshakes, small certs);
// leaves are short-lived (node 30 days, control 90 by default) so a stolen one ages out.
import { X509Certificate as NodeX509, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import '../x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import { PraetorError, errorMessage } from '../errors.ts';
import { CLUSTER_ID, IDENTITY_FILES, roleUrn, type ClusterRole } from './pki-identity.ts';

export const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const CA_FILES = { cert: 'ca.pem', key: 'ca-key.pem' } as const;
export const NODE_CERT_MS = 30 * 86_400_000;
export const CONTROL_CERT_MS = 90 * 86_400_000;
const CA_MS = 10 * 365 * 86_400_000;
/** Leaves start a few minutes in the past: a peer whose clock lags slightly still accepts them. */
const SKEW_MS = 5 * 60_000;

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export interface ClusterCa { dir: string; certPem: string; cert: x509.X509Certificate; key: CryptoKey }

const serial = () => randomBytes(16).toString('hex').replace(/^[89a-f]/, '1');

export function toPem(der: ArrayBuffer | Buffer, label: string): string {
  const b64 = Buffer.from(der as ArrayBuffer).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export async function newKeyPair(): Promise<{ keys: CryptoKeyPair; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as CryptoKeyPair;
  return { keys, keyPem: toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY') };
}

/** Writes `data` to a new file only (O_EXCL): an existing file is never replaced. */
function writeNew(path: string, data: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try { writeSync(fd, data); } finally { closeSync(fd); }
  chmodSync(path, mode); // the umask must not widen or narrow what we meant
}

/** Replaces a file atomically (temp + rename): a reader sees the old or the new, never half. */
export function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/**
 * `praetor cluster init`: a new cluster CA in `dir` (ca.pem 0644, ca-key.pem 0600, dir 0700).
 * Refuses when either file exists: replacing a CA silently would cut every node off.
 */
export async function initClusterCa(dir: string, o: { name?: string } = {}): Promise<{ certPath: string; keyPath: string; fingerprint256: string }> {
  const certPath = join(dir, CA_FILES.cert); const keyPath = join(dir, CA_FILES.key);
  for (const p of [keyPath, certPath]) {
    if (existsSync(p)) {
      throw new PraetorError('CONFLICT', `${p} exists: ${dir} already holds a cluster CA, and it is never overwritten`, {
        hint: `use the existing CA, or to start a new cluster pick another --dir (every node must then rejoin with the new ca.pem)`,
      });
    }
  }
  try { mkdirSync(dir, { recursive: true, mode: 0o700 }); } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `cannot create ${dir}: ${errorMessage(e)}`, { hint: 'pick a directory you can write, e.g. --dir ./cluster-ca', cause: e });
  }
  const { keys, keyPem } = await newKeyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${o.name ?? `Praetor cluster CA ${randomBytes(4).toString('hex')}`}, O=Praetor`,
    notBefore: new Date(now - SKEW_MS), notAfter: new Date(now + CA_MS),
    keys, signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  // The key first, exclusively: two concurrent inits cannot both win, and a crash between the
  // two writes leaves a key without a cert, which the next init refuses to overwrite (say so).
  try {
    writeNew(keyPath, keyPem, 0o600);
  } catch (e) {
    throw new PraetorError('CONFLICT', `cannot create ${keyPath}: ${errorMessage(e)}`, { hint: 'another init ran at the same time, or the directory is not writable', cause: e });
  }
  try { writeNew(certPath, cert.toString('pem') + '\n', 0o644); } catch (e) {
    rmSync(keyPath, { force: true });
    throw new PraetorError('CONFLICT', `cannot create ${certPath}: ${errorMessage(e)}`, { hint: 'remove the half-written CA directory and run init again', cause: e });
  }
  return { certPath, keyPath, fingerprint256: new NodeX509(cert.toString('pem')).fingerprint256 };
}

/** The CA as a control replica holds it (ca.pem + ca-key.pem, e.g. a mounted Secret). */
export async function loadClusterCa(dir: string): Promise<ClusterCa> {
  const hint = `mount the cluster CA (ca.pem and ca-key.pem from \`praetor cluster init --dir DIR\`) at ${dir}`;
  let certPem: string; let keyPem: string;
  try {
    certPem = readFileSync(join(dir, CA_FILES.cert), 'utf8');
    keyPem = readFileSync(join(dir, CA_FILES.key), 'utf8');
  } catch (e) {
    throw new PraetorError('CERT_INVALID', `cannot read the cluster CA in ${dir}: ${errorMessage(e)}`, { hint, cause: e });
  }
  try {
    const nodeCert = new NodeX509(certPem);
    if (!nodeCert.ca) throw new Error('ca.pem is not a CA certificate');
    if (!nodeCert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('ca-key.pem does not match ca.pem');
    const pkcs8 = createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' });
    const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, ALG, false, ['sign']);
    return { dir, certPem, cert: new x509.X509Certificate(certPem), key };
  } catch (e) {
    throw new PraetorError('CERT_INVALID', `the cluster CA in ${dir} is unusable: ${errorMessage(e)}`, { hint, cause: e });
  }
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A host for a DNS or IP SAN: an IP literal or a lowercase DNS name; anything else refused. */
export function sanFor(host: string): x509.JsonGeneralName {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(h)) return { type: 'ip', value: h };
  if (DNS_NAME.test(h)) return { type: 'dns', value: h };
  throw new PraetorError('BAD_ARGUMENT', `"${host.slice(0, 100)}" is not a host name or IP address for a certificate`, { hint: 'use a lowercase DNS name (node-1.praetor.svc) or an IP address (10.0.0.5)' });
}

export interface LeafRequest {
  role: ClusterRole;
  id: string;
  publicKey: CryptoKey | x509.PublicKey;
  /** DNS names and IP addresses peers dial this holder by. */
  hosts?: string[];
  validityMs?: number;
  /** for tests of expiry: the start of validity (default now minus a few minutes). */
  notBefore?: Date;
}

/**
 * Signs a role-bearing leaf. Node leaves may only serve (EKU serverAuth): OpenSSL then refuses a
 * node certificate presented as a *client* during the handshake, so a compromised node cannot
 * call another node even if a check above TLS were missing. Control leaves serve (the join
 * endpoint) and call (EKU serverAuth + clientAuth).
 */
export async function signLeaf(ca: ClusterCa, r: LeafRequest): Promise<{ certPem: string; notAfter: Date; serial: string }> {
  if (!CLUSTER_ID.test(r.id)) throw new PraetorError('BAD_ARGUMENT', `"${r.id.slice(0, 80)}" is not a valid ${r.role} id`, { hint: 'use 1-63 lowercase letters, digits and dashes, starting with a letter or digit' });
  const notBefore = r.notBefore ?? new Date(Date.now() - SKEW_MS);
  const notAfter = new Date(notBefore.getTime() + SKEW_MS + (r.validityMs ?? (r.role === 'node' ? NODE_CERT_MS : CONTROL_CERT_MS)));
  const caNotAfter = ca.cert.notAfter;
  const sn = serial();
  const publicKey = r.publicKey instanceof x509.PublicKey ? await r.publicKey.export() : r.publicKey;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: sn,
    subject: `CN=${r.id}, OU=${r.role}, O=Praetor cluster`, issuer: ca.cert.subject,
    notBefore, notAfter: notAfter > caNotAfter ? caNotAfter : notAfter,
    publicKey, signingKey: ca.key, signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(r.role === 'node' ? [x509.ExtendedKeyUsage.serverAuth] : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: roleUrn(r.role, r.id) }, ...[...new Set(r.hosts ?? [])].map(sanFor)]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', notAfter: cert.notAfter, serial: sn };
}

/**
 * `praetor cluster issue-control`: a control replica's key and certificate, written to `outDir`
 * as cert.pem, key.pem (0600) and ca.pem. The key is made here, beside the CA key, because the
 * replica that uses it also holds the CA key.
 */
export async function issueControlCertificate(o: { caDir: string; name: string; outDir: string; hosts?: string[]; validityMs?: number; notBefore?: Date }): Promise<{ certPath: string; notAfter: Date }> {
  const ca = await loadClusterCa(o.caDir);
  const { keys, keyPem } = await newKeyPair();
  const leaf = await signLeaf(ca, { role: 'control', id: o.name, publicKey: keys.publicKey, hosts: o.hosts, validityMs: o.validityMs, notBefore: o.notBefore });
  writeIdentity(o.outDir, { certPem: leaf.certPem, keyPem, caPem: ca.certPem });
  return { certPath: join(o.outDir, IDENTITY_FILES.cert), notAfter: leaf.notAfter };
}

/** Writes an identity directory (0700): key 0600, certificates 0644, each replaced atomically. */
export function writeIdentity(dir: string, f: { certPem: string; keyPem: string; caPem: string }): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The key before the certificate: a reader that sees the new cert finds its key already there.
    writeAtomic(join(dir, IDENTITY_FILES.key), f.keyPem, 0o600);
    writeAtomic(join(dir, IDENTITY_FILES.ca), f.caPem, 0o644);
    writeAtomic(join(dir, IDENTITY_FILES.cert), f.certPem, 0o644);
  } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `cannot write the identity in ${dir}: ${errorMessage(e)}`, { hint: 'pick a directory this user can write (it is created 0700)', cause: e });
  }
}
