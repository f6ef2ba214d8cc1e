// The sandboxes' model route on its own, on loopback: the gateway's hand-over is played by a
// local listener that passes each accepted socket to route.serve() as sandbox "sb-1". A fake
// upstream answers; a slow path lets calls pile up for the in-flight cap.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import net from 'node:net';
import { after, test } from 'node:test';
import { EventBus, type PraetorEvent } from '../events/index.ts';
import { sandboxModelRoute } from './model-sandbox-route.ts';

const upstreamSeen: Array<{ auth: string | undefined; body: string }> = [];
let release: () => void = () => {};
const upstream = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    upstreamSeen.push({ auth: req.headers.authorization, body });
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":2,"completion_tokens":1}}');
    if (body.includes('"slow"')) { const prev = release; release = () => { release = () => {}; prev(); answer(); }; } else answer();
  });
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const bus = new EventBus();
const events: PraetorEvent[] = [];
bus.subscribe((e) => events.push(e));
const route = sandboxModelRoute({
  model: { upstream: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}/v1`, apiKey: 'k-up' },
  bus, bodyLimit: 4096, maxInFlight: 2, episodeOf: (id) => (id === 'sb-1' ? 'ep-1' : undefined),
});
const handed = new Set<net.Socket>();
const handover = net.createServer({ pauseOnConnect: true }, (sock) => { handed.add(sock); route.serve('sb-1', sock); });
await new Promise<void>((r) => handover.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(handover.address() as net.AddressInfo).port}`;
after(async () => {
  release();
  route.close();
  for (const s of handed) s.destroy();
  upstream.closeAllConnections();
  await new Promise<void>((r) => handover.close(() => r()));
  await new Promise<void>((r) => upstream.close(() => r()));
});

const post = (path: string, body: string) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer forged' }, body });
const chat = (content = 'hi') => JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] });

test('a chat completion is forwarded with the upstream key and recorded as the sandbox\'s', async () => {
  const r = await post('/v1/chat/completions', chat());
  assert.equal(r.status, 200);
  assert.match(await r.text(), /"ok"/);
  assert.equal(upstreamSeen.at(-1)!.auth, 'Bearer k-up', 'the key is praetor\'s, whatever the sandbox sent');
  const call = events.find((e) => e.kind === 'model.call') as Extract<PraetorEvent, { kind: 'model.call' }>;
  assert.deepEqual([call.sandboxId, call.episodeId, call.via, call.status, call.promptTokens, call.modelCallId], ['sb-1', 'ep-1', 'sandbox', 200, 2, r.headers.get('x-praetor-model-call-id')]);
});

test('everything else gets a clear OpenAI-style error and reaches nothing', async () => {
  const before = upstreamSeen.length;
  const cases: Array<[string, string, number, RegExp]> = [
    ['/v1/sandboxes', '{}', 404, /not served to sandboxes/],
    ['/v1/chat/completions', '{not json', 400, /not JSON/],
    ['/v1/chat/completions', '{"model":"m"}', 400, /body\.messages/],
    ['/v1/chat/completions', chat('x'.repeat(5000)), 413, /over 4096 bytes/],
  ];
  for (const [path, body, status, msg] of cases) {
    const r = await post(path, body).catch((e: unknown) => e as Error);
    if (r instanceof Error) { assert.equal(status, 413, `${path}: ${r.message}`); continue; } // the reset may beat the answer
    assert.equal(r.status, status, path);
    const j = await r.json() as { error: { message: string; code: string } };
    assert.match(j.error.message, msg);
  }
  assert.equal(upstreamSeen.length, before);
});

test('calls in flight per sandbox are capped', async () => {
  const slow = [post('/v1/chat/completions', chat('slow')), post('/v1/chat/completions', chat('slow'))];
  while (upstreamSeen.filter((s) => s.body.includes('"slow"')).length < 2) await new Promise((r) => setTimeout(r, 10));
  const third = await post('/v1/chat/completions', chat());
  assert.equal(third.status, 429);
  release();
  assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200]);
  assert.equal((await post('/v1/chat/completions', chat())).status, 200, 'the cap is released when calls end');
});
