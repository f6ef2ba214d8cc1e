// The node's side of the join: make a key here (it never leaves the node), send a CSR and the
// one-time token to a control replica over TLS, check what comes back, write the identity.
//
// Trust bootstrap: the node trusts exactly the CA bundle the operator hands it (ca.pem, e.g.
// from the chart's Secret or copied from `praetor cluster init`). The join call is verified
// against that bundle alone and the server must hold a *control* certificate, so a host that
// intercepts the call cannot collect the token, and cannot hand the node a certificate from
// another CA (the answer is checked against the bundle again before it is written).
import { X509Certificate as NodeX509, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import '../x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import { ERROR_CODES, PraetorError, errorMessage, type ErrorCode } from '../errors.ts';
import { ALG, newKeyPair, writeIdentity } from './pki-ca.ts';
import { IDENTITY_FILES, caBundle, identityOfCert, loadIdentity, signedByBundle } from './pki-identity.ts';
import { RENEW_PATH, signRenewal } from './pki-renew.ts';
import { JOIN_PATH, JoinResponseSchema, advertiseHost, type JoinRequest } from './pki-join-route.ts';
import { explainTlsError, joinClientTlsOptions } from './pki-tls.ts';

export interface JoinOptions {
  /** a control replica's cluster URL, https://host:port (a load balancer in front is fine). */
  controlUrl: string;
  token: string;
  nodeId: string;
  /** https://host:port where control replicas will reach this node. */
  advertise: string;
  /** where cert.pem, key.pem (0600) and ca.pem are written. */
  dir: string;
  /** the operator-given cluster CA bundle (default DIR/ca.pem). */
  caFile?: string;
  timeoutMs?: number;
}

export interface JoinResult { nodeId: string; certPath: string; notAfter: Date }

export async function joinCluster(o: JoinOptions): Promise<JoinResult> {
  const url = controlJoinUrl(o.controlUrl);
  advertiseHost(o.advertise); // refuse a bad address here, before the token is spent
  const caFile = o.caFile ?? join(o.dir, IDENTITY_FILES.ca);
  let caPem: string; let cas: NodeX509[];
  try { caPem = readFileSync(caFile, 'utf8'); cas = caBundle(caPem); } catch (e) {
    throw new PraetorError('CERT_INVALID', `cannot read the cluster CA bundle ${caFile}: ${errorMessage(e)}`, { hint: 'give the node this cluster\'s ca.pem (from `praetor cluster init`; never ca-key.pem) with --ca FILE', cause: e });
  }
  const { keys, keyPem } = await newKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${o.nodeId}`, keys, signingAlgorithm: ALG });
  const body: JoinRequest = { token: o.token, nodeId: o.nodeId, csr: csr.toString('pem'), advertise: o.advertise };
  const answer = await postJson(url, body, caPem, o.timeoutMs ?? 15_000);
  const certPem = checkedAnswer(answer, { nodeId: o.nodeId, keyPem, cas, caFile });
  writeIdentity(o.dir, { certPem, keyPem, caPem });
  return { nodeId: o.nodeId, certPath: join(o.dir, IDENTITY_FILES.cert), notAfter: new Date(new NodeX509(certPem).validTo) };
}

/** The control replica's answer must be a node certificate for this node, from the CA we trust, for our key. */
function checkedAnswer(answer: unknown, o: { nodeId: string; keyPem: string; cas: NodeX509[]; caFile: string }): string {
  const parsed = JoinResponseSchema.safeParse(answer);
  if (!parsed.success) throw new PraetorError('CERT_INVALID', `the control replica's join answer is malformed: ${parsed.error.issues[0]!.message}`, { hint: 'check that --control names a praetor control replica of the same version' });
  const certPem = parsed.data.cert;
  let cert: NodeX509;
  try { cert = new NodeX509(certPem); } catch (e) {
    throw new PraetorError('CERT_INVALID', `the control replica sent no valid certificate: ${errorMessage(e)}`, { hint: 'check the control replica\'s log', cause: e });
  }
  const who = identityOfCert(new x509.X509Certificate(certPem));
  if (!signedByBundle(cert, o.cas) || !cert.checkPrivateKey(createPrivateKey(o.keyPem)) || who?.role !== 'node' || who.id !== o.nodeId) {
    throw new PraetorError('CERT_INVALID', `the control replica's certificate is not a node certificate for ${o.nodeId} signed by ${o.caFile}`, { hint: 'check that the node and the control replica use the same cluster CA' });
  }
  return certPem;
}

export interface RenewOptions {
  controlUrl: string;
  /** the node's identity directory: its current cert.pem and key.pem sign the renewal; the new ones replace them. */
  dir: string;
  /** https://host:port where control replicas reach this node now (goes into the new certificate). */
  advertise: string;
  caFile?: string | undefined;
  timeoutMs?: number;
}

/**
 * Renews this node's certificate through a control replica, proving possession of the current
 * key (pki-renew.ts): a new key, a certificate naming `advertise`, the same node id. The current
 * identity must still be valid (an expired one needs a new join token). Written atomically.
 */
export async function renewNodeIdentity(o: RenewOptions): Promise<JoinResult> {
  const url = new URL(RENEW_PATH, controlJoinUrl(o.controlUrl));
  advertiseHost(o.advertise);
  const current = loadIdentity(o.dir, 'node');
  const caFile = o.caFile ?? join(o.dir, IDENTITY_FILES.ca);
  let caPem: string; let cas: NodeX509[];
  try { caPem = readFileSync(caFile, 'utf8'); cas = caBundle(caPem); } catch (e) {
    throw new PraetorError('CERT_INVALID', `cannot read the cluster CA bundle ${caFile}: ${errorMessage(e)}`, { hint: 'give the node this cluster\'s ca.pem with --ca FILE', cause: e });
  }
  const { keys, keyPem } = await newKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${current.id}`, keys, signingAlgorithm: ALG });
  const body = signRenewal(current.keyPem, { nodeId: current.id, cert: current.certPem, csr: csr.toString('pem'), advertise: o.advertise });
  const answer = await postJson(url, body, caPem, o.timeoutMs ?? 15_000);
  const certPem = checkedAnswer(answer, { nodeId: current.id, keyPem, cas, caFile });
  writeIdentity(o.dir, { certPem, keyPem, caPem });
  return { nodeId: current.id, certPath: join(o.dir, IDENTITY_FILES.cert), notAfter: new Date(new NodeX509(certPem).validTo) };
}

function controlJoinUrl(controlUrl: string): URL {
  let u: URL;
  try { u = new URL(controlUrl); } catch {
    throw new PraetorError('BAD_ARGUMENT', `"${controlUrl.slice(0, 100)}" is not a URL`, { hint: 'pass --control https://CONTROL:PORT' });
  }
  if (u.protocol !== 'https:') {
    throw new PraetorError('BAD_ARGUMENT', `the join goes over TLS only, not ${u.protocol}`, { hint: 'pass --control https://CONTROL:PORT (the join token must not travel in clear)' });
  }
  return new URL(JOIN_PATH, u);
}

function postJson(url: URL, body: unknown, caPem: string, timeoutMs: number): Promise<unknown> {
  const data = Buffer.from(JSON.stringify(body));
  const peer = `the control replica at ${url.host}`;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST', ...joinClientTlsOptions(caPem), agent: false, timeout: timeoutMs,
      headers: { 'content-type': 'application/json', 'content-length': data.length },
    }, (res) => {
      const chunks: Buffer[] = []; let size = 0;
      res.on('data', (c: Buffer) => { size += c.length; if (size > 256 * 1024) req.destroy(new Error('answer too large')); else chunks.push(c); });
      res.on('end', () => {
        let json: unknown;
        try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch {
          return reject(new PraetorError('CERT_INVALID', `${peer} answered HTTP ${res.statusCode} without JSON`, { hint: 'check that --control names a praetor control replica\'s cluster port' }));
        }
        if (res.statusCode === 200) return resolve(json);
        const err = (json as { error?: { code?: string; message?: string; hint?: string } }).error;
        const code = (err?.code && err.code in ERROR_CODES ? err.code : 'INTERNAL') as ErrorCode;
        reject(new PraetorError(code, `join refused: ${err?.message ?? `HTTP ${res.statusCode}`}`, { hint: err?.hint ?? 'see the control replica\'s log' }));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new PraetorError('TIMEOUT', `${peer} did not answer the join in ${timeoutMs} ms`, { hint: 'check --control and that the replica is up' })));
    req.on('error', (e) => {
      if (e instanceof PraetorError) return reject(e);
      reject(explainTlsError(e, { peer, peerRole: 'control', side: 'client' })
        ?? new PraetorError('BAD_ARGUMENT', `cannot reach ${peer}: ${errorMessage(e)}`, { hint: 'check --control URL and that the replica\'s cluster port is reachable from this node', cause: e }));
    });
    req.end(data);
  });
}
