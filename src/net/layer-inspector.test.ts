// Unit tests of the layer inspector, the WebSocket framing, the egress token scanner and the L7
// rules: what is forwarded, what is held, and which layer path a verdict names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LayerInspector, type LayerHooks, type LayerVerdict } from './layer-inspector.ts';
import { clientFrame, parseFrameHeader, unmask } from './protocols/websocket.ts';
import { tokensFor } from './token-scanner.ts';
import { compileL7, l7Violation } from './l7-rules.ts';

const GATED = new Set(['stratum', 'ssh', 'jsonrpc-tx', 'chisel', 'frp', 'bore']);
function harness(tokens: ReturnType<typeof tokensFor> = null, base: string[] = ['tls']) {
  const out: Buffer[] = []; const denied: LayerVerdict[] = []; const seen: string[][] = [];
  const hooks: LayerHooks = {
    judgeProtocol: (p, layers) => (GATED.has(p) ? { rule: 'protocols.allow', reason: `${p} denied`, protocol: p, layers } : null),
    judgeRequest: () => null,
    rewriteHead: (_h, raw) => raw,
    onDeny: (v) => denied.push(v),
    onLayers: (l) => seen.push(l),
  };
  const ins = new LayerInspector(base, hooks, tokens);
  ins.on('data', (d: Buffer) => out.push(d));
  const write = (b: Buffer | string) => new Promise<void>((r) => ins.write(typeof b === 'string' ? Buffer.from(b) : b, () => setImmediate(r)));
  return { ins, out: () => Buffer.concat(out).toString('latin1'), denied, seen, write };
}
const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n';

test('websocket frames: parse, unmask, build', () => {
  const f = clientFrame(Buffer.from('hello'));
  const h = parseFrameHeader(f);
  assert.ok(h && h !== 'more'); assert.equal(h.opcode, 1); assert.equal(h.length, 5); assert.equal(h.headerLen, 6);
  assert.equal(unmask(f.subarray(6), h.mask!, 0).toString(), 'hello');
  assert.equal(parseFrameHeader(f.subarray(0, 1)), 'more');
  assert.equal(parseFrameHeader(Buffer.from([0xf1, 0x80])), null, 'RSV bits set');
  const big = clientFrame(Buffer.alloc(70_000, 0x61)); const hb = parseFrameHeader(big);
  assert.ok(hb && hb !== 'more'); assert.equal(hb.length, 70_000); assert.equal(hb.headerLen, 14);
});

test('stratum inside a websocket frame is denied with the full layer path; the frame is not forwarded', async () => {
  const h = harness();
  await h.write(UPGRADE);
  assert.equal(h.out(), UPGRADE, 'the upgrade head is forwarded');
  await h.write(clientFrame(Buffer.from('{"id":1,"method":"mining.subscribe","params":[]}')));
  assert.equal(h.denied.length, 1);
  assert.deepEqual(h.denied[0]!.layers, ['tls', 'http', 'websocket', 'stratum']);
  assert.equal(h.out(), UPGRADE, 'no frame byte after the head');
});

test('a chat message in websocket frames passes unchanged; split frames are reassembled', async () => {
  const h = harness();
  const f = clientFrame(Buffer.from('{"type":"chat","text":"hi"}'));
  await h.write(Buffer.concat([Buffer.from(UPGRADE), f.subarray(0, 3)]));
  await h.write(f.subarray(3));
  assert.deepEqual(h.denied, []);
  assert.equal(h.out(), UPGRADE + f.toString('latin1'));
  assert.ok(h.seen.some((l) => l.join('>') === 'tls>http>websocket'));
});

test('a WebSocket upgrade goes out without Sec-WebSocket-Extensions (no compression to hide frames)', async () => {
  const h = harness();
  await h.write(UPGRADE.replace('\r\n\r\n', '\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n'));
  assert.equal(h.out(), UPGRADE);
});

test('stratum as the first bytes of the stream: [tls, stratum]; HTTP/2 inside fails closed', async () => {
  const a = harness(); await a.write('{"id":1,"method":"mining.subscribe","params":[]}\n');
  assert.deepEqual(a.denied[0]?.layers, ['tls', 'stratum']); assert.equal(a.out(), '');
  const c = harness(); await c.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  assert.equal(c.denied[0]?.protocol, 'http2');
});

test('CONNECT inner stream is sniffed again: [tls, http, connect, ssh]', async () => {
  const h = harness();
  await h.write('CONNECT x.test:22 HTTP/1.1\r\nHost: x.test:22\r\n\r\nSSH-2.0-OpenSSH_9.2\r\n');
  assert.deepEqual(h.denied[0]?.layers, ['tls', 'http', 'connect', 'ssh']);
});

