// The cluster PKI on a real PostgreSQL and real TLS sockets on 127.0.0.1: a node joins with a
// one-time token through a control replica's join endpoint, then serves mutual TLS that only
// control certificates of this cluster may call, and control replicas accept only the node id
// they meant. Every refusal is a typed error with a fix.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import '../../src/x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import {
  assertControlPeer, controlClientTlsOptions, controlServerTlsOptions, createJoinToken, expiryReport, guardControlPeers,
  initClusterCa, issueControlCertificate, joinCluster, joinClientTlsOptions, loadClusterCa, loadIdentity, nodeServerTlsOptions,
  redeemJoinToken, registerJoinRoute, startJoinServer, JOIN_PATH, type JoinServer,
} from '../../src/cluster/pki.ts';
import { ALG, newKeyPair, signLeaf, writeIdentity } from '../../src/cluster/pki-ca.ts';
import { explainTlsError } from '../../src/cluster/pki-tls.ts';
import { PraetorError } from '../../src/errors.ts';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { get, refused } from './pki-fixture.ts';
import { nodeBinary } from '../topology/index.ts';

const skip = postgresAvailable() ? false : 'needs PostgreSQL 15 and root (installed by npm test\'s setup)';
const tmp = mkdtempSync(join(tmpdir(), 'praetor-pki-'));
const at = (...p: string[]) => join(tmp, ...p);
let pgServer: TestPostgres | undefined;
let pool: pg.Pool;
let dbUrl: string;
let joinApp: FastifyInstance;
let controlUrl: string;
let pluginUrl: string;
let joinServer: JoinServer | undefined;
const servers: Server[] = [];

