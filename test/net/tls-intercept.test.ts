// TLS interception, layers, L7 rules, credential brokering and egress tokens, in the
// TEST-NETWORK.md topology: the gateway terminates TLS to allowed names with its CA (trusted by
// the sandbox's bundle), verifies the fake servers' certificate through network.upstreamCa, and
// judges the decrypted stream. The fake servers log what reached them: "0 bytes delivered" is
// checked on the server side.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { PraetorEvent } from '../../src/events/index.ts';
import { createTopology, MARKERS, nodeBinary, waitForOutput, type Topology } from '../topology/index.ts';
import { startGatewayFixture, type GatewayFixture, type TestSandbox } from './fixture.ts';

type Flow = Extract<PraetorEvent, { kind: 'net.flow' }>;
const EXTRA = fileURLToPath(new URL('./tls-extra-server.ts', import.meta.url));
const TLS_IP = '203.0.113.11';
const EXTRA_PORT = 8443;
const LOGIN = JSON.stringify({ id: 1, jsonrpc: '2.0', method: 'login', params: { login: 'wallet', pass: 'x', agent: 'XMRig/6.21.0' } });
const SUBSCRIBE = JSON.stringify({ id: 1, method: 'mining.subscribe', params: ['cpuminer/2.5'] });
// Python clients (standard library): what a miner or an API client inside a sandbox would run.
const PY_TLS_SEND = `import socket,ssl,sys,time
host,port,cafile,payload=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4]
ctx=ssl.create_default_context(cafile=cafile)
s=ctx.wrap_socket(socket.create_connection((host,port),timeout=5),server_hostname=host)
s.sendall(payload.encode()+b"\\n")
try:
  print("GOT",s.recv(4096))
except Exception as e:
  print("ERR",e)
`;
const PY_WS = `import socket,ssl,sys,os,base64,struct
host,port,cafile,msg=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4].encode()
ctx=ssl.create_default_context(cafile=cafile)
s=ctx.wrap_socket(socket.create_connection((host,port),timeout=5),server_hostname=host)
key=base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws HTTP/1.1\\r\\nHost: %s\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: %s\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n"%(host,key)).encode())
print("HEAD",s.recv(4096)[:12])
mask=os.urandom(4)
body=bytes(b^mask[i%4] for i,b in enumerate(msg))
s.sendall(bytes([0x81,0x80|len(msg)])+mask+body)
try:
  print("GOT",s.recv(4096))
except Exception as e:
  print("ERR",e)
`;
const PY_SPLIT_POST = `import socket,ssl,sys,time
host,port,cafile,a,b=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4].encode(),sys.argv[5].encode()
raw=socket.create_connection((host,port),timeout=5)
s=raw if cafile=="-" else ssl.create_default_context(cafile=cafile).wrap_socket(raw,server_hostname=host)
s.sendall(("POST /upload HTTP/1.1\\r\\nHost: %s\\r\\nContent-Length: %d\\r\\n\\r\\n"%(host,len(a)+len(b))).encode())
s.sendall(a); time.sleep(0.05); s.sendall(b)
try:
  print("GOT",s.recv(4096))
except Exception as e:
  print("ERR",e)
`;

