import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBus } from '../events/bus.ts';
import type { PraetorEvent } from '../events/schema.ts';
import { compileItems } from './compile-rules.ts';
import { createRuleEngine, RULE_FAILURE, type AlertEvent } from './engine.ts';
import { loadRuleText, type Diagnostic } from './loader.ts';

function ruleset(yaml: string) {
  const diags: Diagnostic[] = [];
  const rs = compileItems(loadRuleText('t.yaml', yaml, diags), diags);
  assert.deepEqual(diags.filter((d) => d.severity === 'error'), []);
  return rs;
}

let seq = 0;
const conn = (port: number, tsMs: number, sandboxId = 'sb-a', ip = '10.0.0.1'): PraetorEvent =>
  ({ kind: 'net.connect', id: `c${++seq}`, ts: tsMs * 1e6, sandboxId, family: 'inet', dstIp: ip, dstPort: port, sensor: 'ebpf' });
const exec = (argv: string[], tsMs = 0, extra: object = {}): PraetorEvent =>
  ({ kind: 'process.exec', id: `x${++seq}`, ts: tsMs * 1e6, sandboxId: 'sb-a', argv, path: argv[0] ?? '', comm: argv[0] ?? '', sensor: 'ebpf', ...extra }) as PraetorEvent;

const SWEEP = `
- rule: sweep
  desc: d
  condition: evt.kind = net.connect
  output: sweep of %fd.sip
  priority: CRITICAL
  tags: [maturity_stable, T1046]
  actions: [isolate]
  window: { distinct: fd.sport, count: 3, within: 1s, by: [fd.sip] }
`;

test('distinct window fires at N distinct values within the window, per sandbox, then resets', () => {
  const e = createRuleEngine({ rules: ruleset(SWEEP) });
  assert.equal(e.process(conn(1, 0)).length, 0);
  assert.equal(e.process(conn(1, 10)).length, 0, 'a repeated port is not distinct');
  assert.equal(e.process(conn(2, 20, 'sb-b')).length, 0, 'another sandbox has its own window');
  assert.equal(e.process(conn(2, 30)).length, 0);
  const [a] = e.process(conn(3, 40));
  assert.ok(a);
  assert.equal(a.rule, 'sweep');
  assert.equal(a.output, 'sweep of 10.0.0.1');
  assert.deepEqual(a.actions, ['alert', 'isolate']);
  assert.equal(a.evidence.length, 3);
  assert.equal(e.process(conn(4, 50)).length, 0, 'state resets after firing');
});

test('distinct window expires old values', () => {
  const e = createRuleEngine({ rules: ruleset(SWEEP) });
  e.process(conn(1, 0));
  e.process(conn(2, 100));
  assert.equal(e.process(conn(3, 1500)).length, 0, 'ports 1 and 2 fell out of the 1 s window');
});

test('window memory is bounded per rule', () => {
  const e = createRuleEngine({ rules: ruleset(SWEEP), maxKeysPerRule: 50 });
  for (let i = 0; i < 5000; i++) e.process(conn(1, i, `sb-${i}`, `10.0.${i % 250}.${i % 7}`));
  assert.ok(e.stats().windowKeys <= 50, `keys ${e.stats().windowKeys}`);
});

test('for-window needs the condition to hold on every sample for the duration', () => {
  const rs = ruleset(`
- rule: hot
  desc: d
  condition: evt.kind = resource.sample and res.cpu_pct >= 90
  output: hot
  priority: WARNING
  tags: [maturity_incubating]
  window: { for: 10s }
`);
  const e = createRuleEngine({ rules: rs });
  const s = (pct: number, sec: number): PraetorEvent => ({ kind: 'resource.sample', id: `r${++seq}`, ts: sec * 1e9, sandboxId: 'sb-a', cpuPct: pct, cpuLimitPct: 100, memBytes: 0, memLimitBytes: null, pids: 1, saturatedMs: 0 });
  assert.equal(e.process(s(95, 0)).length + e.process(s(95, 5)).length, 0);
  assert.equal(e.process(s(10, 6)).length, 0, 'a cool sample resets');
  assert.equal(e.process(s(95, 7)).length + e.process(s(95, 16)).length, 0);
  assert.equal(e.process(s(95, 17)).length, 1);
});

test('after-window and throttle', () => {
  const rs = ruleset(`
- rule: after-tmp
  desc: d
  condition: evt.kind = net.connect
  output: o
  priority: WARNING
  tags: [maturity_incubating]
  window: { after: "evt.kind = process.exec and proc.exe startswith /tmp/", within: 1m }
  throttle: 10s
`);
  const e = createRuleEngine({ rules: rs });
  assert.equal(e.process(conn(1, 0)).length, 0, 'no earlier /tmp exec');
  e.process(exec(['/tmp/x'], 1000));
  const [a] = e.process(conn(1, 2000));
  assert.equal(a?.evidence.length, 2);
  assert.equal(e.process(conn(1, 3000)).length, 0, 'throttled');
  assert.equal(e.process(conn(1, 13000)).length, 1, 'throttle over');
  assert.equal(e.process(conn(1, 200000)).length, 0, 'prior event too old');
});

