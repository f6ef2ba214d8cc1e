import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startTestServer } from './helpers.ts';

const t = await startTestServer();
const A = t.token('team-a');
const B = t.token('team-b');
const ADMIN = t.token('ops', true);

test('health, metrics and openapi need no token; everything else does', async () => {
  assert.equal((await t.api(undefined, 'GET', '/healthz')).json.ok, true);
  assert.equal((await t.api(undefined, 'GET', '/openapi.json')).json.openapi, '3.1.0');
  assert.match((await t.api(undefined, 'GET', '/metrics')).text, /praetor_http_requests_total/);
  const r = await t.api(undefined, 'GET', '/v1/sandboxes');
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'UNAUTHORIZED');
  assert.equal((await t.api('ptk_nope_nopenopenopenope', 'GET', '/v1/sandboxes')).status, 401);
});

test('create, exec, pause/resume, phase, stats, delete', async () => {
  const c = await t.api(A, 'POST', '/v1/sandboxes', { cpus: 0.5, memory: '256m', labels: { run: 'x' } });
  assert.equal(c.status, 200, c.text);
  const id = c.json.id;
  assert.match(id, /^sb-[0-9a-f]{12}$/);
  assert.equal(c.json.tenant, 'team-a');
  assert.equal(c.json.limits.memoryBytes, 256 * 2 ** 20);
  const ex = await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: ['/bin/sh', '-c', 'echo out; echo err >&2; exit 3'] });
  assert.equal(ex.json.stdout, 'out\n');
  assert.equal(ex.json.stderr, 'err\n');
  assert.equal(ex.json.exit_code, 3);
  const sh = await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: 'echo $((1+2)) | cat', cwd: '/tmp', env: { X: 'y' } });
  assert.equal(sh.json.stdout, '3\n');
  const to = await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: ['sleep', '5'], timeout_ms: 200 });
  assert.equal(to.json.timed_out, true);
  assert.equal(to.json.code, 124);
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/pause`)).json.state, 'paused');
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: ['true'] })).status, 409);
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/resume`)).json.state, 'running');
  const ph = await t.api(A, 'POST', `/v1/sandboxes/${id}/phase`, { phase: 'setup' });
  assert.equal(ph.json.phase, 'setup', ph.text);
  assert.equal((await t.api(A, 'GET', `/v1/sandboxes/${id}`)).json.phase, 'setup');
  const st = await t.api(A, 'GET', `/v1/sandboxes/${id}/stats`);
  assert.equal(typeof st.json.usage.cpuMs, 'number');
  assert.deepEqual((await t.api(A, 'GET', '/v1/sandboxes')).json.sandboxes.map((s: { id: string }) => s.id), [id]);
  assert.equal((await t.api(A, 'DELETE', `/v1/sandboxes/${id}`)).status, 200);
  assert.equal((await t.api(A, 'GET', `/v1/sandboxes/${id}`)).status, 404);
});

test('tenants: another tenant\'s sandbox is a 404 for every route; admin sees all', async () => {
  const id = (await t.api(A, 'POST', '/v1/sandboxes', {})).json.id;
  const probes: Array<[string, string, unknown?]> = [
    ['GET', `/v1/sandboxes/${id}`], ['DELETE', `/v1/sandboxes/${id}`], ['POST', `/v1/sandboxes/${id}/pause`],
    ['POST', `/v1/sandboxes/${id}/exec`, { command: ['touch', '/tmp/pwned'] }], ['GET', `/v1/sandboxes/${id}/stats`],
    ['GET', `/v1/sandboxes/${id}/files?path=/etc/hostname`], ['PUT', `/v1/sandboxes/${id}/files`, { path: '/tmp/pwned', content: 'x' }],
    ['POST', `/v1/sandboxes/${id}/sessions`, { name: 's' }], ['POST', `/v1/sandboxes/${id}/phase`, { phase: 'setup' }],
  ];
  for (const [m, p, b] of probes) {
    const r = await t.api(B, m, p, b);
    assert.equal(r.status, 404, `${m} ${p}: ${r.text}`);
    assert.equal(r.json.error.code, 'NOT_FOUND');
  }
  assert.deepEqual((await t.api(B, 'GET', '/v1/sandboxes')).json.sandboxes, []);
  const ls = await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: ['ls', '/tmp'] });
  assert.equal(ls.json.stdout, '', 'nothing was written by the other tenant');
  assert.equal((await t.api(ADMIN, 'GET', `/v1/sandboxes/${id}`)).json.tenant, 'team-a');
  assert.ok((await t.api(ADMIN, 'GET', '/v1/sandboxes')).json.sandboxes.some((s: { id: string }) => s.id === id));
  assert.equal((await t.api(A, 'DELETE', `/v1/sandboxes/${id}`)).status, 200);
});

