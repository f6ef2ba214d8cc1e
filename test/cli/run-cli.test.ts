// `praetor run` as users call it: exit codes, streaming, the report, detection and containment,
// and bad input answered with a message and a fix, never a stack trace or a leftover sandbox.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';

const PRAETOR = new URL('../../bin/praetor', import.meta.url).pathname;
const state = mkdtempSync('/tmp/pt-test-cli-');
// These runs go through the resident guard the first one starts (without its warm pool, so that
// 'nothing created' can be checked in the state directory); stop it (by its pid file).
after(() => { spawnSync(PRAETOR, ['daemon', 'stop', '--state', state]); rmSync(state, { recursive: true, force: true }); });

function praetor(args: string[], opts: { timeout?: number } = {}) {
  return spawnSync(PRAETOR, args, { encoding: 'utf8', timeout: opts.timeout ?? 60_000, env: { ...process.env, PRAETOR_STATE: state, PRAETOR_GUARD_POOL: '0' } });
}

test('streams output and passes the exit code through', () => {
  const r = praetor(['run', '--no-detect', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.equal(r.status, 7);
  assert.equal(r.stdout, 'out\n');
  assert.match(r.stderr, /^err$/m);
});

test('signals, memory and timeouts map to 128+N, 137 and 124', () => {
  assert.equal(praetor(['run', '--no-detect', '--', 'sh', '-c', 'kill -INT $$']).status, 130);
  const oom = praetor(['run', '--no-detect', '--memory', '48M', '--report', `${state}/oom.json`, '--', 'python3', '-c', 'x = bytearray(200 << 20)']);
  assert.equal(oom.status, 137);
  assert.equal(JSON.parse(readFileSync(`${state}/oom.json`, 'utf8')).oomKilled, true);
  const t = praetor(['run', '--no-detect', '--timeout', '0.5', '--', 'sleep', '30']);
  assert.equal(t.status, 124);
});

test('the report has the documented shape, events flat', () => {
  const r = praetor(['run', '--report', `${state}/r.json`, '--', 'sh', '-c', 'echo hi']);
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(readFileSync(`${state}/r.json`, 'utf8'));
  for (const k of ['sandboxId', 'exitCode', 'signal', 'oomKilled', 'timedOut', 'durationMs', 'usage', 'events', 'alerts', 'containment']) assert.ok(k in rep, k);
  assert.deepEqual(Object.keys(rep.usage).sort(), ['cpuMs', 'memPeakBytes', 'pidsPeak']);
  assert.ok(Array.isArray(rep.alerts) && Array.isArray(rep.containment));
  const kinds = new Set(rep.events.map((e: { kind: string }) => e.kind));
  for (const k of ['sandbox.created', 'command.start', 'command.end', 'sandbox.destroyed']) assert.ok(kinds.has(k), k);
  for (const e of rep.events) for (const v of Object.values(e)) assert.ok(!(v && typeof v === 'object' && !Array.isArray(v)), `nested object in ${e.kind}`);
});

test('a miner is detected, contained, and reported', () => {
  const r = praetor(['run', '--report', `${state}/m.json`, '--', 'sh', '-c', 'cp /bin/sleep /tmp/xmrig; /tmp/xmrig 20; echo survived']);
  assert.equal(r.status, 125, r.stderr);
  assert.doesNotMatch(r.stdout, /survived/);
  const rep = JSON.parse(readFileSync(`${state}/m.json`, 'utf8'));
  assert.equal(rep.contained, true);
  assert.ok(rep.alerts.some((a: { rule: string }) => /miner/i.test(a.rule)));
  const c = rep.containment.find((x: { action: string }) => x.action === 'kill-tree');
  assert.ok(c && c.ok && typeof c.latencyMs === 'number', JSON.stringify(rep.containment));
  const ids = new Set(rep.events.map((e: { id: string }) => e.id));
  for (const ev of rep.alerts[0].evidence) assert.ok(ids.has(ev), 'evidence ids point at events in the report');
});

test('bad input: a clear message with a fix, exit 2, nothing created', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--frobnicate', '--', 'true'], /Unknown option '--frobnicate'/],
    [['run', '--memory', 'lots', '--', 'true'], /--memory: "lots" is not a size[\s\S]*fix: write a number/],
    [['run'], /no command given[\s\S]*fix: put the command after --/],
    [['run', '--runtime', 'docker', '--', 'true'], /unknown runtime "docker"[\s\S]*bwrap, crun, runsc/],
    [['run', '--image', 'nope', '--', 'true'], /no image named "nope"/],
    [['run', '--gpus', '1', '--', 'true'], /GPU/],
    [['run', '--cpus', 'x', '--', 'true'], /--cpus x is not a number/],
    [['run', '--env', 'NOEQUALS', '--', 'true'], /not KEY=VALUE/],
    [['nosuch'], /unknown command "nosuch"/],
  ];
  for (const [args, re] of cases) {
    const r = praetor(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.deepEqual(readdirSync(`${state}/sandboxes`), []);
});

test('status, ps and gc answer', () => {
  const s = praetor(['status', '--json']);
  assert.equal(s.status, 0, s.stderr);
  const st = JSON.parse(s.stdout);
  assert.ok(st.checks.some((c: { name: string; ok: boolean }) => c.name === 'runtime:bwrap' && c.ok));
  assert.deepEqual(JSON.parse(praetor(['ps', '--json']).stdout), []);
  assert.equal(praetor(['gc']).status, 0);
});

test('policy sandbox and rules sections apply under the flags', () => {
  const pol = `${state}/pol.yaml`;
  writeFileSync(pol, 'sandbox:\n  memory: 48M\n  timeout: 0.5\nrules:\n  mode: detect\n');
  assert.equal(praetor(['run', '--policy', pol, '--', 'sleep', '5']).status, 124, 'policy timeout applies');
  assert.equal(praetor(['run', '--policy', pol, '--timeout', '10', '--', 'sh', '-c', 'sleep 1; echo ok']).status, 0, 'the flag overrides the policy');
  const r = praetor(['run', '--policy', pol, '--report', `${state}/d.json`, '--', 'sh', '-c', 'cp /bin/true /tmp/xmrig; /tmp/xmrig; python3 -c "x = bytearray(100 << 20)"']);
  assert.equal(r.status, 137, 'policy memory limit applies');
  const rep = JSON.parse(readFileSync(`${state}/d.json`, 'utf8'));
  assert.equal(rep.oomKilled, true);
  assert.equal(rep.contained, false, 'detect mode alerts without containing');
  assert.ok(rep.alerts.some((a: { rule: string; actions: string[] }) => /miner/i.test(a.rule) && a.actions.join() === 'alert'));
});
