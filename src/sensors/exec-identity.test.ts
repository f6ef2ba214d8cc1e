import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { globInRoot, readSmallFile, resolveInRoot } from './exec-identity-files.ts';
import { ExecIdentity, parseShebang } from './exec-identity.ts';
import { loadToolCatalog, ToolCatalog } from './known-tools.ts';

// The hasher and its cache against real processes: copies of the host's own dash and ssh run
// from a temp dir under other names, so /proc/PID/exe is what a renamed tool looks like.

const dir = mkdtempSync('/tmp/pt-exec-identity-');
const kids: ChildProcess[] = [];
let id: ExecIdentity;
/** This test process stands in for a sandbox's live parent: its root is where the files are. */
const TEST_VIEW = { inSandbox: (pid: number) => pid === process.pid, markersEverywhere: true };
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Starts a copy of dash that lives until killed; returns its pid. */
function runCopy(path: string): number {
  const c = spawn(path, ['-c', 'sleep 30'], { stdio: 'ignore' });
  kids.push(c);
  return c.pid!;
}
/** The exec has happened once /proc/PID/exe names the copy. */
async function execd(pid: number, path: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try { if (execFileSync('readlink', [`/proc/${pid}/exe`]).toString().trim().startsWith(path)) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`pid ${pid} never exec'd ${path}`);
}

before(async () => {
  id = new ExecIdentity(loadToolCatalog(), TEST_VIEW);
  const learned = await id.learnHostTools();
  assert.ok(learned.tools >= 5, `host tools found: ${JSON.stringify(learned)}`);
});
after(() => {
  for (const k of kids) { try { k.kill('SIGKILL'); } catch { /* gone */ } }
  rmSync(dir, { recursive: true, force: true });
});

test('shipped catalog loads; host ssh and dash are known by hash', () => {
  const c = id.catalog;
  assert.equal(c.toolForHash(sha('/usr/bin/ssh')), 'ssh');
  assert.equal(c.toolForHash(sha('/usr/bin/dash')), 'dash');
  assert.equal(c.toolForHash('0'.repeat(64)), undefined);
});

test('a renamed copy of dash is tool=dash by hash; a second exec is a cache hit (one stat, no hash)', async () => {
  const copy = `${dir}/updater`;
  copyFileSync('/usr/bin/dash', copy);
  chmodSync(copy, 0o755);
  const pid = runCopy(copy);
  await execd(pid, copy);
  const before = { ...id.stats };
  const r = id.identify(pid, process.pid, copy, ['updater', '-c', 'sleep 30']);
  assert.deepEqual([r.tool, r.toolBy, r.identity, r.sha256], ['dash', 'hash', 'exe', sha('/usr/bin/dash')]);
  // The host's dash was hashed at start; the copy is a new inode: one miss, one hash.
  assert.equal(id.stats.misses - before.misses, 1);
  assert.equal(id.stats.syncHashes - before.syncHashes, 1);
  const pid2 = runCopy(copy);
  await execd(pid2, copy);
  const r2 = id.identify(pid2, pid, copy, ['updater']);
  assert.equal(r2.tool, 'dash');
  assert.equal(r2.parentTool, 'dash', 'the parent\'s tool is remembered by pid');
  assert.equal(id.stats.hits - before.hits, 1, 'same dev/ino/mtime/size: served from the cache');
  assert.equal(id.stats.syncHashes - before.syncHashes, 1, 'not hashed again');
  id.forget(pid);
  assert.equal(id.identify(pid2, pid, copy, ['updater']).parentTool, undefined, 'an exited pid is forgotten');
});

test('a file rewritten in place (same inode, new mtime and size) is hashed again, not served stale', () => {
  const f = `${dir}/rewritten`;
  copyFileSync('/usr/bin/dash', f);
  const ino = statSync(f).ino;
  assert.equal(id.identify(999_999_999, process.pid, f, ['x']).tool, 'dash');
  writeFileSync(f, readFileSync('/usr/bin/ssh')); // truncate and rewrite: same inode
  assert.equal(statSync(f).ino, ino);
  const r = id.identify(999_999_999, process.pid, f, ['x']);
  assert.deepEqual([r.tool, r.identity, r.sha256], ['ssh', 'path', sha('/usr/bin/ssh')]);
});

test('a deleted executable is still hashed through /proc/PID/exe', async () => {
  const copy = `${dir}/gone-after-start`;
  copyFileSync('/usr/bin/dash', copy);
  chmodSync(copy, 0o755);
  const pid = runCopy(copy);
  await execd(pid, copy);
  unlinkSync(copy);
  const r = id.identify(pid, undefined, copy, ['x']);
  assert.deepEqual([r.tool, r.identity], ['dash', 'exe']);
});

