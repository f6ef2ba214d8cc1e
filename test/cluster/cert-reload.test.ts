// Certificate rotation without a restart, on real TLS sockets: a node's server and a control
// replica's node link watch their identity directories; rotated files are used by the next new
// connection, and files that do not make a valid identity (garbage, a key that does not match,
// another node's certificate) are refused with an 'error' event while the identity in use stays
// in use. Never a fallback to no TLS: the port keeps refusing plain HTTP and clients without a
// control certificate throughout.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { checked } from '../../src/cluster/node-link-security.ts';
import { nodeLink, type NodeLink } from '../../src/cluster/node-link.ts';
import {
  controlClientTlsOptions, createJoinToken, guardControlPeers, issueControlCertificate, joinCluster, loadIdentity, nodeServerTlsOptionsFor,
  reloadServers, renewNodeIdentity, watchIdentity, type IdentityWatcher,
} from '../../src/cluster/pki.ts';
import { writeAtomic } from '../../src/cluster/pki-ca.ts';
import { forward, readAll } from '../../src/cluster/proxy.ts';
import type { PraetorError } from '../../src/errors.ts';
import { get, pkiFixture, skip, until, type PkiFixture } from './pki-fixture.ts';

let f: PkiFixture;
let srv: Server | undefined;
let nodeUrl = '';
let watcher: IdentityWatcher | undefined;
let link: NodeLink | undefined;
const reloads: string[] = [];
const errors: PraetorError[] = [];
const linkReloads: string[] = [];
const linkErrors: PraetorError[] = [];
const FAST = { debounceMs: 50, pollMs: 250 };

after(async () => {
  watcher?.close();
  link?.close();
  if (srv) { srv.closeAllConnections(); await new Promise((r) => srv!.close(r)); }
  await f?.close();
});

