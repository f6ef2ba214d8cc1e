import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileId, SecretIdentities, type IdentityMap } from './secret-identities.ts';

function recorder(): { map: IdentityMap; keys: Set<bigint> } {
  const keys = new Set<bigint>();
  return {
    keys,
    map: {
      update: (_n, k) => { keys.add(k.readBigUInt64LE()); return 0; },
      delete: (_n, k) => { keys.delete(k.readBigUInt64LE()); },
    },
  };
}

test('an identity is a credential only in the sandbox that has it: a later sandbox reusing the inode and tmpfs device inherits nothing', () => {
  const s = new SecretIdentities();
  const id = fileId(18n, 42n);
  s.learn(1n, id, '/home/agent/.ssh/id_rsa');
  assert.equal(s.lookup(1n, id), '/home/agent/.ssh/id_rsa');
  assert.equal(s.lookup(2n, id), undefined, 'sandbox 2 has its own tmpfs 0:42, inode 18 there is some other file');
  assert.equal(s.lookup(1n, fileId(18n, 43n)), undefined, 'same inode, other filesystem');
});

test('the kernel map holds every identity some sandbox has, written before and after it attaches, removed with the last holder', () => {
  const s = new SecretIdentities();
  const shared = fileId(7n, 266338304n); // a host file two sandboxes see
  const own = fileId(18n, 42n);
  s.learn(1n, shared, '/etc/shadow');
  const r = recorder();
  assert.equal(s.attachMap(r.map), undefined);
  assert.deepEqual([...r.keys], [shared], 'known before the sensor was ready: written at attach');
  s.learn(2n, shared, '/etc/shadow');
  s.learn(2n, own, '/home/agent/.aws/credentials');
  assert.deepEqual(new Set(r.keys), new Set([shared, own]));
  s.forget(1n);
  assert.ok(r.keys.has(shared), 'sandbox 2 still holds the shared file');
  s.forget(2n);
  assert.equal(r.keys.size, 0);
  assert.deepEqual(s.sandboxes(), []);
});

test('a refused kernel write is said once, in words; user space still knows the identity', () => {
  const s = new SecretIdentities();
  s.attachMap({ update: () => -7, delete: () => {} });
  const e = s.learn(1n, fileId(1n, 1n), '/root/.netrc');
  assert.match(e ?? '', /refused a credential identity \(errno 7\)/);
  assert.equal(s.learn(1n, fileId(2n, 1n), '/root/.pgpass'), undefined, 'not repeated');
  assert.equal(s.lookup(1n, fileId(1n, 1n)), '/root/.netrc');
});