test('after-window: an event matching both `after` and the condition does not pair with itself', () => {
  const rs = ruleset(`
- rule: tmp-after-tmp
  desc: d
  condition: evt.kind = process.exec and proc.exe startswith /tmp/
  output: o
  priority: WARNING
  tags: [maturity_incubating]
  window: { after: "evt.kind = process.exec and proc.exe startswith /tmp/", within: 1m }
`);
  const e = createRuleEngine({ rules: rs });
  const first = exec(['/tmp/a'], 1000);
  assert.deepEqual(e.process(first), [], 'the first /tmp exec has no earlier one');
  const second = exec(['/tmp/b'], 2000);
  const [a, ...rest] = e.process(second);
  assert.equal(rest.length, 0);
  assert.deepEqual(a?.evidence, [first.id, second.id], 'pairs with the earlier event, not itself');
  const third = exec(['/tmp/c'], 3000);
  assert.deepEqual(e.process(third)[0]?.evidence, [second.id, third.id], 'each event becomes the earlier one for the next');
});

const KILL = (maturity: string) => `
- rule: nc
  desc: d
  condition: evt.kind = process.exec and proc.name = nc
  output: nc %proc.cmdline
  priority: CRITICAL
  tags: [maturity_${maturity}]
  actions: [kill-tree, isolate]
`;

test('only stable rules contain; detect mode only alerts', () => {
  assert.deepEqual(createRuleEngine({ rules: ruleset(KILL('stable')) }).process(exec(['nc']))[0]?.actions, ['alert', 'kill-tree', 'isolate']);
  assert.deepEqual(createRuleEngine({ rules: ruleset(KILL('incubating')) }).process(exec(['nc']))[0]?.actions, ['alert']);
  assert.deepEqual(createRuleEngine({ rules: ruleset(KILL('stable')), mode: 'detect' }).process(exec(['nc']))[0]?.actions, ['alert']);
});

test('alerts carry envelope, evidence and timestamps; onAlert sees the trigger', () => {
  const seen: [AlertEvent, PraetorEvent][] = [];
  const e = createRuleEngine({ rules: ruleset(KILL('stable')), onAlert: (a, t) => seen.push([a, t]), now: () => 42 });
  const ev = exec(['nc', '-l'], 5, { episodeId: 'ep-1', step: 3, pid: 99, toolCallId: 'tc' });
  const [a] = e.process(ev);
  assert.ok(a);
  assert.equal(a.kind, 'alert');
  assert.match(a.id, /^al-/);
  assert.equal(a.ts, 42);
  assert.deepEqual([a.sandboxId, a.episodeId, a.step, a.pid, a.toolCallId], ['sb-a', 'ep-1', 3, 99, 'tc']);
  assert.deepEqual(a.evidence, [ev.id]);
  assert.equal(a.maturity, 'stable');
  assert.equal(seen[0]?.[1], ev);
});

test('fail closed: a rule that throws contains the sandbox and says why', () => {
  const e = createRuleEngine({ rules: ruleset(KILL('stable')) });
  const broken = { ...exec(['nc']), argv: undefined } as unknown as PraetorEvent; // cmdline render throws
  const [a] = e.process(broken);
  assert.equal(a?.rule, RULE_FAILURE);
  assert.deepEqual(a?.actions, ['alert', 'freeze', 'isolate']);
  assert.match(a?.output ?? '', /rule "nc" threw .* contained \(fail closed\)/);
  assert.equal(e.stats().ruleFailures, 1);
  const d = createRuleEngine({ rules: ruleset(KILL('stable')), mode: 'detect' });
  assert.deepEqual(d.process(broken)[0]?.actions, ['alert']);
});

test('attach publishes alerts on the bus and ignores its own output', () => {
  const bus = new EventBus();
  const got: AlertEvent[] = [];
  const e = createRuleEngine({ rules: ruleset(KILL('stable')), onAlert: (a) => got.push(a) });
  const kinds: string[] = [];
  bus.subscribe((ev) => kinds.push(ev.kind));
  const off = e.attach(bus);
  bus.publish({ kind: 'process.exec', sandboxId: 'sb-a', argv: ['nc'], path: '/bin/nc', comm: 'nc', sensor: 'ebpf' });
  assert.deepEqual(kinds, ['process.exec', 'alert']);
  assert.equal(got.length, 1);
  assert.match(got[0]?.id ?? '', /^ev-/, 'the bus stamped the id');
  off();
  bus.publish({ kind: 'process.exec', sandboxId: 'sb-a', argv: ['nc'], path: '/bin/nc', comm: 'nc', sensor: 'ebpf' });
  assert.equal(got.length, 1);
});

test('disabled rules never run', () => {
  const rs = ruleset(KILL('stable') + '\n- rule: nc\n  enabled: false\n');
  assert.equal(createRuleEngine({ rules: rs }).process(exec(['nc'])).length, 0);
});
