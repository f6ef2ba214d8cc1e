// The layer inspector on plain HTTP/1 (it replaced the request-by-request HTTP inspector):
// keep-alive fronting, later transactions, body framing, and what follows an upgrade.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import net from 'node:net';
import tls from 'node:tls';
import { requestHost } from './protocols/index.ts';
import { LayerInspector, type LayerVerdict } from './layer-inspector.ts';

async function feed(chunks: string[], nested = false): Promise<{ out: string; denied: string[]; requests: number }> {
  const denied: string[] = [];
  const deny = (rule: string, protocol: string, layers: string[]): LayerVerdict => ({ rule, reason: 'no', protocol, layers });
  const ins = new LayerInspector([], {
    judgeProtocol: (p, layers) => (['jsonrpc-tx', 'ssh', 'stratum'].includes(p) ? deny('protocols.allow', p, layers) : null),
    judgeRequest: (h, layers) => (requestHost(h) === 'web.example.test' ? null : deny('fronting', 'http', layers)),
    rewriteHead: (_h, raw) => raw,
    onDeny: (v) => denied.push(`${v.rule}:${v.protocol}`),
    onLayers: () => {},
  }, null, { nested });
  let out = '';
  ins.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  for (const c of chunks) { ins.write(Buffer.from(c, 'latin1')); await new Promise((r) => setImmediate(r)); }
  ins.end(); await new Promise((r) => setImmediate(r));
  return { out, denied, requests: ins.requests };
}
const req = (host: string, body = '') => `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

test('keep-alive: every request is judged; a fronted second request is cut before forwarding', async () => {
  const first = req('web.example.test', 'a=1');
  const r = await feed([first + req('evil.test', 'x')]);
  assert.equal(r.out, first); assert.deepEqual(r.denied, ['fronting:http']); assert.equal(r.requests, 1);
});

test('a transaction in a later keep-alive request is cut; split across chunks', async () => {
  const ok = req('web.example.test', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId' }));
  const tx = req('web.example.test', JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'eth_sendRawTransaction', params: ['0x'] }));
  const r = await feed([ok.slice(0, 10), ok.slice(10) + tx.slice(0, 30), tx.slice(30)]);
  assert.equal(r.out, ok); assert.deepEqual(r.denied, ['protocols.allow:jsonrpc-tx']);
});

test('large and chunked bodies stream through and the next request is still found; garbage after them is denied', async () => {
  const big = 'x'.repeat(200_000);
  const chunked = 'POST /up HTTP/1.1\r\nHost: web.example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n';
  const get = 'GET / HTTP/1.1\r\nHost: web.example.test\r\n\r\n';
  const all = req('web.example.test', big) + chunked + get;
  const parts: string[] = []; for (let i = 0; i < all.length; i += 7001) parts.push(all.slice(i, i + 7001));
  const r = await feed(parts);
  assert.deepEqual(r.denied, []); assert.equal(r.out.length, all.length); assert.equal(r.requests, 3);
  const bad = await feed([get + 'SSH-2.0-OpenSSH_9\r\n']);
  assert.equal(bad.out, get); assert.equal(bad.denied.length, 1);
});

test('after a websocket upgrade the frames are judged, not passed blind', async () => {
  const up = 'GET /ws HTTP/1.1\r\nHost: web.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const ok = await feed([up + '\x81\x05hello']);
  assert.equal(ok.out, up + '\x81\x05hello'); assert.deepEqual(ok.denied, []);
  const login = '{"id":1,"method":"mining.subscribe","params":[]}';
  const mined = await feed([up + '\x81' + String.fromCharCode(login.length) + login]);
  assert.equal(mined.out, up); assert.deepEqual(mined.denied, ['protocols.allow:stratum']);
});

test('a streamed chunked upload whose body is still arriving is judged on its head, not denied', async () => {
  const denied: string[] = []; let out = '';
  const ins = new LayerInspector([], {
    judgeProtocol: () => null, judgeRequest: () => null, rewriteHead: (_h, raw) => raw,
    onDeny: (v) => denied.push(v.reason), onLayers: () => {},
  }, null, { nested: false });
  ins.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const head = 'POST /logs HTTP/1.1\r\nHost: web.example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nline1\r\n';
  ins.write(Buffer.from(head));
  await new Promise((r) => setTimeout(r, 3300));
  assert.deepEqual(denied, []); assert.equal(out, head);
  ins.destroy();
});

test("CONNECT is judged on its target, not its Host header: a tunnel elsewhere through an allowed proxy is cut", async () => {
  const fronted = await feed(['CONNECT evil.test:443 HTTP/1.1\r\nHost: web.example.test\r\n\r\n']);
  assert.deepEqual(fronted.denied, ['fronting:http']); assert.equal(fronted.out, '');
  const same = 'CONNECT web.example.test:443 HTTP/1.1\r\nHost: web.example.test\r\n\r\n';
  const ok = await feed([same]);
  assert.deepEqual(ok.denied, []); assert.equal(ok.out, same);
});

/** A real ClientHello (what a TLS client sends first), as latin1 text for feed(). */
async function clientHello(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) => srv.once('connection', (s) => s.once('data', (d: Buffer) => { resolve(d); s.destroy(); })));
  const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, servername: 'inner.example.test' });
  c.on('error', () => {});
  const b = await got; c.destroy(); srv.close();
  return b.toString('latin1');
}

test('TLS after a plain CONNECT is cut where the rule inspects TLS (nested), forwarded unread where it is passthrough', async () => {
  const head = 'CONNECT web.example.test:443 HTTP/1.1\r\nHost: web.example.test\r\n\r\n';
  const hello = await clientHello();
  const cut = await feed([head, hello], true);
  assert.deepEqual(cut.denied, ['inspection:tls']); assert.equal(cut.out, head);
  const unread = await feed([head, hello], false);
  assert.deepEqual(unread.denied, []); assert.equal(unread.out, head + hello);
  // TLS as the stream's own first layer is not nested: it is a protocol judged like others.
  const top = await feed([hello], true);
  assert.deepEqual(top.denied, []);
});

test('Expect: 100-continue: the head goes at once (the client waits for the answer), the body is judged before it goes', async () => {
  const denied: string[] = []; let out = '';
  const ins = new LayerInspector([], {
    judgeProtocol: (p) => (p === 'jsonrpc-tx' ? { rule: 'protocols.allow', reason: 'no', protocol: p, layers: [] } : null),
    judgeRequest: () => null, rewriteHead: (_h, raw) => raw,
    onDeny: (v) => denied.push(`${v.rule}:${v.protocol}`), onLayers: () => {},
  }, null, { nested: false });
  ins.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const tick = () => new Promise((r) => setImmediate(r));
  const tx = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_sendRawTransaction', params: ['0xf86b'] });
  const head = (n: number) => `POST /rpc HTTP/1.1\r\nHost: web.example.test\r\nContent-Length: ${n}\r\nExpect: 100-continue\r\n\r\n`;
  ins.write(Buffer.from(head(tx.length))); await tick();
  assert.equal(out, head(tx.length), 'the head waited for a body the client sends only after 100 Continue');
  ins.write(Buffer.from(tx.slice(0, 10))); await tick();
  ins.write(Buffer.from(tx.slice(10))); await tick();
  assert.deepEqual(denied, ['protocols.allow:jsonrpc-tx']); assert.equal(out, head(tx.length));

  // A harmless body follows its head, and the next request is read as usual.
  const ok = new LayerInspector([], {
    judgeProtocol: () => null, judgeRequest: () => null, rewriteHead: (_h, raw) => raw, onDeny: (v) => denied.push(v.rule), onLayers: () => {},
  }, null, { nested: false });
  let out2 = ''; ok.on('data', (d: Buffer) => { out2 += d.toString('latin1'); });
  const body = 'x'.repeat(5000); const next = 'GET / HTTP/1.1\r\nHost: web.example.test\r\n\r\n';
  ok.write(Buffer.from(head(body.length))); await tick();
  ok.write(Buffer.from(body + next)); await tick();
  assert.equal(out2, head(body.length) + body + next); assert.equal(ok.requests, 2);
});
