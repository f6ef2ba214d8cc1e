// A cluster node's E2B port is no plain-HTTP side door: it serves the same mutual TLS as the
// node's API (control certificates only, checked before any HTTP), and a rotated node
// certificate reaches it too. A real node role in-process (startNode: its membership in a real
// PostgreSQL, its own state directory, no sensors), called on 127.0.0.1. The same node renews
// its certificate by itself, while it runs, when the certificate nears its expiry.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { nodeLinkSecurity, startNode, type NodeServer } from '../../src/cluster/index.ts';
import { X509Certificate } from 'node:crypto';
import { controlClientTlsOptions, createJoinToken, loadClusterCa, loadIdentity, recordNodeCert, renewNodeIdentity } from '../../src/cluster/pki.ts';
import { signLeaf, writeIdentity } from '../../src/cluster/pki-ca.ts';
import { get, pkiFixture, skip, until, type PkiFixture } from './pki-fixture.ts';

let f: PkiFixture;
let node: NodeServer | undefined;
const stateDir = mkdtempSync('/tmp/pt-e2b-link-');
const logs: string[] = [];

after(async () => {
  await node?.close();
  await node?.core.manager.gc().catch(() => undefined);
  await f?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

before(async () => {
  if (skip) return;
  f = await pkiFixture('e2b-link');
  const t = await createJoinToken(f.pool, 3_600_000, { nodeId: 'e2b-node' });
  const log = (m: string) => logs.push(m);
  const link = await nodeLinkSecurity({ nodeId: 'e2b-node', dir: f.at('e2b-node'), insecure: false, advertise: 'https://127.0.0.1:7070', host: '127.0.0.1', port: 0, log, join: { token: t.token, controlUrl: f.controlUrl, caFile: f.at('ca', 'ca.pem') } });
  node = await startNode({
    port: 0, host: '127.0.0.1', stateDir, detect: false, gateway: false, e2b: { port: 0 }, log,
    cluster: f.dbUrl, nodeId: 'e2b-node', advertise: 'https://127.0.0.1:7070', capacity: { cpus: 1, memoryBytes: 2 ** 30, maxSandboxes: 2 }, link, renewCheckMs: 200,
  });
});

const ca = () => readFileSync(f.at('ca', 'ca.pem'));
const control = () => controlClientTlsOptions(f.at('control-0'), 'e2b-node');

test('the E2B port of a mutual-TLS node speaks TLS only and admits control certificates only', { skip }, async () => {
  const e2b = node!.e2b!.url;
  assert.match(e2b, /^https:\/\/127\.0\.0\.1:\d+$/, `the E2B port is HTTPS: ${e2b}`);
  const plain = await fetch(e2b.replace('https:', 'http:') + '/health', { signal: AbortSignal.timeout(5000) }).then((r) => r.status, (e: Error) => e.message);
  assert.notEqual(plain, 200, 'the E2B port answered plain HTTP');
  const ok = await get(`${e2b}/health`, control());
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(JSON.parse(ok.body), { ok: true });
  // Authentication above TLS still applies: a control certificate is no API key.
  assert.equal((await get(`${e2b}/sandboxes`, control())).status, 401);
  await assert.rejects(get(`${e2b}/health`, { ca: ca(), checkServerIdentity: () => undefined }), 'no client certificate got through');
  const own = f.at('e2b-node');
  await assert.rejects(get(`${e2b}/health`, { ca: ca(), cert: readFileSync(`${own}/cert.pem`), key: readFileSync(`${own}/key.pem`), checkServerIdentity: () => undefined }), 'a node certificate got through');
  await until('the node logged the refusals', () => logs.filter((l) => l.includes('refused a link connection')).length >= 2);
});

test('a rotated node certificate reaches the API and the E2B port without a restart', { skip }, async () => {
  const before = (await get(`${node!.e2b!.url}/health`, control())).fingerprint256;
  await renewNodeIdentity({ controlUrl: f.controlUrl, dir: f.at('e2b-node'), advertise: 'https://127.0.0.1:7070' });
  const rotated = loadIdentity(f.at('e2b-node'), 'node').fingerprint256;
  assert.notEqual(rotated, before);
  let e2bFp: string | undefined; let apiFp: string | undefined;
  for (let i = 0; i < 200 && (e2bFp !== rotated || apiFp !== rotated); i++) {
    e2bFp = (await get(`${node!.e2b!.url}/health`, control())).fingerprint256;
    apiFp = (await get(`${node!.url}/healthz`, control())).fingerprint256;
    if (e2bFp !== rotated || apiFp !== rotated) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(e2bFp, rotated, 'E2B port');
  assert.equal(apiFp, rotated, 'API port');
  assert.match(logs.join('\n'), /node e2b-node: certificate reloaded/);
});

test('a running node renews its certificate when it nears its expiry, and serves the renewed one without a restart', { skip }, async () => {
  // Its current certificate (as the CA issued it, recorded as current) has minutes to live.
  const ca = await loadClusterCa(f.at('ca'));
  const id = loadIdentity(f.at('e2b-node'), 'node');
  const key = (await import('node:crypto')).createPublicKey(id.keyPem);
  const x509 = await import('@peculiar/x509');
  const pub = new x509.PublicKey(key.export({ type: 'spki', format: 'der' }));
  const short = await signLeaf(ca, { role: 'node', id: 'e2b-node', publicKey: pub, hosts: ['127.0.0.1'], validityMs: 60_000 });
  const client = await f.pool.connect();
  try { await recordNodeCert(client, { nodeId: 'e2b-node', fingerprint256: new X509Certificate(short.certPem).fingerprint256, notAfter: short.notAfter, issuedBy: 'test' }); } finally { client.release(); }
  writeIdentity(f.at('e2b-node'), { certPem: short.certPem, keyPem: id.keyPem, caPem: id.caPem });
  const shortFp = new X509Certificate(short.certPem).fingerprint256;
  // The watcher serves it, the renewal check finds it due, renews, and the watcher serves the renewed one.
  await until('the node renewed the short-lived certificate by itself', () => /renewed its certificate ahead of its expiry/.test(logs.join('\n')), 20_000);
  let fp: string | undefined;
  for (let i = 0; i < 100; i++) { fp = (await get(`${node!.url}/healthz`, control())).fingerprint256; if (fp !== shortFp && fp === loadIdentity(f.at('e2b-node'), 'node').fingerprint256) break; await new Promise((r) => setTimeout(r, 50)); }
  const renewed = loadIdentity(f.at('e2b-node'), 'node');
  assert.equal(fp, renewed.fingerprint256);
  assert.notEqual(fp, shortFp);
  assert.ok(renewed.notAfter.getTime() - Date.now() > 20 * 86_400_000, 'a full new lifetime');
});
