// kernel_kill: which part of a rule the kernel may enforce. The set must be implied by the
// condition (the kernel never kills what the user-space rule would let run).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileItems } from './compile-rules.ts';
import { loadRuleText, type Diagnostic } from './loader.ts';
import { loadRules } from './load.ts';

function compile(text: string): { diags: Diagnostic[]; rules: ReturnType<typeof compileItems>['rules'] } {
  const diags: Diagnostic[] = [];
  const rs = compileItems(loadRuleText('r.yaml', text, diags), diags);
  return { diags, rules: rs.rules };
}
const rule = (condition: string, extra = '', tags = '[maturity_stable]', actions = '[kill-tree]') => `- list: bad
  items: [xmrig, minerd, a-name-longer-than-15]
- macro: allow
  condition: 'false'
- rule: r
  desc: d
  condition: ${condition}
  output: o
  priority: CRITICAL
  tags: ${tags}
  actions: ${actions}
  kernel_kill: true
${extra}`;

test('the shipped miner and tunnel rules kill their name sets in the kernel', async () => {
  const rs = await loadRules();
  const miner = rs.rules.find((r) => r.name === 'Crypto miner binary executed');
  assert.ok(miner?.kernelKill?.comms.includes('xmrig'), JSON.stringify(miner?.kernelKill));
  assert.ok(miner?.kernelKill?.comms.every((c) => c.length <= 15));
  assert.ok(rs.rules.find((r) => r.name === 'Tunnel tool executed')?.kernelKill?.comms.includes('chisel'));
  // Rules without the flag never kill in the kernel.
  assert.equal(rs.rules.find((r) => r.name === 'Crypto miner flags on command line')?.kernelKill, undefined);
});

test('name set from proc.name; the exe-name half and over-long names are left to user space', () => {
  const { diags, rules } = compile(rule('evt.kind = process.exec and (proc.name in (bad) or proc.exe_name in (bad)) and not allow'));
  assert.deepEqual(diags.filter((d) => d.severity === 'error'), []);
  assert.deepEqual(rules[0]?.kernelKill?.comms, ['minerd', 'xmrig']);
});

test('and intersects, or unions, a regex or a negation adds nothing', () => {
  assert.deepEqual(compile(rule('evt.kind = process.exec and proc.name in (bad) and proc.name in (xmrig, other)')).rules[0]?.kernelKill?.comms, ['xmrig']);
  assert.deepEqual(compile(rule('evt.kind = process.exec and (proc.name = xmrig or proc.cmdline matches "x+")')).rules[0]?.kernelKill?.comms, ['xmrig']);
  // `not proc.name in (…)` would be a kill-everything-else set: refused, user space decides.
  const neg = compile(rule('evt.kind = process.exec and not proc.name in (bad)'));
  assert.equal(neg.rules[0]?.kernelKill, undefined);
  assert.ok(neg.diags.some((d) => d.severity === 'warning' && /kernel_kill is off/.test(d.message)), JSON.stringify(neg.diags));
});

test('proc.stdio_net = true is a second kernel test: the names die only with network stdio; mixed or keeps the sound side', async () => {
  const shell = compile(rule('evt.kind = process.exec and proc.name in (bad) and proc.stdio_net = true'));
  assert.deepEqual(shell.rules[0]?.kernelKill, { comms: ['minerd', 'xmrig'], stdioNet: true });
  // xmrig alone kills without the test; minerd only with it: one set cannot say both, so the
  // side that needs no test is kept (what it kills, the condition kills).
  assert.deepEqual(compile(rule('evt.kind = process.exec and (proc.name = xmrig or (proc.name = minerd and proc.stdio_net = true))')).rules[0]?.kernelKill, { comms: ['xmrig'] });
  assert.equal(compile(rule('evt.kind = process.exec and proc.stdio_net = true')).rules[0]?.kernelKill, undefined, 'every process with network stdio: refused');
  const rs = await loadRules();
  const rev = rs.rules.find((r) => r.name === 'Shell or interpreter with network stdio')?.kernelKill;
  assert.ok(rev?.stdioNet && rev.comms.includes('sh') && rev.comms.includes('python3'), JSON.stringify(rev));
});

test('an allow-list a user extended turns the kernel part off (warning), never kills the allowed', () => {
  const { diags, rules } = compile(rule('evt.kind = process.exec and proc.name in (bad) and not allow', `- macro: allow
  condition: or evt.sandbox = sb-0123456789ab
  append: true
`));
  assert.equal(rules[0]?.kernelKill, undefined);
  assert.ok(diags.some((d) => d.severity === 'warning' && /kernel_kill/.test(d.message)));
});

test('kernel_kill needs a stable rule with a kill action, and no window', () => {
  const noKill = compile(rule('evt.kind = process.exec and proc.name in (bad)', '', '[maturity_stable]', '[alert]'));
  assert.ok(noKill.diags.some((d) => d.severity === 'error' && /needs a kill/.test(d.message)), JSON.stringify(noKill.diags));
  const incubating = compile(rule('evt.kind = process.exec and proc.name in (bad)', '', '[maturity_incubating]'));
  assert.equal(incubating.rules[0]?.kernelKill, undefined);
  assert.ok(!incubating.diags.some((d) => d.severity === 'error' && /kernel_kill/.test(d.message)));
  const windowed = compile(rule('evt.kind = process.exec and proc.name in (bad)', '  window: { count: 3, within: 10s }\n'));
  assert.ok(windowed.diags.some((d) => d.severity === 'error' && /windowed/.test(d.message)), JSON.stringify(windowed.diags));
});

test('an override can turn kernel_kill off for a shipped rule', () => {
  const { diags, rules } = compile(rule('evt.kind = process.exec and proc.name in (bad)', `- rule: r
  kernel_kill: false
  override: { kernel_kill: replace }
`));
  assert.deepEqual(diags.filter((d) => d.severity === 'error'), []);
  assert.equal(rules[0]?.kernelKill, undefined);
});