after(async () => {
  for (const s of servers) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
  await joinApp?.close();
  await joinServer?.close();
  await pool?.end();
  await pgServer?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

before(async () => {
  if (skip) return;
  pgServer = await startPostgres();
  dbUrl = await pgServer.createDatabase();
  pool = new pg.Pool({ connectionString: dbUrl, max: 6 });
  pool.on('error', () => undefined); // an idle client cut when the test's server stops
  await initClusterCa(at('ca'));
  await initClusterCa(at('foreign-ca'));
  await issueControlCertificate({ caDir: at('ca'), name: 'control-0', outDir: at('control-0'), hosts: ['127.0.0.1'] });
  // The route as a replica's cluster port runs it, and once more on an app of our own (the
  // integrator's other option) to check the plugin's error shape stays inside its scope.
  joinServer = await startJoinServer({ pool, caDir: at('ca'), identityDir: at('control-0'), host: '127.0.0.1' });
  controlUrl = joinServer.url;
  joinApp = Fastify({ https: controlServerTlsOptions(at('control-0')) });
  joinApp.get('/other', async () => { throw new Error('boom'); });
  await registerJoinRoute(joinApp, { pool, caDir: at('ca') });
  await joinApp.listen({ host: '127.0.0.1', port: 0 });
  pluginUrl = `https://127.0.0.1:${(joinApp.server.address() as AddressInfo).port}`;
});

/** A node's mTLS server, as the routed code will run it; answers with the caller's identity. */
async function serveNode(dir: string): Promise<{ url: string; refusals: PraetorError[]; handled: () => number }> {
  const refusals: PraetorError[] = [];
  let handled = 0;
  const srv = createServer(nodeServerTlsOptions(dir), (req, res) => {
    handled++;
    const who = assertControlPeer(req.socket as TLSSocket);
    res.end(JSON.stringify(who));
  });
  guardControlPeers(srv, (e) => refusals.push(e));
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(srv.address() as AddressInfo).port}/`, refusals, handled: () => handled };
}

/** The node refuses in the handshake and logs why; the log line may trail the client's reset. */
async function refusalOf(refusals: PraetorError[], n: number): Promise<PraetorError> {
  for (let i = 0; i < 100 && refusals.length < n; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(refusals.length >= n, 'the node reported the refusal');
  return refusals[n - 1]!;
}

const rawTls = (dir: string, caDir = dir) => ({
  key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), ca: readFileSync(join(caDir, 'ca.pem'), 'utf8'),
  checkServerIdentity: () => undefined, maxCachedSessions: 0,
});

async function join1(nodeId: string, token: string, dir = at(nodeId), caFile = at('ca', 'ca.pem')) {
  return joinCluster({ controlUrl, token, nodeId, advertise: 'https://127.0.0.1:7443', dir, caFile });
}

async function postJoin(body: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(new URL(JOIN_PATH, controlUrl), { method: 'POST', ...joinClientTlsOptions(readFileSync(at('ca', 'ca.pem'), 'utf8')), agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(b) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('cluster init writes a CA (key 0600) and refuses to overwrite it', { skip }, async () => {
  assert.equal(statSync(at('ca', 'ca-key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(at('ca')).mode & 0o777, 0o700);
  const before = readFileSync(at('ca', 'ca-key.pem'), 'utf8');
  await refused(initClusterCa(at('ca')), 'CONFLICT', /already holds a cluster CA/);
  assert.equal(readFileSync(at('ca', 'ca-key.pem'), 'utf8'), before, 'the CA key is untouched');
});

test('a node joins with a valid token, then serves mutual TLS that a control certificate can call', { skip }, async () => {
  const t = await createJoinToken(pool, 3_600_000);
  const r = await join1('node-1', t.token);
  assert.equal(r.nodeId, 'node-1');
  assert.equal(statSync(at('node-1', 'key.pem')).mode & 0o777, 0o600);
  const id = loadIdentity(at('node-1'), 'node');
  assert.equal(id.id, 'node-1');
  const cert = new x509.X509Certificate(id.certPem);
  const sans = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();
  assert.deepEqual(sans, [{ type: 'url', value: 'urn:praetor:node:node-1' }, { type: 'ip', value: '127.0.0.1' }]);
  assert.ok(!readFileSync(at('node-1', 'key.pem'), 'utf8').includes(readFileSync(at('ca', 'ca-key.pem'), 'utf8').slice(30, 80)), 'the node holds its own key, not the CA key');
  // Only the hash is stored, and the token is spent on node-1.
  const rows = (await pool.query('SELECT * FROM cluster_join_tokens')).rows;
  assert.ok(!JSON.stringify(rows).includes(t.token.slice(4)), 'the token is not stored in clear');
  const row = (await pool.query('SELECT used_at, used_by_node FROM cluster_join_tokens WHERE used_by_node = $1', ['node-1'])).rows[0];
  assert.ok(row?.used_at instanceof Date);

  const node = await serveNode(at('node-1'));
  const res = await get(node.url, controlClientTlsOptions(at('control-0'), 'node-1'));
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { role: 'control', id: 'control-0' }, 'the node sees the calling replica');
  assert.equal(expiryReport(id).expired, false);
  assert.match(expiryReport(id).message, /node certificate node-1 expires in 3\d\.\d days/);
});

test('a token works once: the second join with it fails and writes nothing', { skip }, async () => {
  const t = await createJoinToken(pool, 3_600_000);
  await join1('node-2', t.token);
  const e = await refused(join1('node-2b', t.token), 'JOIN_TOKEN_USED', /already used \(by node node-2/);
  assert.match(e.hint!, /praetor cluster token create/);
  assert.ok(!existsSync(at('node-2b', 'cert.pem')), 'the node did not join');
});

test('concurrent redemptions of one token: exactly one wins', { skip }, async () => {
  const t = await createJoinToken(pool, 3_600_000);
  const results = await Promise.allSettled(['r1', 'r2', 'r3', 'r4', 'r5'].map((n) => redeemJoinToken(pool, t.token, n)));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as PraetorError).code, 'JOIN_TOKEN_USED');
});

test('an expired token fails and the node does not join', { skip }, async () => {
  const t = await createJoinToken(pool, 3_600_000);
  await pool.query(`UPDATE cluster_join_tokens SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL`);
  const e = await refused(join1('node-3', t.token), 'JOIN_TOKEN_EXPIRED', /expired at/);
  assert.match(e.hint!, /--ttl/);
  assert.ok(!existsSync(at('node-3', 'cert.pem')));
});

test('a garbage or unknown token fails', { skip }, async () => {
  await refused(join1('node-4', 'garbage'), 'JOIN_TOKEN_INVALID', /malformed/);
  await refused(join1('node-4', `pjt_${'A'.repeat(43)}`), 'JOIN_TOKEN_INVALID', /not known to this cluster/);
  assert.ok(!existsSync(at('node-4', 'cert.pem')));
});

test('a token bound to a node id is refused for another id and still works for its own', { skip }, async () => {
  const t = await createJoinToken(pool, 3_600_000, { nodeId: 'node-5' });
  await refused(join1('node-6', t.token), 'JOIN_TOKEN_INVALID', /for node node-5, not node-6/);
  // Through the plugin registered on an app of our own this time.
  const r = await joinCluster({ controlUrl: pluginUrl, token: t.token, nodeId: 'node-5', advertise: 'https://127.0.0.1:7443', dir: at('node-5'), caFile: at('ca', 'ca.pem') });
  assert.equal(r.nodeId, 'node-5');
  const other = await get(`${pluginUrl}/other`, { ca: readFileSync(at('ca', 'ca.pem'), 'utf8'), checkServerIdentity: () => undefined });
  assert.equal(other.status, 500);
  assert.ok(!other.body.includes('the join failed'), 'the join route\'s error handler does not answer for the host app\'s routes');
});

test('the certificate names the redeemed node id only, whatever the CSR asks for; a bad CSR does not spend the token', { skip }, async () => {
  const t = await createJoinToken(pool, 3_600_000);
  const bad = await postJoin({ token: t.token, nodeId: 'node-7', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----', advertise: 'https://127.0.0.1:7443' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'BAD_ARGUMENT');
  assert.ok(bad.json.error.hint);
  const extra = await postJoin({ token: t.token, nodeId: 'node-7', csr: 'x', advertise: 'https://127.0.0.1', admin: true });
  assert.equal(extra.status, 400, 'unknown keys are refused');
  const { keys } = await newKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=control-0', keys, signingAlgorithm: ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'urn:praetor:control:evil' }, { type: 'dns', value: 'evil.test' }])],
  });
  const ok = await postJoin({ token: t.token, nodeId: 'node-7', csr: csr.toString('pem'), advertise: 'https://127.0.0.1:7443' });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  const cert = new x509.X509Certificate(ok.json.cert);
  assert.deepEqual(cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON(), [{ type: 'url', value: 'urn:praetor:node:node-7' }, { type: 'ip', value: '127.0.0.1' }]);
  assert.equal(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages.join(','), x509.ExtendedKeyUsage.serverAuth, 'node certificates may serve, not call');
  assert.match(cert.subject, /CN=node-7/);
});

test('a node certificate used as a client is refused by another node', { skip }, async () => {
  const t = await createJoinToken(pool, 3_600_000);
  await join1('node-8', t.token);
  const node1 = await serveNode(at('node-1'));
  // The builder refuses a node identity outright …
  await refused(() => controlClientTlsOptions(at('node-8'), 'node-1'), 'CERT_WRONG_ROLE', /is a node certificate/);
  // … and a node certificate pushed in by hand is refused by the node in the handshake.
  await assert.rejects(get(node1.url, rawTls(at('node-8'))));
  const e = await refusalOf(node1.refusals, 1);
  assert.equal(e.code, 'CERT_WRONG_ROLE', e.message);
  assert.match(e.hint!, /control replica/);
});

test('behind the handshake, the node refuses a client-capable certificate without the control role before any HTTP', { skip }, async () => {
  // Certificates this cluster never issues (signLeaf gives clientAuth to control only), made by
  // hand with the CA key: the SAN role check is what stops them.
  const ca = await loadClusterCa(at('ca'));
  const node1 = await serveNode(at('node-1'));
  const cases: Array<[string, x509.JsonGeneralName[], string]> = [
    ['client-as-node', [{ type: 'url', value: 'urn:praetor:node:node-8' }], 'CERT_WRONG_ROLE'],
    ['client-anon', [{ type: 'dns', value: 'anyone.test' }], 'CERT_INVALID'],
  ];
  for (const [i, [name, sans, code]] of cases.entries()) {
    const { keys, keyPem } = await newKeyPair();
    const cert = await x509.X509CertificateGenerator.create({
      subject: `CN=${name}`, issuer: ca.cert.subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
      publicKey: keys.publicKey, signingKey: ca.key, signingAlgorithm: ALG,
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]), new x509.SubjectAlternativeNameExtension(sans)],
    });
    writeIdentity(at(name), { certPem: cert.toString('pem'), keyPem, caPem: ca.certPem });
    await assert.rejects(get(node1.url, rawTls(at(name))));
    const e = await refusalOf(node1.refusals, i + 1);
    assert.equal(e.code, code, `${name}: ${e.message}`);
  }
  assert.equal(node1.handled(), 0, 'no request reached the node\'s handler');
});

test('a certificate from a foreign CA is refused, in both directions', { skip }, async () => {
  await issueControlCertificate({ caDir: at('foreign-ca'), name: 'control-0', outDir: at('foreign-control') });
  const node1 = await serveNode(at('node-1'));
  // A foreign control certificate, with this cluster's (public) CA to trust the node.
  await assert.rejects(get(node1.url, rawTls(at('foreign-control'), at('control-0'))));
  const e = await refusalOf(node1.refusals, 1);
  assert.equal(e.code, 'CERT_INVALID', e.message);
  assert.match(e.message, /not signed by this cluster's CA/);
  // A node with a foreign certificate: the control replica refuses it, and says so.
  const foreign = await loadClusterCa(at('foreign-ca'));
  const { keys, keyPem } = await newKeyPair();
  const leaf = await signLeaf(foreign, { role: 'node', id: 'node-1', publicKey: keys.publicKey, hosts: ['127.0.0.1'] });
  writeIdentity(at('foreign-node'), { certPem: leaf.certPem, keyPem, caPem: foreign.certPem });
  const impostor = await serveNode(at('foreign-node'));
  const err = await get(impostor.url, controlClientTlsOptions(at('control-0'), 'node-1')).then(() => undefined, (x: unknown) => x);
  assert.ok(err, 'the control client refused the foreign node');
  const pe = explainTlsError(err, { peer: 'node node-1', peerRole: 'node', side: 'client' });
  assert.equal(pe?.code, 'CERT_INVALID');
  assert.match(pe!.message, /not signed by this cluster's CA/);
  // A join against a foreign CA bundle is refused before the token is sent.
  const t = await createJoinToken(pool, 3_600_000);
  await refused(join1('node-9', t.token, at('node-9'), at('foreign-ca', 'ca.pem')), 'CERT_INVALID', /not signed by this cluster's CA/);
  assert.equal((await join1('node-9', t.token)).nodeId, 'node-9', 'the token was not spent');
});

test('an expired certificate is refused with a clear error', { skip }, async () => {
  const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000);
  await issueControlCertificate({ caDir: at('ca'), name: 'control-old', outDir: at('control-old'), notBefore: tenDaysAgo, validityMs: 86_400_000 });
  const e1 = await refused(() => controlClientTlsOptions(at('control-old'), 'node-1'), 'CERT_EXPIRED', /control certificate of control-old .* expired on/);
  assert.match(e1.hint!, /praetor cluster issue-control .*--name control-old/);
  // Pushed in by hand: the node refuses it in the handshake and logs CERT_EXPIRED.
  const node1 = await serveNode(at('node-1'));
  await assert.rejects(get(node1.url, rawTls(at('control-old'))));
  const e2 = await refusalOf(node1.refusals, 1);
  assert.equal(e2.code, 'CERT_EXPIRED', e2.message);
  // A node whose own certificate expired does not serve …
  const ca = await loadClusterCa(at('ca'));
  const { keys, keyPem } = await newKeyPair();
  const leaf = await signLeaf(ca, { role: 'node', id: 'node-old', publicKey: keys.publicKey, hosts: ['127.0.0.1'], notBefore: tenDaysAgo, validityMs: 86_400_000 });
  writeIdentity(at('node-old'), { certPem: leaf.certPem, keyPem, caPem: ca.certPem });
  const e3 = await refused(() => nodeServerTlsOptions(at('node-old')), 'CERT_EXPIRED', /node certificate of node-old/);
  assert.match(e3.hint!, /rejoin node node-old/);
  assert.equal(expiryReport(loadIdentity(at('node-old'), 'node', { skipDates: true })).expired, true);
  // … and one served anyway is refused by the control client as expired.
  const srv = createServer({ ...rawTls(at('node-old')), requestCert: true, rejectUnauthorized: true }, (_q, s) => s.end('x'));
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const err = await get(`https://127.0.0.1:${(srv.address() as AddressInfo).port}/`, controlClientTlsOptions(at('control-0'), 'node-old')).then(() => undefined, (x: unknown) => x);
  const pe = explainTlsError(err, { peer: 'node node-old', peerRole: 'node', side: 'client' });
  assert.equal(pe?.code, 'CERT_EXPIRED');
  assert.match(pe!.hint!, /rejoin/);
});

