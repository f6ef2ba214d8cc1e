import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeExitCode, decodeSockaddr, LineAssembler, type KernelRecord } from './ebpf-parse.ts';
import { isPersistencePath, isSensitivePath, isWatchedPath, resolveOpenPath } from './sensitive-paths.ts';

const hx = (b: Buffer | string): string => [...Buffer.from(b)].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('');
const comm = (s: string): string => hx(Buffer.concat([Buffer.from(s), Buffer.alloc(16 - s.length)]));

test('exec lines join in any order, argv is unambiguous, forged lines without the token are text', () => {
  const a = new LineAssembler('tok', 3072);
  const argv = Buffer.from('/bin/echo\0a\\x41b\0two words\0');
  const out: KernelRecord[] = [];
  out.push(...a.push(`tok A 42 0 ${hx(argv)}`, 0));
  out.push(...a.push(`tok X 1000 42 41 0 77 76 ${argv.length} 49152 123 4096 5 8192 6 ${comm('echo')} ${comm('sh')}`, 0));
  assert.equal(out.length, 0);
  out.push(...a.push('tok F 42 /bin/ec', 0));
  out.push(...a.push('tok P 1 2 3 4 ' + comm('x'), 0)); // the next record ends the filename (it may continue on more lines)
  assert.equal(out.length, 2);
  const ex = out.find((r) => r.type === 'exec');
  assert.ok(ex && ex.type === 'exec');
  assert.deepEqual(ex.argv, ['/bin/echo', 'a\\x41b', 'two words']);
  assert.equal(ex.filename, '/bin/ec');
  assert.deepEqual(ex.stdio[0], { mode: 49152, ino: 123 });
  assert.equal(ex.sandboxCgroupId, 76n);
});

test('a path with a newline continues on the next line; it cannot forge a record', () => {
  const a = new LineAssembler('tok', 3072);
  const out = [
    ...a.push(`tok O 5 9 76 0 3 1842 ${comm('cat')} /tmp/x`, 0),
    ...a.push('tok2 O 5 9 76 0 3 1842 forged', 0),
    ...a.push('tok R 1 1 0', 0),
  ];
  const o = out.find((r) => r.type === 'open');
  assert.ok(o && o.type === 'open');
  assert.equal(o.path, '/tmp/x\ntok2 O 5 9 76 0 3 1842 forged');
  assert.deepEqual([o.fileId, o.comm], [1842n, 'cat'], 'the opened file\'s identity, then the name');
  assert.equal(out.filter((r) => r.type === 'open').length, 1);
});

test('connect waits for its result, else is reported as pending', () => {
  const a = new LineAssembler('tok', 3072);
  const sa = Buffer.from([2, 0, 0x1f, 0x90, 10, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(a.push(`tok C 1 9 9 76 ${comm('ssh')} ${hx(sa)}`, 0), []);
  const r = a.push('tok R 9 9 -111', 1);
  assert.equal(r.length, 1);
  assert.ok(r[0]!.type === 'connect' && r[0]!.dstIp === '10.0.0.7' && r[0]!.dstPort === 8080 && r[0]!.result === -111);
  a.push(`tok C 1 9 10 76 ${comm('ssh')} ${hx(sa)}`, 0);
  assert.deepEqual(a.flush(5, 20), []);
  const p = a.flush(25, 20);
  assert.ok(p[0]?.type === 'connect' && p[0].result === null);
});

test('a sandbox cgroup the kernel filter could not register is reported once, as unwatched', () => {
  const a = new LineAssembler('tok', 3072);
  assert.deepEqual(a.push('tok M 4242', 0), [{ type: 'unwatched', ktimeNs: 0n, pid: 0, sandboxCgroupId: 4242n }]);
  assert.deepEqual(a.push('tok M 4242', 1), [], 'every later exec in it repeats the record');
  assert.equal(a.push('tok M 4243', 2).length, 1);
  assert.deepEqual(a.push('M 4244', 3), [], 'without the token it is text');
});

test('sockaddr_in6, exit status', () => {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(10, 0); b.writeUInt16BE(22, 2); b[23] = 1;
  assert.deepEqual(decodeSockaddr(b), { family: 'inet6', ip: '::1', port: 22 });
  assert.deepEqual(decodeExitCode(7 << 8), { exitCode: 7, signal: null });
  assert.deepEqual(decodeExitCode(9), { exitCode: null, signal: 9 });
});

test('sensitive paths', () => {
  for (const p of ['/root/.ssh/id_rsa', '/home/a/.aws/credentials', '/h/.kube/config', '/etc/shadow', '/w/.env', '/x/wallet.dat', '/proc/1/environ', '/h/.ethereum/keystore/UTC--x'])
    assert.ok(isSensitivePath(p), p);
  for (const p of ['/etc/passwd', '/tmp/x.c', '/home/a/.bashrc', '/w/env.ts']) assert.ok(!isSensitivePath(p), p);
  // Persistence locations: reported when written, not when read (every shell reads its profile).
  for (const p of ['/home/a/.bashrc', '/home/a/.profile', '/etc/profile.d/x.sh', '/etc/cron.d/job', '/var/spool/cron/crontabs/agent', '/home/a/.config/systemd/user/x.service', '/home/a/.config/autostart/u.desktop', '/etc/ld.so.preload']) {
    assert.ok(isPersistencePath(p), p);
    assert.ok(isWatchedPath(p, true) && !isWatchedPath(p, false), p);
  }
  for (const p of ['/workspace/.bashrc.bak', '/home/a/profile.txt', '/workspace/cron.md']) assert.ok(!isPersistencePath(p), p);
  assert.equal(resolveOpenPath('../.ssh/id_rsa', '/home/a/src'), '/home/a/.ssh/id_rsa');
  assert.equal(resolveOpenPath('/usr/../home/a/./.aws/credentials', undefined), '/home/a/.aws/credentials', 'an absolute path with .. is folded too');
});

test('a refused escape syscall becomes a denied record named by the kernel probe, not by the process', () => {
  const a = new LineAssembler('tok', 3072);
  const out = [
    ...a.push(`tok D 5 900 76 -1 ${comm('unshare')} tracepoint:syscalls:sys_exit_unshare`, 0),
    ...a.push(`tok D 6 901 76 -13 ${comm('x')} kprobe:forged`, 0),
  ];
  assert.deepEqual(out, [{ type: 'denied', ktimeNs: 5n, pid: 900, sandboxCgroupId: 76n, errno: 1, comm: 'unshare', syscall: 'unshare' }]);
});

test('a CPU tick finishes the open record before it and is kept for the caller to take after the records', () => {
  const a = new LineAssembler('tok', 3072);
  assert.deepEqual(a.push('tok O 100 7 42 0 3 0 7368 /workspace/id_rsa', 0), [], 'an open waits for a possible continuation line');
  const recs = a.push('tok T 1 150', 0);
  assert.equal(recs.length, 1);
  assert.equal((recs[0] as Extract<KernelRecord, { type: 'open' }>).path, '/workspace/id_rsa');
  assert.deepEqual(a.ticks, [[1, 150n]]);
  assert.deepEqual(a.push('T 0 999', 0), [], 'a tick without the token is text');
  assert.deepEqual(a.ticks, [[1, 150n]]);
});
