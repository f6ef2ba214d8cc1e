// The interception CA: made once per state directory (its key 0600 in host state, never bound
// into a sandbox), trusted by each sandbox's bundle, and used by the gateway to mint a leaf
// certificate per SNI on demand. Threat: a miner or exfiltration hiding inside TLS to an allowed
// host is invisible to a gateway that only reads the ClientHello; terminating TLS with a CA the
// sandbox trusts lets the same sniffers read the decrypted stream. ECDSA P-256: a leaf costs
// about a millisecond, and leaves are cached per name.
//
// Rotation (`rotate`): a new CA becomes current and is what new bundles carry; the retired one
// keeps minting, in this process only, for the sandboxes prepared while it was current (their
// bundles trust nothing else) until its grace period ends, then refuses (fail closed: those
// connections are denied with a reason, never served by an untrusted or expired issuer). Its key
// is deleted from disk at rotation: a retired key left in state is a forgery waiting to happen.
// Its certificate stays in new bundles until the grace period ends.
import { webcrypto, createPrivateKey, randomBytes } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { createSecureContext, DEFAULT_CIPHERS, type SecureContext } from 'node:tls';
import '../x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import { PraetorError, errorMessage } from '../errors.ts';
import { isIPv4 } from '../util/index.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const CACHE_MAX = 1000;
const LEAF_DAYS = 7;
/** How long a rotated-out CA keeps serving the sandboxes that trust it, by default. */
export const DEFAULT_ROTATION_GRACE_MS = 24 * 3600_000;
/**
 * The gateway decrypts and re-encrypts every byte: AES-128-GCM first (about a third cheaper than
 * AES-256 with AES-NI, and as strong as this hop needs), the defaults after it.
 */
export const FAST_CIPHERS = `TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:${DEFAULT_CIPHERS}`;

export interface InterceptCa {
  /** The CA certificate (PEM): what sandboxes trust. */
  readonly certPem: string;
  readonly certPath: string;
  /** What a sandbox prepared now trusts (PEM): this CA plus retired CAs still in their grace period. */
  readonly bundlePem: string;
  /** Set once rotated out: this CA mints until then (ms since the epoch), and refuses after. */
  readonly retiredUntil: number | undefined;
  /** A server context for this name (DNS name or IPv4), minted on first use and cached. */
  contextFor(name: string): Promise<SecureContext>;
  /**
   * Makes a new CA current (persisted in the state directory) and returns it. This one keeps
   * minting for `graceMs` (for the sandboxes that trust it) and stays in new bundles until then.
   */
  rotate(graceMs?: number): Promise<InterceptCa>;
}

/** `<stateDir>/tls-ca/{ca.key,ca.crt}`: loaded if present, else created (key 0600, dir 0700). */
export async function loadOrCreateCa(stateDir: string): Promise<InterceptCa> {
  const dir = `${stateDir}/tls-ca`;
  const keyPath = `${dir}/ca.key`; const certPath = `${dir}/ca.crt`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    finishRotation(dir);
    if (!existsSync(keyPath) || !existsSync(certPath)) await createCa(dir, keyPath, certPath);
    return await openCa(dir);
  } catch (e) {
    if (e instanceof PraetorError) throw e;
    throw new PraetorError('HOST_UNSUPPORTED', `cannot load or create the TLS interception CA in ${dir}: ${errorMessage(e)}`, { hint: 'check that the state directory is writable by root, or remove a damaged tls-ca directory', cause: e });
  }
}

async function openCa(dir: string): Promise<InterceptCa> {
  const keyPath = `${dir}/ca.key`; const certPath = `${dir}/ca.crt`;
  chmodSync(keyPath, 0o600);
  const certPem = readFileSync(certPath, 'utf8');
  const keyPem = readFileSync(keyPath, 'utf8');
  // A key that is not the certificate's (a damaged state) would mint leaves no sandbox trusts.
  const spki = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' });
  if (!spki(createPublicKey(keyPem)).equals(spki(new X509Certificate(certPem).publicKey))) {
    throw new PraetorError('HOST_UNSUPPORTED', `the TLS interception CA in ${dir}: ca.key does not belong to ca.crt`, { hint: 'remove the tls-ca directory to make a new CA (running sandboxes must then be restarted)' });
  }
  const caKey = await webcrypto.subtle.importKey('pkcs8', pemBody(keyPem), ALG, false, ['sign']);
  const caCert = new x509.X509Certificate(certPem);
  return makeIssuer(dir, caKey, caCert, certPem, certPath);
}

/** Retired CAs' certificates still in their grace period; expired ones are removed. */
function retiredBundle(dir: string, now = Date.now()): string[] {
  const rdir = `${dir}/retired`;
  const out: string[] = [];
  for (const f of existsSync(rdir) ? readdirSync(rdir) : []) {
    if (!f.endsWith('.json')) continue;
    const base = `${rdir}/${f.slice(0, -5)}`;
    let until = 0;
    try { until = Number((JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { trustUntil?: number }).trustUntil ?? 0); } catch { /* damaged: expired */ }
    if (until > now && existsSync(`${base}.crt`)) out.push(readFileSync(`${base}.crt`, 'utf8').trim());
    else { rmSync(`${base}.crt`, { force: true }); rmSync(`${base}.json`, { force: true }); }
  }
  return out;
}

