// Lifetimes. The idle reaper: a sandbox is idle from the end of its last command, and never
// reaped while a command (an exec, or a command inside a session shell) is still running.
// Episodes and GEM envs whose sandbox ended are kept for the retention, then forgotten.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestServer } from './helpers.ts';

const t = await startTestServer({ reapIntervalMs: 100, episodeRetentionMs: 1500 });
const A = t.token('reap-a');
const ttl = (id: string, seconds: number) => { t.server.core.all.find((e) => e.sb.id === id)!.ttlSeconds = seconds; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an exec longer than the idle TTL completes; the sandbox is reaped once idle after it', async () => {
  const id = (await t.api(A, 'POST', '/v1/sandboxes', {})).json.id;
  ttl(id, 1);
  const r = await t.api(A, 'POST', `/v1/sandboxes/${id}/exec`, { command: 'sleep 2.5; echo done' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.stdout, 'done\n');
  assert.equal((await t.api(A, 'GET', `/v1/sandboxes/${id}`)).status, 200, 'idle time counts from the end of the command');
  await sleep(1600);
  assert.equal((await t.api(A, 'GET', `/v1/sandboxes/${id}`)).status, 404, 'reaped once idle for the TTL');
});

test('a session command longer than the idle TTL completes; an open idle session does not keep the sandbox alive', async () => {
  const id = (await t.api(A, 'POST', '/v1/sandboxes', {})).json.id;
  ttl(id, 1);
  assert.equal((await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions`, { name: 's' })).status, 200);
  const r = await t.api(A, 'POST', `/v1/sandboxes/${id}/sessions/s/run`, { command: 'sleep 2.5; echo done' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.output, 'done\n');
  await sleep(1600);
  assert.equal((await t.api(A, 'GET', `/v1/sandboxes/${id}`)).status, 404, 'the session shell alone is not activity');
});

test('an episode whose sandbox died under it is reported as an infrastructure failure (drop), then forgotten', async () => {
  const ep = (await t.api(A, 'POST', '/v1/episodes', { task: 'infra' })).json.episode_id;
  const sandboxId = (await t.api(A, 'GET', `/v1/episodes/${ep}`)).json.sandbox_id;
  assert.equal((await t.api(A, 'POST', `/v1/episodes/${ep}/step`, { action: { tool: 'bash', arguments: { command: 'true' } } })).status, 200);
  await t.server.core.all.find((e) => e.sb.id === sandboxId)!.sb.destroy('sandbox init exited');
  const rep = (await t.api(A, 'GET', `/v1/episodes/${ep}/report`)).json;
  assert.equal(rep.status, 'terminated');
  assert.match(rep.end_reason, /init exited/);
  assert.equal(rep.recommended_training_action, 'drop');
  await sleep(2000);
  assert.equal((await t.api(A, 'GET', `/v1/episodes/${ep}/report`)).status, 404, 'forgotten after the retention');
});

test('a GEM env whose episode ended is forgotten after the retention; a reset one is kept', async () => {
  const G = '/apis/v1/envs/gem';
  const key = { 'x-api-key': A };
  const h1 = (await t.api(undefined, 'POST', `${G}/make`, { env_id: 'a' }, key)).json.sandbox_id;
  const h2 = (await t.api(undefined, 'POST', `${G}/make`, { env_id: 'b' }, key)).json.sandbox_id;
  await t.server.core.all.find((e) => e.sb.id === h1)!.sb.destroy('sandbox init exited');
  await t.server.core.all.find((e) => e.sb.id === h2)!.sb.destroy('sandbox init exited');
  assert.equal((await t.api(undefined, 'POST', `${G}/reset`, { sandbox_id: h2 }, key)).status, 200, 'a reset gives the env a fresh episode');
  assert.equal((await t.api(undefined, 'POST', `${G}/list`, { sandbox_id: h1 }, key)).status, 200, 'still there during the retention');
  await sleep(2000);
  assert.equal((await t.api(undefined, 'POST', `${G}/list`, { sandbox_id: h1 }, key)).status, 404);
  const st = await t.api(undefined, 'POST', `${G}/step`, { sandbox_id: h2, action: 'echo alive' }, key);
  assert.equal(st.json.observation, 'alive\n', st.text);
  await t.api(undefined, 'POST', `${G}/close`, { sandbox_id: h2 }, key);
});