test('process gone: its path is hashed and marked; nothing found means no hash at all', () => {
  const copy = `${dir}/short-lived`;
  copyFileSync('/usr/bin/ssh', copy);
  const r = id.identify(999_999_998, process.pid, copy, ['short-lived']);
  assert.deepEqual([r.tool, r.identity], ['ssh', 'path']);
  const none = id.identify(999_999_998, 999_999_997, copy, ['x']);
  assert.equal(new ExecIdentity(id.catalog).identify(999_999_998, process.pid, copy, ['x']).identity, 'unavailable',
    'by default a live parent outside any sandbox cgroup (this test) is no stand-in: the host root is never read');
  assert.deepEqual(none, { identity: 'unavailable' }, 'neither process nor parent: no root to read, no invented hash');
  const missing = id.identify(999_999_998, process.pid, `${dir}/never-existed`, ['x']);
  assert.equal(missing.sha256, undefined);
  assert.equal(missing.identity, 'unavailable');
});

test('process and parent gone: the nearest live ancestor recorded from earlier execs stands in', () => {
  const copy = `${dir}/grandchild`;
  copyFileSync('/usr/bin/dash', copy);
  id.identify(999_999_980, process.pid, '/bin/sh', ['sh']); // an exec of the (now gone) parent, seen earlier
  const r = id.identify(999_999_981, 999_999_980, copy, ['grandchild']);
  assert.deepEqual([r.tool, r.identity], ['dash', 'path']);
  id.forget(999_999_980);
  assert.equal(id.identify(999_999_982, 999_999_980, copy, ['x']).identity, 'unavailable', 'an exited ancestor\'s link is forgotten');
});

test('a #! script whose process is gone is its interpreter (shebang), env and options included', () => {
  writeFileSync(`${dir}/job.sh`, '#!/usr/bin/env -S dash -e\necho hi\n');
  const r = id.identify(999_999_996, process.pid, `${dir}/job.sh`, ['job.sh']);
  assert.deepEqual([r.tool, r.toolBy, r.identity, r.sha256], ['dash', 'shebang', 'path', sha('/usr/bin/dash')]);
  assert.equal(parseShebang('#!/bin/sh -e\n'), '/bin/sh');
  assert.equal(parseShebang('#!/usr/bin/env -u X python3 -u\n'), 'python3');
  assert.equal(parseShebang('#!/usr/bin/env A=1 perl\n'), 'perl');
  assert.equal(parseShebang('\x7fELF'), undefined);
});

test('over the synchronous limit: pending at exec, the hash and tool arrive later', async () => {
  const cat = loadToolCatalog();
  cat.learnHash(sha('/usr/bin/ssh'), 'ssh');
  const small = new ExecIdentity(cat, { ...TEST_VIEW, syncMaxBytes: 1000, chunkBytes: 64 << 10 });
  const copy = `${dir}/big`;
  copyFileSync('/usr/bin/ssh', copy);
  const r = small.identify(999_999_995, process.pid, copy, ['big']);
  assert.equal(r.identity, 'pending');
  assert.equal(r.sha256, undefined, 'the exec does not wait for the hash');
  const late = await r.later;
  assert.deepEqual(late, { sha256: sha('/usr/bin/ssh'), tool: 'ssh', toolBy: 'hash' });
  assert.equal(small.identify(999_999_995, process.pid, copy, ['big']).tool, 'ssh', 'then cached');
});

test('unknown hash: tool null at exec, markers name it later; busybox applets by argv0', async () => {
  const cat = new ToolCatalog({ tools: [
    { name: 'ssh', names: ['ssh'], markers: ['usage: ssh [-'] },
    { name: 'nc', names: ['nc'] },
    { name: 'busybox', names: ['busybox'], markers: ['BusyBox is copyrighted'], multicall: true },
  ] });
  const ids = new ExecIdentity(cat, { ...TEST_VIEW, chunkBytes: 7 }); // tiny chunks: a marker split across two is still found
  const fake = `${dir}/fake-ssh`;
  writeFileSync(fake, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(100), Buffer.from('xx usage: ssh [-46] yy')]));
  const r = ids.identify(999_999_994, process.pid, fake, ['fake-ssh']);
  assert.equal(r.tool, null, 'checked, unknown at exec time');
  assert.deepEqual(await r.later, { sha256: sha(fake), tool: 'ssh', toolBy: 'marker' });
  const again = ids.identify(999_999_994, process.pid, fake, ['fake-ssh']);
  assert.deepEqual([again.tool, again.toolBy, again.later], ['ssh', 'marker', undefined]);

  const bb = `${dir}/bb`;
  writeFileSync(bb, 'not elf, but a hash the catalog knows');
  cat.learnHash(sha(bb), 'busybox');
  const applet = (argv: string[]) => ids.identify(999_999_994, process.pid, bb, argv).tool;
  assert.equal(applet(['nc', '203.0.113.5', '4444']), 'nc');
  assert.equal(applet(['/bin/sh', '-i']), 'ash');
  assert.equal(applet(['busybox', 'nc', '-e']), 'nc');
  assert.equal(applet(['busybox', 'ls']), 'busybox');
  const plain = `${dir}/plain-elf`;
  writeFileSync(plain, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(64)]));
  const p = ids.identify(999_999_994, process.pid, plain, ['ls']);
  assert.equal(p.tool, null);
  assert.equal(await p.later, undefined, 'no marker: nothing follows');
});