test('sessions keep state between commands', async () => {
  const id = (await t.api(A, 'POST', '/v1/sandboxes', {})).json.id;
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions`, { name: 'main' })).status, 200);
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions`, { name: 'main' })).status, 409);
  await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions/main/run`, { command: 'cd /tmp && export FOO=bar' });
  const r = await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions/main/run`, { command: 'echo $PWD $FOO; false' });
  assert.deepEqual(r.json, { output: '/tmp bar\n', exit_code: 1, timed_out: false });
  // stdin is empty unless the caller sends input (issue 17 §4: `cat` used to eat the end marker)
  assert.deepEqual((await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions/main/run`, { command: 'cat', timeout_ms: 20_000 })).json, { output: '', exit_code: 0, timed_out: false });
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions/main/run`, { command: 'read a; echo "<$a>"', input: 'given\n' })).json.output, '<given>\n');
  assert.equal((await t.api(A, 'DELETE', `/v1/sandboxes/${id}/sessions/main`)).status, 200);
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions/main/run`, { command: 'true' })).status, 404);
  await t.api(A, 'DELETE', `/v1/sandboxes/${id}`);
});

test('quotas per tenant', async () => {
  const r = await t.api(A, 'POST', '/v1/sandboxes', { cpus: 1000 });
  assert.equal(r.status, 429);
  assert.equal(r.json.error.code, 'QUOTA_EXCEEDED');
});

test('streaming exec to a client that stops reading: the command is killed and the client told why', { timeout: 60_000 }, async () => {
  const id = (await t.api(A, 'POST', '/v1/sandboxes', {})).json.id;
  const ended = new Promise<void>((resolve) => {
    const unsub = t.server.core.bus.subscribe((e) => { if (e.kind === 'command.end' && e.sandboxId === id) { unsub(); resolve(); } });
  });
  // A raw WebSocket client, so it can stop reading (pause) while the server keeps producing.
  const u = new URL(t.url);
  const sock = connect(Number(u.port), u.hostname);
  await new Promise((r) => sock.once('connect', r));
  sock.write(`GET /v1/sandboxes/${id}/exec/ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${A}\r\n\r\n`);
  await new Promise((r) => sock.once('data', r)); // 101 Switching Protocols
  const payload = Buffer.from(JSON.stringify({ command: 'yes praetor-backpressure' }));
  assert.ok(payload.length < 126);
  const mask = randomBytes(4);
  sock.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]));
  sock.pause();
  await ended; // killed by the server, not by us: we never send kill or close
  let text = '';
  const sawError = new Promise<void>((resolve) => {
    sock.on('data', (c: Buffer) => { text = (text + c.toString('latin1')).slice(-65536); if (text.includes('"type":"error"')) resolve(); });
  });
  sock.resume();
  await sawError;
  sock.destroy();
  assert.match(text, /"type":"error","error":\{"code":"TOO_LARGE","message":"the command was killed: over \d+ bytes of output were waiting/);
  assert.doesNotMatch(text, /"type":"exit"/);
  await t.api(A, 'DELETE', `/v1/sandboxes/${id}`);
});
