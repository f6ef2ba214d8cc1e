// The interception CA as a real sandbox sees it: `praetor run --policy` in the test topology,
// bwrap sandbox, no client flags. The system bundle and the usual CA variables hold the Praetor
// CA, so stock clients (curl, python urllib) work through interception; the CA's key stays in
// host state; Stratum inside TLS to the allowed host is still denied.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { createTopology, MARKERS, type Topology } from '../topology/index.ts';

const PRAETOR = new URL('../../bin/praetor', import.meta.url).pathname;
let t: Topology; let dir: string;
before(async () => {
  t = await createTopology({ servers: ['web', 'tls', 'dns', 'stratum'] });
  dir = mkdtempSync('/tmp/pt-test-h5trust-');
  writeFileSync(`${dir}/policy.yaml`, `
network:
  upstreamCa: ${t.tlsCertPath}
  allow:
    - { domain: "tls.example.test", ports: [443] }
`);
});
after(async () => {
  // `praetor run` started a resident guard for this state directory: stop it (and its cgroup
  // group) before the topology goes.
  if (t && dir) { try { await t.execInHost(PRAETOR, ['daemon', 'stop', '--state', `${dir}/state`], { timeoutMs: 60_000 }); } catch { /* teardown kills it */ } }
  await t?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const run = (args: string[]) => t.execInHost(PRAETOR, ['run', '--state', `${dir}/state`, '--policy', `${dir}/policy.yaml`, ...args], { timeoutMs: 90_000 });

test('stock curl and python urllib trust the gateway through the sandbox bundle; the CA key stays in host state', async () => {
  const r = await run(['--report', `${dir}/ok.json`, '--', 'sh', '-c', [
    'curl -sS -m 5 https://tls.example.test/from-curl',
    'python3 -c "import urllib.request;print(urllib.request.urlopen(\'https://tls.example.test/from-python\',timeout=5).read().decode())"',
    'echo SSL_CERT_FILE=$SSL_CERT_FILE NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS',
    'grep -c "Praetor egress inspection CA" /etc/ssl/certs/ca-certificates.crt',
    'grep -rl "PRIVATE KEY" /etc/ssl 2>/dev/null | wc -l',
  ].join('; ')]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`${MARKERS.web} tls.example.test GET /from-curl`));
  assert.match(r.stdout, /GET \/from-python/);
  assert.match(r.stdout, /SSL_CERT_FILE=\/etc\/ssl\/certs\/ca-certificates.crt NODE_EXTRA_CA_CERTS=\/etc\/ssl\/certs\/ca-certificates.crt/);
  assert.match(r.stdout, /\n1\n0\n$/);
  assert.equal(statSync(`${dir}/state/tls-ca/ca.key`).mode & 0o777, 0o600);
  const rep = JSON.parse(readFileSync(`${dir}/ok.json`, 'utf8')) as { events: Array<{ kind: string; decision?: string; layers?: string[] }> };
  const fl = rep.events.filter((e) => e.kind === 'net.flow');
  assert.ok(fl.length >= 2 && fl.every((f) => f.decision === 'allow' && f.layers?.join('>') === 'tls>http'), JSON.stringify(fl));
});

test('Stratum inside TLS to the allowed host is denied inside a real sandbox; 0 bytes reach a server', async () => {
  const login = JSON.stringify({ id: 1, jsonrpc: '2.0', method: 'login', params: { login: 'wallet', pass: 'x', agent: 'XMRig/6.21.0' } });
  const before = (await t.log('tls')).length;
  const r = await run(['--report', `${dir}/mine.json`, '--', 'python3', '-c', `
import socket,ssl
s=ssl.create_default_context().wrap_socket(socket.create_connection(("tls.example.test",443),timeout=5),server_hostname="tls.example.test")
s.sendall(${JSON.stringify(login)}.encode()+b"\\n")
try: print("GOT",s.recv(100))
except Exception as e: print("ERR",e)`]);
  assert.doesNotMatch(r.stdout, /GOT b'[^']/, r.stdout);
  const rep = JSON.parse(readFileSync(`${dir}/mine.json`, 'utf8')) as { events: Array<{ kind: string; decision?: string; layers?: string[]; protocol?: string }> };
  const f = rep.events.find((e) => e.kind === 'net.flow' && e.decision === 'deny');
  assert.ok(f, JSON.stringify(rep.events.filter((e) => e.kind === 'net.flow')));
  assert.deepEqual(f.layers, ['tls', 'stratum']); assert.equal(f.protocol, 'stratum');
  const seen = (await t.log('tls')).slice(before);
  assert.ok(!seen.some((e) => e.event === 'request' || e.event === 'tls' || /login/.test(JSON.stringify(e))), `the TLS server saw a handshake or request: ${JSON.stringify(seen)}`);
});
