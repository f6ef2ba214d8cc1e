// The confined tar that unpacks image archives must not depend on the host's other mounts: it
// used to bind the whole host read-only, which remounts every submount, and a mount that went
// away meanwhile (another sandbox's network namespace under /run/netns) failed the import.
// Here a loop adds and deletes a network namespace while archives unpack (the old code failed
// this in one run of 150 unpacks).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { confinedTar } from '../../src/sandbox/image-layers.ts';

const dir = mkdtempSync('/tmp/pt-ctar-');

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('archives unpack while network namespaces come and go', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
  mkdirSync(`${dir}/src`);
  writeFileSync(`${dir}/src/f.txt`, 'payload\n');
  assert.equal(spawnSync('tar', ['-cf', `${dir}/a.tar`, '-C', `${dir}/src`, 'f.txt']).status, 0);
  // Network namespaces come and go as sandboxes do: their nsfs mounts under /run/netns.
  const ns = `pt-ctar-${process.pid}`;
  const loop = spawn('/bin/sh', ['-c', `while :; do ip netns add ${ns}; ip netns del ${ns}; done`], { stdio: 'ignore' });
  const failures: string[] = [];
  try {
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 150; i++) {
      const root = `${dir}/root${i}`;
      mkdirSync(root);
      const r = confinedTar(`${dir}/a.tar`, root, []);
      if (r.status !== 0) failures.push(r.stderr.trim());
      else assert.equal(readFileSync(`${root}/f.txt`, 'utf8'), 'payload\n');
    }
  } finally {
    loop.kill('SIGKILL');
    await new Promise((r) => loop.once('exit', r));
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
  assert.deepEqual(failures, [], 'an unrelated mount changing made the unpack fail');
});
