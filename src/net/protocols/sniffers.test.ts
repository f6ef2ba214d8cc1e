// One shared suite for every sniffer: each recognises its samples from the first bytes, asks
// for more on every proper prefix (never a wrong verdict on partial data), never claims another
// protocol's sample, and never throws on garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { classify, SNIFFERS, type Sniffer } from './index.ts';

async function clientHello(servername: string, alpn?: string[]): Promise<Buffer> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => srv.once('connection', (s) => s.once('data', (d: Buffer) => { resolve(d); s.destroy(); })));
  const c = tls.connect({ host: '127.0.0.1', port, servername, ...(alpn ? { ALPNProtocols: alpn } : {}) });
  c.on('error', () => {});
  const buf = await got; c.destroy(); srv.close();
  return buf;
}

const j = (o: unknown) => Buffer.from(JSON.stringify(o) + '\n');
type Sample = { name: string; bytes: Buffer; dir: 'client' | 'server'; protocol: string; sni?: string; host?: string };

const samples: Sample[] = [
  { name: 'http get', dir: 'client', protocol: 'http', host: 'web.example.test', bytes: Buffer.from('GET /x HTTP/1.1\r\nHost: web.example.test:80\r\nUser-Agent: curl\r\n\r\n') },
  { name: 'http post jsonrpc read', dir: 'client', protocol: 'jsonrpc', host: 'rpc.example.test', bytes: httpPost('rpc.example.test', { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }) },
  { name: 'http post jsonrpc tx', dir: 'client', protocol: 'jsonrpc-tx', host: 'rpc.example.test', bytes: httpPost('rpc.example.test', { jsonrpc: '2.0', id: 1, method: 'eth_sendRawTransaction', params: ['0xf86b'] }) },
  { name: 'http post personal_sign batch', dir: 'client', protocol: 'jsonrpc-tx', host: 'rpc.example.test', bytes: httpPost('rpc.example.test', [{ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }, { jsonrpc: '2.0', id: 2, method: 'personal_sign', params: ['0x00', '0x01'] }]) },
  { name: 'http getwork', dir: 'client', protocol: 'stratum', host: 'pool.example.test', bytes: httpPost('pool.example.test', { method: 'getwork', params: [], id: 0 }) },
  { name: 'chisel websocket', dir: 'client', protocol: 'chisel', host: 'web.example.test', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: web.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Protocol: chisel-v3\r\n\r\n') },
  { name: 'ssh client banner', dir: 'client', protocol: 'ssh', bytes: Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n') },
  { name: 'ssh server banner', dir: 'server', protocol: 'ssh', bytes: Buffer.from('SSH-2.0-OpenSSH_9.2p1\r\n') },
  { name: 'chisel ssh banner', dir: 'client', protocol: 'chisel', bytes: Buffer.from('SSH-chisel-v3-client\r\n') },
  { name: 'stratum subscribe', dir: 'client', protocol: 'stratum', bytes: j({ id: 1, method: 'mining.subscribe', params: ['cpuminer/2.5'] }) },
  { name: 'xmrig login', dir: 'client', protocol: 'stratum', bytes: j({ id: 1, jsonrpc: '2.0', method: 'login', params: { login: 'wallet', pass: 'x', agent: 'XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0', algo: ['rx/0'] } }) },
  { name: 'ethereumstratum hello', dir: 'client', protocol: 'stratum', bytes: j({ id: 0, method: 'mining.hello', params: { agent: 'ethminer', host: 'p', port: '3333', proto: 'EthereumStratum/2.0.0' } }) },
  { name: 'ethproxy login', dir: 'client', protocol: 'stratum', bytes: j({ id: 1, jsonrpc: '2.0', method: 'eth_submitLogin', params: ['0xabc'] }) },
  { name: 'pool notify', dir: 'server', protocol: 'stratum', bytes: j({ id: null, method: 'mining.notify', params: ['a', 'b'] }) },
  { name: 'raw jsonrpc tx', dir: 'client', protocol: 'jsonrpc-tx', bytes: j({ jsonrpc: '2.0', id: 1, method: 'eth_sendTransaction', params: [{ to: '0x1' }] }) },
  { name: 'raw jsonrpc sign typed', dir: 'client', protocol: 'jsonrpc-tx', bytes: j({ jsonrpc: '2.0', id: 1, method: 'eth_signTypedData_v4', params: [] }) },
  // Other chains, hidden in a batch behind a read.
  { name: 'http post bitcoin sendrawtransaction batch', dir: 'client', protocol: 'jsonrpc-tx', host: 'chain.example.test', bytes: httpPost('chain.example.test', [{ jsonrpc: '2.0', id: 1, method: 'getblockcount', params: [] }, { jsonrpc: '2.0', id: 2, method: 'sendrawtransaction', params: ['0200000001aa'] }]) },
  { name: 'http post solana sendTransaction', dir: 'client', protocol: 'jsonrpc-tx', host: 'chain.example.test', bytes: httpPost('chain.example.test', { jsonrpc: '2.0', id: 1, method: 'sendTransaction', params: ['4hXTCkRzt9WyecNz'] }) },
  { name: 'raw monero wallet transfer', dir: 'client', protocol: 'jsonrpc-tx', bytes: j({ jsonrpc: '2.0', id: 0, method: 'transfer', params: { destinations: [{ amount: 1, address: '4A' }] } }) },
  { name: 'raw bitcoin send with outputs', dir: 'client', protocol: 'jsonrpc-tx', bytes: j({ jsonrpc: '1.0', id: 'x', method: 'send', params: { outputs: [{ bc1q: 0.1 }] } }) },
  // Look-alikes: generic method names in other JSON-RPC APIs stay plain jsonrpc.
  { name: 'raw chat send (not a tx)', dir: 'client', protocol: 'jsonrpc', bytes: j({ jsonrpc: '2.0', id: 1, method: 'send', params: { text: 'hello' } }) },
  { name: 'raw transfer without destinations (not a tx)', dir: 'client', protocol: 'jsonrpc', bytes: j({ jsonrpc: '2.0', id: 1, method: 'transfer', params: { file: 'a.txt' } }) },
  { name: 'raw jsonrpc read', dir: 'client', protocol: 'jsonrpc', bytes: j({ jsonrpc: '2.0', id: 1, method: 'eth_getBalance', params: ['0x1', 'latest'] }) },
  { name: 'bore hello', dir: 'client', protocol: 'bore', bytes: Buffer.from('{"Hello":0}\0') },
  { name: 'bore challenge', dir: 'server', protocol: 'bore', bytes: Buffer.from('{"Challenge":"6a1f0c9e-9a4e-4b7e-8f7a-2b0c1d2e3f40"}\0') },
  { name: 'frp yamux', dir: 'client', protocol: 'frp', bytes: Buffer.from([0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]) },
  { name: 'frp login', dir: 'client', protocol: 'frp', bytes: frpLogin() },
  { name: 'unknown binary', dir: 'client', protocol: 'unknown', bytes: Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]) },
  { name: 'unknown text', dir: 'client', protocol: 'unknown', bytes: Buffer.from('HELLO there\r\n') },
];