test('the control client refuses a node presenting a different node id', { skip }, async () => {
  const node1 = await serveNode(at('node-1'));
  const e = await refused(get(node1.url, controlClientTlsOptions(at('control-0'), 'node-2')), 'CERT_WRONG_ROLE', /is node node-1, not node node-2/);
  assert.match(e.hint!, /praetor nodes/);
});

test('a join sent to something that is not a control replica is refused before the token leaves', { skip }, async () => {
  const node1 = await serveNode(at('node-1'));
  const t = await createJoinToken(pool, 3_600_000);
  await refused(joinCluster({ controlUrl: node1.url, token: t.token, nodeId: 'node-10', advertise: 'https://127.0.0.1:7443', dir: at('node-10'), caFile: at('ca', 'ca.pem') }), 'CERT_WRONG_ROLE', /not a control replica/);
  await refused(joinCluster({ controlUrl: controlUrl.replace('https', 'http'), token: t.token, nodeId: 'node-10', advertise: 'https://127.0.0.1:7443', dir: at('node-10'), caFile: at('ca', 'ca.pem') }), 'BAD_ARGUMENT', /TLS only/);
  assert.equal((await join1('node-10', t.token)).nodeId, 'node-10', 'the token was not spent');
});

test('CA rotation: with both CAs in ca.pem, a new-CA control replica calls an old-CA node; a third CA is still refused', { skip }, async () => {
  await initClusterCa(at('ca-next'));
  const bundle = readFileSync(at('ca', 'ca.pem'), 'utf8') + readFileSync(at('ca-next', 'ca.pem'), 'utf8');
  await issueControlCertificate({ caDir: at('ca-next'), name: 'control-next', outDir: at('control-next'), hosts: ['127.0.0.1'] });
  for (const d of ['control-next', 'node-9']) writeFileSync(at(d, 'ca.pem'), bundle);
  const node9 = await serveNode(at('node-9'));
  const res = await get(node9.url, controlClientTlsOptions(at('control-next'), 'node-9'));
  assert.deepEqual(JSON.parse(res.body), { role: 'control', id: 'control-next' });
  writeFileSync(at('foreign-control', 'ca.pem'), bundle); // trusts the node, but its own cert is from a third CA
  await assert.rejects(get(node9.url, rawTls(at('foreign-control'))));
  assert.equal((await refusalOf(node9.refusals, 1)).code, 'CERT_INVALID');
});

