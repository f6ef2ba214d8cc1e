// How buildTrace links what an agent inside a sandbox did to the model output that told it to:
// the model call it made through the model gateway, then the processes it started.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LedgerStore, RecordRow } from './store.ts';
import { buildTrace, summarize, traceEpisode, type TraceNode } from './trace.ts';

const SB = 'sb-1'; const EP = 'ep-1';
let seq = 0;
const row = (e: Record<string, unknown>): RecordRow => {
  seq++;
  return {
    seq, ts: seq * 1000, kind: String(e.kind), sandboxId: SB, episodeId: (e.episodeId as string | undefined) ?? null,
    step: null, toolCallId: null, modelCallId: (e.modelCallId as string | undefined) ?? null, pid: (e.pid as number | undefined) ?? null,
    body: JSON.stringify({ sandboxId: SB, ...e }), hash: 'h',
  };
};
const kids = (n: TraceNode | undefined) => (n?.children ?? []).map((c) => `${c.kind}:${String(c.event.pid ?? c.event.modelCallId)}`);

test('processes an in-sandbox agent starts after a gateway model call hang under that call', () => {
  const rows = [
    row({ kind: 'process.exec', pid: 10, ppid: 1, comm: 'agent' }),
    row({ kind: 'model.call', episodeId: EP, modelCallId: 'mc-1', via: 'sandbox', model: 'm' }),
    row({ kind: 'process.exec', pid: 11, ppid: 10, comm: 'sh' }),       // the agent runs what mc-1 said
    row({ kind: 'process.exec', pid: 12, ppid: 11, comm: 'curl' }),     // …whose child stays under sh
    row({ kind: 'model.call', episodeId: EP, modelCallId: 'mc-2', via: 'sandbox', model: 'm' }),
    row({ kind: 'process.exec', pid: 13, ppid: 10, comm: 'sh' }),
    row({ kind: 'model.call', episodeId: EP, modelCallId: 'mc-3', via: 'api', model: 'm' }), // a trainer's call: not the sandbox's
    row({ kind: 'process.exec', pid: 14, ppid: 10, comm: 'sh' }),
  ];
  const t = buildTrace(EP, [SB], rows);
  const byId = (id: string) => t.unlinked.find((n) => n.event.modelCallId === id);
  assert.deepEqual(kids(byId('mc-1')), ['process.exec:11']);
  assert.deepEqual(kids(byId('mc-1')?.children[0]), ['process.exec:12']);
  assert.deepEqual(kids(byId('mc-2')), ['process.exec:13', 'process.exec:14']);
  assert.deepEqual(kids(byId('mc-3')), []);
  const agent = t.unlinked.find((n) => n.event.pid === 10);
  assert.deepEqual(kids(agent), [], 'the agent process itself keeps none of them');
});

test('traceEpisode handles episodes too large to spread into Math.min/Math.max', async () => {
  const n = 200_000;
  const own: RecordRow[] = [];
  for (let i = 0; i < n; i++) {
    // ts not in seq order: the window must come from the smallest and largest ts, not the ends
    const ts = i === 7 ? 1 : i === 11 ? 9e9 : 1000 + i;
    own.push({
      seq: i + 1, ts, kind: 'resource.sample', sandboxId: SB, episodeId: EP, step: null, toolCallId: null,
      modelCallId: null, pid: null, body: '{"kind":"resource.sample"}', hash: 'h',
    });
  }
  let window: [string[], number, number] | undefined;
  const store = {
    episodeRecords: async () => own,
    sandboxRecords: async (ids: string[], from: number, to: number) => { window = [ids, from, to]; return []; },
  } as unknown as LedgerStore;
  const t = await traceEpisode(store, EP);
  assert.deepEqual(window, [[SB], 1, 9e9]);
  assert.equal(t.samples['resource.sample'], n);
});

test('command.end lines name the exit code (or its absence) and a rounded duration', () => {
  const base = { kind: 'command.end', execId: 'x1', signal: null, timedOut: false };
  assert.equal(summarize({ ...base, exitCode: 0, durationMs: 19.20202000000063 }), 'command ended exit=0 after 19.2 ms');
  assert.equal(summarize({ ...base, exitCode: 3, durationMs: 1234.56 }), 'command ended exit=3 after 1235 ms');
  assert.equal(summarize({ ...base, exitCode: null, signal: 'SIGKILL', timedOut: true, durationMs: 61_234 }), 'command ended with no exit code signal=SIGKILL (timed out) after 61.2 s');
});

test('a tracked credential read says how many values are kept in, never the values', () => {
  assert.equal(summarize({ kind: 'secret.tracked', path: '/workspace/deploy/id_rsa', secrets: [{ name: 'read:id_rsa#1', what: 'private key', sha256: 'ab' }, { name: 'read:id_rsa#2', what: 'private key', sha256: 'cd' }], cut: 1 } as never),
    'credential /workspace/deploy/id_rsa read: 2 secret values kept from egress, 1 open connection(s) cut');
  assert.match(summarize({ kind: 'secret.tracked', path: '/x/.netrc', secrets: [], cut: 0, reason: 'not a regular file' } as never), /nothing tracked: not a regular file/);
});
