// HTTP/2 and TLS inside intercepted TLS, with real clients in a sandbox namespace and real
// servers in the TEST-NETWORK.md topology. HTTP/2 is never inspected, so never carried: a client
// that offers h2 beside http/1.1 (curl --http2) is given http/1.1 and the verdict says so; one that
// offers only h2 (Node's http2 client) is refused before the handshake; one that speaks the HTTP/2
// preface anyway is cut at tls>http2. TLS inside TLS (raw, or after CONNECT, as curl does through
// an HTTPS proxy) cannot be opened, so it is cut (tls>tls, tls>http>connect>tls) and not one byte
// of the inner handshake reaches the server, which logs every decrypted chunk. An upload that
// waits for 100 Continue is not stalled, and its body is still judged before it goes.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { PraetorEvent } from '../../src/events/index.ts';
import { createTopology, nodeBinary, waitForOutput, type Topology } from '../topology/index.ts';
import { startGatewayFixture, type GatewayFixture, type TestSandbox } from './fixture.ts';

type Flow = Extract<PraetorEvent, { kind: 'net.flow' }>;
const EXTRA = fileURLToPath(new URL('./tls-extra-server.ts', import.meta.url));
const TLS_IP = '203.0.113.11';
const PORT = 8443;
// A TLS client inside the intercepted TLS: mode raw sends the inner ClientHello at once; connect
// asks for a CONNECT tunnel first (answered 200 by the server); h2 sends the HTTP/2 preface on a
// connection that offered no ALPN (prior knowledge).
const PY_INNER = `import socket,ssl,sys
host,port,cafile,mode=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4]
s=ssl.create_default_context(cafile=cafile).wrap_socket(socket.create_connection((host,port),timeout=5),server_hostname=host)
i,o=ssl.MemoryBIO(),ssl.MemoryBIO()
inner=ssl.create_default_context().wrap_bio(i,o,server_hostname="inner.example.test")
try:
  inner.do_handshake()
except ssl.SSLWantReadError:
  pass
hello=o.read()
try:
  if mode=="connect":
    s.sendall(b"CONNECT tls.example.test:443 HTTP/1.1\\r\\nHost: tls.example.test:443\\r\\n\\r\\n")
    print("PROXY",s.recv(4096)[:12])
  if mode=="h2":
    s.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n\\x00\\x00\\x00\\x04\\x00\\x00\\x00\\x00\\x00")
  else:
    s.sendall(hello)
  print("GOT",s.recv(4096))
except Exception as e:
  print("ERR",e)
`;
const NODE_H2 = `const h2=require('node:http2');const fs=require('node:fs');
const c=h2.connect('https://tls.example.test:${PORT}',{ca:fs.readFileSync(process.argv[1])});
c.on('error',(e)=>{console.log('ERR',e.code||e.message);process.exit(0)});
const r=c.request({':path':'/v1/h2'});r.on('response',(h)=>{console.log('STATUS',h[':status']);c.close()});r.on('error',()=>{});r.end();`;

