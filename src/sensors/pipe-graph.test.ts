import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipeGraph, type FdRef, type ProcNode } from './pipe-graph.ts';
import { parseSsSockets, parseSsUnix } from './pipe-graph-read.ts';

// The resolver on synthetic /proc facts: the wirings of real reverse shells beside the
// pipelines and supervisors that must not look like them.

const pipe = (fd: number, ino: number, end: 'r' | 'w'): FdRef => ({ fd, obj: `p:pipefs:${ino}`, kind: 'pipe', label: `pipe:[${ino}]`, read: end === 'r', write: end === 'w' });
const fifo = (fd: number, ino: number, end: 'r' | 'w' | 'rw'): FdRef => ({ fd, obj: `p:64:${ino}`, kind: 'fifo', label: '/tmp/f', read: end !== 'w', write: end !== 'r' });
const inet = (fd: number, ino: number): FdRef => ({ fd, obj: `s:${ino}`, kind: 'inet', label: `inet:[${ino}]`, read: true, write: true });
const unix = (fd: number, ino: number): FdRef => ({ fd, obj: `s:${ino}`, kind: 'unix', label: `socket:[${ino}]`, read: true, write: true });
const pty = (fd: number, n: number, side: 'tm' | 'ts'): FdRef => ({ fd, obj: `${side}:${n}`, kind: 'pty', label: side === 'tm' ? `ptmx(${n})` : `/dev/pts/${n}`, read: true, write: true });

// bwrap (1) → praetor-init (2) → the agent's command (3 …); init holds every command's stdio.
const base = (): ProcNode[] => [
  { pid: 1, ppid: 0, comm: 'bwrap', fds: [], start: 1 },
  { pid: 2, ppid: 1, comm: '.praetor-init', exeName: '.praetor-init', start: 2, fds: [pipe(5, 900, 'w'), pipe(6, 901, 'r'), pipe(7, 902, 'r'), unix(3, 999)] },
  { pid: 3, ppid: 2, comm: 'sh', start: 3, fds: [pipe(0, 900, 'r'), pipe(1, 901, 'w'), pipe(2, 902, 'w')] },
];
const net = (outbound: Record<number, string>, unixPeer: Record<number, number> = {}) => ({
  outbound: new Map(Object.entries(outbound).map(([k, v]) => [Number(k), v])),
  unixPeer: new Map(Object.entries(unixPeer).map(([k, v]) => [Number(k), v])),
});

test('FIFO loop: sh -i <f 2>&1 | openssl s_client >f is a pipeline loop to one host', () => {
  const g = new PipeGraph([...base(),
    { pid: 10, ppid: 3, comm: 'sh', fds: [fifo(0, 77, 'r'), pipe(1, 50, 'w'), pipe(2, 50, 'w')], start: 10 },
    { pid: 11, ppid: 3, comm: 'openssl', fds: [pipe(0, 50, 'r'), fifo(1, 77, 'w'), pipe(2, 902, 'w'), inet(3, 4000)], start: 10 },
  ], net({ 4000: '203.0.113.50:443' }));
  const r = g.reach(10);
  assert.equal(r.inVia, 'pipeline');
  assert.equal(r.outVia, 'pipeline');
  assert.equal(r.sameHost, true);
  assert.deepEqual(r.peers, ['203.0.113.50:443']);
  assert.match(r.chain[0]!, /fd0 < \/tmp\/f < openssl\[11\] \(fd1\) < 203\.0\.113\.50:443/);
  // The relay itself is not a process whose stdio is fed by *another* socket holder.
  assert.equal(g.reach(11).inVia, 'none');
});

test('two hops: cat f | sh -i | nc h p >f (cat reads the FIFO on fd 3)', () => {
  const g = new PipeGraph([...base(),
    { pid: 20, ppid: 3, comm: 'cat', fds: [pipe(0, 900, 'r'), pipe(1, 60, 'w'), fifo(3, 78, 'r')] },
    { pid: 21, ppid: 3, comm: 'sh', fds: [pipe(0, 60, 'r'), pipe(1, 61, 'w'), pipe(2, 61, 'w')] },
    { pid: 22, ppid: 3, comm: 'x', fds: [pipe(0, 61, 'r'), fifo(1, 78, 'w'), inet(3, 4001)] },
  ], net({ 4001: '198.51.100.7:4444' }));
  const r = g.reach(21);
  assert.deepEqual([r.inVia, r.outVia, r.sameHost], ['pipeline', 'pipeline', true]);
  assert.match(r.chain[0]!, /cat\[20\].*x\[22\]/);
});

test('socketpair stdio: a node relay spawning sh reaches it on fds >= 3 (supervisor)', () => {
  const g = new PipeGraph([...base(),
    { pid: 30, ppid: 3, comm: 'node', fds: [pipe(0, 900, 'r'), pipe(1, 901, 'w'), unix(17, 501), unix(18, 503), inet(20, 4002)] },
    { pid: 31, ppid: 30, comm: 'sh', fds: [unix(0, 502), unix(1, 504), unix(2, 504)] },
  ], net({ 4002: '203.0.113.50:9001' }, { 501: 502, 502: 501, 503: 504, 504: 503 }));
  const r = g.reach(31);
  assert.deepEqual([r.inVia, r.outVia], ['supervisor', 'supervisor']);
});

