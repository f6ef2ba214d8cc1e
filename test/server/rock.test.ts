// ROCK wire compatibility: requests shaped exactly as ROCK's SDK sends them (rock/sdk/sandbox/
// client.py), responses checked for the fields ROCK's SDK reads. Failures answer as ROCK does:
// HTTP 200, status Failed, a ROCK code (4000 client, 5000 server, 6000 command) in result.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { TEST_IMAGE_TAR } from '../sandbox/helpers.ts';
import { checkRockResponse } from '../clients/rock-sdk-schemas.ts';
import { startTestServer } from './helpers.ts';

const t = await startTestServer({ imageAliases: { 'python:3.11': 'host' } });
const A = t.token('rock-a');
const B = t.token('rock-b');
const R = '/apis/envs/sandbox/v1';
const key = (tok: string) => ({ 'X-API-Key': tok });

async function start(tok = A): Promise<string> {
  // The body ROCK's SDK start() posts, nulls included.
  const r = await t.api(undefined, 'POST', `${R}/start_async`, {
    image: 'host', image_os: 'linux', auto_clear_time: 30, auto_clear_time_minutes: 30, startup_timeout: 180,
    memory: '1g', cpus: 1, num_gpus: null, accelerator_type: null, registry_username: null, registry_password: null,
    use_kata_runtime: false, limit_cpus: null, sandbox_id: null, auto_archive_seconds: null, auto_delete_seconds: null, disk: '512m',
  }, { 'X-Key': tok, 'X-User-Id': 'u1', 'X-Experiment-Id': 'exp', 'X-Namespace': 'ns' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'Success');
  return r.json.result.sandbox_id;
}

test('start → get_status/is_alive → execute → sessions → files → stop → delete', async () => {
  const id = await start();
  const st = await t.api(undefined, 'GET', `${R}/get_status?sandbox_id=${id}&include_all_states=False`, undefined, key(A));
  assert.equal(st.json.status, 'Success');
  assert.equal(st.json.result.is_alive, true);
  assert.equal(st.json.result.experiment_id, 'exp');
  assert.equal(st.json.result.state, 'running');
  assert.deepEqual((await t.api(undefined, 'GET', `${R}/is_alive?sandbox_id=${id}`, undefined, key(A))).json.result.is_alive, true);

  // execute as the SDK sends it: string command, timeout, cwd/env null.
  const ex = await t.api(undefined, 'POST', `${R}/execute`, { command: 'echo hi && pwd', sandbox_id: id, timeout: 60, cwd: null, env: null }, key(A));
  assert.deepEqual(ex.json.result, { stdout: 'hi\n/workspace\n', stderr: '', exit_code: 0 });
  const argv = await t.api(undefined, 'POST', `${R}/execute`, { command: ['sh', '-c', 'echo $V; exit 4'], sandbox_id: id, env: { V: 'x' }, cwd: '/tmp' }, key(A));
  assert.deepEqual(argv.json.result, { stdout: 'x\n', stderr: '', exit_code: 4 });
  const plain = await t.api(undefined, 'POST', `${R}/execute`, { command: 'ls -d /tmp', sandbox_id: id, shell: false }, key(A));
  assert.equal(plain.json.result.stdout, '/tmp\n');
  const to = await t.api(undefined, 'POST', `${R}/execute`, { command: 'sleep 5', sandbox_id: id, timeout: 0.2 }, key(A));
  assert.equal(to.status, 200);
  assert.equal(to.json.status, 'Failed');
  assert.equal(to.json.result.code, 6000, 'a timed-out command is a ROCK command error');
  const chk = await t.api(undefined, 'POST', `${R}/execute`, { command: 'false', sandbox_id: id, check: true }, key(A));
  assert.equal(chk.status, 200);
  assert.deepEqual([chk.json.status, chk.json.result.code], ['Failed', 6000]);

  const cs = await t.api(undefined, 'POST', `${R}/create_session`, { sandbox_id: id, session_type: 'bash', session: 'bash-1', startup_source: [], env_enable: false, env: null, remote_user: null }, key(A));
  assert.deepEqual(cs.json.result, { output: '', session_type: 'bash' });
  await t.api(undefined, 'POST', `${R}/run_in_session`, { action_type: 'bash', session: 'bash-1', command: 'cd /tmp; X=7', sandbox_id: id, check: 'ignore', timeout: 30 }, key(A));
  const run = await t.api(undefined, 'POST', `${R}/run_in_session`, { action_type: 'bash', session: 'bash-1', command: 'echo $X $PWD', sandbox_id: id, check: 'ignore', timeout: 30 }, key(A));
  assert.equal(run.json.result.output, '7 /tmp\n');
  assert.equal(run.json.result.exit_code, 0);
  const raise = await t.api(undefined, 'POST', `${R}/run_in_session`, { session: 'bash-1', command: 'exit_code_is() { return 3; }; exit_code_is', sandbox_id: id, check: 'raise' }, key(A));
  assert.equal(raise.status, 200);
  assert.equal(raise.json.status, 'Failed');
  assert.equal(raise.json.result.code, 6000);
  assert.match(raise.json.error, /exit code 3/);
  assert.equal((await t.api(undefined, 'POST', `${R}/close_session`, { sandbox_id: id, session: 'bash-1', session_type: 'bash' }, key(A))).json.status, 'Success');

  const wf = await t.api(undefined, 'POST', `${R}/write_file`, { content: 'héllo\n', path: '/tmp/a/b.txt', sandbox_id: id }, key(A));
  assert.equal(wf.json.result.success, true);
  const rf = await t.api(undefined, 'POST', `${R}/read_file`, { path: '/tmp/a/b.txt', encoding: null, errors: null, sandbox_id: id }, key(A));
  assert.equal(rf.json.result.content, 'héllo\n');

  const form = new FormData();
  form.append('target_path', '/tmp/up.bin');
  form.append('sandbox_id', id);
  form.append('file', new Blob([new Uint8Array([0, 1, 2, 255])]), 'up.bin');
  const up = await fetch(`${t.url}${R}/upload`, { method: 'POST', headers: key(A), body: form });
  const upj = await up.json() as { status: string; result: { success: boolean; file_name: string } };
  assert.equal(upj.status, 'Success', JSON.stringify(upj));
  assert.equal(upj.result.file_name, 'up.bin');
  const od = await t.api(undefined, 'POST', `${R}/execute`, { command: 'od -An -tu1 /tmp/up.bin', sandbox_id: id }, key(A));
  assert.deepEqual(od.json.result.stdout.trim().split(/\s+/), ['0', '1', '2', '255']);

  // Stop keeps the sandbox, frozen: not alive, nothing runs, the files stay; restart thaws it.
  assert.equal((await t.api(undefined, 'POST', `${R}/stop`, { sandbox_id: id }, key(A))).json.result, `${id} stopped`);
  const stopped = (await t.api(undefined, 'GET', `${R}/get_status?sandbox_id=${id}`, undefined, key(A))).json.result;
  assert.deepEqual([stopped.state, stopped.is_alive], ['stopped', false]);
  assert.equal(typeof stopped.stop_time, 'string');
  assert.deepEqual(stopped.state_history.map((h: { to_state: string }) => h.to_state), ['running', 'stopped']);
  assert.equal((await t.api(undefined, 'GET', `${R}/is_alive?sandbox_id=${id}`, undefined, key(A))).json.result.is_alive, false);
  const onStopped = await t.api(undefined, 'POST', `${R}/execute`, { command: 'id', sandbox_id: id }, key(A));
  assert.deepEqual([onStopped.status, onStopped.json.status, onStopped.json.result.code], [200, 'Failed', 4000]);
  const rs = await t.api(undefined, 'POST', `${R}/restart`, { sandbox_id: id }, key(A));
  assert.equal(rs.json.status, 'Success', rs.text);
  assert.equal(rs.json.result.sandbox_id, id);
  assert.equal((await t.api(undefined, 'GET', `${R}/get_status?sandbox_id=${id}`, undefined, key(A))).json.result.is_alive, true);
  assert.equal((await t.api(undefined, 'POST', `${R}/execute`, { command: 'cat /tmp/a/b.txt', sandbox_id: id }, key(A))).json.result.stdout, 'héllo\n', 'restart keeps the files');
  await t.api(undefined, 'POST', `${R}/sandboxes/${id}/restart`, undefined, key(A));
  assert.equal((await t.api(undefined, 'POST', `${R}/stop`, { sandbox_id: id }, key(A))).json.status, 'Success');
  assert.equal((await t.api(undefined, 'POST', `${R}/delete`, { sandbox_id: id }, key(A))).json.status, 'Success');
  const gone = await t.api(undefined, 'GET', `${R}/get_status?sandbox_id=${id}`, undefined, key(A));
  assert.deepEqual([gone.status, gone.json.status, gone.json.result.code], [200, 'Failed', 4000]);
  // ROCK's delete is idempotent: deleting again (or an unknown id) succeeds.
  assert.equal((await t.api(undefined, 'POST', `${R}/delete`, { sandbox_id: id }, key(A))).json.status, 'Success');
});

test('identity fields default to "default"; image aliases; unsupported calls answer Failed at once', async () => {
  const r = await t.api(undefined, 'POST', `${R}/start_async`, { image: 'python:3.11', memory: '1g', cpus: 1 }, key(A));
  assert.equal(r.json.status, 'Success', r.text);
  const id = r.json.result.sandbox_id;
  const st = (await t.api(undefined, 'GET', `${R}/get_status?sandbox_id=${id}`, undefined, key(A))).json.result;
  assert.deepEqual([st.user_id, st.experiment_id, st.namespace], ['default', 'default', 'default']);
  assert.equal(st.is_alive, true);
  const unknown = await t.api(undefined, 'POST', `${R}/start`, { image: 'ubuntu:99.04' }, key(A));
  assert.deepEqual([unknown.status, unknown.json.status, unknown.json.result.code], [200, 'Failed', 4000]);
  assert.match(unknown.json.error, /praetor image import PATH --name ubuntu:99\.04/);
  assert.match(unknown.json.error, /--image-alias ubuntu:99\.04=IMAGE/);
  for (const [m, p, body] of [['POST', `${R}/sandboxes/${id}/archive`, undefined], ['GET', `${R}/get_token?account=primary`, undefined], ['POST', `${R}/commit`, { sandbox_id: id, image_tag: 'x:1', username: '', password: '' }]] as const) {
    const u = await t.api(undefined, m, p, body, key(A));
    assert.deepEqual([u.status, u.json.status, u.json.result.code], [200, 'Failed', 4000], `${p}: ${u.text}`);
    assert.match(u.json.error, /not supported|no image layer/);
  }
  await t.api(undefined, 'POST', `${R}/delete`, { sandbox_id: id }, key(A));
});

test('commit saves the sandbox filesystem as an image that later starts use', { skip: existsSync(TEST_IMAGE_TAR) ? false : `no test image at ${TEST_IMAGE_TAR} (run npm test's setup)` }, async () => {
  await t.server.core.manager.images.import(TEST_IMAGE_TAR, 'rock-base');
  const s1 = (await t.api(undefined, 'POST', `${R}/start_async`, { image: 'rock-base', memory: '1g', cpus: 1 }, key(A))).json.result.sandbox_id;
  await t.api(undefined, 'POST', `${R}/write_file`, { content: 'committed\n', path: '/workspace/marker.txt', sandbox_id: s1 }, key(A));
  const bad = await t.api(undefined, 'POST', `${R}/commit`, { sandbox_id: s1, image_tag: 'docker.io/library/x:1', username: 'u', password: 'p' }, key(A));
  assert.equal(bad.json.status, 'Failed');
  assert.match(bad.json.error, /not a local image name/);
  const c = await t.api(undefined, 'POST', `${R}/commit`, { sandbox_id: s1, image_tag: 'rock-committed:v1', username: 'u', password: 'p' }, key(A));
  assert.equal(c.json.status, 'Success', c.text);
  assert.equal(c.json.result.phase, 'RUNNING');
  assert.equal((await t.api(undefined, 'GET', `${R}/commit/${s1}`, undefined, key(B))).json.status, 'Failed', 'another tenant sees no commit');
  let phase = 'RUNNING';
  let last: any;
  for (let i = 0; i < 600 && phase === 'RUNNING'; i++) {
    await new Promise((r) => setTimeout(r, 250));
    last = (await t.api(undefined, 'GET', `${R}/commit/${s1}`, undefined, key(A))).json;
    phase = last.result.phase;
  }
  assert.equal(phase, 'SUCCEEDED', JSON.stringify(last));
  assert.equal((await t.api(undefined, 'GET', `${R}/get_status?sandbox_id=${s1}`, undefined, key(A))).json.result.is_alive, true, 'the committed sandbox runs on');
  const s2 = (await t.api(undefined, 'POST', `${R}/start_async`, { image: 'rock-committed:v1', memory: '1g', cpus: 1 }, key(A))).json.result.sandbox_id;
  const cat = await t.api(undefined, 'POST', `${R}/execute`, { command: 'cat /workspace/marker.txt', sandbox_id: s2 }, key(A));
  assert.equal(cat.json.result.stdout, 'committed\n');
  for (const id of [s1, s2]) await t.api(undefined, 'POST', `${R}/delete`, { sandbox_id: id }, key(A));
});

test('ROCK failures answer HTTP 200, status Failed, a ROCK code; auth stays 401', async () => {
  const id = await start();
  const cases: Array<[number, string, string, unknown, Record<string, string>]> = [
    [401, 'POST', `${R}/execute`, { command: 'id', sandbox_id: id }, {}],
    [401, 'POST', `${R}/execute`, { command: 'id', sandbox_id: id }, { 'X-Key': 'wrong-token-wrong-token' }],
    [200, 'POST', `${R}/execute`, { command: 'touch /tmp/pwned', sandbox_id: id }, key(B)],
    [200, 'POST', `${R}/read_file`, { path: '/etc/hostname', sandbox_id: id }, key(B)],
    [200, 'POST', `${R}/write_file`, { path: '/tmp/pwned', content: 'x', sandbox_id: id }, key(B)],
    [200, 'POST', `${R}/stop`, { sandbox_id: id }, key(B)],
    [200, 'POST', `${R}/execute`, { command: 'id', sandbox_id: 'sb-000000000000' }, key(A)],
    [200, 'POST', `${R}/execute`, { command: 'id', sandbox_id: id, bogus: 1 }, key(A)],
    [200, 'POST', `${R}/execute`, { command: 42, sandbox_id: id }, key(A)],
    [200, 'POST', `${R}/execute`, { command: 'id', sandbox_id: '  ' }, key(A)],
    [200, 'POST', `${R}/read_file`, { path: '/tmp/../../etc/shadow', sandbox_id: id }, key(A)],
    [200, 'POST', `${R}/read_file`, { path: '/nonexistent', sandbox_id: id }, key(A)],
    [200, 'POST', `${R}/start`, { image: 'no-such-image:1' }, key(A)],
  ];
  for (const [status, m, p, body, h] of cases) {
    const r = await t.api(undefined, m, p, body, h);
    assert.equal(r.status, status, `${p} ${JSON.stringify(body)} → ${r.text}`);
    assert.equal(r.json.status, 'Failed');
    assert.equal(typeof r.json.message, 'string');
    assert.equal(typeof r.json.error, 'string');
    assert.equal(r.json.result?.code ?? null, status === 401 ? null : 4000, `${p} → ${r.text}`);
  }
  const bad = await t.api(undefined, 'POST', `${R}/execute`, '{"command": "id", ', { ...key(A), 'content-type': 'application/json' });
  assert.equal(bad.status, 200);
  assert.equal(bad.json.status, 'Failed');
  const ls = await t.api(undefined, 'POST', `${R}/execute`, { command: 'ls /tmp', sandbox_id: id }, key(A));
  assert.equal(ls.json.result.stdout, '', 'the other tenant wrote nothing');
  await t.api(undefined, 'POST', `${R}/stop`, { sandbox_id: id }, key(A));
});

test('GEM make/reset/step/list/close, token as Basic auth (RockEnv sends no headers)', async () => {
  const G = '/apis/v1/envs/gem';
  const basic = { authorization: `Basic ${Buffer.from(`x:${A}`).toString('base64')}` };
  const mk = await t.api(undefined, 'POST', `${G}/make`, { env_id: 'echo-task' }, basic);
  assert.equal(mk.status, 200, mk.text);
  const h = mk.json.sandbox_id;
  const rs = await t.api(undefined, 'POST', `${G}/reset`, { sandbox_id: h, seed: 7 }, basic);
  assert.equal(rs.json.observation, 'echo-task');
  assert.equal(rs.json.info.seed, 7);
  const st = await t.api(undefined, 'POST', `${G}/step`, { sandbox_id: h, action: 'echo step-one' }, basic);
  assert.deepEqual([st.json.observation, st.json.reward, st.json.terminated, st.json.truncated], ['step-one\n', 0, false, false]);
  assert.equal(st.json.info.safety.verdict, 'allow');
  const tool = await t.api(undefined, 'POST', `${G}/step`, { sandbox_id: h, action: JSON.stringify({ tool: 'write_file', arguments: { path: '/tmp/g.txt', content: 'g' } }) }, basic);
  assert.match(tool.json.observation, /wrote 1 bytes/);
  assert.deepEqual((await t.api(undefined, 'POST', `${G}/list`, { sandbox_id: h }, basic)).json, { env_id: ['echo-task'] });
  // reset: fresh sandbox, the file is gone.
  await t.api(undefined, 'POST', `${G}/reset`, { sandbox_id: h }, basic);
  const after = await t.api(undefined, 'POST', `${G}/step`, { sandbox_id: h, action: 'cat /tmp/g.txt' }, basic);
  assert.match(after.json.observation, /No such file/);
  assert.equal((await t.api(undefined, 'POST', `${G}/step`, { sandbox_id: h, action: 'id' }, key(B))).status, 404);
  assert.deepEqual((await t.api(undefined, 'POST', `${G}/close`, { sandbox_id: h }, basic)).json, { sandbox_id: h });
  assert.equal((await t.api(undefined, 'POST', `${G}/step`, { sandbox_id: h, action: 'id' }, basic)).status, 404);
});

// The Python SDK cannot run here (it needs pydantic 2; Debian ships 1.10 and PyPI is out of
// reach), so its requests are the ones transcribed above from rock/sdk/sandbox/client.py, and
// every response they got is checked against the schemas both SDKs apply.
test('every ROCK response above matches the SDKs\' response schemas', () => {
  const rock = t.seen.filter((s) => s.path.startsWith(R));
  assert.ok(rock.length > 40, `saw ${rock.length} ROCK responses`);
  for (const s of rock) {
    assert.deepEqual(checkRockResponse({ method: s.method, path: s.path, contentType: 'application/json', body: s.body, status: s.status, response: s.response }), [], `${s.method} ${s.path} → ${JSON.stringify(s.response).slice(0, 300)}`);
  }
});