function httpPost(host: string, body: unknown): Buffer {
  const b = JSON.stringify(body);
  return Buffer.from(`POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`);
}
function frpLogin(): Buffer {
  const json = Buffer.from(JSON.stringify({ version: '0.52.3', hostname: '', os: 'linux', arch: 'amd64', privilege_key: 'k', timestamp: 1, run_id: '', pool_count: 1 }));
  const h = Buffer.alloc(9); h[0] = 0x6f; h.writeBigUInt64BE(BigInt(json.length), 1);
  return Buffer.concat([h, json]);
}

test('TLS ClientHello: SNI from a real handshake, tunnel SNIs, frp head byte', async () => {
  const hello = await clientHello('tls.example.test', ['h2', 'http/1.1']);
  assert.deepEqual(classify(hello, 'client'), { state: 'done', protocol: 'tls', sni: 'tls.example.test', detail: 'alpn h2,http/1.1' });
  for (let n = 1; n < hello.length; n += 37) assert.equal(classify(hello.subarray(0, n), 'client').state, 'more', `prefix ${n}`);
  assert.equal((classify(await clientHello('connect.ngrok-agent.com'), 'client') as { protocol: string }).protocol, 'ngrok');
  assert.equal((classify(await clientHello('region1.v2.argotunnel.com'), 'client') as { protocol: string }).protocol, 'cloudflared');
  const frp = classify(Buffer.concat([Buffer.from([0x17]), hello]), 'client');
  assert.equal((frp as { protocol: string }).protocol, 'frp');
});

for (const s of samples) {
  test(`classify: ${s.name} → ${s.protocol}`, () => {
    const r = classify(s.bytes, s.dir, true);
    assert.equal(r.state, 'done');
    if (r.state !== 'done') return;
    assert.equal(r.protocol, s.protocol);
    if (s.host) assert.equal(r.host, s.host);
    // Every proper prefix either waits for more or already names the same protocol.
    if (s.protocol !== 'unknown') {
      for (let n = 1; n < s.bytes.length; n++) {
        const p = classify(s.bytes.subarray(0, n), s.dir);
        assert.ok(p.state === 'more' || p.protocol === s.protocol || (s.protocol.startsWith('jsonrpc') && p.protocol === 'http'),
          `${s.name}: prefix ${n} gave ${JSON.stringify(p)}`);
      }
    }
  });
}

test('each sniffer claims only its own samples', () => {
  const owner: Record<string, string[]> = {
    http: ['http'], tls: ['tls', 'frp'], ssh: ['ssh', 'chisel'], stratum: ['stratum'], jsonrpc: ['jsonrpc', 'jsonrpc-tx'], tunnels: ['bore', 'frp'],
  };
  for (const sn of SNIFFERS as Sniffer[]) {
    for (const s of samples) {
      if (!sn.directions.includes(s.dir)) continue;
      const r = sn.sniff(s.bytes, s.dir);
      if (r.state === 'match') {
        assert.ok(owner[sn.name]!.includes(r.protocol) || sn.name === 'http', `${sn.name} claimed ${s.name} as ${r.protocol}`);
        if (sn.name !== 'http') assert.equal(r.protocol, s.protocol, `${sn.name} on ${s.name}`);
      }
    }
  }
});

test('sniffers never throw on random bytes and decide within the sniff limit', () => {
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 255;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(Array.from({ length: 1 + (i % 300) }, rnd));
    if (i % 7 === 0) b[0] = [0x16, 0x7b, 0x53, 0x47, 0x00, 0x6f, 0x17][i % 7]!;
    for (const sn of SNIFFERS) for (const d of sn.directions) assert.doesNotThrow(() => sn.sniff(b, d));
  }
  assert.equal(classify(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n'), 'client', true).state, 'done');
  assert.deepEqual(classify(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n'), 'client', true), { state: 'done', protocol: 'incomplete' });
});

test('a 64 KiB HTTP body is read before deciding; a transaction deep in it is still found', () => {
  const pad = 'x'.repeat(60_000);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, pad, method: 'eth_sendRawTransaction', params: ['0x'] });
  const req = Buffer.from(`POST / HTTP/1.1\r\nHost: rpc.example.test\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  assert.equal(classify(req.subarray(0, req.length - 10), 'client').state, 'more');
  assert.equal((classify(req, 'client') as { protocol: string }).protocol, 'jsonrpc-tx');
});