/**
 * Completes a rotation a crash interrupted. `ca.next.crt` is written last, so it marks a
 * committed rotation (its key is `ca.next.key`, or already `ca.key`); a lone `ca.next.key` is an
 * uncommitted one, and is removed.
 */
function finishRotation(dir: string): void {
  const nextKey = `${dir}/ca.next.key`; const nextCrt = `${dir}/ca.next.crt`;
  if (existsSync(nextCrt)) {
    if (existsSync(nextKey)) renameSync(nextKey, `${dir}/ca.key`);
    renameSync(nextCrt, `${dir}/ca.crt`);
  } else rmSync(nextKey, { force: true });
}

async function createCa(dir: string, keyPath: string, certPath: string): Promise<void> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(12).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=Praetor egress inspection CA ${randomBytes(3).toString('hex')}, O=Praetor`,
    notBefore: new Date(now - 3600_000), notAfter: new Date(now + 5 * 365 * 86400_000),
    keys, signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  // Written under temporary names and renamed, the key first: a crash never leaves a
  // certificate without its key (a lone key is replaced by the next attempt; in a rotation the
  // certificate is the commit mark, see finishRotation).
  const tmp = `${dir}/.new-${process.pid}`;
  writeFileSync(`${tmp}.key`, toPem(pkcs8, 'PRIVATE KEY'), { mode: 0o600 });
  writeFileSync(`${tmp}.crt`, cert.toString('pem') + '\n', { mode: 0o644 });
  renameSync(`${tmp}.key`, keyPath);
  renameSync(`${tmp}.crt`, certPath);
}

async function makeIssuer(dir: string, caKey: CryptoKey, caCert: x509.X509Certificate, certPem: string, certPath: string): Promise<InterceptCa> {
  // One leaf key for every name (a leaf's key is as exposed as the gateway process either way);
  // the per-name work is then one signature.
  const leafKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as CryptoKeyPair;
  const leafKeyPem = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey)), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  const aki = await x509.AuthorityKeyIdentifierExtension.create(caCert, false);
  const cache = new Map<string, Promise<SecureContext>>();
  const mint = async (name: string): Promise<SecureContext> => {
    const now = Date.now();
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(12).toString('hex').replace(/^[89a-f]/, '1'),
      subject: `CN=${name}`, issuer: caCert.subject,
      notBefore: new Date(now - 3600_000), notAfter: new Date(now + LEAF_DAYS * 86400_000),
      publicKey: leafKeys.publicKey, signingKey: caKey, signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([isIPv4(name) ? { type: 'ip', value: name } : { type: 'dns', value: name }]),
        aki,
      ],
    });
    return createSecureContext({ key: leafKeyPem, cert: leaf.toString('pem') + '\n' + certPem, minVersion: 'TLSv1.2', ciphers: FAST_CIPHERS, honorCipherOrder: true });
  };
  let retiredUntil: number | undefined;
  const bundle = [certPem.trim(), ...retiredBundle(dir)].join('\n') + '\n';
  return {
    certPem, certPath, bundlePem: bundle,
    get retiredUntil() { return retiredUntil; },
    contextFor(raw) {
      if (retiredUntil !== undefined && Date.now() >= retiredUntil) {
        cache.clear();
        return Promise.reject(new Error(`the interception CA this sandbox trusts was rotated out and its grace period ended at ${new Date(retiredUntil).toISOString()}; restart the sandbox to get the current bundle`));
      }
      const name = raw.toLowerCase().replace(/\.$/, '');
      let p = cache.get(name);
      if (!p) {
        if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
        p = mint(name);
        p.catch(() => cache.delete(name));
        cache.set(name, p);
      }
      return p;
    },
    async rotate(graceMs = DEFAULT_ROTATION_GRACE_MS) {
      if (retiredUntil !== undefined) throw new PraetorError('BAD_STATE', 'this interception CA was already rotated out', { hint: 'rotate the current CA (the one the last rotation returned)' });
      const until = Date.now() + graceMs;
      try {
        // The retired certificate first (bundles keep trusting it), then the new pair under
        // next-names, the certificate last (the commit mark), then both into place: the rename
        // over ca.key is what deletes the retired key.
        const rdir = `${dir}/retired`;
        mkdirSync(rdir, { recursive: true, mode: 0o700 });
        const id = caCert.serialNumber.toLowerCase().replace(/[^0-9a-f]/g, '').slice(0, 40) || randomBytes(8).toString('hex');
        writeFileSync(`${rdir}/${id}.crt`, certPem.trim() + '\n', { mode: 0o644 });
        writeFileSync(`${rdir}/${id}.json`, JSON.stringify({ trustUntil: until, retiredAt: Date.now(), subject: caCert.subject }) + '\n', { mode: 0o644 });
        await createCa(dir, `${dir}/ca.next.key`, `${dir}/ca.next.crt`);
        finishRotation(dir);
        const next = await openCa(dir);
        retiredUntil = until;
        return next;
      } catch (e) {
        if (e instanceof PraetorError) throw e;
        throw new PraetorError('HOST_UNSUPPORTED', `cannot rotate the TLS interception CA in ${dir}: ${errorMessage(e)}`, { hint: 'check that the state directory is writable by root', cause: e });
      }
    },
  };
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
