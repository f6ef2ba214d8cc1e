// Pins the layering (issue 17 §9): src/ has no import cycle, neither between folders nor
// between files, so dependencies run one way (cli → server → episodes/runner → … → util).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cycles, importGraph } from './import-graph.ts';

const g = importGraph();

test('no two folders of src/ import each other, directly or around a loop', () => {
  assert.deepEqual(cycles(g.folders), [], `folder graph: ${JSON.stringify(Object.fromEntries([...g.folders].map(([k, v]) => [k, [...v].sort()])))}`);
});

test('no file of src/ imports itself around a loop', () => {
  assert.deepEqual(cycles(g.files), []);
});

test('the graph is read for real: known edges are present', () => {
  assert.ok(g.files.size > 150, `${g.files.size} files`);
  assert.ok(g.folders.get('server')?.has('episodes'), 'server → episodes');
  assert.ok(!g.folders.get('episodes')?.has('server'), 'episodes does not import server');
  assert.ok(!g.folders.get('config')?.has('net'), 'config does not import net');
  assert.ok(g.files.get('src/cli/main.ts')?.has('src/cli/run.ts'), 'dynamic imports are followed');
});
