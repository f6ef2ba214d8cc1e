// Regression tests for the sandbox review fixes: a command that cannot be sent leaves nothing
// behind, sessions decode UTF-8 across chunk boundaries and find their end marker in long
// output, gc compares start times even for our own pid, and OCI bundles carry real device numbers.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { isPraetorError } from '../../src/errors.ts';
import type { PraetorEvent } from '../../src/events/index.ts';
import { Session } from '../../src/sandbox/index.ts';
import { writeOciBundle } from '../../src/sandbox/runtimes/oci-bundle.ts';
import { openManager, sh } from './helpers.ts';

const m = await openManager();

test('a command the init cannot accept throws at once and leaves no running entry or unmatched command.start', async () => {
  const sb = await m.create({});
  const seen: PraetorEvent[] = [];
  const off = m.bus.subscribe((e) => { if (e.sandboxId === sb.id) seen.push(e); });
  try {
    assert.throws(() => sb.spawn(['echo', 'a\0b']), (e: unknown) => isPraetorError(e) && e.code === 'BAD_ARGUMENT');
    assert.equal(sb.runningCommands, 0, 'no #running entry for a command that never started');
    assert.deepEqual(seen.filter((e) => e.kind === 'command.start' || e.kind === 'command.end'), [], 'no command.start without a command.end');
    const r = await sb.exec(['echo', 'still fine']);
    assert.equal(r.stdout, 'still fine\n');
    const kinds = seen.map((e) => e.kind).filter((k) => k.startsWith('command.'));
    assert.deepEqual(kinds, ['command.start', 'command.end']);
  } finally {
    off();
    await sb.destroy();
  }
});

test('a session decodes a UTF-8 character split across chunks and finds its marker after long output', async () => {
  const sb = await m.create({});
  try {
    const s = new Session(sb, 'utf8');
    // The euro sign's three bytes arrive in two separate writes (two pipe reads on our side).
    const r = await s.run("printf '\\342'; sleep 0.2; printf '\\202\\254\\n'");
    assert.equal(r.exitCode, 0);
    assert.equal(r.output, '€\n');
    const long = await s.run('seq 1 50000; false');
    assert.equal(long.exitCode, 1);
    const lines = long.output.split('\n');
    assert.equal(lines.length, 50001);
    assert.equal(lines[49999], '50000');
    s.close();
  } finally {
    await sb.destroy();
  }
});

test('gc reaps a record naming our own pid with another start time (a restarted praetor that got the pid back)', async () => {
  const id = 'sb-deadbeef0001';
  const dir = `${m.stateDir}/sandboxes/${id}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/owner.json`, JSON.stringify({ ownerPid: process.pid, ownerStart: '1' }));
  const res = await m.gc();
  assert.ok(res.reaped.includes(id), `reaped: ${res.reaped.join(', ')}`);
  assert.equal(existsSync(dir), false);
});

test('OCI bundles carry the devices\' real numbers, not a guess from the name', () => {
  const dir = mkdtempSync('/tmp/pt-bundle-');
  after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(`${dir}/root`);
  writeOciBundle({
    id: 'sb-test', root: { kind: 'dir', path: `${dir}/root` }, rwDir: `${dir}/rw`, etcTemplate: undefined, workspace: `${dir}/ws`,
    home: '/home/agent', initPath: '/bin/true', hostname: 'h', shmBytes: 1 << 20,
    devices: [{ path: '/dev/nvidia-uvm', major: 507, minor: 0 }, { path: '/dev/nvidia-uvm-tools', major: 507, minor: 1 }],
    cgroupProcs: [], cgroupRel: 'x', runtimeDir: `${dir}/rt`, launcherPath: '/bin/true',
  });
  const config = JSON.parse(readFileSync(`${dir}/rt/bundle/config.json`, 'utf8')) as { linux: { devices: { path: string; major: number; minor: number }[] } };
  assert.deepEqual(config.linux.devices.map((d) => [d.path, d.major, d.minor]), [['/dev/nvidia-uvm', 507, 0], ['/dev/nvidia-uvm-tools', 507, 1]]);
});

test('destroy removes the cgroup once, through release', async () => {
  const sb = await m.create({});
  const dirs = sb.cgroup.dirs();
  assert.ok(dirs.every((d) => existsSync(d)));
  await sb.exec(sh('sleep 30 & echo started'));
  await sb.destroy();
  assert.ok(dirs.every((d) => !existsSync(d)), 'every hierarchy\'s directory is gone');
});
