// The resident guard behind `praetor run` (issue 16): many runs through one guard stay apart and
// leave nothing behind, a guard killed mid-run fails closed, non-root callers and other versions
// are refused, signals and stdin reach the command, and the in-process fallback survives many
// parallel runs (the gc race). Every test uses its own state directory, so its own guard, and
// stops that guard by its pid file.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { after, test } from 'node:test';

const PRAETOR = new URL('../../bin/praetor', import.meta.url).pathname;
const states: string[] = [];
after(() => {
  for (const s of states) { spawnSync(PRAETOR, ['daemon', 'stop', '--state', s]); rmSync(s, { recursive: true, force: true }); }
});

function newState(tag: string): string {
  const s = mkdtempSync(`/tmp/pt-test-guard-${tag}-`);
  states.push(s);
  return s;
}

type Result = { status: number | null; stdout: string; stderr: string };

// Without the warm pool unless a test asks for it, so that every sandbox in the state directory
// is a run's (the pool's idle sandboxes would be there too).
const NO_POOL = { PRAETOR_GUARD_POOL: '0' };

function praetor(state: string, args: string[], opts: { env?: Record<string, string>; input?: string; timeout?: number } = {}): Result {
  const r = spawnSync(PRAETOR, args, { encoding: 'utf8', timeout: opts.timeout ?? 60_000, env: { ...process.env, PRAETOR_STATE: state, ...NO_POOL, ...opts.env }, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function praetorAsync(state: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((res) => {
    execFile(PRAETOR, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, PRAETOR_STATE: state, ...NO_POOL, ...env } }, (err, stdout, stderr) => {
      res({ status: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0, stdout, stderr });
    });
  });
}

function guardOf(state: string): { resident: boolean; pid?: number } {
  return JSON.parse(praetor(state, ['daemon', 'status', '--json']).stdout) as { resident: boolean; pid?: number };
}

function sandboxes(state: string): string[] {
  return existsSync(`${state}/sandboxes`) ? readdirSync(`${state}/sandboxes`) : [];
}

/** Host processes whose cgroup path names the sandbox. */
function processesOf(id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try { if (readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`/${id}`)) out.push(Number(p)); } catch { /* gone */ }
  }
  return out;
}

async function waitFor(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) { if (Date.now() > end) return false; await new Promise((r) => setTimeout(r, 20)); }
  return true;
}

test('in-process fallback: 20 parallel runs all succeed (no gc race) and leave no sandbox', async () => {
  const state = newState('race');
  const rs = await Promise.all(Array.from({ length: 20 }, () => praetorAsync(state, ['run', '--no-detect', '--', 'true'], { PRAETOR_NO_GUARD: '1' })));
  for (const r of rs) assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(sandboxes(state), []);
  assert.equal(guardOf(state).resident, false, 'PRAETOR_NO_GUARD=1 starts no guard');
});

test('20 parallel runs through one guard: right reports, nothing shared between runs, no sandbox left', async () => {
  const state = newState('par');
  const POOL = { PRAETOR_GUARD_POOL: '2' }; // the default: runs take warm sandboxes where they can
  assert.equal(praetor(state, ['run', '--', 'true'], { env: POOL }).status, 0); // starts the guard, sensor warm
  const pid = guardOf(state).pid;
  assert.ok(pid);
  // Run 7 mines; the others must not see its alert, and each must see only its own events.
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => praetorAsync(state, ['run', '--report', `${state}/r${i}.json`, '--',
    'sh', '-c', i === 7 ? 'cp /bin/sleep /tmp/xmrig; /tmp/xmrig 20; echo survived' : `echo run-${i}; exit ${i % 4}`], POOL)));
  const ids = new Set<string>();
  for (const [i, r] of rs.entries()) {
    const rep = JSON.parse(readFileSync(`${state}/r${i}.json`, 'utf8'));
    ids.add(rep.sandboxId);
    assert.ok(rep.events.every((e: { sandboxId: string }) => e.sandboxId === rep.sandboxId), `run ${i} saw another sandbox's events`);
    assert.ok(!rep.degraded.some((d: string) => d.startsWith('guard:')), `run ${i} went through the guard`);
    const kinds = new Set(rep.events.map((e: { kind: string }) => e.kind));
    for (const k of ['sandbox.created', 'command.start', 'command.end', 'sandbox.destroyed']) assert.ok(kinds.has(k), `run ${i}: ${k}, also from a warm sandbox`);
    if (i === 7) {
      assert.equal(r.status, 125, r.stderr);
      assert.doesNotMatch(r.stdout, /survived/);
      assert.ok(rep.alerts.some((a: { rule: string }) => /miner/i.test(a.rule)));
    } else {
      assert.equal(r.status, i % 4, r.stderr);
      assert.equal(r.stdout, `run-${i}\n`);
      assert.deepEqual(rep.alerts, [], `run ${i} has no alert`);
      assert.ok(rep.events.some((e: { kind: string }) => e.kind === 'process.exec'), `run ${i}: the resident kernel sensor saw its exec`);
    }
  }
  assert.equal(ids.size, 20, 'one sandbox per run');
  assert.equal(guardOf(state).pid, pid, 'all through the same guard');
  for (const id of ids) assert.ok(!sandboxes(state).includes(id), `${id} destroyed with its run`);
  assert.equal(praetor(state, ['daemon', 'stop']).status, 0);
  assert.deepEqual(sandboxes(state), [], 'stopping the guard destroyed its warm pool; nothing else was left');
});

