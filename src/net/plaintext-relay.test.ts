// The slab relay must deliver exactly the bytes it read, in order, with back-pressure, and end
// only after the last of them: real TLS sockets on loopback, random bytes in uneven writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { relayPlaintext, slabRelayAvailable } from './plaintext-relay.ts';

function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'praetor-relay-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k'), '-out', join(dir, 'c'), '-subj', '/CN=relay.test', '-days', '1'], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'k'), 'utf8'), cert: readFileSync(join(dir, 'c'), 'utf8') };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** origin → (TLS) → relay's src; relay's dst → (TLS) → sink. Resolves with what the sink got. */
async function throughRelay(payload: Buffer, o: { slowSink?: boolean } = {}): Promise<{ got: Buffer; mode: string; counted: number }> {
  const { key, cert } = selfSigned();
  const origin = tls.createServer({ key, cert }, (s) => {
    // Uneven writes: records of every size, split across loop turns.
    let p = 0; let i = 0;
    const pump = () => {
      while (p < payload.length) {
        const n = [1, 7, 16384, 16385, 100_000, 3, 65536][i++ % 7]!;
        const ok = s.write(payload.subarray(p, p + n)); p += n;
        if (!ok) { s.once('drain', pump); return; }
        if (i % 5 === 0) { setImmediate(pump); return; }
      }
      s.end();
    };
    pump();
  });
  const chunks: Buffer[] = [];
  const sinkDone = new Promise<Buffer>((resolve) => {
    const sink = tls.createServer({ key, cert }, (s) => {
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        if (o.slowSink && chunks.length % 50 === 0) { s.pause(); setTimeout(() => s.resume(), 5); }
      });
      s.on('end', () => { resolve(Buffer.concat(chunks)); sink.close(); });
    });
    sink.listen(0, '127.0.0.1', () => {
      relayTo = (sink.address() as net.AddressInfo).port;
      ready();
    });
  });
  let relayTo = 0; let ready!: () => void;
  await new Promise<void>((r) => { ready = r; });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const raw = net.connect({ host: '127.0.0.1', port: (origin.address() as net.AddressInfo).port });
  const src = tls.connect({ socket: raw, rejectUnauthorized: false });
  const dst = tls.connect({ host: '127.0.0.1', port: relayTo, rejectUnauthorized: false });
  await Promise.all([new Promise((r) => src.once('secureConnect', r)), new Promise((r) => dst.once('secureConnect', r))]);
  let counted = 0; let mode = '';
  src.once('data', (first: Buffer) => {
    counted += first.length; dst.write(first);
    const relay = relayPlaintext(src, dst, (n) => { counted += n; });
    mode = relay.mode;
    src.once('end', () => { relay.flush(); dst.end(); });
  });
  const got = await sinkDone;
  src.destroy(); origin.close();
  return { got, mode, counted };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('this Node supports the slab relay (an upgrade that breaks it must be noticed)', () => {
  assert.equal(slabRelayAvailable(), true);
});

test('slab relay: 24 MiB of random bytes arrive whole and in order, all counted', async () => {
  const payload = randomBytes(24 << 20);
  const r = await throughRelay(payload);
  assert.equal(r.mode, 'slab');
  assert.equal(r.got.length, payload.length);
  assert.equal(sha(r.got), sha(payload));
  assert.equal(r.counted, payload.length);
});

test('slab relay: a slow reader gets the same bytes (back-pressure, slabs reused only after their write)', async () => {
  const payload = randomBytes(8 << 20);
  const r = await throughRelay(payload, { slowSink: true });
  assert.equal(r.mode, 'slab');
  assert.equal(sha(r.got), sha(payload));
});
