// The interception CA and its rotation, with real TLS handshakes on loopback: a leaf minted by a
// CA is accepted by a client that trusts that CA's bundle and refused by one that trusts only
// another. Nothing leaves 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls, { type SecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { loadOrCreateCa } from './tls-ca.ts';

/** One handshake: the server presents ctx's leaf for `name`; the client trusts only `ca`. */
async function handshake(ctx: SecureContext, ca: string, name = 'api.example.test'): Promise<string> {
  const server = tls.createServer({ SNICallback: (_n, cb) => cb(null, ctx) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    return await new Promise<string>((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: name, ca });
      c.once('secureConnect', () => { resolve('ok'); c.destroy(); });
      c.once('error', (e) => resolve(`error: ${e.message}`));
    });
  } finally { server.close(); }
}

const certs = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;

test('rotation: new sandboxes get the new CA (plus the old during grace); the old keeps serving its sandboxes until the grace ends, its key gone from disk', async () => {
  const state = mkdtempSync(join(tmpdir(), 'praetor-ca-test-'));
  try {
    const dir = join(state, 'tls-ca');
    const old = await loadOrCreateCa(state);
    const oldKey = readFileSync(join(dir, 'ca.key'), 'utf8');
    assert.equal(certs(old.bundlePem), 1);
    assert.equal(await handshake(await old.contextFor('api.example.test'), old.bundlePem), 'ok');

    const graceMs = 1500;
    const next = await old.rotate(graceMs);
    assert.notEqual(next.certPem, old.certPem);
    assert.equal(old.retiredUntil !== undefined, true); assert.equal(next.retiredUntil, undefined);
    // New bundles: the new CA and the retired one (grace period).
    assert.equal(certs(next.bundlePem), 2);
    assert.ok(next.bundlePem.includes(old.certPem.trim()) && next.bundlePem.includes(next.certPem.trim()));
    // New leaves chain to the new CA only: a client that trusts just the old CA refuses them.
    assert.equal(await handshake(await next.contextFor('api.example.test'), next.certPem), 'ok');
    assert.match(await handshake(await next.contextFor('api.example.test'), old.certPem), /^error/);
    // Sandboxes prepared before still trust only the old CA: it keeps minting for them.
    assert.equal(await handshake(await old.contextFor('other.example.test'), old.certPem, 'other.example.test'), 'ok');
    // The retired key is nowhere in state; the new key is 0600.
    for (const f of readdirSync(dir, { recursive: true }) as string[]) {
      const p = join(dir, f);
      if (statSync(p).isFile()) assert.ok(!readFileSync(p, 'utf8').includes(oldKey.trim()), `retired key still in ${f}`);
    }
    assert.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
    await assert.rejects(old.rotate(), /already rotated out/);

    // A restart during the grace period: the current CA is the new one, the old still bundled.
    const reloaded = await loadOrCreateCa(state);
    assert.equal(reloaded.certPem, next.certPem); assert.equal(certs(reloaded.bundlePem), 2);

    await new Promise((r) => setTimeout(r, graceMs + 100));
    // After the grace period the old CA refuses (fail closed, with a reason), and leaves bundles.
    await assert.rejects(old.contextFor('api.example.test'), /rotated out and its grace period ended/);
    const later = await loadOrCreateCa(state);
    assert.equal(later.certPem, next.certPem); assert.equal(certs(later.bundlePem), 1);
    assert.deepEqual(readdirSync(join(dir, 'retired')), []);
  } finally { rmSync(state, { recursive: true, force: true }); }
});

test('a rotation interrupted after its commit mark is completed on load; one before it is discarded; a key that is not the certificate\'s is refused', async () => {
  const state = mkdtempSync(join(tmpdir(), 'praetor-ca-test-'));
  try {
    const dir = join(state, 'tls-ca');
    const first = await loadOrCreateCa(state);
    // Committed: the next pair was written, the crash came before it was moved into place.
    const other = mkdtempSync(join(tmpdir(), 'praetor-ca-test-'));
    const b = await loadOrCreateCa(other);
    renameSync(join(other, 'tls-ca', 'ca.key'), join(dir, 'ca.next.key'));
    renameSync(join(other, 'tls-ca', 'ca.crt'), join(dir, 'ca.next.crt'));
    rmSync(other, { recursive: true, force: true });
    const done = await loadOrCreateCa(state);
    assert.equal(done.certPem.trim(), b.certPem.trim());
    assert.ok(!existsSync(join(dir, 'ca.next.crt')) && !existsSync(join(dir, 'ca.next.key')));
    // Uncommitted: a lone next key is dropped, the current CA stays.
    writeFileSync(join(dir, 'ca.next.key'), 'partial');
    assert.equal((await loadOrCreateCa(state)).certPem.trim(), b.certPem.trim());
    assert.ok(!existsSync(join(dir, 'ca.next.key')));
    // Damaged: a certificate with someone else's key.
    writeFileSync(join(dir, 'ca.crt'), first.certPem);
    await assert.rejects(loadOrCreateCa(state), /ca.key does not belong to ca.crt/);
  } finally { rmSync(state, { recursive: true, force: true }); }
});
