// The official `e2b` npm SDK, unmodified, against a real Praetor server's E2B API (on loopback,
// as every client test here: no packet leaves the machine; sandboxes get no network at all under
// the default-deny tenant policy). The SDK is pointed at Praetor the documented way: E2B_API_URL
// and E2B_SANDBOX_URL name the E2B port, E2B_API_KEY is a Praetor token. Runs the latest 2.x
// (`e2b`) and an earlier 2.x that still creates through POST /sandboxes (`e2b-early`). Sensors
// and rules are on, so a miner started through commands.run is contained by the shipped rules.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { CommandExitError, NotFoundError, RateLimitError, Sandbox, SandboxError } from 'e2b';
import { Sandbox as EarlySandbox } from 'e2b-early';
import { exportJsonl, openReader, defaultLedgerPath } from '../../src/audit/index.ts';
import { policyAllowsNothing } from '../../src/config/policy.ts';
import { Process } from '../../src/server/e2b/index.ts';
import { startTestServer } from '../server/helpers.ts';
import { TEST_IMAGE_TAR } from '../sandbox/helpers.ts';

// Keepalives every second (the SDK asks for 50 s): the quiet-command test sees them in seconds.
const t = await startTestServer({ detect: true, e2b: { port: 0, keepaliveMs: 1000, templates: { 'code-interpreter-v1': 'debian-e2b' } } });
const E2B = t.server.e2b!.url;
const TOKEN = t.token('e2b-team');
const OTHER = t.token('e2b-other');
// A second server with a tiny rate limit (1/s, burst 20): a bounded flood meets it however slow the machine is.
const slow = await startTestServer({ rateLimit: { perSecond: 1, burst: 20 }, e2b: { port: 0 } });
const FLOOD = slow.token('e2b-flood');
process.env.E2B_API_URL = E2B;
process.env.E2B_SANDBOX_URL = E2B;
process.env.E2B_API_KEY = TOKEN;

/** Fails instead of hanging: every call here must answer, whatever it answers. */
async function answers<T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`${what} did not answer within ${ms} ms`)), ms); });
  try { return await Promise.race([p, hang]); } finally { clearTimeout(timer); }
}

