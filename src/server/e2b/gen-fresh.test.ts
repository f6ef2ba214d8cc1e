// The committed envd bindings are what scripts/gen-e2b.sh makes from the committed protos, and
// they load under Node's type stripping (plain ES modules: no enum or namespace to transpile).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const GEN = join(ROOT, 'src/server/e2b/gen');
const files = (dir: string) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => relative(dir, join(d.parentPath, d.name))).sort();

test('src/server/e2b/gen equals a fresh generation from src/server/e2b/proto', () => {
  const out = mkdtempSync('/tmp/pt-gen-e2b-');
  try {
    const r = spawnSync('sh', [join(ROOT, 'scripts/gen-e2b.sh'), `${out}/gen`], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(files(`${out}/gen`), files(GEN));
    for (const f of files(GEN)) assert.ok(readFileSync(join(out, 'gen', f), 'utf8') === readFileSync(join(GEN, f), 'utf8'), `${f} is stale: run sh scripts/gen-e2b.sh and commit src/server/e2b/gen`);
  } finally { rmSync(out, { recursive: true, force: true }); }
});

test('the bindings load as plain ES modules and describe E2B\'s services', async () => {
  const p = await import('./gen/process/process_pb.js');
  const f = await import('./gen/filesystem/filesystem_pb.js');
  assert.equal(p.Process.typeName, 'process.Process');
  assert.deepEqual(Object.keys(p.Process.method).sort(), ['closeStdin', 'connect', 'list', 'sendInput', 'sendSignal', 'start', 'streamInput', 'update']);
  assert.equal(f.Filesystem.typeName, 'filesystem.Filesystem');
  assert.ok('listDir' in f.Filesystem.method && 'watchDir' in f.Filesystem.method);
  for (const file of files(GEN).filter((x) => x.endsWith('.js'))) assert.doesNotMatch(readFileSync(join(GEN, file), 'utf8'), /^\s*(export\s+)?(enum|namespace)\s/m);
});