test('without the unix peer table a socketpair leads nowhere (no guessing)', () => {
  const g = new PipeGraph([...base(),
    { pid: 30, ppid: 3, comm: 'node', fds: [unix(17, 501), inet(20, 4002)] },
    { pid: 31, ppid: 30, comm: 'sh', fds: [unix(0, 502), unix(1, 502)] },
  ], net({ 4002: '203.0.113.50:9001' }));
  assert.deepEqual([g.reach(31).inVia, g.reach(31).outVia], ['none', 'none']);
});

test('pty: a relay holding the master; the shell\'s own children on the slave do not count', () => {
  const g = new PipeGraph([...base(),
    { pid: 40, ppid: 3, comm: 'relay', fds: [pipe(0, 900, 'r'), pty(5, 3, 'tm'), inet(6, 4003)] },
    { pid: 41, ppid: 40, comm: 'bash', fds: [pty(0, 3, 'ts'), pty(1, 3, 'ts'), pty(2, 3, 'ts')] },
    // curl run from that shell: on the same slave, with its own outbound socket.
    { pid: 42, ppid: 41, comm: 'curl', fds: [pty(0, 3, 'ts'), pty(1, 3, 'ts'), pty(2, 3, 'ts'), inet(3, 4004)] },
  ], net({ 4003: '203.0.113.50:4444', 4004: '203.0.113.10:443' }));
  const r = g.reach(41);
  assert.deepEqual([r.inVia, r.outVia, r.sameHost], ['supervisor', 'supervisor', true]);
  assert.deepEqual(r.peers, ['203.0.113.50:4444']);
});

test('benign: ls | grep, and a local client/server over a FIFO, reach nothing', () => {
  const g = new PipeGraph([...base(),
    { pid: 50, ppid: 3, comm: 'ls', fds: [pipe(0, 900, 'r'), pipe(1, 70, 'w'), pipe(2, 902, 'w')] },
    { pid: 51, ppid: 3, comm: 'grep', fds: [pipe(0, 70, 'r'), pipe(1, 901, 'w'), pipe(2, 902, 'w')] },
    { pid: 52, ppid: 3, comm: 'sh', fds: [fifo(0, 80, 'r'), pipe(1, 901, 'w')] },
    { pid: 53, ppid: 3, comm: 'python3', fds: [pipe(0, 900, 'r'), fifo(1, 80, 'w')] },
  ], net({}));
  for (const pid of [50, 51, 52, 53]) assert.deepEqual([g.reach(pid).inVia, g.reach(pid).outVia], ['none', 'none'], String(pid));
});

test('benign: curl | sh is fed by the network but writes to the terminal; init is never a relay', () => {
  // curl's stderr and sh's stdout both go to init, and init holds an unrelated connection's
  // pipe too: traversing init would make every process reach every other.
  const g = new PipeGraph([...base(),
    { pid: 60, ppid: 3, comm: 'curl', fds: [pipe(0, 900, 'r'), pipe(1, 71, 'w'), pipe(2, 902, 'w'), inet(3, 4005)] },
    { pid: 61, ppid: 3, comm: 'sh', fds: [pipe(0, 71, 'r'), pipe(1, 901, 'w'), pipe(2, 902, 'w')] },
    { pid: 62, ppid: 3, comm: 'nc', fds: [pipe(0, 901, 'r'), inet(3, 4006)] },
  ].map((p) => (p.pid === 2 ? { ...p, fds: [...p.fds, pipe(8, 901, 'r')] } : p)), net({ 4005: '203.0.113.10:443', 4006: '203.0.113.9:80' }));
  const r = g.reach(61);
  assert.equal(r.inVia, 'pipeline');
  // sh's stdout pipe 901 is also read by nc: that is a real output path, found directly.
  assert.equal(r.outVia, 'pipeline');
  assert.equal(r.sameHost, false);
  // Without nc, init is the only reader and is not traversed.
  const g2 = new PipeGraph([...base(),
    { pid: 60, ppid: 3, comm: 'curl', fds: [pipe(1, 71, 'w'), inet(3, 4005)] },
    { pid: 61, ppid: 3, comm: 'sh', fds: [pipe(0, 71, 'r'), pipe(1, 901, 'w')] },
    { pid: 63, ppid: 3, comm: 'python3', fds: [pipe(0, 902, 'w'), inet(4, 4006)] },
  ], net({ 4005: '203.0.113.10:443', 4006: '203.0.113.9:80' }));
  assert.equal(g2.reach(61).outVia, 'none');
});