before(async () => {
  if (skip) return;
  f = await pkiFixture('reload');
  const t = await createJoinToken(f.pool, 3_600_000, { nodeId: 'node-r' });
  await joinCluster({ controlUrl: f.controlUrl, token: t.token, nodeId: 'node-r', advertise: 'https://127.0.0.1:7070', dir: f.at('node-r'), caFile: f.at('ca', 'ca.pem') });
  // As node-role.ts wires it: the watcher's current identity, its check (this node's id, the address it registers), every TLS server reloaded.
  watcher = watchIdentity(f.at('node-r'), 'node', { ...FAST, check: (id) => { checked(id, { nodeId: 'node-r', dir: f.at('node-r') }, 'https://127.0.0.1:7070'); } });
  watcher.on('reload', (id) => reloads.push(id.fingerprint256));
  watcher.on('error', (e) => errors.push(e));
  srv = createServer(nodeServerTlsOptionsFor(watcher.current), (req, res) => res.end((req.socket as TLSSocket).getPeerCertificate().fingerprint256));
  guardControlPeers(srv);
  reloadServers(watcher, () => [srv!]);
  await new Promise<void>((r) => srv!.listen(0, '127.0.0.1', r));
  nodeUrl = `https://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
  link = nodeLink({ mode: 'mtls', dir: f.at('control-0'), watch: FAST });
  link.identity!.on('reload', (id) => linkReloads.push(id.fingerprint256));
  link.identity!.on('error', (e) => linkErrors.push(e));
});

const call = () => get(nodeUrl, controlClientTlsOptions(f.at('control-0'), 'node-r'));
const plainRefused = async () => {
  const r = await fetch(nodeUrl.replace('https:', 'http:'), { signal: AbortSignal.timeout(5000) }).then((x) => x.status, (e: Error) => e.message);
  assert.notEqual(r, 200, 'the node port answered plain HTTP');
  await assert.rejects(get(nodeUrl, { ca: readFileSync(f.at('ca', 'ca.pem')), checkServerIdentity: () => undefined }), 'a client without a certificate got through');
};

test('a node\'s server presents a rotated certificate to new connections without a restart', { skip }, async () => {
  const first = await call();
  assert.equal(first.status, 200);
  assert.equal(first.fingerprint256, loadIdentity(f.at('node-r'), 'node').fingerprint256);
  await renewNodeIdentity({ controlUrl: f.controlUrl, dir: f.at('node-r'), advertise: 'https://127.0.0.1:7070' });
  const rotated = loadIdentity(f.at('node-r'), 'node').fingerprint256;
  await until('the watcher reloaded the renewed certificate', () => reloads.includes(rotated));
  const next = await call();
  assert.equal(next.status, 200);
  assert.equal(next.fingerprint256, rotated, 'a new connection gets the rotated certificate');
  assert.notEqual(next.fingerprint256, first.fingerprint256);
  assert.deepEqual(errors, []);
});

test('invalid new files are refused with an error event; the certificate in use stays in use, and TLS stays required', { skip }, async () => {
  const inUse = watcher!.current.fingerprint256;
  // Garbage where the certificate was.
  writeAtomic(f.at('node-r', 'cert.pem'), '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n', 0o644);
  await until('the garbage was refused', () => errors.length >= 1);
  assert.equal(errors[0]!.code, 'CERT_INVALID');
  assert.match(errors[0]!.message, /new certificate files in .* refused, still using node node-r's certificate/);
  assert.equal((await call()).fingerprint256, inUse);
  await plainRefused();
  // A valid identity, but another node's (its certificate from its own join): refused by the node's own check.
  const t = await createJoinToken(f.pool, 3_600_000, { nodeId: 'node-other' });
  await joinCluster({ controlUrl: f.controlUrl, token: t.token, nodeId: 'node-other', advertise: 'https://127.0.0.1:7070', dir: f.at('node-other'), caFile: f.at('ca', 'ca.pem') });
  writeAtomic(f.at('node-r', 'key.pem'), readFileSync(f.at('node-other', 'key.pem'), 'utf8'), 0o600);
  writeAtomic(f.at('node-r', 'cert.pem'), readFileSync(f.at('node-other', 'cert.pem'), 'utf8'), 0o644);
  await until('another node\'s identity was refused', () => errors.some((e) => e.code === 'CERT_WRONG_ROLE'));
  assert.match(errors.find((e) => e.code === 'CERT_WRONG_ROLE')!.message, /identity of node node-other/);
  const still = await call();
  assert.equal(still.status, 200);
  assert.equal(still.fingerprint256, inUse, 'still the last valid certificate');
  assert.equal(watcher!.current.fingerprint256, inUse);
  await plainRefused();
});

test('a control replica\'s node link calls with a rotated control certificate on new connections; invalid files are refused and the old one stays in use', { skip }, async () => {
  // (the node's own files were left broken by the test above: restore them from a fresh renewal first)
  const t = await createJoinToken(f.pool, 3_600_000, { nodeId: 'node-r' });
  await joinCluster({ controlUrl: f.controlUrl, token: t.token, nodeId: 'node-r', advertise: 'https://127.0.0.1:7070', dir: f.at('node-r'), caFile: f.at('ca', 'ca.pem') });
  await until('the node reloaded its re-joined identity', () => watcher!.current.fingerprint256 === loadIdentity(f.at('node-r'), 'node').fingerprint256);
  const target = { nodeId: 'node-r', address: nodeUrl.replace(/\/$/, '') };
  const seen = async () => {
    const r = await forward(link!, target, { method: 'GET', path: '/', headers: {}, body: undefined, what: 'test' });
    return (await readAll(r)).toString();
  };
  const before = await seen();
  assert.equal(before, loadIdentity(f.at('control-0'), 'control').fingerprint256, 'the node sees control-0\'s certificate');
  await issueControlCertificate({ caDir: f.at('ca'), name: 'control-0', outDir: f.at('control-0'), hosts: ['127.0.0.1'] });
  const rotated = loadIdentity(f.at('control-0'), 'control').fingerprint256;
  await until('the link reloaded the rotated control certificate', () => linkReloads.includes(rotated));
  assert.equal(await seen(), rotated, 'a new connection presents the rotated certificate (the old agent was drained)');
  // A key that does not match the certificate: refused, the rotated one stays in use.
  writeAtomic(f.at('control-0', 'key.pem'), readFileSync(f.at('node-other', 'key.pem'), 'utf8'), 0o600);
  await until('the mismatched key was refused', () => linkErrors.length >= 1);
  assert.equal(linkErrors[0]!.code, 'CERT_INVALID');
  assert.match(linkErrors[0]!.message, /does not belong to/);
  assert.equal(await seen(), rotated, 'still the last valid control certificate');
  assert.equal(link!.identity!.current.fingerprint256, rotated);
});
