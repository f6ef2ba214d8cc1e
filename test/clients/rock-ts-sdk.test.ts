// ROCK's own TypeScript SDK (rl-rock, from alibaba/ROCK's rock/ts-sdk) against a real server.
//
// The SDK is not on the npm registry, and its source is not ours to commit. So this test runs
// in one of two modes:
//  - live: PRAETOR_ROCK_TS_SDK=/path/to/rl-rock.mjs (the SDK bundled from ROCK's source with
//    esbuild; see docs/integrations/rock.md). The unmodified SDK drives its typical rollout flow
//    through a recording proxy. With PRAETOR_ROCK_RECORD=FILE the exchanges are written out:
//    that is how fixtures/rock-ts-sdk-flow.json was made.
//  - replay (CI, and wherever the SDK is absent): every request the SDK sent in the recorded
//    run is sent again, in order, to a fresh server, and each response is checked against the
//    SDK's own response schemas (transcribed in rock-sdk-schemas.ts) and the recorded outcome.
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage } from 'node:http';
import { after, test } from 'node:test';
import { startTestServer } from '../server/helpers.ts';
import { checkRockResponse, type Exchange } from './rock-sdk-schemas.ts';

const FIXTURE = new URL('./fixtures/rock-ts-sdk-flow.json', import.meta.url);
const SDK = process.env.PRAETOR_ROCK_TS_SDK;

const t = await startTestServer({ imageAliases: { 'python:3.11': 'host' } });
const token = t.token('rock-sdk');

/** A pass-through HTTP proxy that records every exchange (bodies parsed as JSON when they are). */
async function recordingProxy(target: string): Promise<{ url: string; exchanges: Exchange[] }> {
  const exchanges: Exchange[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const up = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r: IncomingMessage) => {
        const out: Buffer[] = [];
        r.on('data', (c: Buffer) => out.push(c));
        r.on('end', () => {
          const text = Buffer.concat(out).toString();
          const ct = String(req.headers['content-type'] ?? '');
          exchanges.push({
            method: req.method!, path: req.url!, contentType: ct.split(';')[0]!,
            body: ct.startsWith('application/json') && body.length ? JSON.parse(body.toString()) : ct.startsWith('multipart/') ? '<multipart>' : undefined,
            status: r.statusCode!, response: safeJson(text),
          });
          res.writeHead(r.statusCode!, r.headers);
          res.end(Buffer.concat(out));
        });
      });
      up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      up.end(body);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => srv.close(() => r())));
  const a = srv.address() as { port: number };
  return { url: `http://127.0.0.1:${a.port}`, exchanges };
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return text; }
}