test('the guard killed mid-run: the run fails closed, its sandbox dies, the next run starts a new guard and gc cleans up', async () => {
  const state = newState('kill');
  assert.equal(praetor(state, ['daemon', 'start']).status, 0);
  const old = guardOf(state).pid!;
  const child = spawn(PRAETOR, ['run', '--no-detect', '--', 'sh', '-c', 'sleep 1000 & sleep 1000'], { env: { ...process.env, PRAETOR_STATE: state }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.ok(await waitFor(() => sandboxes(state).some((d) => d.startsWith('sb-')), 20_000), 'sandbox created');
  const id = sandboxes(state).find((d) => d.startsWith('sb-'))!;
  assert.ok(await waitFor(() => processesOf(id).length >= 2, 10_000), 'the command runs');
  process.kill(old, 'SIGKILL');
  const code = await exit;
  assert.equal(code, 70, stderr);
  assert.match(stderr, /resident guard \(pid \d+\) went away during the run; its sandbox died with it/);
  assert.ok(await waitFor(() => processesOf(id).length === 0, 5000), 'every process of the sandbox died with the guard');
  const r = praetor(state, ['run', '--no-detect', '--', 'echo', 'again']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'again\n');
  const now = guardOf(state).pid;
  assert.ok(now && now !== old, 'a new guard');
  assert.deepEqual(sandboxes(state), [], "the new guard's gc removed the dead guard's sandbox");
});

test('a non-root client is refused at the socket, with the reason', async () => {
  const state = newState('uid');
  assert.equal(praetor(state, ['daemon', 'start']).status, 0);
  const asNobody = (args: string[]) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', PRAETOR, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PRAETOR_STATE: state } });
  chmodSync(state, 0o755); // let nobody reach the guard's own directory (0700 root): refused there
  let r = asNobody(['run', '--', 'true']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /socket .* is root-only \(EACCES\)[\s\S]*runs as uid 65534[\s\S]*fix: run praetor as root/);
  // Even with the directory and socket opened up by mistake, the guard checks the peer's uid.
  const dir = `${state}/guard`;
  const sock = readdirSync(dir).find((f) => f.endsWith('.sock'))!;
  chmodSync(dir, 0o755);
  chmodSync(`${dir}/${sock}`, 0o666);
  try {
    r = asNobody(['run', '--', 'true']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /the resident guard serves root only; this client runs as uid 65534/);
  } finally {
    chmodSync(dir, 0o700);
    chmodSync(`${dir}/${sock}`, 0o600);
  }
  assert.deepEqual(sandboxes(state), []);
});

test('a CLI and a guard of different versions refuse each other; daemon stop is the upgrade path', () => {
  const state = newState('ver');
  assert.equal(praetor(state, ['daemon', 'start'], { env: { PRAETOR_GUARD_VERSION: '0.0.1-old' } }).status, 0);
  const r = praetor(state, ['run', '--', 'true']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /resident guard \(pid \d+\) is version 0\.0\.1-old[\s\S]*this CLI is [\d.]+[\s\S]*fix: stop the old guard with `praetor daemon stop/);
  assert.deepEqual(sandboxes(state), []);
  const stop = praetor(state, ['daemon', 'stop']);
  assert.equal(stop.status, 0, stop.stderr);
  assert.match(stop.stdout, /stopped resident guard pid/);
  assert.equal(praetor(state, ['run', '--no-detect', '--', 'true']).status, 0, 'a guard of this version serves the next run');
});

test('stdin reaches the command, through the guard and in-process', () => {
  const state = newState('stdin');
  for (const env of [{}, { PRAETOR_NO_GUARD: '1' }] as Array<Record<string, string>>) {
    const r = praetor(state, ['run', '--no-detect', '--', 'sh', '-c', 'tr a-z A-Z; echo done'], { input: 'hello\nworld\n', env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'HELLO\nWORLD\ndone\n', JSON.stringify(env));
  }
});

test('Ctrl-C on the client destroys the sandbox and still writes the report; status shows the guard', async () => {
  const state = newState('sig');
  // No warm pool: the only sandbox in the state directory is then the run's own.
  const child = spawn(PRAETOR, ['run', '--no-detect', '--report', `${state}/int.json`, '--', 'sleep', '1000'], { env: { ...process.env, PRAETOR_STATE: state, PRAETOR_GUARD_POOL: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exit = new Promise<number | null>((r) => child.once('exit', (c, sig) => r(c ?? (sig ? -1 : null))));
  assert.ok(await waitFor(() => sandboxes(state).some((d) => d.startsWith('sb-')), 20_000));
  const id = sandboxes(state).find((d) => d.startsWith('sb-'))!;
  assert.ok(await waitFor(() => processesOf(id).length >= 2, 10_000));
  child.kill('SIGINT');
  const code = await exit;
  assert.ok(existsSync(`${state}/int.json`), `report written (exit ${code}): ${stderr}`);
  assert.equal(code, 130, 'interrupted: 128 + SIGINT');
  assert.equal(JSON.parse(readFileSync(`${state}/int.json`, 'utf8')).sandboxId, id);
  assert.ok(await waitFor(() => processesOf(id).length === 0 && sandboxes(state).length === 0, 5000), 'sandbox destroyed');
  const st = JSON.parse(praetor(state, ['status', '--json']).stdout);
  assert.equal(st.guard.resident, true);
  assert.equal(st.guard.pid, guardOf(state).pid);
  assert.ok(st.guard.uptimeMs >= 0);
  assert.equal(praetor(state, ['daemon', 'stop']).status, 0);
  assert.equal(JSON.parse(praetor(state, ['status', '--json']).stdout).guard.resident, false);
});

test('daemon stop with a run in flight: its sandbox is destroyed, the client gets its report (143)', async () => {
  const state = newState('stop');
  const child = spawn(PRAETOR, ['run', '--no-detect', '--report', `${state}/stop.json`, '--', 'sleep', '1000'], { env: { ...process.env, PRAETOR_STATE: state, ...NO_POOL }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.ok(await waitFor(() => sandboxes(state).some((d) => d.startsWith('sb-')), 20_000));
  const id = sandboxes(state).find((d) => d.startsWith('sb-'))!;
  assert.ok(await waitFor(() => processesOf(id).length >= 2, 10_000));
  const stop = praetor(state, ['daemon', 'stop']);
  assert.equal(stop.status, 0, stop.stderr);
  assert.equal(await exit, 143);
  assert.equal(JSON.parse(readFileSync(`${state}/stop.json`, 'utf8')).sandboxId, id);
  assert.deepEqual(processesOf(id), []);
  assert.deepEqual(sandboxes(state), []);
  assert.equal(guardOf(state).resident, false);
});

test('policies, rules and limits are per run: concurrent runs through one guard each get their own', async () => {
  const state = newState('pol');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${state}/detect.yaml`, 'sandbox:\n  memory: 48M\nrules:\n  mode: detect\n');
  assert.equal(praetor(state, ['daemon', 'start']).status, 0);
  const miner = ['sh', '-c', 'cp /bin/sleep /tmp/xmrig; /tmp/xmrig 2; echo survived'];
  const [detectOnly, enforced, limited] = await Promise.all([
    praetorAsync(state, ['run', '--policy', `${state}/detect.yaml`, '--report', `${state}/a.json`, '--', ...miner]),
    praetorAsync(state, ['run', '--report', `${state}/b.json`, '--', ...miner]),
    praetorAsync(state, ['run', '--policy', `${state}/detect.yaml`, '--', 'python3', '-c', 'x = bytearray(100 << 20)']),
  ]);
  assert.equal(detectOnly.status, 0, `detect mode: alert only: ${detectOnly.stderr}`);
  assert.match(detectOnly.stdout, /survived/);
  const a = JSON.parse(readFileSync(`${state}/a.json`, 'utf8'));
  assert.equal(a.contained, false);
  assert.ok(a.alerts.some((x: { rule: string; actions: string[] }) => /miner/i.test(x.rule) && x.actions.join() === 'alert'));
  assert.equal(enforced.status, 125, `no policy: enforce: ${enforced.stderr}`);
  assert.doesNotMatch(enforced.stdout, /survived/);
  assert.equal(JSON.parse(readFileSync(`${state}/b.json`, 'utf8')).contained, true);
  assert.equal(limited.status, 137, "the policy's memory limit applies to its run only");
});
