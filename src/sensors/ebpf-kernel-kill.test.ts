// The kernel-kill program as generated text, and its K records joined to the exec they killed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineAssembler, type KernelRecord } from './ebpf-parse.ts';
import { defaultScriptOptions, generateScript } from './ebpf-script.ts';

const hx = (b: Buffer | string): string => [...Buffer.from(b)].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('');
const comm = (s: string): string => hx(Buffer.concat([Buffer.from(s), Buffer.alloc(16 - s.length)]));

test('no kill program unless asked; with sets, one program first on the exec tracepoint, inside the sandbox guard', () => {
  const o = defaultScriptOptions('tok', '6.1.0');
  assert.doesNotMatch(generateScript(o), /signal\(/);
  o.kernelKill = [{ comms: ['xmrig', 'minerd'] }, { comms: ['chisel', 'bad"name', 'x'.repeat(16)] }];
  assert.doesNotMatch(generateScript(o), /signal\(/, 'no kill without the instance\'s own cgroup group');
  o.kernelKillGroup = 'praetor-1a2b3c4d';
  const s = generateScript(o);
  assert.match(s, /strncmp\(str\(\$top->name, 17\), "praetor-1a2b3c4d", 17\) == 0/, 'only this instance\'s sandboxes');
  const programs = s.split('\n\n');
  const first = programs.findIndex((p) => p.startsWith('tracepoint:sched:sched_process_exec'));
  assert.match(programs[first]!, /signal\("SIGKILL"\)/, 'the kill program precedes the exec record programs');
  assert.match(programs[first]!, /strncmp\(str\(\$top->name, 8\), "praetor", 7\)/, 'only sandbox cgroups');
  assert.match(programs[first]!, /comm == "xmrig" \|\| comm == "minerd"/);
  assert.match(programs[first]!, /comm == "chisel"/);
  assert.doesNotMatch(s, /bad"name|x{16}/, 'names that are no comm never become program text');
  assert.equal((s.match(/signal\(/g) ?? []).length, 2);
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
