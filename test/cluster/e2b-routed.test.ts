// The official `e2b` SDK, unmodified, against a control replica in front of real nodes: a real
// PostgreSQL, one `praetor serve --role control` and two `--role node --e2b-port 0` processes on
// loopback, node links over mutual TLS (the nodes' E2B ports admit control certificates only, so
// nothing but the replica can reach them). E2B_API_URL and E2B_SANDBOX_URL name the replica and
// nothing else: every call (create, the control plane, envd's Connect RPCs with a streamed
// command, file reads and writes, kill) goes through it to the node that holds the sandbox.
// Sandboxes get no network (the default-deny tenant policy): no packet leaves the machine.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { NotFoundError, Sandbox } from 'e2b';
import { Sandbox as EarlySandbox } from 'e2b-early';
import { ClusterControl } from '../../src/cluster/control.ts';
import { createToken } from '../../src/server/auth.ts';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { ClusterProcs, type Proc } from './cluster-procs.ts';

const skip = postgresAvailable() ? false : 'needs PostgreSQL 15 and root (installed by npm test\'s setup)';

let db: TestPostgres | undefined;
let procs: ClusterProcs;
let ctl: ClusterControl;
let control: Proc;
let token = '';
let url = '';
let other = '';
const nodes: Proc[] = [];
const sandboxes: Sandbox[] = [];

before(async () => {
  if (skip) return;
  db = await startPostgres();
  url = await db.createDatabase();
  procs = new ClusterProcs(url);
  token = createToken(procs.tokensDir, 'e2b-team').token;
  other = createToken(procs.tokensDir, 'e2b-other').token;
  control = await procs.control('e2b-ctl');
  nodes.push(...await Promise.all(['e2b-n1', 'e2b-n2'].map((n) => procs.node(n, ['--no-detect', '--e2b-port', '0']))));
  ctl = await ClusterControl.open({ url, poolSize: 2 });
  process.env.E2B_API_URL = control.url;
  process.env.E2B_SANDBOX_URL = control.url;
  process.env.E2B_API_KEY = token;
});
after(async () => {
  await Promise.all(sandboxes.map((s) => s.kill().catch(() => undefined)));
  await ctl?.close().catch(() => undefined);
  await procs?.stopAll();
  await db?.stop();
});