test('a copy of nc named .praetor-init, orphaned to pid 1, is still a relay', () => {
  const g = new PipeGraph([...base(),
    { pid: 70, ppid: 1, comm: '.praetor-init', exeName: '.praetor-init', start: 99, fds: [pipe(0, 90, 'r'), fifo(1, 91, 'w'), inet(3, 4007)] },
    { pid: 71, ppid: 3, comm: 'sh', start: 98, fds: [fifo(0, 91, 'r'), pipe(1, 90, 'w')] },
  ], net({ 4007: '203.0.113.50:443' }));
  assert.deepEqual([g.reach(71).inVia, g.reach(71).outVia], ['pipeline', 'pipeline']);
});

test('direct: a shell whose fds are the socket (nc -e)', () => {
  const g = new PipeGraph([...base(), { pid: 80, ppid: 3, comm: 'sh', fds: [inet(0, 4008), inet(1, 4008), inet(2, 4008)] }], net({ 4008: '203.0.113.50:4444' }));
  assert.deepEqual([g.reach(80).inVia, g.reach(80).outVia, g.reach(80).sameHost], ['direct', 'direct', true]);
});

test('ss -x output parses to inode → peer', () => {
  const m = parseSsUnix('u_str ESTAB 0      0      * 36872 * 36871\nu_str LISTEN 0 4096 /run/x.sock 1200 * 0\nu_dgr UNCONN 0 0 @abstract 55 * 0\n');
  assert.deepEqual([...m], [[36872, 36871]]);
});

test('ss -tuxaneH output: inet inodes, outbound peers (no loopback, no listeners), unix peers', () => {
  const n = parseSsSockets([
    'udp   ESTAB  0      0      192.0.2.2:41642  203.0.113.9:53     ino:662082 sk:1042 cgroup:/ <->',
    'tcp   ESTAB  0      0      127.0.0.1:46518    127.0.0.1:38389  ino:662084 sk:1045 cgroup:/ <->',
    'tcp   ESTAB  0      0          [::1]:42980        [::1]:35639  ino:662086 sk:1047 cgroup:/ <->',
    'tcp   LISTEN 0      128    0.0.0.0:2024   0.0.0.0:*      ino:37 sk:1041 cgroup:/ <->',
    'tcp   ESTAB  0      0      [::ffff:10.0.0.2]:5000 [::ffff:203.0.113.50]:443 ino:700 sk:1 <->',
    'tcp   SYN-SENT 0    1      10.0.0.2:5001 198.51.100.7:4444 uid:1000 ino:701 sk:2 <->',
    'udp   UNCONN 0      0      0.0.0.0:68 0.0.0.0:* ino:702 sk:3 <->',
    'u_str ESTAB  0      0            * 658701       * 658700 <->',
  ].join('\n'));
  assert.deepEqual([...n.inet].sort(), [37, 662082, 662084, 662086, 700, 701, 702].sort());
  assert.deepEqual([...n.outbound].sort(), [[662082, '203.0.113.9:53'], [700, '203.0.113.50:443'], [701, '198.51.100.7:4444']]);
  assert.deepEqual([...n.unixPeer], [[658701, 658700]]);
});

test('git over ssh: the GIT_SSH_COMMAND wrapper sh shares its stdio with its ssh child; git relays both ways, and that is no loop', () => {
  // git (40) writes ssh's stdin (pipe 70) and reads its stdout (pipe 71); `sh -c 'ssh …'` (41)
  // holds those same ends as fd 0/1, and so does its child ssh (42), the socket holder.
  const g = new PipeGraph([...base(),
    { pid: 40, ppid: 3, comm: 'git', fds: [pipe(0, 900, 'r'), pipe(1, 901, 'w'), pipe(2, 902, 'w'), pipe(5, 70, 'w'), pipe(6, 71, 'r')], start: 40 },
    { pid: 41, ppid: 40, comm: 'sh', fds: [pipe(0, 70, 'r'), pipe(1, 71, 'w'), pipe(2, 902, 'w')], start: 41 },
    { pid: 42, ppid: 41, comm: 'ssh', fds: [pipe(0, 70, 'r'), pipe(1, 71, 'w'), pipe(2, 902, 'w'), inet(3, 4100)], start: 42 },
  ], net({ 4100: '203.0.113.30:22' }));
  const r = g.reach(41);
  assert.deepEqual([r.inVia, r.outVia], ['none', 'none'], JSON.stringify(r));
  // The same relay shape with the shell as a sibling that does not share ssh's stream is a loop.
  const loop = new PipeGraph([...base(),
    { pid: 50, ppid: 3, comm: 'cat', fds: [pipe(0, 80, 'r'), pipe(1, 81, 'w'), pipe(5, 82, 'w'), pipe(6, 83, 'r')], start: 50 },
    { pid: 51, ppid: 3, comm: 'sh', fds: [pipe(0, 81, 'r'), pipe(1, 80, 'w'), pipe(2, 80, 'w')], start: 51 },
    { pid: 52, ppid: 3, comm: 'x', fds: [pipe(0, 82, 'r'), pipe(1, 83, 'w'), inet(3, 4101)], start: 52 },
  ], net({ 4101: '203.0.113.50:4444' }));
  const l = loop.reach(51);
  assert.deepEqual([l.inVia, l.outVia, l.sameHost], ['pipeline', 'pipeline', true], JSON.stringify(l));
});