test('cache is bounded', () => {
  const ids = new ExecIdentity(new ToolCatalog({ tools: [] }), { ...TEST_VIEW, cacheMax: 3 });
  for (let i = 0; i < 6; i++) {
    writeFileSync(`${dir}/f${i}`, `file ${i}`);
    ids.identify(999_999_993, process.pid, `${dir}/f${i}`, ['x']);
  }
  assert.equal(ids.cacheSize, 3);
});

test('files read through a sandbox root stay inside it: links, .., FIFOs', () => {
  const root = `${dir}/root`;
  mkdirSync(`${root}/home/agent/.ssh`, { recursive: true });
  mkdirSync(`${root}/etc`, { recursive: true });
  writeFileSync(`${root}/etc/secret`, 'inside');
  symlinkSync('/etc/secret', `${root}/home/agent/.ssh/config`); // absolute: the sandbox's /etc, not the host's
  symlinkSync('../../../../../../etc/secret', `${root}/home/agent/up`);
  const h = resolveInRoot(root, '/home/agent/.ssh/config');
  assert.equal(h, `${root}/etc/secret`);
  assert.deepEqual(readSmallFile(h!, 100), { ok: true, text: 'inside' });
  assert.equal(resolveInRoot(root, '/home/agent/up'), `${root}/etc/secret`, '.. stops at the root');
  symlinkSync('loop', `${root}/loop`);
  assert.equal(resolveInRoot(root, '/loop'), undefined);
  execFileSync('mkfifo', [`${root}/fifo`]);
  assert.deepEqual(readSmallFile(`${root}/fifo`, 100), { ok: false, reason: 'not a regular file' }, 'a FIFO does not hang the sensor');
  writeFileSync(`${root}/big`, 'x'.repeat(200));
  assert.equal(readSmallFile(`${root}/big`, 100).ok, false);
  mkdirSync(`${root}/home/agent/.ssh/conf.d`);
  for (const n of ['b.conf', 'a.conf', '.hidden.conf', 'c.txt']) writeFileSync(`${root}/home/agent/.ssh/conf.d/${n}`, '');
  assert.deepEqual(globInRoot(root, '/home/agent/.ssh/conf.d/*.conf'), ['/home/agent/.ssh/conf.d/a.conf', '/home/agent/.ssh/conf.d/b.conf']);
  assert.deepEqual(globInRoot(root, '/home/*/.ssh/conf.d/[ab].conf'), ['/home/agent/.ssh/conf.d/a.conf', '/home/agent/.ssh/conf.d/b.conf']);
});

test('the /proc scanner backend carries the same identity (relay): a renamed dash is tool=dash', async () => {
  const { EventBus } = await import('../events/index.ts');
  const { startKernelSensor } = await import('./kernel-sensor.ts');
  const copy = `${dir}/procfs-copy`;
  copyFileSync('/usr/bin/dash', copy);
  chmodSync(copy, 0o755);
  const pid = runCopy(copy);
  await execd(pid, copy);
  const bus = new EventBus();
  const got: Record<string, unknown>[] = [];
  bus.subscribe((e) => { if (e.kind === 'process.exec' && e.pid === pid) got.push(e); });
  const sensor = await startKernelSensor({
    bus, mode: 'procfs', procfsIntervalMs: 10, identity: id,
    resolver: { sandboxForCgroupId: () => undefined, sandboxForPid: (p) => (p === pid ? 'sb-procfs' : undefined) },
  });
  try {
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  } finally { await sensor.stop(); }
  assert.equal(got.length, 1, 'the scanner saw the process once');
  assert.deepEqual([got[0]!.tool, got[0]!.identity, got[0]!.sensor], ['dash', 'exe', 'procfs']);
});