async function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${control.url}${path}`, { method, headers, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, json };
}

test('create, a streamed command, a file written and read, and kill: all through the control replica', { skip }, async () => {
  const sb = await Sandbox.create({ timeoutMs: 120_000, metadata: { via: 'control' } });
  sandboxes.push(sb);
  // Placed on a node: the id names it, the catalog has it running there.
  assert.match(sb.sandboxId, /^sb-n\d+-[0-9a-f]{12}$/);
  const placed = await ctl.sandboxState(sb.sandboxId);
  assert.equal(placed?.state, 'running', JSON.stringify(placed));
  assert.ok(nodes.some((n) => n.name === placed!.nodeId), `placed on a node: ${placed!.nodeId}`);
  const holder = nodes.find((n) => n.name === placed!.nodeId)!;
  assert.match(holder.log(), /E2B API on https:\/\//, 'the node serves its E2B port over TLS');

  // A command's output arrives as it is written, through the replica (server-streamed Connect RPC).
  const chunks: Array<[string, number]> = [];
  const t0 = Date.now();
  const r = await sb.commands.run('echo one; sleep 1.5; echo two', { onStdout: (d) => { chunks.push([d, Date.now() - t0]); } });
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, 'one\ntwo\n');
  assert.deepEqual(chunks.map((c) => c[0]), ['one\n', 'two\n'], 'two pieces, not one buffered answer');
  assert.ok(chunks[1]![1] - chunks[0]![1] >= 1000, `the first piece came while the command still ran (${JSON.stringify(chunks)})`);

  // Files: envd's HTTP side (write, read) and its filesystem RPCs (list, stat).
  await sb.files.write('notes/hello.txt', 'written through the control replica\n');
  assert.equal(await sb.files.read('notes/hello.txt'), 'written through the control replica\n');
  assert.deepEqual((await sb.files.list('notes')).map((e) => e.name), ['hello.txt']);
  assert.equal((await sb.commands.run('cat notes/hello.txt')).stdout, 'written through the control replica\n');

  // The control plane: get, list (merged across nodes), the same through a fresh connect.
  const info = await Sandbox.getInfo(sb.sandboxId);
  assert.deepEqual(info.metadata, { via: 'control' });
  const listed = await Sandbox.list().nextItems();
  assert.ok(listed.some((s) => s.sandboxId === sb.sandboxId), 'listed through the replica');
  const again = await Sandbox.connect(sb.sandboxId);
  assert.equal((await again.commands.run('echo reconnected')).stdout, 'reconnected\n');

  // The sandbox's access token is the node's to check: a forged one is refused, through the replica too.
  const forged = await raw('GET', '/files?path=notes/hello.txt', { 'E2b-Sandbox-Id': sb.sandboxId, 'X-Access-Token': 'e2bat_forged' });
  assert.equal(forged.status, 401, JSON.stringify(forged.json));
  // Another tenant's key does not see it; no key is a 401 in E2B's shape.
  await assert.rejects(Sandbox.getInfo(sb.sandboxId, { apiKey: other }), NotFoundError);
  const nokey = await raw('GET', '/sandboxes');
  assert.equal(nokey.status, 401);
  assert.equal(nokey.json.code, 401);

  // Kill: gone on the node, in the catalog, and for the SDK.
  await sb.kill();
  await assert.rejects(Sandbox.getInfo(sb.sandboxId), NotFoundError);
  assert.equal(await sb.isRunning(), false);
  const ended = await ctl.sandboxState(sb.sandboxId);
  assert.equal(ended?.state, 'ended', JSON.stringify(ended));
  // envd calls about it answer as E2B's proxy does for a sandbox that is not running.
  const gone = await raw('GET', '/files?path=x', { 'E2b-Sandbox-Id': sb.sandboxId, 'X-Access-Token': 'e2bat_whatever' });
  assert.equal(gone.status, 502, JSON.stringify(gone.json));
});

test('sandboxes spread over the nodes, each reached through the replica; an id no node made is not found', { skip }, async () => {
  const made = await Promise.all(Array.from({ length: 4 }, () => Sandbox.create({ timeoutMs: 120_000 })));
  sandboxes.push(...made);
  const where = await Promise.all(made.map(async (s) => (await ctl.sandboxState(s.sandboxId))!.nodeId));
  const outs = await Promise.all(made.map((s) => s.commands.run('echo $((6 * 7))')));
  assert.deepEqual(outs.map((o) => o.stdout), ['42\n', '42\n', '42\n', '42\n']);
  assert.ok(new Set(where).size >= 1 && where.every((w) => nodes.some((n) => n.name === w)), where.join(','));
  // v2 paging merges the nodes' pages: two at a time, every sandbox once.
  const pager = Sandbox.list({ limit: 2 });
  const seen: string[] = [];
  while (pager.hasNext) seen.push(...(await pager.nextItems()).map((s) => s.sandboxId));
  for (const s of made) assert.equal(seen.filter((x) => x === s.sandboxId).length, 1, `${s.sandboxId} listed once in ${seen.join(',')}`);
  await Promise.all(made.map((s) => s.kill()));
  const unknown = await raw('GET', '/sandboxes/sb-n999-0123456789ab', { 'X-API-KEY': token });
  assert.equal(unknown.status, 404, JSON.stringify(unknown.json));
  assert.equal(unknown.json.code, 404);
});

test('an earlier SDK (2.8, no E2b-Sandbox-Id on /files) works through the replica too: its access token names the sandbox', { skip }, async () => {
  const sb = await EarlySandbox.create({ metadata: { sdk: 'early' } });
  try {
    assert.equal((await sb.commands.run('echo early')).stdout, 'early\n');
    await sb.files.write('early.txt', 'from 2.8');
    assert.equal(await sb.files.read('early.txt'), 'from 2.8');
  } finally { await sb.kill(); }
  assert.equal((await ctl.sandboxState(sb.sandboxId))?.state, 'ended');
});

test('a kill answers only once the catalog records the sandbox ended: a row lock held elsewhere holds the reply', { skip }, async () => {
  const sb = await Sandbox.create({ timeoutMs: 120_000 });
  sandboxes.push(sb);
  // Another session holds the catalog row, so the node's end record waits for it.
  const blocker = new pg.Client({ connectionString: url });
  await blocker.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM cluster_sandboxes WHERE sandbox_id = $1 FOR UPDATE', [sb.sandboxId]);
    let answered = false;
    const kill = sb.kill().then(() => { answered = true; });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(answered, false, 'the kill answered while its end was not yet recorded');
    await blocker.query('COMMIT');
    await kill;
  } finally { await blocker.end(); }
  assert.equal((await ctl.sandboxState(sb.sandboxId))?.state, 'ended');
});