async function raw(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const res = await fetch(`${E2B}${path}`, { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, headers: res.headers };
}

const sandboxes: Sandbox[] = [];
type CreateOpts = NonNullable<Parameters<typeof Sandbox.create<typeof Sandbox>>[1]>;
async function create(opts: CreateOpts | string = {}): Promise<Sandbox> {
  const sb = typeof opts === 'string' ? await Sandbox.create(opts) : await Sandbox.create(opts);
  sandboxes.push(sb);
  return sb;
}

test('create maps template, metadata, envs and timeoutMs onto an ordinary Praetor sandbox', async () => {
  const sb = await create({ metadata: { run: 'create-test' }, envs: { GREETING: 'hello from e2b' }, timeoutMs: 120_000 });
  assert.match(sb.sandboxId, /^sb-[0-9a-f]+$/);
  const info = await sb.getInfo();
  assert.equal(info.templateId, 'base');
  assert.deepEqual(info.metadata, { run: 'create-test' });
  assert.equal(info.state, 'running');
  const life = info.endAt.getTime() - info.startedAt.getTime();
  assert.ok(life >= 119_000 && life <= 121_000, `timeoutMs 120 s gives endAt ${life} ms after startedAt`);
  const r = await sb.commands.run('echo "$GREETING"; id -un; pwd');
  assert.equal(r.stdout, 'hello from e2b\nagent\n/workspace\n');
  await sb.files.makeDir('sub/dir');
  assert.equal((await sb.commands.run('pwd', { cwd: 'sub/dir', envs: { ONE: '1' } })).stdout, '/workspace/sub/dir\n', 'a relative cwd starts where relative file paths do');
  assert.equal((await sb.commands.run('echo $ONE$GREETING', { cwd: '/tmp' })).stdout, 'hello from e2b\n', 'per-command envs do not stick');
  // The same sandbox on Praetor's own API: the tenant's, with the tenant label and the guard.
  const native = await t.api(TOKEN, 'GET', `/v1/sandboxes/${sb.sandboxId}`);
  assert.equal(native.status, 200, native.text);
  assert.equal(native.json.tenant, 'e2b-team');
  assert.equal(native.json.labels['e2b.template'], 'base');
  // Another tenant's key sees nothing, on either API.
  assert.equal((await t.api(OTHER, 'GET', `/v1/sandboxes/${sb.sandboxId}`)).status, 404);
  await assert.rejects(Sandbox.getInfo(sb.sandboxId, { apiKey: OTHER }), NotFoundError);
});

test('a template is an image from the cache, by its name or through --e2b-template', { skip: existsSync(TEST_IMAGE_TAR) ? false : `no test image at ${TEST_IMAGE_TAR} (run npm test's setup)` }, async () => {
  await t.server.core.manager.images.import(TEST_IMAGE_TAR, 'debian-e2b');
  const byName = await create('debian-e2b');
  assert.equal((await byName.getInfo()).templateId, 'debian-e2b');
  const mapped = await create('code-interpreter-v1');
  for (const sb of [byName, mapped]) {
    const r = await sb.commands.run('. /etc/os-release; echo $ID; command -v python3');
    assert.equal(r.stdout, 'debian\n/usr/bin/python3\n');
  }
  const native = await t.api(TOKEN, 'GET', `/v1/sandboxes/${mapped.sandboxId}`);
  assert.equal(native.json.image, 'debian-e2b');
});

test('default deny holds: allowInternetAccess and allowOut never open a network the tenant does not have', async () => {
  const sb = await create({ allowInternetAccess: true, network: { allowOut: ['203.0.113.10', 'example.test'] } });
  const e = t.server.core.all.find((x) => x.sb.id === sb.sandboxId)!;
  assert.ok(policyAllowsNothing(e.policy ?? t.server.core.guard.policy), 'no destination is allowed');
  assert.equal((await sb.commands.run("awk -F: 'NR > 2 { gsub(/ /, \"\", $1); print $1 }' /proc/net/dev")).stdout.trim(), 'lo', 'only loopback inside');
  const closed = await create({ allowInternetAccess: false });
  assert.equal((await closed.getInfo()).allowInternetAccess, false);
});

test('commands.run streams stdout and stderr, returns exit codes, raises CommandExitError', async () => {
  const sb = await create();
  const chunks: Array<[string, number]> = [];
  const started = Date.now();
  const r = await sb.commands.run('echo one; sleep 1; echo two; echo warn >&2', {
    onStdout: (d) => { chunks.push([d, Date.now() - started]); },
    onStderr: (d) => { chunks.push([`err:${d}`, Date.now() - started]); },
  });
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, 'one\ntwo\n');
  assert.equal(r.stderr, 'warn\n');
  assert.deepEqual(chunks.map((c) => c[0]).join(''), 'one\ntwo\nerr:warn\n');
  assert.ok(chunks[0]![0] === 'one\n' && chunks.length >= 3, 'output arrives in pieces as it is written');
  const err = await sb.commands.run('echo partial; echo bad >&2; exit 3').then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof CommandExitError, `got ${err}`);
  assert.equal(err.exitCode, 3);
  assert.equal(err.stdout, 'partial\n');
  assert.equal(err.stderr, 'bad\n');
  assert.match(err.message, /exit status 3/);
});