test('chunked body: a transaction split across chunks is found in the de-chunked view by the sniffer', async () => {
  const h = harness();
  const body = '{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x00"]}';
  const chunked = `${(20).toString(16)}\r\n${body.slice(0, 20)}\r\n${(body.length - 20).toString(16)}\r\n${body.slice(20)}\r\n0\r\n\r\n`;
  await h.write(`POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
  assert.deepEqual(h.denied[0]?.layers, ['tls', 'http', 'jsonrpc-tx']);
});

test('egress tokens: a token split across writes is held, then caught with 0 bytes of it released', async () => {
  const tok = tokensFor([{ name: 'c', value: 'CANARY-0123456789', kind: 'canary' }], 'a.test');
  const h = harness(tok, []);
  await h.write('hello CANARY-01');
  assert.equal(h.out(), 'hello ', 'the tail that could begin the token is held');
  await h.write('23456789 rest');
  assert.equal(h.denied[0]?.rule, 'egress-token'); assert.match(h.denied[0]!.reason, /canary token "c" \(sha256 [0-9a-f]{16}…\)/);
  assert.equal(h.out(), 'hello ');
  assert.doesNotMatch(h.denied[0]!.reason, /CANARY-0123456789/);
});

test('egress tokens: a held tail that does not become a token is released (also after a pause)', async () => {
  const tok = tokensFor([{ name: 'c', value: 'CANARY-0123456789', kind: 'canary' }], 'a.test');
  const h = harness(tok, []);
  await h.write('abc CANARY-0');
  assert.equal(h.out(), 'abc ');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(h.out(), 'abc CANARY-0', 'released after the hold pause');
  await h.write('xyz');
  assert.equal(h.out(), 'abc CANARY-0xyz'); assert.deepEqual(h.denied, []);
});

test('egress tokens: inside websocket payloads (masked, split across frames) the frames carrying it are held', async () => {
  const tok = tokensFor([{ name: 'p', value: 'praetor-placeholder-x-abcdef', kind: 'placeholder', domains: ['ok.test'] }], 'other.test');
  const h = harness(tok);
  await h.write(UPGRADE);
  const f1 = clientFrame(Buffer.from('token=praetor-place'), 1, Buffer.from([1, 2, 3, 4]), false);
  await h.write(f1);
  const before = h.out().length;
  await h.write(clientFrame(Buffer.from('holder-x-abcdef'), 0, Buffer.from([9, 8, 7, 6])));
  assert.equal(h.denied[0]?.rule, 'egress-token');
  assert.ok(before <= UPGRADE.length + 6 + 'token='.length, 'no byte of the token prefix frame beyond the header was released');
  // the same placeholder to its own domain is not a hit
  assert.equal(tokensFor([{ name: 'p', value: 'praetor-placeholder-x-abcdef', kind: 'placeholder', domains: ['ok.test'] }], 'ok.test'), null);
});

test('egress tokens: base64 (wrapped at 76 columns like `env | base64`) and hex forms are found too', async () => {
  const value = 'praetor-canary-AKIA7Q2XEXAMPLE1234';
  for (const pre of ['', 'x', 'xy', 'HOME=/root\nUSER=agent\nSECRET=']) {
    const tok = tokensFor([{ name: 'c', value, kind: 'canary' }], 'a.test');
    const h = harness(tok, []);
    const b64 = Buffer.from(pre + value + '\nPATH=/usr/bin\n').toString('base64').replace(/(.{76})/g, '$1\n');
    await h.write(`POST /drop HTTP/1.1\r\nHost: a.test\r\nContent-Length: ${b64.length}\r\n\r\n${b64}`);
    assert.equal(h.denied[0]?.rule, 'egress-token', `prefix ${JSON.stringify(pre)}: ${b64}`);
    assert.match(h.denied[0]!.reason, /base64-encoded/);
  }
  const hx = harness(tokensFor([{ name: 'c', value, kind: 'canary' }], 'a.test'), []);
  await hx.write(Buffer.from(value).toString('hex'));
  assert.match(hx.denied[0]?.reason ?? '', /hex-encoded/);
  const clean = harness(tokensFor([{ name: 'c', value, kind: 'canary' }], 'a.test'), []);
  await clean.write(Buffer.from('an ordinary body '.repeat(50)).toString('base64'));
  assert.deepEqual(clean.denied, []);
});

test('L7 rules: methods, path globs, dot segments', () => {
  const r = compileL7({ methods: ['GET'], paths: ['/v1/*', '/static/**'] })!;
  assert.equal(l7Violation(r, 'GET', '/v1/models?x=1'), null);
  assert.equal(l7Violation(r, 'GET', '/static/a/b.js'), null);
  assert.match(l7Violation(r, 'POST', '/v1/models')!, /method POST/);
  assert.match(l7Violation(r, 'GET', '/v1/a/b')!, /not allowed/);
  assert.match(l7Violation(r, 'GET', '/v1/../admin')!, /dot segments/);
  assert.match(l7Violation(r, 'GET', '/v1/%2e%2e/admin')!, /encoded/);
  assert.equal(l7Violation(r, 'GET', 'http://a.test/v1/x'), null);
});
