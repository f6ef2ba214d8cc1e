// Pins the layering (issue 17 §9): src/ has no import cycle, neither between folders nor
// between files, so dependencies run one way (cli → server → episodes/runner → … → util); the
// shipped code never loads test code; and each folder is used through its index.ts, so a
// folder's other files are its own to change.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { cycles, folderOf, importGraph, srcFolders } from './import-graph.ts';

const g = importGraph();

/**
 * Imports that reach past a folder's index.ts on purpose. All are lazy `await import()`s in
 * src/cli: the CLI loads only what a command needs (cold start), and these folders' index.ts
 * would load much more than the one file.
 */
const PAST_INDEX: ReadonlyArray<{ from: string; to: string; why: string }> = [
  { from: 'src/cli/run.ts', to: 'src/daemon/guard-client.ts', why: "`praetor run` is a thin client of the resident guard: daemon/index.ts also exports the guard server, which loads the runner, every sensor and the gateway (~140 modules instead of ~12)" },
  { from: 'src/cli/run.ts', to: 'src/sandbox/runtimes/types.ts', why: 'the thin client checks --runtime against RUNTIME_NAMES without loading the sandbox manager' },
  { from: 'src/cli/daemon.ts', to: 'src/sensors/ebpf-sensor.ts', why: "bpftrace is spawned before the guard's own modules load, so its seconds of compile overlap them; sensors/index.ts would load every sensor first" },
  { from: 'src/cli/daemon.ts', to: 'src/daemon/guard-client.ts', why: '`praetor daemon start` only connects (and starts a detached guard); it must not load the guard server itself' },
  { from: 'src/cli/daemon.ts', to: 'src/daemon/paths.ts', why: '`praetor daemon stop|status` read the pid file; they must not load the guard server' },
  { from: 'src/cli/status.ts', to: 'src/daemon/paths.ts', why: '`praetor status` reads the guard pid file without loading the guard server' },
  { from: 'src/cli/status.ts', to: 'src/runner/host-status.ts', why: "`praetor status` probes the host through the sandbox's probes; runner/index.ts would also load the gateway, the ledger and the rule engine (~600 modules instead of ~250)" },
  { from: 'src/cli/token.ts', to: 'src/server/auth.ts', why: '`praetor token` writes a token file without loading the HTTP server (fastify, every route)' },
...['pki-ca', 'pki-join-tokens', 'pki-join-client', 'pki-identity'].map((f) => ({
    from: 'src/cli/cluster.ts', to: `src/cluster/${f}.ts`,
    why: 'the PKI commands run without the control server, the node role or the PostgreSQL client (cluster/pki.ts would load fastify for the join server: ~150 ms more)',
  })),
  { from: 'src/cli/nodes.ts', to: 'src/cluster/control.ts', why: '`praetor nodes` reads the cluster tables without loading the HTTP server that cluster/index.ts exports' },
];

const isIndex = (file: string): boolean => file === `src/${folderOf(file)}/index.ts`;

test('no two folders of src/ import each other, directly or around a loop', () => {
  assert.deepEqual(cycles(g.folders), [], `folder graph: ${JSON.stringify(Object.fromEntries([...g.folders].map(([k, v]) => [k, [...v].sort()])))}`);
});

test('no file of src/ imports itself around a loop', () => {
  assert.deepEqual(cycles(g.files), []);
});

test('nothing in src/ imports test code (test/), and src/ leaves src/ only for the benchmarks', () => {
  const out = g.edges.filter((e) => !e.to.startsWith('src/'));
  assert.deepEqual(out.filter((e) => e.to.startsWith('test/')).map((e) => `${e.from} → ${e.to}`), [], 'the shipped code must run without test/');
  // `praetor bench` runs bench/ (which may use test harnesses), lazily, from a repository checkout.
  assert.deepEqual(out.filter((e) => !(e.from === 'src/cli/bench.ts' && e.dynamic && e.to.startsWith('bench/'))).map((e) => `${e.from} → ${e.to}`), []);
});

test('src/ holds no test helpers: only *.test.ts files may be test code', () => {
  // Named for tests (testing-cgroup.ts, test-utils.ts) or kept in a testing/ folder: it belongs in test/helpers.
  const helpers = [...g.files.keys()].filter((f) => /\/(testing|tests?)[-_.][^/]*$|\/testing\//.test(f));
  assert.deepEqual(helpers, []);
});

test('every folder of src/ has an index.ts', () => {
  const folders = srcFolders();
  assert.ok(folders.length >= 15, `${folders.length} folders`);
  assert.deepEqual(folders.filter((d) => !existsSync(`src/${d}/index.ts`)), []);
});

test("no file of src/ imports another folder's files past its index.ts, except the listed lazy loads of the CLI", () => {
  const allowed = new Set(PAST_INDEX.map((x) => `${x.from} → ${x.to}`));
  const past = g.edges.filter((e) => e.to.startsWith('src/') && folderOf(e.to) !== '(root)' && folderOf(e.from) !== folderOf(e.to) && !isIndex(e.to));
  assert.deepEqual([...new Set(past.map((e) => `${e.from} → ${e.to}`))].filter((k) => !allowed.has(k)), [], 'import the folder\'s index.ts (export what is needed there)');
  // The exceptions stay exceptions: each is a lazy import of the CLI that still exists.
  for (const x of PAST_INDEX) {
    const hits = past.filter((e) => e.from === x.from && e.to === x.to);
    assert.ok(hits.length > 0, `stale exception ${x.from} → ${x.to}: remove it from PAST_INDEX`);
    assert.ok(x.from.startsWith('src/cli/') && hits.every((e) => e.dynamic), `${x.from} → ${x.to} must be a lazy import() in src/cli`);
  }
});

test('a file does not import the index.ts of its own folder (that is how a barrel makes a cycle)', () => {
  const own = g.edges.filter((e) => isIndex(e.to) && folderOf(e.from) === folderOf(e.to) && e.from !== e.to && folderOf(e.from) !== '(root)');
  assert.deepEqual(own.map((e) => `${e.from} → ${e.to}`), []);
});

test('the graph is read for real: known edges are present', () => {
  assert.ok(g.files.size > 150, `${g.files.size} files`);
  assert.ok(g.folders.get('server')?.has('episodes'), 'server → episodes');
  assert.ok(!g.folders.get('episodes')?.has('server'), 'episodes does not import server');
  assert.ok(!g.folders.get('config')?.has('net'), 'config does not import net');
  assert.ok(g.files.get('src/cli/main.ts')?.has('src/cli/run.ts'), 'dynamic imports are followed');
  assert.ok(g.edges.some((e) => e.from === 'src/cli/bench.ts' && e.to.startsWith('bench/')), 'imports leaving src/ are seen');
  assert.ok(g.edges.some((e) => e.from === 'src/net/tls-ca.ts' && !e.dynamic && e.to.endsWith('x509-reflect.ts')), 'side-effect imports are seen');
});
