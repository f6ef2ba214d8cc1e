// The sandbox's end of its link is moved and configured through an open file of the sandbox's
// network namespace, never "the namespace of pid N": a pid recycled between finding the sandbox
// process and the move would put the sandbox's address and default route into another namespace.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

const NODE = process.execPath;
const isRoot = process.getuid?.() === 0;

function inOwnNamespace(mode: string): Record<string, string | boolean | undefined> {
  const ns = `pt-link-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const r = spawnSync('ip', ['netns', 'exec', ns, NODE, new URL('./link-probe.ts', import.meta.url).pathname, mode], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, string | boolean | undefined>;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

test('the link moves into the namespace by its open file, even once the process it was found by has exited', { skip: !isRoot && 'needs root' }, () => {
  const r = inOwnNamespace('exited');
  assert.match(String(r.inside), /eth0\s+inet 10\.203\.0\.2\/30/, 'the sandbox end is addressed inside the sandbox namespace');
  assert.match(String(r.route), /default via 10\.203\.0\.1 dev eth0/);
  assert.doesNotMatch(String(r.here), /ptl-p|eth0/, 'nothing of the sandbox end is left where praetor runs');
  assert.equal(String(r.hereRoute).trim(), '', 'no default route where praetor runs');
});

test('a namespace file that is praetor\'s own namespace is refused, and nothing moves', { skip: !isRoot && 'needs root' }, () => {
  const r = inOwnNamespace('own');
  assert.equal(r.moved, undefined);
  assert.equal(r.code, 'SANDBOX_FAILED');
  assert.match(String(r.error), /gateway's own network namespace/);
  assert.match(String(r.here), /ptl-p/, 'the peer stayed where it was created, unconfigured');
  assert.equal(String(r.hereRoute).trim(), '');
});