test('background commands: sendStdin, list, connect, kill', async () => {
  const sb = await create();
  let out = '';
  const h = await sb.commands.run('cat', { background: true, stdin: true, onStdout: (d) => { out += d; } });
  assert.ok(h.pid > 0);
  await sb.commands.sendStdin(h.pid, 'ping\n');
  for (let i = 0; i < 100 && !out.includes('ping'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(out, 'ping\n');
  const listed = await sb.commands.list();
  const mine = listed.find((p) => p.pid === h.pid);
  assert.ok(mine, `pid ${h.pid} in ${JSON.stringify(listed)}`);
  assert.equal(mine.cmd, '/bin/bash');
  assert.deepEqual(mine.args.slice(0, 2), ['-l', '-c']);
  // A second client attaches to the running command and sees its output from then on.
  let seen = '';
  const again = await sb.commands.connect(h.pid, { onStdout: (d) => { seen += d; } });
  await again.sendStdin('pong\n');
  for (let i = 0; i < 100 && !seen.includes('pong'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen, 'pong\n');
  assert.equal(await sb.commands.kill(h.pid), true);
  const ended = await h.wait().then(() => undefined, (e: unknown) => e);
  assert.ok(ended instanceof CommandExitError, 'a killed command is not a success');
  assert.notEqual(ended.exitCode, 0);
  assert.equal((await sb.commands.list()).some((p) => p.pid === h.pid), false);
  assert.equal(await sb.commands.kill(h.pid), false, 'killing a gone pid says so');
  await assert.rejects(sb.commands.connect(h.pid), NotFoundError);
});

test('a long quiet command is kept alive, and its stream carries keepalive events', async () => {
  const sb = await create();
  const r = await sb.commands.run('sleep 4; echo done', { timeoutMs: 0 });
  assert.equal(r.stdout, 'done\n');
  // The same stream as a plain Connect client sees it: keepalives while the command is quiet.
  const client = createClient(Process, createConnectTransport({
    baseUrl: E2B, httpVersion: '1.1', useBinaryFormat: false,
    interceptors: [(next) => (req) => { req.header.set('E2b-Sandbox-Id', sb.sandboxId); req.header.set('X-Access-Token', (sb as unknown as { envdAccessToken: string }).envdAccessToken); return next(req); }],
  }));
  const kinds: string[] = [];
  for await (const m of client.start({ process: { cmd: '/bin/sh', args: ['-c', 'sleep 3; echo end'], envs: {} }, stdin: false }, { headers: { 'Keepalive-Ping-Interval': '1' } })) {
    kinds.push(m.event?.event.case ?? '?');
  }
  assert.equal(kinds[0], 'start');
  assert.equal(kinds.at(-1), 'end');
  assert.ok(kinds.filter((k) => k === 'keepalive').length >= 2, `keepalives during 3 quiet seconds: ${kinds.join(',')}`);
});

test('files: write (one, many, gzip), read, list, exists, makeDir, rename, remove', async () => {
  const sb = await create();
  const one = await sb.files.write('notes/a.txt', 'alpha');
  assert.equal(one.path, '/workspace/notes/a.txt');
  const many = await sb.files.write([
    { path: '/tmp/multi/b.txt', data: 'bravo' },
    { path: 'notes/deep/c.bin', data: new Uint8Array([0, 1, 2, 255]).buffer },
  ]);
  assert.deepEqual(many.map((f) => f.path), ['/tmp/multi/b.txt', '/workspace/notes/deep/c.bin']);
  const big = 'gz'.repeat(50_000);
  await sb.files.write('notes/big.txt', big, { gzip: true });
  assert.equal(await sb.files.read('notes/a.txt'), 'alpha');
  assert.equal(await sb.files.read('/tmp/multi/b.txt'), 'bravo');
  assert.deepEqual([...await sb.files.read('notes/deep/c.bin', { format: 'bytes' })], [0, 1, 2, 255]);
  assert.equal(await sb.files.read('notes/big.txt', { gzip: true }), big);
  assert.equal((await sb.commands.run('wc -c < notes/big.txt')).stdout.trim(), '100000', 'a command sees what files.write wrote');
  const list = await sb.files.list('notes');
  assert.deepEqual(list.map((e) => [e.name, e.type]).sort(), [['a.txt', 'file'], ['big.txt', 'file'], ['deep', 'dir']]);
  assert.equal(list.find((e) => e.name === 'a.txt')!.size, 5);
  assert.equal((await sb.files.list('notes', { depth: 2 })).some((e) => e.path === '/workspace/notes/deep/c.bin'), true);
  assert.equal(await sb.files.exists('notes/a.txt'), true);
  assert.equal(await sb.files.exists('notes/nope.txt'), false);
  assert.equal(await sb.files.makeDir('made/here'), true);
  assert.equal(await sb.files.makeDir('made/here'), false, 'an existing directory is reported, not an error');
  const moved = await sb.files.rename('notes/a.txt', 'made/here/a2.txt');
  assert.equal(moved.path, '/workspace/made/here/a2.txt');
  assert.equal(await sb.files.read('made/here/a2.txt'), 'alpha');
  assert.equal(await sb.files.exists('notes/a.txt'), false);
  await sb.files.remove('made');
  assert.equal(await sb.files.exists('made/here/a2.txt'), false);
  await assert.rejects(sb.files.read('notes/missing.txt'), (e: Error) => e instanceof NotFoundError || /not found|No such/i.test(e.message));
  // The agent cannot write outside what it owns: a clear error, not a silent success.
  await assert.rejects(sb.files.write('/etc/praetor-e2b-test', 'x'), /Permission denied|Read-only|cannot/i);
  // A gzip bomb is refused instead of inflating without bound.
  const bomb = gzipSync(Buffer.alloc(101 * 2 ** 20));
  const res = await fetch(`${E2B}/files?path=bomb.bin`, { method: 'POST', body: bomb, headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip', 'E2b-Sandbox-Id': sb.sandboxId, 'X-Access-Token': (sb as unknown as { envdAccessToken: string }).envdAccessToken } });
  assert.equal(res.status, 400);
  assert.match((await res.json() as { message: string }).message, /could not be inflated/);
});

test('setTimeout moves endAt; an expired sandbox is gone (isRunning false, getInfo 404)', async () => {
  const sb = await create({ timeoutMs: 60_000 });
  await sb.setTimeout(600_000);
  const info = await sb.getInfo();
  assert.ok(info.endAt.getTime() - Date.now() > 590_000, 'the timeout runs from now');
  const short = await create({ timeoutMs: 2_000 });
  assert.equal(await short.isRunning(), true);
  for (let i = 0; i < 100 && await short.isRunning(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await short.isRunning(), false);
  await assert.rejects(Sandbox.getInfo(short.sandboxId), NotFoundError);
});

test('Sandbox.list pages with limit and nextToken, filtered by metadata', async () => {
  const tag = `page-${Date.now()}`;
  const made = [await create({ metadata: { tag } }), await create({ metadata: { tag } }), await create({ metadata: { tag } })];
  const pager = Sandbox.list({ limit: 2, query: { metadata: { tag } } });
  const first = await pager.nextItems();
  assert.equal(first.length, 2);
  assert.equal(pager.hasNext, true);
  const second = await pager.nextItems();
  assert.equal(second.length, 1);
  assert.equal(pager.hasNext, false);
  assert.deepEqual([...first, ...second].map((s) => s.sandboxId).sort(), made.map((s) => s.sandboxId).sort());
  assert.ok(first.every((s) => s.metadata.tag === tag && s.state === 'running'));
  const other = Sandbox.list({ apiKey: OTHER, query: { metadata: { tag } } });
  assert.deepEqual(await other.nextItems(), [], 'another tenant lists none of them');
});

test('Sandbox.connect and kill, on the latest and on the earlier SDK', async () => {
  const sb = await create();
  const again = await Sandbox.connect(sb.sandboxId);
  assert.equal((await again.commands.run('echo connected')).stdout, 'connected\n');
  const early = await EarlySandbox.connect(sb.sandboxId);
  assert.equal((await early.commands.run('echo early')).stdout, 'early\n');
  assert.equal(await Sandbox.kill(sb.sandboxId), true);
  assert.equal(await Sandbox.kill(sb.sandboxId), false, 'a second kill finds nothing');
  assert.equal(await sb.isRunning(), false);
  await assert.rejects(Sandbox.connect(sb.sandboxId), NotFoundError);
  assert.equal(t.server.core.all.some((e) => e.sb.id === sb.sandboxId), false, 'the Praetor sandbox is destroyed');
});

test('the earlier SDK (POST /sandboxes) creates, runs, writes, reads and kills', async () => {
  const sb = await EarlySandbox.create({ metadata: { sdk: 'early' }, envs: { X: '42' } });
  try {
    assert.equal((await sb.commands.run('echo $X')).stdout, '42\n');
    await sb.files.write('e.txt', 'early');
    await sb.files.write([{ path: 'm/1.txt', data: 'one' }, { path: 'm/2.txt', data: 'two' }]);
    assert.equal(await sb.files.read('m/2.txt'), 'two');
    assert.equal(await sb.files.read('e.txt'), 'early');
    const err = await sb.commands.run('exit 7').then(() => undefined, (e: unknown) => e as { exitCode?: number; name?: string });
    assert.equal(err?.exitCode, 7);
    assert.equal((await sb.getInfo()).metadata.sdk, 'early');
  } finally { await sb.kill(); }
});

test('pause, resume, snapshots and other unbuilt features answer E2B\'s error shape, never hang or succeed', async () => {
  const sb = await create();
  for (const [what, call] of [
    ['pause', () => sb.pause()], ['createSnapshot', () => sb.createSnapshot()],
    ['listSnapshots', () => Sandbox.listSnapshots().nextItems()], ['pty', () => sb.pty.create({ cols: 80, rows: 24, onData: () => {} })],
    ['watchDir', () => sb.files.watchDir('/workspace', () => {})],
    ['autoPause create', () => Sandbox.create({ lifecycle: { onTimeout: 'pause' } })],
  ] as Array<[string, () => Promise<unknown>]>) {
    const err = await answers(call().then(() => undefined, (e: unknown) => e), what);
    assert.ok(err instanceof SandboxError || err instanceof Error, `${what} must fail, got ${String(err)}`);
    assert.match((err as Error).message, /not supported/, `${what}: ${(err as Error).message}`);
  }
  // Root is never available inside a Praetor sandbox: refused with the reason, not run as the agent.
  const root = await answers(sb.commands.run('id -u', { user: 'root' }).then(() => undefined, (e: unknown) => e), 'root');
  assert.match(String((root as Error)?.message), /permission_denied.*user "root" is not available/);
  await assert.rejects(sb.files.read('/etc/hostname', { user: 'root' }), /user "root" is not available/);
  const res = await raw('POST', `/sandboxes/${sb.sandboxId}/pause`, { 'X-API-KEY': TOKEN }, {});
  assert.equal(res.status, 501);
  assert.equal(res.json.code, 501);
  assert.match(res.json.message, /pausing a sandbox is not supported/);
  assert.equal(await sb.isRunning(), true, 'the sandbox is untouched');
});

test('errors: 401 bad key, 404 unknown sandbox, 401 wrong access token, unknown template, 429 with Retry-After', async () => {
  await assert.rejects(Sandbox.create({ apiKey: 'ptk_nope_nope_nope_nope' }), /Unauthorized|401/);
  const bad = await raw('GET', '/v2/sandboxes', { 'X-API-KEY': 'wrong-key-wrong-key' });
  assert.equal(bad.status, 401);
  assert.equal(bad.json.code, 401);
  assert.match(bad.json.message, /invalid API key/);
  const missing = await raw('GET', '/sandboxes/sb-000000000000', { 'X-API-KEY': TOKEN });
  assert.equal(missing.status, 404);
  assert.deepEqual(Object.keys(missing.json).sort(), ['code', 'error_code', 'message']);
  await assert.rejects(Sandbox.getInfo('sb-000000000000'), NotFoundError);
  const sb = await create();
  const forged = await raw('GET', '/files?path=x', { 'E2b-Sandbox-Id': sb.sandboxId, 'X-Access-Token': 'e2bat_forged' });
  assert.equal(forged.status, 401);
  const gone = await raw('GET', '/health', { 'E2b-Sandbox-Id': 'sb-000000000000' });
  assert.equal(gone.status, 502, 'envd answers for a missing sandbox as E2B\'s proxy does');
  await assert.rejects(Sandbox.create('no-such-template'), /praetor image import/);
  const S = slow.server.e2b!.url;
  const floodSb = await Sandbox.create({ apiKey: FLOOD, apiUrl: S, sandboxUrl: S });
  // A flood from one token: 429s with Retry-After (bounded: 60 requests).
  const statuses = await Promise.all(Array.from({ length: 60 }, () => fetch(`${S}/sandboxes/sb-000000000000`, { headers: { 'X-API-KEY': FLOOD } })
    .then(async (r) => { await r.arrayBuffer(); return [r.status, r.headers.get('retry-after')] as const; })));
  const limited = statuses.filter(([s]) => s === 429);
  assert.ok(limited.length > 0, 'the flood is rate limited');
  assert.ok(limited.every(([, ra]) => ra !== null && Number(ra) >= 1), 'every 429 says when to retry');
  const body = await fetch(`${S}/sandboxes/sb-000000000000`, { headers: { 'X-API-KEY': FLOOD } });
  assert.equal(body.status, 429);
  assert.deepEqual(Object.keys(await body.json() as object).sort(), ['code', 'error_code', 'message']);
  // envd RPCs of that token's sandbox share its budget, and fail as the SDK's RateLimitError.
  const rpcs = await Promise.all(Array.from({ length: 30 }, () => floodSb.commands.list().then(() => 'ok', (e: Error) => e)));
  const failed = rpcs.filter((x): x is Error => x !== 'ok');
  assert.ok(failed.length > 0, 'the RPC flood is rate limited too');
  assert.ok(failed.every((e) => e instanceof RateLimitError), failed.map(String).slice(0, 3).join('; '));
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await floodSb.kill().then(() => true), true, "the token can act again once its bucket refills");
});

test('a miner started through commands.run is contained; the SDK error names the rule; ledger and dashboard show it', async () => {
  const sb = await create();
  await sb.files.write('xmrig', '#!/bin/sh\necho mining; sleep 30\n');
  await sb.commands.run('chmod +x xmrig');
  const err = await answers(sb.commands.run('./xmrig --donate-level=1 -o pool.example.test:3333').then(() => undefined, (e: unknown) => e), 'the miner', 60_000);
  assert.ok(err instanceof CommandExitError, `the miner must not succeed: ${String(err)}`);
  assert.match(err.message, /contained by Praetor: rule "Crypto miner/, err.message);
  assert.equal(await sb.isRunning(), true, 'kill-tree stops the miner, the sandbox stays');
  const dash = await t.api(TOKEN, 'GET', `/v1/dashboard/sandboxes/${sb.sandboxId}`);
  assert.equal(dash.status, 200);
  assert.ok(dash.json.events.some((e: { kind: string; rule?: string }) => e.kind === 'alert' && /Crypto miner/.test(e.rule ?? '')), 'the dashboard shows the alert');
  await t.server.core.ledger!.flush();
  const { store } = await openReader(defaultLedgerPath(t.stateDir));
  const lines: string[] = [];
  try { await exportJsonl(store, (c) => { lines.push(c); }); } finally { await store.close(); }
  const ev = lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)).map((r) => r.event);
  assert.ok(ev.some((e) => e.kind === 'containment' && e.sandboxId === sb.sandboxId && /Crypto miner/.test(e.rule ?? '')), 'the ledger holds the containment');
});

test('teardown: every sandbox made here is killed through the SDK', async () => {
  for (const sb of sandboxes) await Sandbox.kill(sb.sandboxId).catch(() => false);
  assert.equal(t.server.core.all.filter((e) => e.tenant === 'e2b-team').length, 0);
});