describe('TLS interception and inspection inside allowed traffic', { concurrency: false }, () => {
  let t: Topology; let fx: GatewayFixture; let state: string; let extraLog: string;
  const py = (sb: TestSandbox, code: string, args: string[], env: Record<string, string> = {}) =>
    sb.exec('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'python3', '-c', code, ...args], 20_000);
  const flows = async (sb: TestSandbox) => {
    await new Promise((r) => setTimeout(r, 200));
    return fx.events.filter((e): e is Flow => e.kind === 'net.flow' && e.sandboxId === sb.id);
  };
  const extra = () => existsSync(extraLog) ? readFileSync(extraLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; text?: string; conn?: number }) : [];
  /** The sandbox's trust bundle as praetor installs it: the host bundle plus the Praetor CA. */
  const bundleFor = (sb: TestSandbox) => {
    const p = join(state, `bundle-${sb.id}.crt`);
    writeFileSync(p, readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8') + '\n' + sb.caCertPem!);
    return p;
  };
  const policy = (extraRules: Record<string, unknown> = {}, more: Record<string, unknown> = {}) => ({
    allow: [{ domain: 'tls.example.test', ports: [443, EXTRA_PORT], ...extraRules }, { domain: 'web.example.test', ports: [80] }],
    upstreamCa: t.tlsCertPath, ...more,
  });

  before(async () => {
    t = await createTopology({ servers: ['web', 'tls', 'dns'] });
    state = mkdtempSync(join(tmpdir(), 'praetor-h5-state-'));
    extraLog = join(t.dir, 'tls-extra.jsonl');
    const srv = t.spawnInInet(nodeBinary(), [EXTRA, TLS_IP, String(EXTRA_PORT), join(t.dir, 'tls-key.pem'), t.tlsCertPath, extraLog], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForOutput(srv, { ready: /listening/, timeoutMs: 10_000, what: 'extra TLS server' });
    fx = await startGatewayFixture(t, { PT_STATE: state });
  });
  after(async () => {
    await fx?.close();
    await t?.teardown();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  test('the CA is made in state with its key 0600, and handed to the sandbox with the CA variables', async () => {
    const sb = await fx.sandbox(policy());
    try {
      assert.equal(statSync(join(state, 'tls-ca', 'ca.key')).mode & 0o777, 0o600);
      assert.match(sb.caCertPem ?? '', /BEGIN CERTIFICATE/);
      assert.doesNotMatch(sb.caCertPem!, /PRIVATE KEY/);
      for (const k of ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT', 'AWS_CA_BUNDLE']) {
        assert.equal(sb.env[k], '/etc/ssl/certs/ca-certificates.crt', k);
      }
    } finally { await sb.destroy(); }
  });

  test('an HTTPS API client (curl, python urllib) works through interception and stays clean', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const bundle = bundleFor(sb);
      const c = await sb.exec('env', [`CURL_CA_BUNDLE=${bundle}`, 'curl', '-sS', '--max-time', '5', 'https://tls.example.test/v1/status'], 15_000);
      assert.equal(c.code, 0, c.stderr); assert.match(c.stdout, new RegExp(MARKERS.web));
      const u = await py(sb, 'import urllib.request;print(urllib.request.urlopen("https://tls.example.test/hello",timeout=5).read().decode())', [], { SSL_CERT_FILE: bundle });
      assert.equal(u.code, 0, u.stderr); assert.match(u.stdout, /GET \/hello/);
      const fs = (await flows(sb)).filter((f) => f.dstPort === 443);
      assert.ok(fs.length >= 2, JSON.stringify(fs));
      for (const f of fs) { assert.equal(f.decision, 'allow', JSON.stringify(f)); assert.deepEqual(f.layers, ['tls', 'http']); assert.ok(f.bytesOut > 30 && f.bytesIn > 30); }
      // the real server saw the requests (the gateway re-encrypted them)
      assert.ok((await t.log('tls')).some((e) => e.event === 'request' && e.url === '/hello'));
    } finally { await sb.destroy(); }
  });

  test('Stratum inside TLS to an allowed host is denied with layers [tls, stratum]; 0 bytes reach the server', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const before = extra().length;
      const r = await py(sb, PY_TLS_SEND, ['tls.example.test', String(EXTRA_PORT), bundleFor(sb), LOGIN]);
      assert.doesNotMatch(r.stdout, /GOT b'\{/, r.stdout);
      const f = (await flows(sb)).find((x) => x.dstPort === EXTRA_PORT)!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.protocol, 'stratum'); assert.equal(f.rule, 'protocols.allow');
      assert.deepEqual(f.layers, ['tls', 'stratum']);
      assert.equal(f.bytesOut, 0);
      await new Promise((res) => setTimeout(res, 200));
      assert.deepEqual(extra().slice(before).filter((e) => e.event === 'data'), [], 'the server received decrypted bytes');
      // The upstream's TLS opens only after the client's first bytes were judged: no handshake
      // with the server completed (the pre-dialled TCP connection closes empty: "socket hang up").
      assert.deepEqual(extra().slice(before).filter((e) => e.event === 'connection' || (e.event === 'tls-error' && !/hang up/.test(String((e as { error?: string }).error)))), []);
    } finally { await sb.destroy(); }
  });

  test('Stratum inside WebSocket inside TLS is denied with layers [tls, http, websocket, stratum]', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const before = extra().length;
      const r = await py(sb, PY_WS, ['tls.example.test', String(EXTRA_PORT), bundleFor(sb), SUBSCRIBE]);
      assert.match(r.stdout, /HEAD b'HTTP\/1.1 101/, r.stdout + r.stderr);
      const f = (await flows(sb)).find((x) => x.dstPort === EXTRA_PORT)!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.protocol, 'stratum');
      assert.deepEqual(f.layers, ['tls', 'http', 'websocket', 'stratum']);
      await new Promise((res) => setTimeout(res, 200));
      const got = extra().slice(before).filter((e) => e.event === 'data');
      // The upgrade request was allowed; not one frame byte after it arrived.
      assert.equal(got.length, 1, JSON.stringify(got)); assert.match(got[0]!.text!, /^GET \/ws HTTP\/1.1/);
      assert.ok(got[0]!.text!.endsWith('\r\n\r\n'), 'bytes after the upgrade head reached the server');
    } finally { await sb.destroy(); }
  });

  test('a client that waits before its ClientHello (past the server-first silence) is still intercepted', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const before = extra().length;
      const slow = PY_TLS_SEND.replace('s=ctx.wrap_socket(socket.create_connection((host,port),timeout=5),server_hostname=host)', 'raw=socket.create_connection((host,port),timeout=5)\ntime.sleep(0.6)\ns=ctx.wrap_socket(raw,server_hostname=host)');
      assert.notEqual(slow, PY_TLS_SEND);
      const r = await py(sb, slow, ['tls.example.test', String(EXTRA_PORT), bundleFor(sb), LOGIN]);
      assert.equal(r.code, 0, r.stderr);
      const f = (await flows(sb)).find((x) => x.dstPort === EXTRA_PORT)!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.deepEqual(f.layers, ['tls', 'stratum']);
      assert.deepEqual(extra().slice(before).filter((e) => e.event === 'data'), []);
    } finally { await sb.destroy(); }
  });

  test('plain WebSocket to an allowed web host, sent late and pipelined: frames judged, [http, websocket, stratum]', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const code = `import socket,time,os
s=socket.create_connection(("web.example.test",80),timeout=5)
time.sleep(0.4)
m=b'{"id":1,"method":"mining.subscribe","params":[]}'
k=os.urandom(4)
s.sendall(b"GET /ws HTTP/1.1\\r\\nHost: web.example.test\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: eA==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n"+bytes([0x81,0x80|len(m)])+k+bytes(b^k[i%4] for i,b in enumerate(m)))
time.sleep(0.5)`;
      await py(sb, code, []);
      const f = (await flows(sb)).find((x) => x.dstPort === 80)!;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.deepEqual(f.layers, ['http', 'websocket', 'stratum']);
    } finally { await sb.destroy(); }
  });

  test('a client that pins the real certificate fails closed, with an event that says why', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const before = extra().length;
      const r = await py(sb, PY_TLS_SEND, ['tls.example.test', String(EXTRA_PORT), t.tlsCertPath, 'hello']);
      assert.notEqual(r.code, 0); assert.match(r.stderr, /CERTIFICATE_VERIFY_FAILED|certificate verify failed/i);
      const f = (await flows(sb)).find((x) => x.dstPort === EXTRA_PORT)!;
      assert.equal(f.decision, 'deny'); assert.equal(f.rule, 'tls-inspection');
      assert.match(f.reason ?? '', /refused the inspection certificate/);
      assert.deepEqual(extra().slice(before).filter((e) => e.event === 'data' || e.event === 'connection'), []);
    } finally { await sb.destroy(); }
  });

  test('after a verified session, the upstream handshake runs during the client\'s: Stratum and a pinning client still deliver 0 bytes', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const bundle = bundleFor(sb);
      // An allowed HTTPS request first: the gateway now holds a verified session for this name
      // and address, so later connections start the upstream's TLS before the client is judged.
      const ok = await sb.exec('env', [`CURL_CA_BUNDLE=${bundle}`, 'curl', '-sS', '--max-time', '5', `https://tls.example.test:${EXTRA_PORT}/v1/ok`], 15_000);
      assert.equal(ok.code, 0, ok.stderr); assert.match(ok.stdout, /ok/);
      await new Promise((res) => setTimeout(res, 200));
      const before = extra().length;
      const r = await py(sb, PY_TLS_SEND, ['tls.example.test', String(EXTRA_PORT), bundle, LOGIN]);
      assert.doesNotMatch(r.stdout, /GOT b'\{/, r.stdout);
      const pinned = await py(sb, PY_TLS_SEND, ['tls.example.test', String(EXTRA_PORT), t.tlsCertPath, LOGIN]);
      assert.notEqual(pinned.code, 0);
      const fs = (await flows(sb)).filter((x) => x.dstPort === EXTRA_PORT);
      const stratum = fs.find((x) => x.protocol === 'stratum')!;
      assert.equal(stratum.decision, 'deny', JSON.stringify(fs)); assert.deepEqual(stratum.layers, ['tls', 'stratum']); assert.equal(stratum.bytesOut, 0);
      assert.ok(fs.some((x) => x.decision === 'deny' && x.rule === 'tls-inspection' && /refused the inspection certificate/.test(x.reason ?? '')), JSON.stringify(fs));
      await new Promise((res) => setTimeout(res, 300));
      const seen = extra().slice(before);
      // The server may have seen the gateway's handshakes (resumed); never one decrypted byte.
      assert.deepEqual(seen.filter((e) => e.event === 'data'), [], JSON.stringify(seen));
      for (const e of seen.filter((x) => x.event === 'close')) assert.equal((e as { bytesIn?: number }).bytesIn, 0, JSON.stringify(e));
    } finally { await sb.destroy(); }
  });

  test('a client that offers only HTTP/2 (ALPN h2) fails closed with an event naming it; h2 beside http/1.1 falls back', async () => {
    const sb = await fx.sandbox(policy());
    try {
      const code = (protos: string) => `import socket,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[1]); ctx.set_alpn_protocols(${protos})
try:
  s=ctx.wrap_socket(socket.create_connection(("tls.example.test",${EXTRA_PORT}),timeout=5),server_hostname="tls.example.test")
  print("ALPN",s.selected_alpn_protocol())
  s.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n" if s.selected_alpn_protocol()=="h2" else b"GET /v1/x HTTP/1.1\\r\\nHost: tls.example.test\\r\\nConnection: close\\r\\n\\r\\n")
  print("GOT",s.recv(4096))
except Exception as e:
  print("ERR",e)
`;
      const before = extra().length;
      const only = await py(sb, code('["h2"]'), [bundleFor(sb)]);
      assert.doesNotMatch(only.stdout, /GOT b'HTTP/, only.stdout);
      const both = await py(sb, code('["h2","http/1.1"]'), [bundleFor(sb)]);
      assert.match(both.stdout, /ALPN http\/1.1[\s\S]*GOT b'HTTP\/1.1 200/, both.stdout + both.stderr);
      const fs = (await flows(sb)).filter((x) => x.dstPort === EXTRA_PORT);
      const h2 = fs.find((x) => x.decision === 'deny')!;
      assert.equal(h2.rule, 'tls-inspection', JSON.stringify(fs)); assert.equal(h2.protocol, 'http2');
      assert.deepEqual(h2.layers, ['tls', 'http2']);
      assert.match(h2.reason ?? '', /offers only ALPN h2.*HTTP\/2 is not inspected/);
      assert.equal(fs.filter((x) => x.decision === 'allow').length, 1, JSON.stringify(fs));
      await new Promise((res) => setTimeout(res, 200));
      const data = extra().slice(before).filter((e) => e.event === 'data');
      assert.equal(data.length, 1, JSON.stringify(data)); assert.match(data[0]!.text!, /^GET \/v1\/x/);
    } finally { await sb.destroy(); }
  });

  test("CONNECT through the gateway's proxy is intercepted the same way", async () => {
    const sb = await fx.sandbox(policy());
    try {
      const bundle = bundleFor(sb);
      const c = await sb.exec('env', [`CURL_CA_BUNDLE=${bundle}`, 'curl', '-sS', '--max-time', '5', '-x', sb.env.HTTP_PROXY!, 'https://tls.example.test/via-connect'], 15_000);
      assert.equal(c.code, 0, c.stderr); assert.match(c.stdout, /GET \/via-connect/);
      const before = extra().length;
      const f = (await flows(sb)).find((x) => x.dstPort === 443 && /via proxy/.test(x.reason ?? ''))!;
      assert.ok(f, JSON.stringify(await flows(sb)));
      assert.equal(f.decision, 'allow'); assert.deepEqual(f.layers, ['tls', 'http']);
      assert.deepEqual(extra().slice(before).filter((e) => e.event === 'data'), []);
    } finally { await sb.destroy(); }
  });

  test('an upstream whose certificate is not trusted is refused (no upstreamCa)', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'tls.example.test', ports: [443] }] });
    try {
      const c = await sb.exec('env', [`CURL_CA_BUNDLE=${bundleFor(sb)}`, 'curl', '-sS', '--max-time', '5', 'https://tls.example.test/'], 15_000);
      assert.notEqual(c.code, 0);
      const f = (await flows(sb)).find((x) => x.dstPort === 443)!;
      assert.equal(f.decision, 'deny'); assert.equal(f.rule, 'tls-upstream'); assert.match(f.reason ?? '', /upstreamCa/);
    } finally { await sb.destroy(); }
  });

  test('inspect: passthrough is not intercepted (the real certificate reaches the client)', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'tls.example.test', ports: [443, EXTRA_PORT], inspect: 'passthrough' }] });
    try {
      const c = await sb.exec('curl', ['-sS', '--max-time', '5', '--cacert', t.tlsCertPath, 'https://tls.example.test/'], 15_000);
      assert.equal(c.code, 0, c.stderr);
      const f = (await flows(sb)).find((x) => x.dstPort === 443)!;
      assert.equal(f.decision, 'allow'); assert.deepEqual(f.layers, ['tls']); assert.equal(f.sni, 'tls.example.test');
    } finally { await sb.destroy(); }
  });

  test('L7 rules: only GET under /v1/* reaches the API; others get 403 and a deny event', async () => {
    const sb = await fx.sandbox(policy({ http: { methods: ['GET'], paths: ['/v1/*'] } }, { allow: [{ domain: 'tls.example.test', ports: [443], http: { methods: ['GET'], paths: ['/v1/*'] } }, { domain: 'web.example.test', ports: [80], http: { methods: ['GET'] } }] }));
    try {
      const bundle = bundleFor(sb);
      const curl = (args: string[]) => sb.exec('env', [`CURL_CA_BUNDLE=${bundle}`, 'curl', '-sS', '--max-time', '5', ...args], 15_000);
      const ok = await curl(['https://tls.example.test/v1/models']);
      assert.equal(ok.code, 0, ok.stderr); assert.match(ok.stdout, /GET \/v1\/models/);
      const post = await curl(['-w', '%{http_code}', '-X', 'POST', '--data', 'x=1', 'https://tls.example.test/v1/models']);
      assert.match(post.stdout, /praetor: method POST is not allowed/); assert.match(post.stdout, /403$/);
      const admin = await curl(['-w', '%{http_code}', 'https://tls.example.test/admin']);
      assert.match(admin.stdout, /403$/);
      const dots = await curl(['-w', '%{http_code}', '--path-as-is', 'https://tls.example.test/v1/../admin']);
      assert.match(dots.stdout, /403$/);
      const plain = await curl(['-w', '%{http_code}', '-X', 'DELETE', 'http://web.example.test/x']);
      assert.match(plain.stdout, /403$/);
      const denied = (await flows(sb)).filter((f) => f.decision === 'deny');
      assert.ok(denied.some((f) => f.rule === 'network.allow[0].http' && /method POST/.test(f.reason ?? '') && f.layers?.join('>') === 'tls>http'), JSON.stringify(denied));
      assert.ok(denied.some((f) => f.rule === 'network.allow[1].http' && /method DELETE/.test(f.reason ?? '')), JSON.stringify(denied));
      const reqs = (await t.log('tls')).filter((e) => e.event === 'request');
      assert.ok(!reqs.some((e) => e.url === '/admin' || e.method === 'POST'), 'a denied request reached the server');
    } finally { await sb.destroy(); }
  });

  test('brokered secret: injected for its domain, the sandbox holds a placeholder, and the placeholder is blocked elsewhere', async () => {
    const secret = 'Bearer sk-praetor-test-secret-0123456789';
    const sb = await fx.sandbox(policy({}, { secrets: [{ name: 'API_TOKEN', domain: 'tls.example.test', header: 'Authorization', value: secret }] }));
    try {
      const ph = sb.env.API_TOKEN!;
      assert.match(ph, /^praetor-placeholder-api_token-[0-9a-f]{24}$/);
      assert.equal(sb.secrets?.[0]?.name, 'API_TOKEN'); assert.match(sb.secrets![0]!.sha256, /^[0-9a-f]{64}$/);
      const bundle = bundleFor(sb);
      const c = await sb.exec('env', [`CURL_CA_BUNDLE=${bundle}`, 'curl', '-sS', '--max-time', '5', '-H', `Authorization: Bearer ${ph}`, 'https://tls.example.test/echo'], 15_000);
      assert.equal(c.code, 0, c.stderr);
      assert.equal((JSON.parse(c.stdout) as { headers: Record<string, string> }).headers.authorization, secret);
      // The placeholder posted to another allowed host: blocked, and none of it arrived.
      const webBefore = (await t.log('web')).length;
      const leak = await sb.exec('curl', ['-sS', '--max-time', '5', '--data', `token=${ph}`, 'http://web.example.test/collect'], 15_000);
      assert.notEqual(leak.code, 0);
      const f = (await flows(sb)).find((x) => x.rule === 'egress-token')!;
      assert.ok(f, 'no egress-token denial'); assert.equal(f.decision, 'deny'); assert.match(f.reason ?? '', /placeholder token "API_TOKEN"/);
      await new Promise((res) => setTimeout(res, 200));
      const webAfter = (await t.log('web')).slice(webBefore);
      assert.ok(!JSON.stringify(webAfter).includes(ph.slice(0, 24)), JSON.stringify(webAfter));
      // Never the secret, nor the placeholder, in any event.
      const all = JSON.stringify(fx.events);
      assert.ok(!all.includes('sk-praetor-test-secret'), 'the secret value appears in an event');
      assert.ok(!all.includes(ph), 'the placeholder appears in an event');
    } finally { await sb.destroy(); }
  });

  test('a canary token in a POST body, split across writes, is blocked with 0 bytes of it delivered (TLS and plain)', async () => {
    const canary = 'AKIAPRAETORCANARY7Q2X';
    const sb = await fx.sandbox(policy(), { egressTokens: [{ name: 'aws-canary', value: canary, kind: 'canary' }] });
    try {
      const before = extra().length; const webBefore = (await t.log('web')).length;
      const r = await py(sb, PY_SPLIT_POST, ['tls.example.test', String(EXTRA_PORT), bundleFor(sb), 'key=AKIAPRAET', 'ORCANARY7Q2X&x=1']);
      assert.doesNotMatch(r.stdout, /GOT b'HTTP/, r.stdout);
      const p = await py(sb, PY_SPLIT_POST, ['web.example.test', '80', '-', 'id=AKIAPRAETORCAN', 'ARY7Q2X']);
      assert.doesNotMatch(p.stdout, /GOT b'HTTP/, p.stdout);
      const hits = (await flows(sb)).filter((x) => x.rule === 'egress-token');
      assert.equal(hits.length, 2, JSON.stringify(await flows(sb)) + r.stdout + r.stderr);
      assert.ok(hits.every((h) => h.decision === 'deny' && /canary token "aws-canary"/.test(h.reason ?? '') && !(h.reason ?? '').includes(canary)));
      await new Promise((res) => setTimeout(res, 300));
      const got = JSON.stringify(extra().slice(before)) + JSON.stringify((await t.log('web')).slice(webBefore));
      // Neither the token nor the held start of it (the first write's tail) reached a server.
      assert.ok(!got.includes('AKIAPRAET'), got);
      // Past the 64 KiB the sniffers read whole, the body streams: the tail of the first write
      // that could begin the token is held back until the second write shows it is one.
      const b2 = extra().length;
      const big = await py(sb, PY_SPLIT_POST, ['tls.example.test', String(EXTRA_PORT), bundleFor(sb), 'x'.repeat(70_000) + 'AKIAPRAET', 'ORCANARY7Q2X']);
      // (the fake server answers as soon as it sees a request head, so the client may read a 200;
      // its second write may meet the cut connection)
      assert.doesNotMatch(big.stderr, /No such file|SyntaxError/);
      await new Promise((res) => setTimeout(res, 300));
      const seen = extra().slice(b2).filter((e) => e.event === 'data').reduce((a, e) => a + Number((e as { bytes?: number }).bytes ?? 0), 0);
      const head = `POST /upload HTTP/1.1\r\nHost: tls.example.test\r\nContent-Length: ${70_000 + 21}\r\n\r\n`.length;
      assert.ok(seen >= head && seen <= head + 70_000, `the server received ${seen} bytes (head ${head} + 70000 allowed)`);
      assert.equal((await flows(sb)).filter((x) => x.rule === 'egress-token').length, 3);
    } finally { await sb.destroy(); }
  });

  // Last: it rotates the suite's CA (later sandboxes would simply get the new one).
  test('CA rotation: new sandboxes get the new CA; a sandbox prepared before is served by the old until its grace ends, then refused with a reason', async () => {
    const before = await fx.sandbox(policy());
    let after: TestSandbox | undefined;
    try {
      const oldCa = before.caCertPem!;
      const curl = (sb: TestSandbox, ca: string) => {
        const f = join(state, `ca-${sb.id}-${Math.random().toString(36).slice(2)}.pem`);
        writeFileSync(f, ca);
        return sb.exec('curl', ['-sS', '--max-time', '5', '--cacert', f, 'https://tls.example.test/v1/rot'], 15_000);
      };
      const graceMs = 2500;
      const rotated = await fx.rotateCa(graceMs);
      assert.notEqual(rotated.certPem.trim(), oldCa.trim());
      after = await fx.sandbox(policy());
      assert.equal(after.caCertPem, rotated.bundlePem);
      assert.ok(after.caCertPem!.includes(rotated.certPem.trim()) && after.caCertPem!.includes(oldCa.trim()), 'the new bundle holds the new CA and, during the grace period, the old');
      // The new sandbox's leaves chain to the new CA alone; the old sandbox is still served by the CA it trusts.
      const n = await curl(after, rotated.certPem); assert.equal(n.code, 0, n.stderr); assert.match(n.stdout, new RegExp(MARKERS.web));
      const o = await curl(before, oldCa); assert.equal(o.code, 0, o.stderr);
      await new Promise((r) => setTimeout(r, graceMs + 200));
      const late = await curl(before, oldCa);
      assert.notEqual(late.code, 0, late.stdout);
      const f = (await flows(before)).filter((x) => x.dstPort === 443).at(-1)!;
      assert.equal(f.decision, 'deny'); assert.equal(f.rule, 'tls-inspection');
      assert.match(f.reason ?? '', /grace period ended .*restart the sandbox/);
      const again = await curl(after, rotated.certPem); assert.equal(again.code, 0, again.stderr);
    } finally { await before.destroy(); await after?.destroy(); }
  });
});