test('ROCK TypeScript SDK rollout flow, unmodified (live when the SDK bundle is given)', { skip: SDK ? false : 'PRAETOR_ROCK_TS_SDK not set: the replay test below covers CI', timeout: 240_000 }, async () => {
  const { Sandbox } = await import(SDK!) as { Sandbox: new (c: unknown) => any };
  const proxy = await recordingProxy(t.url);
  const tmp = mkdtempSync('/tmp/pt-rock-sdk-');
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const sb = new Sandbox({ baseUrl: proxy.url, extraHeaders: { 'X-API-Key': token }, startupTimeout: 60, memory: '1g', cpus: 1, autoClearSeconds: 600 });
  await sb.start(); // the SDK's default image, python:3.11, through the server's alias
  const st = await sb.getStatus();
  assert.equal(st.isAlive, true);
  assert.equal(st.userId, 'default');
  const ex = await sb.execute({ command: 'echo hello-rock', timeout: 30 });
  assert.deepEqual([ex.stdout, ex.exitCode], ['hello-rock\n', 0]);
  await sb.createSession({ session: 's1', startupSource: [], envEnable: false });
  const a1 = await sb.arun('cd /tmp && X=41', { session: 's1' });
  assert.equal(a1.exitCode, 0);
  const a2 = await sb.arun('echo $((X+1)) $PWD', { session: 's1' });
  assert.equal(a2.output, '42 /tmp\n');
  const bg = await sb.arun("sh -c 'sleep 2; echo from-nohup'", { session: 's1', mode: 'nohup', waitInterval: 5, waitTimeout: 60 });
  assert.equal(bg.exitCode, 0, bg.output);
  assert.match(bg.output, /from-nohup/);
  const wf = await sb.writeFile({ content: 'written by rl-rock\n', path: '/tmp/rock.txt' });
  assert.equal(wf.success, true);
  const rf = await sb.readFile({ path: '/tmp/rock.txt' });
  assert.equal(rf.content, 'written by rl-rock\n');
  writeFileSync(`${tmp}/up.txt`, 'uploaded\n');
  const up = await sb.uploadByPath(`${tmp}/up.txt`, '/tmp/up.txt');
  assert.equal(up.success, true, up.message);
  assert.equal((await sb.execute({ command: 'cat /tmp/up.txt', timeout: 30 })).stdout, 'uploaded\n');
  // The SDKs' own failure handling runs because failures are Failed envelopes, not HTTP errors:
  // a missing file reads as empty, a write outside the sandbox's writable paths reports failure,
  // a failing command in a session raises the SDK's typed CommandRockError (code 6000).
  assert.equal((await sb.readFile({ path: '/nonexistent' })).content, '');
  assert.equal((await sb.writeFile({ content: 'x', path: '/proc/forbidden' })).success, false);
  await assert.rejects(sb.arun('sh -c "exit 3"', { session: 's1' }), (e: Error) => e.constructor.name === 'CommandRockError' && /exit code 3/.test(e.message));
  await sb.closeSession({ session: 's1' });
  await sb.stop();
  assert.equal((await sb.getStatus()).isAlive, false, 'stopped, kept until delete');
  await sb.restart();
  assert.equal((await sb.getStatus()).isAlive, true);
  await sb.stop();
  await sb.delete();
  for (const x of proxy.exchanges) assert.deepEqual(checkRockResponse(x), [], `${x.method} ${x.path}`);
  if (process.env.PRAETOR_ROCK_RECORD) writeFileSync(process.env.PRAETOR_ROCK_RECORD, `${JSON.stringify(proxy.exchanges, null, 1)}\n`);
});

test('replay of the ROCK TypeScript SDK\'s recorded flow: responses match the SDK\'s schemas', async () => {
  const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Exchange[];
  assert.ok(recorded.length >= 15, 'the fixture holds a whole flow');
  let recordedId: string | undefined;
  let liveId: string | undefined;
  const pids = new Map<string, string>();
  for (const x of recorded) {
    if (x.body === '<multipart>') continue; // uploads are covered by test/server/rock.test.ts
    let path = x.path;
    let body = x.body === undefined ? undefined : JSON.stringify(x.body);
    if (recordedId && liveId) { path = path.replaceAll(recordedId, liveId); body = body?.replaceAll(recordedId, liveId); }
    for (const [old, now] of pids) body = body?.replaceAll(`kill -0 ${old}`, `kill -0 ${now}`);
    const r = await t.api(undefined, x.method, path, body, { 'X-API-Key': token, ...(body ? { 'content-type': 'application/json' } : {}) });
    const live: Exchange = { ...x, path, status: r.status, response: r.json ?? r.text };
    assert.deepEqual(checkRockResponse(live), [], `${x.method} ${path}: ${r.text.slice(0, 500)}`);
    assert.equal(r.status, x.status, `${x.method} ${path}`);
    // `kill -0 PID` is the SDK's liveness poll of a nohup command: its outcome depends on when
    // it is sent, so only its shape is checked.
    const poll = /^kill -0 \d+$/.test(String((x.body as { command?: unknown } | undefined)?.command ?? ''));
    const want = (x.response as { status?: string }).status;
    if (!poll) assert.equal(r.json?.status, want, `${x.method} ${path}: ${r.text.slice(0, 500)}`);
    if (x.path.endsWith('/start_async')) {
      recordedId = (x.response as { result: { sandbox_id: string } }).result.sandbox_id;
      liveId = r.json.result.sandbox_id;
    }
    const pidOf = (o: unknown) => /__ROCK_PID_START__(\d+)__ROCK_PID_END__/.exec(JSON.stringify(o))?.[1];
    const oldPid = pidOf(x.response);
    const newPid = pidOf(r.json);
    if (oldPid && newPid) pids.set(oldPid, newPid);
  }
});