test('praetor cluster CLI: init refuses to overwrite, token create, issue-control, show', { skip }, () => {
  const cli = (...args: string[]) => spawnSync(nodeBinary(), [new URL('../../src/cli/main.ts', import.meta.url).pathname, 'cluster', ...args], { encoding: 'utf8', timeout: 60_000 });
  let r = cli('init', '--dir', at('fresh-ca'), '--json');
  assert.equal(r.status, 0, r.stderr);
  const made = JSON.parse(r.stdout) as { ledgerKey: { keyFile: string; pubkeyFile: string } };
  assert.equal(statSync(made.ledgerKey.keyFile).mode & 0o077, 0, 'the cluster ledger key is made with the CA, private');
  assert.ok(statSync(made.ledgerKey.pubkeyFile).isFile());
  r = cli('init', '--dir', at('ca'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /already holds a cluster CA[\s\S]*fix:/);
  r = cli('token', 'create', '--cluster', dbUrl, '--ttl', '30m', '--node', 'node-cli', '--json');
  assert.equal(r.status, 0, r.stderr);
  const tok = JSON.parse(r.stdout) as { token: string; node: string; expiresAt: string };
  assert.match(tok.token, /^pjt_/);
  assert.equal(tok.node, 'node-cli');
  r = cli('token', 'create', '--cluster', dbUrl, '--ttl', 'soon');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not a duration[\s\S]*fix:/);
  r = cli('issue-control', '--dir', at('ca'), '--name', 'control-1', '--out', at('control-1'), '--host', '127.0.0.1', '--days', '7');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(statSync(at('control-1', 'key.pem')).mode & 0o777, 0o600);
  r = cli('show', '--dir', at('control-1'), '--json');
  assert.equal(r.status, 0, r.stderr);
  const show = JSON.parse(r.stdout) as { role: string; id: string; expired: boolean };
  assert.deepEqual([show.role, show.id, show.expired], ['control', 'control-1', false]);
  r = cli('show', '--dir', at('control-old'));
  assert.equal(r.status, 1, 'an expired identity exits non-zero');
  assert.match(r.stdout, /expired .* issue-control/);
});
