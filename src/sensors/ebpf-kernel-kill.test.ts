// The kernel-kill program as generated text, and its K records joined to the exec they killed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineAssembler, type KernelRecord } from './ebpf-parse.ts';
import { defaultScriptOptions, generateScript } from './ebpf-script.ts';
import { KernelKillTable, type KillMaps } from './kernel-kill-table.ts';

const hx = (b: Buffer | string): string => [...Buffer.from(b)].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('');
const comm = (s: string): string => hx(Buffer.concat([Buffer.from(s), Buffer.alloc(16 - s.length)]));

test('no kill program unless asked; with it, one program first on the exec tracepoint, inside the sandbox guard, driven by maps', () => {
  const o = defaultScriptOptions('tok', '6.1.0');
  assert.doesNotMatch(generateScript(o), /signal\(/);
  o.kernelKill = true;
  o.kernelFilter = false;
  assert.doesNotMatch(generateScript(o), /signal\(/, 'no kill without the in-kernel sandbox filter');
  o.kernelFilter = true;
  o.cgroupRmdir = true;
  o.waitSyscalls = ['wait4', 'waitid'];
  const s = generateScript(o);
  const programs = s.split('\n\n');
  const first = programs.findIndex((p) => p.startsWith('tracepoint:sched:sched_process_exec'));
  assert.match(programs[first]!, /signal\("SIGKILL"\)/, 'the kill program precedes the exec record programs');
  assert.match(programs[first]!, /strncmp\(str\(\$top->name, 8\), "praetor", 7\)/, 'only sandbox cgroups');
  assert.match(programs[first]!, /\$kp = @kp\[\$sb\];/, 'the sandbox must be armed');
  assert.match(programs[first]!, /\$kr = @kc\[\$kp, comm\];/, 'with this name in its profile');
  assert.match(s, /BEGIN \{ @si\[\(uint64\)0\] = 0; delete\(@si\[\(uint64\)0\]\); @kp\[\(uint64\)0\] = 0; delete\(@kp\[\(uint64\)0\]\); @kc\[\(uint64\)0, comm\] = 0; delete/, 'the maps get their types before READY');
  assert.match(s, /cgroup_rmdir[^\n]*delete\(@kp\[args->id\]\)/, 'a removed sandbox is disarmed in the kernel too');
  assert.equal((s.match(/signal\(/g) ?? []).length, 3, 'SIGKILL, and SIGSTOP of the parent at wait4/waitid');
});

test('the kill table: one profile per rule set, names as kernel comms, rule indexes for the K record, refusals in words', () => {
  const writes: string[] = [];
  let full = false;
  const maps: KillMaps = {
    update: (name, key, value) => {
      if (full && name === 'kp') return -7;
      writes.push(`${name} ${key.subarray(0, 8).readBigUInt64LE()} ${key.subarray(8).toString('latin1').replace(/\0+$/, '')} = ${value.readBigUInt64LE()}`);
      return 0;
    },
    delete: (name, key) => { writes.push(`del ${name} ${key.readBigUInt64LE()}`); },
  };
  const t = new KernelKillTable(maps);
  const rules = [{ rule: 'miner', comms: ['xmrig', 'minerd', 'x'.repeat(16)] }, { rule: 'tunnel', comms: ['chisel', 'xmrig'] }];
  assert.equal(t.set(100n, rules), undefined);
  assert.deepEqual(writes, ['kc 1 xmrig = 1', 'kc 1 minerd = 1', 'kc 1 chisel = 2', 'kp 100  = 1'], 'a name longer than a comm can never match; the first rule keeps a shared name');
  writes.length = 0;
  assert.equal(t.set(101n, rules), undefined);
  assert.deepEqual(writes, ['kp 101  = 1'], 'the same rules share the profile');
  assert.deepEqual(t.ruleNames, ['miner', 'tunnel']);
  writes.length = 0;
  assert.equal(t.set(102n, [{ rule: 'miner', comms: ['xmrig'] }]), undefined);
  assert.deepEqual(writes, ['kc 2 xmrig = 3', 'kp 102  = 2'], 'other rules, another profile');
  writes.length = 0;
  assert.equal(t.set(103n, []), undefined);
  assert.deepEqual(writes, ['del kp 103'], 'no rules: disarmed');
  full = true;
  assert.match(t.set(104n, rules) ?? '', /sandbox cgroup 104 .*map is full/);
});

test('a K record marks the exec it killed', () => {
  const a = new LineAssembler('tok', 3072);
  const argv = Buffer.from('./xmrig\0--version\0');
  const out: KernelRecord[] = [];
  out.push(...a.push('tok K 999 42 76 0', 0));
  out.push(...a.push(`tok X 1000 42 41 1000 77 76 ${argv.length} 4096 1 4096 2 4096 3 ${comm('xmrig')} ${comm('sh')}`, 0));
  out.push(...a.push(`tok A 42 0 ${hx(argv)}`, 0));
  out.push(...a.push('tok F 42 ./xmrig', 0));
  out.push(...a.push('tok READY', 0));
  const ex = out.find((r) => r.type === 'exec');
  assert.ok(ex && ex.type === 'exec');
  assert.deepEqual(ex.kernelKill, { rule: 0, ktimeNs: 999n });
  const b = new LineAssembler('tok', 3072);
  const plain = [...b.push(`tok X 1000 43 41 1000 77 76 ${argv.length} 4096 1 4096 2 4096 3 ${comm('xmrig')} ${comm('sh')}`, 0), ...b.push(`tok A 43 0 ${hx(argv)}`, 0), ...b.push('tok F 43 ./xmrig', 0), ...b.push('tok READY', 0)];
  const ex2 = plain.find((r) => r.type === 'exec');
  assert.ok(ex2 && ex2.type === 'exec' && ex2.kernelKill === undefined);
});

test('a K record of a network-stdio kill carries the socket: its inode and peer, IPv4 and IPv6', () => {
  const a = new LineAssembler('tok', 3072);
  // 203.0.113.50:4444 as the kernel holds it: port and address in network byte order, read as
  // little-endian integers by printf.
  const port = Buffer.from([0x11, 0x5c]).readUInt16LE(0);
  const addr = Buffer.from([203, 0, 113, 50]).readUInt32LE(0);
  a.push(`tok K 999 42 76 1 5555 2 ${port} ${addr} ${hx(Buffer.alloc(16))}`, 0);
  const argv = Buffer.from('sh\0');
  const out = [...a.push(`tok X 1000 42 41 1000 77 76 ${argv.length} 49152 5555 49152 5555 49152 5555 ${comm('sh')} ${comm('python3')}`, 0), ...a.push(`tok A 42 0 ${hx(argv)}`, 0), ...a.push('tok F 42 /bin/sh', 0), ...a.push('tok READY', 0)];
  const ex = out.find((r) => r.type === 'exec');
  assert.ok(ex && ex.type === 'exec');
  assert.deepEqual(ex.kernelKill, { rule: 1, ktimeNs: 999n, socket: { ino: 5555, peer: '203.0.113.50:4444' } });
  const v6 = Buffer.alloc(16); v6[0] = 0x20; v6[1] = 0x01; v6[2] = 0x0d; v6[3] = 0xb8; v6[15] = 1;
  a.push(`tok K 999 43 76 1 6666 10 ${port} 0 ${hx(v6)}`, 0);
  const out6 = [...a.push(`tok X 1000 43 41 1000 77 76 ${argv.length} 49152 6666 49152 6666 49152 6666 ${comm('sh')} ${comm('python3')}`, 0), ...a.push(`tok A 43 0 ${hx(argv)}`, 0), ...a.push('tok F 43 /bin/sh', 0), ...a.push('tok READY', 0)];
  const ex6 = out6.find((r) => r.type === 'exec');
  assert.ok(ex6 && ex6.type === 'exec');
  assert.equal(ex6.kernelKill?.socket?.peer, '[2001:db8::1]:4444');
});
