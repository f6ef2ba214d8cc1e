import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { parseNetDev, parseStat, ProcessCpuTracker } from './process-cpu.ts';

test('parseStat survives a comm with spaces and parentheses', () => {
  const s = parseStat('4242 (a) b (c) R 17 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 987654 1000 100 0 0');
  assert.deepEqual(s, { ppid: 17, comm: 'a) b (c', ticks: 300, start: '987654', threads: 3 });
});

test('parseNetDev sums every interface but lo', () => {
  const t = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999       9    0    0    0     0          0         0   999999       9    0    0    0     0       0          0
  eth0:    1000      10    0    0    0     0          0         0      234       3    0    0    0     0       0          0
`;
  assert.equal(parseNetDev(t), 1234);
});

test('a real busy process is reported saturated and named; an idle one is not', async () => {
  const busy = spawn('python3', ['-c', 'while True: pass'], { stdio: 'ignore' });
  const idle = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const tr = new ProcessCpuTracker({ pids: () => [busy.pid!, idle.pid!], cpuLimit: 0.05 });
    tr.sample();
    let last: ReturnType<ProcessCpuTracker['sample']> = [];
    for (let i = 0; i < 3; i++) { await new Promise((r) => setTimeout(r, 700)); last = tr.sample(); }
    assert.deepEqual(last.map((r) => r.pid), [busy.pid], JSON.stringify(last));
    assert.equal(last[0]!.comm, 'python3');
    assert.ok(last[0]!.saturatedMs >= 1500, JSON.stringify(last[0]));
    assert.equal(last[0]!.netConns, 0);
    assert.equal(last[0]!.topThread?.comm, 'python3');
  } finally {
    busy.kill('SIGKILL');
    idle.kill('SIGKILL');
  }
});

test('ss -tinHe output parses to socket inode → bytes sent + received', async () => {
  const { parseSsTcpInfo } = await import('./process-cpu-sockets.ts');
  const text = [
    '0      0      10.0.0.2:40000 203.0.113.10:80 ino:439929 sk:1001 cgroup:/ <->',
    '\t ts sack cubic wscale:10,10 rto:204 bytes_sent:1000 bytes_acked:1001 bytes_received:234 segs_out:3 lastsnd:20',
    'ESTAB 0 0 10.0.0.2:40002 203.0.113.20:3333 uid:1000 ino:5 sk:1 <->',
    '\t cubic bytes_sent:7 bytes_acked:8',
  ].join('\n');
  assert.deepEqual([...parseSsTcpInfo(text)], [[439929, { bytes: 1234, peer: '203.0.113.10:80' }], [5, { bytes: 7, peer: '203.0.113.20:3333' }]]);
});
