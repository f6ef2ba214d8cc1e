// Unit tests of the envd pieces that need no sandbox: the user check, path resolution, the
// bounded stream queue and the parsing of find's entry listing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AsyncQueue } from './async-queue.ts';
import { checkUser, E2B_HOME, resolvePath, userFromBasic } from './envd-user.ts';
import { parseEntries } from './filesystem-service.ts';

test('the envd user: unset, "user" or the agent run as the agent; root and others are refused', () => {
  assert.equal(userFromBasic(`Basic ${Buffer.from('root:').toString('base64')}`), 'root');
  assert.equal(userFromBasic(undefined), '');
  for (const ok of [undefined, '', 'user', 'agent']) assert.doesNotThrow(() => checkUser(ok));
  assert.throws(() => checkUser('root'), (e: Error & { code?: string }) => e.code === 'FORBIDDEN' && /never root/.test(e.message));
  assert.throws(() => checkUser('postgres'), /not available/);
});

test('relative paths start at the E2B working directory', () => {
  assert.equal(resolvePath('a/b.txt'), `${E2B_HOME}/a/b.txt`);
  assert.equal(resolvePath('~/x'), `${E2B_HOME}/x`);
  assert.equal(resolvePath(''), E2B_HOME);
  assert.equal(resolvePath('/etc/hosts'), '/etc/hosts');
});

test('the stream queue hands items over in order and reports when a slow reader is past its bound', async () => {
  const q = new AsyncQueue<{ n: number; bytes: number }>(10);
  const ac = new AbortController();
  assert.equal(q.push({ n: 1, bytes: 6 }, 6), true);
  assert.equal(q.push({ n: 2, bytes: 6 }, 6), false, 'over 10 bytes waiting');
  const size = (x: { bytes: number }) => x.bytes;
  assert.equal((await q.next(ac.signal, size))!.n, 1);
  assert.equal(q.push({ n: 3, bytes: 1 }, 1), true, 'back under the bound once read');
  const later = q.next(ac.signal, size);
  assert.equal((await later)!.n, 2);
  assert.equal((await q.next(ac.signal, size))!.n, 3);
  const waiting = q.next(ac.signal, size);
  ac.abort();
  assert.equal(await waiting, undefined, 'an aborted stream stops waiting');
  q.close();
  assert.equal(await q.next(new AbortController().signal), undefined);
});

test('entries parse from find -printf output: types, Go mode bits, symlink targets, times', () => {
  const rec = (...f: string[]) => f.join('\0') + '\0';
  const out = rec('d', '4096', '755', 'drwxr-xr-x', 'agent', 'agent', '1700000000.5', '', '/workspace/dir')
    + rec('f', '5', '644', '-rw-r--r--', 'agent', 'agent', '1700000001.0', '', '/workspace/dir/a b.txt')
    + rec('l', '7', '777', 'lrwxrwxrwx', 'agent', 'agent', '1700000002.25', '/etc/hosts', '/workspace/link');
  const [d, f, l] = parseEntries(out);
  assert.deepEqual([d!.name, d!.type, d!.mode, d!.permissions], ['dir', 2, (0x80000000 | 0o755) >>> 0, 'drwxr-xr-x']);
  assert.deepEqual([f!.name, f!.type, f!.size, f!.mode, f!.path], ['a b.txt', 1, 5n, 0o644, '/workspace/dir/a b.txt']);
  assert.deepEqual([l!.type, l!.symlinkTarget, l!.permissions, l!.modifiedTime], [3, '/etc/hosts', 'Lrwxrwxrwx', { seconds: 1700000002n, nanos: 250_000_000 }]);
  assert.equal(parseEntries('/').length, 0, 'a truncated record yields nothing');
});
