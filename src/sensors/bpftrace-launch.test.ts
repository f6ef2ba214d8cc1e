// The trimmed tracepoint list bpftrace reads in its own mount namespace (bpftrace-launch.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bpftraceSpawn, scriptTracepoints, writeTrimmedEvents } from './bpftrace-launch.ts';
import { DENIED_SYSCALLS, defaultScriptOptions, generateScript } from './ebpf-script.ts';

test('every tracepoint the generated script attaches to is listed, multi-attach probes included', () => {
  const o = defaultScriptOptions('tok', '6.1.0');
  o.openSyscalls = ['openat', 'open'];
  o.deniedSyscalls = DENIED_SYSCALLS.slice(0, 3);
  const tps = scriptTracepoints(generateScript(o));
  for (const t of ['sched:sched_process_exec', 'sched:sched_process_exit', 'syscalls:sys_enter_connect', 'syscalls:sys_exit_openat', 'syscalls:sys_enter_open',
    ...DENIED_SYSCALLS.slice(0, 3).map((s) => `syscalls:sys_exit_${s}`)]) assert.ok(tps.includes(t), t);
  assert.equal(new Set(tps).size, tps.length);
});

test('the trimmed list keeps only the real list\'s lines the script uses: a tracepoint missing here stays missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-launch-'));
  try {
    writeFileSync(join(dir, 'available_events'), 'sched:sched_process_exec\nsyscalls:sys_enter_openat\nnet:other\n');
    const out = mkdtempSync(join(dir, 'o-'));
    const f = writeTrimmedEvents(dir, 'tracepoint:sched:sched_process_exec { }\ntracepoint:syscalls:sys_exit_bpf,\ntracepoint:syscalls:sys_enter_openat { }', out);
    assert.equal(readFileSync(f!, 'utf8'), 'sched:sched_process_exec\nsyscalls:sys_enter_openat\n');
    assert.equal(writeTrimmedEvents(join(dir, 'nope'), 'x', out), undefined, 'no real list: bpftrace reads the real one');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('bpftrace is exec\'d (the pid Node holds is its own) with or without the namespace', () => {
  const plain = bpftraceSpawn({ bin: '/usr/bin/bpftrace', args: ['-B', 'line', 's.bt'], tracefs: '/sys/kernel/tracing' });
  assert.deepEqual(plain.args.slice(2), ['/usr/bin/bpftrace', '-B', 'line', 's.bt']);
  assert.match(plain.args[1]!, /exec setpriv --pdeathsig KILL "\$0" "\$@"/);
  const ns = bpftraceSpawn({ bin: '/usr/bin/bpftrace', args: ['s.bt'], tracefs: '/sys/kernel/tracing', events: '/tmp/x/available_events' });
  if (ns.env.PRAETOR_EVENTS) {
    assert.match(ns.args[1]!, /exec \S*unshare --mount --propagation private \/bin\/sh -c "\$PRAETOR_INNER" "\$0" "\$@"/);
    assert.match(ns.args[1]!, /PRAETOR_EVENTS= exec \/bin\/sh/, 'no namespace allowed here: the plain start');
  }
});
