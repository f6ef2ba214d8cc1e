import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readsProgramFromStdin as r } from './stdin-program.ts';

test('shells and interpreters with no script read their program from stdin', () => {
  assert.equal(r('sh', ['sh']), true);
  assert.equal(r('bash', ['/bin/bash', '-i']), true);
  assert.equal(r('bash', ['bash', '-s', 'arg1']), true);
  assert.equal(r('bash', ['bash', '-xs']), true);
  assert.equal(r('bash', ['bash', '--noprofile', '--norc']), true);
  assert.equal(r('dash', ['sh', '-p']), true);
  assert.equal(r('python3.11', ['python3', '-']), true);
  assert.equal(r('python3.11', ['python3', '-u', '-W', 'ignore']), true);
  assert.equal(r('perl', ['perl']), true);
  assert.equal(r('node', ['node']), true);
  assert.equal(r('busybox', ['busybox', 'sh']), true);
  assert.equal(r('busybox', ['sh']), true);
});

test('a script, inline code or a module is a named program', () => {
  assert.equal(r('sh', ['sh', '-c', 'make']), false);
  assert.equal(r('bash', ['bash', '-lc', 'make']), false);
  assert.equal(r('bash', ['bash', 'build.sh']), false);
  assert.equal(r('bash', ['bash', '-o', 'pipefail', 'build.sh']), false);
  assert.equal(r('python3.11', ['python3', '-m', 'pip', 'install', 'x']), false);
  assert.equal(r('python3.11', ['python3', '-W', 'ignore', 'app.py']), false);
  assert.equal(r('python3.11', ['python3', '-uc', 'print(1)']), false);
  assert.equal(r('perl', ['perl', '-ne', 'print']), false);
  assert.equal(r('node', ['node', '-e', '1']), false);
  assert.equal(r('node', ['node', 'dist/index.js']), false);
});

test('other programs never do', () => {
  assert.equal(r('base64', ['base64', '-d']), false);
  assert.equal(r('tar', ['tar', '-x']), false);
  assert.equal(r('jq', ['jq', '.']), false);
});
