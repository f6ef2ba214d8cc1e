// A node whose address changes keeps its identity: a rescheduled pod comes back with a new IP,
// its kept certificate names the old one, and control replicas check the address. The node
// renews through a control replica's join endpoint, proving possession of its current key (no
// join token: the pool's bootstrap token may be used up by then), and then serves mutual TLS at
// the new address that a control replica accepts. Renewal never extends an old, stolen or
// expired certificate, nor another node's identity. Real PostgreSQL and TLS on 127.0.0.x.
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { cpSync, readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { nodeLinkSecurity } from '../../src/cluster/index.ts';
import {
  assertControlPeer, controlClientTlsOptions, createJoinToken, guardControlPeers, joinClientTlsOptions, joinCluster, loadClusterCa, loadIdentity, nodeServerTlsOptions,
  renewNodeIdentity, signRenewal, RENEW_PATH,
} from '../../src/cluster/pki.ts';
import '../../src/x509-reflect.ts';
import * as x509 from '@peculiar/x509';
import { ALG, newKeyPair, signLeaf, writeIdentity } from '../../src/cluster/pki-ca.ts';
import { get, pkiFixture, refused, skip, type PkiFixture } from './pki-fixture.ts';

let f: PkiFixture;
const servers: Server[] = [];
after(async () => {
  for (const s of servers) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
  await f?.close();
});
before(async () => {
  if (skip) return;
  f = await pkiFixture('renewal');
});

async function serveNodeAt(dir: string, host: string): Promise<string> {
  const srv = createServer(nodeServerTlsOptions(dir), (req, res) => res.end(JSON.stringify(assertControlPeer(req.socket as TLSSocket))));
  guardControlPeers(srv);
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, host, r));
  return `https://${host}:${(srv.address() as AddressInfo).port}/`;
}

const log: string[] = [];
const security = (nodeId: string, dir: string, advertise: string, o: { renew?: boolean; token?: string } = {}) => nodeLinkSecurity({
  nodeId, dir, insecure: false, advertise, host: '0.0.0.0', port: 0, log: (m) => log.push(m),
  ...(o.token ? { join: { token: o.token, controlUrl: f.controlUrl, caFile: f.at('ca', 'ca.pem') } } : {}),
  ...(o.renew === false ? {} : { renew: { controlUrl: f.controlUrl, caFile: f.at('ca', 'ca.pem') } }),
});

test('a node rescheduled to a new address renews its kept certificate (same id, no token) and serves there; a control replica accepts it', { skip }, async () => {
  const t = await createJoinToken(f.pool, 3_600_000, { nodeId: 'host-a' });
  const first = await security('host-a', f.at('host-a'), 'https://127.0.0.1:7070', { token: t.token });
  assert.equal(first.mode, 'mtls');
  const before = loadIdentity(f.at('host-a'), 'node');
  // The pod comes back with another IP; its token (one-time) is spent. Without a way to renew,
  // the kept certificate is refused (the old behaviour, and still the answer with no --control).
  await refused(security('host-a', f.at('host-a'), 'https://127.0.0.2:7070', { renew: false }), 'CERT_INVALID', /does not name 127\.0\.0\.2/);
  const moved = await security('host-a', f.at('host-a'), 'https://127.0.0.2:7070');
  assert.equal(moved.mode, 'mtls');
  const now = loadIdentity(f.at('host-a'), 'node');
  assert.equal(now.id, 'host-a', 'the same node identity');
  assert.notEqual(now.fingerprint256, before.fingerprint256, 'a new certificate');
  assert.notEqual(now.keyPem, before.keyPem, 'for a new key');
  assert.match(readFileSync(f.at('host-a', 'cert.pem'), 'utf8'), /CERTIFICATE/);
  assert.match(log.join('\n'), /names IP Address:127\.0\.0\.1, not https:\/\/127\.0\.0\.2:7070: renewing it/);
  assert.match(f.logs.join('\n'), /node host-a renewed its certificate \(advertise https:\/\/127\.0\.0\.2:7070/);
  // It serves at the new address, and a control replica calling that address accepts it.
  const url = await serveNodeAt(f.at('host-a'), '127.0.0.2');
  const res = await get(url, controlClientTlsOptions(f.at('control-0'), 'host-a'));
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { role: 'control', id: 'control-0' });
  const { rows: [row] } = await f.pool.query(`SELECT fingerprint256, issued_by FROM cluster_node_certs WHERE node_id = 'host-a'`);
  assert.deepEqual(row, { fingerprint256: now.fingerprint256, issued_by: 'renewal' });
  // A restart at the same address renews nothing.
  await security('host-a', f.at('host-a'), 'https://127.0.0.2:7071');
  assert.equal(loadIdentity(f.at('host-a'), 'node').fingerprint256, now.fingerprint256);
});