describe('HTTP/2, nested TLS and 100-continue inside intercepted TLS', { concurrency: false }, () => {
  let t: Topology; let fx: GatewayFixture; let state: string; let log: string;
  const flows = async (sb: TestSandbox) => {
    await new Promise((r) => setTimeout(r, 300));
    return fx.events.filter((e): e is Flow => e.kind === 'net.flow' && e.sandboxId === sb.id && e.dstPort === PORT);
  };
  const seen = () => existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; text?: string }) : [];
  const bundleFor = (sb: TestSandbox) => {
    const p = join(state, `bundle-${sb.id}.crt`);
    writeFileSync(p, readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8') + '\n' + sb.caCertPem!);
    return p;
  };
  const policy = () => ({ allow: [{ domain: 'tls.example.test', ports: [443, PORT] }], upstreamCa: t.tlsCertPath });
  /** Decrypted chunks the server got after `from` that begin like a TLS record (an inner handshake). */
  const innerTls = (from: number) => seen().slice(from).filter((e) => e.event === 'data' && /^\x16\x03/.test(e.text ?? ''));

  before(async () => {
    t = await createTopology({ servers: ['web', 'tls', 'dns'] });
    state = mkdtempSync(join(tmpdir(), 'praetor-layers-state-'));
    log = join(t.dir, 'tls-layers.jsonl');
    const srv = t.spawnInInet(nodeBinary(), [EXTRA, TLS_IP, String(PORT), join(t.dir, 'tls-key.pem'), t.tlsCertPath, log], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForOutput(srv, { ready: /listening/, timeoutMs: 10_000, what: 'extra TLS server' });
    fx = await startGatewayFixture(t, { PT_STATE: state });
  });
  after(async () => {
    await fx?.close();
    await t?.teardown();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  test('curl --http2 is given http/1.1, is inspected, and its verdict records the downgrade', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const from = seen().length;
      const c = await sb.exec('curl', ['-sS', '--http2', '--max-time', '5', '--cacert', bundleFor(sb), '-w', '\nVERSION %{http_version}', `https://tls.example.test:${PORT}/v1/h2`], 15_000);
      assert.equal(c.code, 0, c.stderr); assert.match(c.stdout, /^ok\n[\s\S]*VERSION 1\.1$/);
      const f = (await flows(sb))[0]!;
      assert.equal(f.decision, 'allow', JSON.stringify(f)); assert.deepEqual(f.layers, ['tls', 'http']);
      assert.match(f.reason ?? '', /offered ALPN h2,http\/1\.1; http\/1\.1 was negotiated \(HTTP\/2 is not inspected/, JSON.stringify(f));
      // The request was read as HTTP/1.1 before it reached the server.
      assert.ok(seen().slice(from).some((e) => e.event === 'data' && /^GET \/v1\/h2 HTTP\/1\.1/.test(e.text ?? '')));
    } finally { await sb.destroy(); }
  });

  test("Node's http2 client (ALPN h2 only) is refused before the handshake: tls>http2, nothing reaches the server", async () => {
    const sb = await fx.sandbox(policy());
    try {
      const from = seen().length;
      const r = await sb.exec(nodeBinary(), ['-e', NODE_H2, bundleFor(sb)], 15_000);
      assert.doesNotMatch(r.stdout, /STATUS/, r.stdout + r.stderr);
      const f = (await flows(sb))[0]!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.rule, 'tls-inspection');
      assert.deepEqual(f.layers, ['tls', 'http2']);
      assert.deepEqual(seen().slice(from).filter((e) => e.event === 'data'), []);
    } finally { await sb.destroy(); }
  });

  test('the HTTP/2 preface without ALPN h2 (prior knowledge) is cut at tls>http2 with 0 bytes delivered', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const from = seen().length;
      const r = await sb.exec('python3', ['-c', PY_INNER, 'tls.example.test', String(PORT), bundleFor(sb), 'h2'], 15_000);
      assert.doesNotMatch(r.stdout, /GOT b'.+'/, r.stdout);
      const f = (await flows(sb))[0]!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.rule, 'inspection');
      assert.deepEqual(f.layers, ['tls', 'http2']); assert.equal(f.bytesOut, 0);
      assert.deepEqual(seen().slice(from).filter((e) => e.event === 'data'), []);
    } finally { await sb.destroy(); }
  });

  test('raw TLS inside intercepted TLS is cut at tls>tls; the inner ClientHello never reaches the server', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const from = seen().length;
      const r = await sb.exec('python3', ['-c', PY_INNER, 'tls.example.test', String(PORT), bundleFor(sb), 'raw'], 15_000);
      assert.doesNotMatch(r.stdout, /GOT b'.+'/, r.stdout);
      const f = (await flows(sb))[0]!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.rule, 'inspection');
      assert.equal(f.protocol, 'tls'); assert.deepEqual(f.layers, ['tls', 'tls']);
      assert.match(f.reason ?? '', /nested TLS/);
      assert.equal(f.bytesOut, 0);
      assert.deepEqual(seen().slice(from).filter((e) => e.event === 'data'), []);
    } finally { await sb.destroy(); }
  });

  test('TLS after CONNECT inside intercepted TLS is cut at tls>http>connect>tls; only the CONNECT head was delivered', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const from = seen().length;
      const r = await sb.exec('python3', ['-c', PY_INNER, 'tls.example.test', String(PORT), bundleFor(sb), 'connect'], 15_000);
      assert.match(r.stdout, /PROXY b'HTTP\/1.1 200/, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /GOT b'.+'/, r.stdout);
      const f = (await flows(sb))[0]!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.rule, 'inspection');
      assert.deepEqual(f.layers, ['tls', 'http', 'connect', 'tls']);
      const data = seen().slice(from).filter((e) => e.event === 'data');
      assert.equal(data.length, 1, JSON.stringify(data)); assert.match(data[0]!.text!, /^CONNECT tls\.example\.test:443 /);
      assert.deepEqual(innerTls(from), []);
    } finally { await sb.destroy(); }
  });

  test('curl through an HTTPS proxy on an allowed host (TLS in CONNECT in TLS) fails closed at tls>http>connect>tls', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const from = seen().length; const bundle = bundleFor(sb);
      const c = await sb.exec('curl', ['-sS', '--max-time', '5', '--proxy', `https://tls.example.test:${PORT}`, '--proxy-cacert', bundle, '--cacert', bundle, 'https://tls.example.test/'], 15_000);
      assert.notEqual(c.code, 0, c.stdout);
      const f = (await flows(sb))[0]!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.rule, 'inspection');
      assert.deepEqual(f.layers, ['tls', 'http', 'connect', 'tls']);
      assert.deepEqual(innerTls(from), []);
    } finally { await sb.destroy(); }
  });

  test('Expect: 100-continue uploads go at once (the head is judged alone); a transaction body after it is still cut', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const bundle = bundleFor(sb);
      const file = join(state, `up-${sb.id}.bin`); writeFileSync(file, Buffer.alloc(2 << 20, 0x61));
      // curl sends a body over 1 MiB only after 100 Continue; with a 10 s expect timeout, a
      // gateway that waited for the body first would hold it for its whole 3 s sniff window.
      const t0 = Date.now();
      const up = await sb.exec('curl', ['-sS', '--max-time', '10', '--expect100-timeout', '10', '--cacert', bundle, '--data-binary', `@${file}`, 'https://tls.example.test/upload-expect'], 15_000);
      const ms = Date.now() - t0;
      assert.equal(up.code, 0, up.stderr); assert.match(up.stdout, /received \d+ bytes/);
      assert.ok((await t.log('tls')).some((e) => e.event === 'request' && e.url === '/upload-expect' && e.bodyBytes === 2 << 20), 'the server got the whole body');
      assert.ok(ms < 2500, `upload took ${ms} ms`);
      const tx = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_sendRawTransaction', params: ['0xf86b'] });
      const denied = await sb.exec('curl', ['-sS', '--max-time', '5', '--expect100-timeout', '10', '--cacert', bundle, '-H', 'Expect: 100-continue', '-H', 'Content-Type: application/json', '--data-binary', tx, 'https://tls.example.test/rpc-expect'], 15_000);
      assert.doesNotMatch(denied.stdout, /received/, denied.stdout);
      await new Promise((r) => setTimeout(r, 300));
      const fs = fx.events.filter((e): e is Flow => e.kind === 'net.flow' && e.sandboxId === sb.id && e.dstPort === 443);
      const f = fs.find((e) => e.decision === 'deny');
      assert.ok(f, JSON.stringify(fs)); assert.equal(f.protocol, 'jsonrpc-tx'); assert.deepEqual(f.layers, ['tls', 'http', 'jsonrpc-tx']);
      assert.ok(!(await t.log('tls')).some((e) => e.event === 'request' && e.url === '/rpc-expect'), 'the transaction reached the server');
    } finally { await sb.destroy(); }
  });

  test('a CONNECT whose target is not allowed is cut as fronting, whatever its Host header says', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const from = seen().length;
      const code = PY_INNER.replace('CONNECT tls.example.test:443', 'CONNECT evil.test:443');
      const r = await sb.exec('python3', ['-c', code, 'tls.example.test', String(PORT), bundleFor(sb), 'connect'], 15_000);
      assert.doesNotMatch(r.stdout, /PROXY b'HTTP/, r.stdout);
      const f = (await flows(sb))[0]!;
      assert.equal(f.decision, 'deny', JSON.stringify(f));
      assert.match(f.reason ?? '', /evil\.test/, JSON.stringify(f));
      assert.deepEqual(seen().slice(from).filter((e) => e.event === 'data'), []);
    } finally { await sb.destroy(); }
  });
});
