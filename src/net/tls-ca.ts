// The interception CA: made once per state directory (its key 0600 in host state, never bound
// into a sandbox), trusted by each sandbox's bundle, and used by the gateway to mint a leaf
// certificate per SNI on demand. Threat: a miner or exfiltration hiding inside TLS to an allowed
// host is invisible to a gateway that only reads the ClientHello; terminating TLS with a CA the
// sandbox trusts lets the same sniffers read the decrypted stream. ECDSA P-256: a leaf costs
// about a millisecond, and leaves are cached per name.
import { webcrypto, createPrivateKey, randomBytes } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createSecureContext, DEFAULT_CIPHERS, type SecureContext } from 'node:tls';
import './x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import { PraetorError, errorMessage } from '../errors.ts';
import { isIPv4 } from './ip.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const CACHE_MAX = 1000;
const LEAF_DAYS = 7;
/**
 * The gateway decrypts and re-encrypts every byte: AES-128-GCM first (about a third cheaper than
 * AES-256 with AES-NI, and as strong as this hop needs), the defaults after it.
 */
export const FAST_CIPHERS = `TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:${DEFAULT_CIPHERS}`;

export interface InterceptCa {
  /** The CA certificate (PEM): what sandboxes trust. */
  readonly certPem: string;
  readonly certPath: string;
  /** A server context for this name (DNS name or IPv4), minted on first use and cached. */
  contextFor(name: string): Promise<SecureContext>;
}

/** `<stateDir>/tls-ca/{ca.key,ca.crt}`: loaded if present, else created (key 0600, dir 0700). */
export async function loadOrCreateCa(stateDir: string): Promise<InterceptCa> {
  const dir = `${stateDir}/tls-ca`;
  const keyPath = `${dir}/ca.key`; const certPath = `${dir}/ca.crt`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!existsSync(keyPath) || !existsSync(certPath)) await createCa(dir, keyPath, certPath);
    chmodSync(keyPath, 0o600);
    const certPem = readFileSync(certPath, 'utf8');
    const keyPem = readFileSync(keyPath, 'utf8');
    const caKey = await webcrypto.subtle.importKey('pkcs8', pemBody(keyPem), ALG, false, ['sign']);
    const caCert = new x509.X509Certificate(certPem);
    return makeIssuer(caKey, caCert, certPem, certPath);
  } catch (e) {
    if (e instanceof PraetorError) throw e;
    throw new PraetorError('HOST_UNSUPPORTED', `cannot load or create the TLS interception CA in ${dir}: ${errorMessage(e)}`, { hint: 'check that the state directory is writable by root, or remove a damaged tls-ca directory', cause: e });
  }
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
  // Written under temporary names and renamed: a crash never leaves a key without its cert.
  const tmp = `${dir}/.new-${process.pid}`;
  writeFileSync(`${tmp}.key`, toPem(pkcs8, 'PRIVATE KEY'), { mode: 0o600 });
  writeFileSync(`${tmp}.crt`, cert.toString('pem') + '\n', { mode: 0o644 });
  renameSync(`${tmp}.crt`, certPath);
  renameSync(`${tmp}.key`, keyPath);
}

async function makeIssuer(caKey: CryptoKey, caCert: x509.X509Certificate, certPem: string, certPath: string): Promise<InterceptCa> {
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
  return {
    certPem, certPath,
    contextFor(raw) {
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
  };
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