test('an old certificate (stolen, or a copy left behind) renews nothing once the node has moved on; nor does a replayed renewal', { skip }, async () => {
  const t = await createJoinToken(f.pool, 3_600_000, { nodeId: 'host-b' });
  await joinCluster({ controlUrl: f.controlUrl, token: t.token, nodeId: 'host-b', advertise: 'https://127.0.0.1:7070', dir: f.at('host-b'), caFile: f.at('ca', 'ca.pem') });
  cpSync(f.at('host-b'), f.at('host-b-stolen'), { recursive: true });
  await renewNodeIdentity({ controlUrl: f.controlUrl, dir: f.at('host-b'), advertise: 'https://127.0.0.3:7070' });
  await refused(renewNodeIdentity({ controlUrl: f.controlUrl, dir: f.at('host-b-stolen'), advertise: 'https://127.0.0.9:7070' }), 'CERT_INVALID', /not the node's current one/);
  // A renewal captured on the wire and sent again: the certificate it presents is no longer current.
  const id = loadIdentity(f.at('host-b'), 'node');
  const csr = await newCsr('host-b');
  const body = signRenewal(id.keyPem, { nodeId: 'host-b', cert: id.certPem, csr, advertise: 'https://127.0.0.4:7070' });
  const post = async () => (await fetchJson(RENEW_PATH, body));
  assert.equal((await post()).status, 200);
  const replay = await post();
  assert.equal(replay.status, 401);
  assert.equal(replay.json.error.code, 'CERT_INVALID');
  // A statement signed long ago is refused even for the current certificate.
  const current = loadIdentity(f.at('host-b'), 'node');
  const stale = signRenewal(current.keyPem, { nodeId: 'host-b', cert: current.certPem, csr, advertise: 'https://127.0.0.4:7070' }, new Date(Date.now() - 3_600_000));
  const old = await fetchJson(RENEW_PATH, stale);
  assert.equal(old.json.error.code, 'CERT_INVALID');
  assert.match(old.json.error.message, /more than 5 minutes/);
});

test('renewal refuses an expired certificate, another node\'s id, and a statement not signed by the certificate\'s key', { skip }, async () => {
  const ca = await loadClusterCa(f.at('ca'));
  const { keys, keyPem } = await newKeyPair();
  const leaf = await signLeaf(ca, { role: 'node', id: 'host-old', publicKey: keys.publicKey, hosts: ['127.0.0.1'], notBefore: new Date(Date.now() - 10 * 86_400_000), validityMs: 86_400_000 });
  writeIdentity(f.at('host-old'), { certPem: leaf.certPem, keyPem, caPem: ca.certPem });
  await refused(renewNodeIdentity({ controlUrl: f.controlUrl, dir: f.at('host-old'), advertise: 'https://127.0.0.5:7070' }), 'CERT_EXPIRED');
  const csr = await newCsr('x');
  const hostA = loadIdentity(f.at('host-a'), 'node');
  const asOther = await fetchJson(RENEW_PATH, signRenewal(hostA.keyPem, { nodeId: 'host-b', cert: hostA.certPem, csr, advertise: 'https://127.0.0.6:7070' }));
  assert.equal(asOther.json.error.code, 'CERT_INVALID');
  assert.match(asOther.json.error.message, /is node host-a, not node host-b/);
  const forged = await fetchJson(RENEW_PATH, signRenewal(keyPem, { nodeId: 'host-a', cert: hostA.certPem, csr, advertise: 'https://127.0.0.6:7070' }));
  assert.equal(forged.json.error.code, 'CERT_INVALID');
  assert.match(forged.json.error.message, /not signed by the key of the presented certificate/);
});

async function newCsr(cn: string): Promise<string> {
  const { keys } = await newKeyPair();
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${cn}`, keys, signingAlgorithm: ALG })).toString('pem');
}

async function fetchJson(path: string, body: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, f.controlUrl), { method: 'POST', ...joinClientTlsOptions(readFileSync(f.at('ca', 'ca.pem'), 'utf8')), agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(b) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}
