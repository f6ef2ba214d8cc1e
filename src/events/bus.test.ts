// The bus delivers causes before effects to every subscriber, also to one registered after the
// listener that publishes the effect (issue 17 §7: an alert reached the dashboard, episodes and
// metrics before the event that raised it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBus } from './bus.ts';
import type { PraetorEvent } from './schema.ts';

function exec(bus: EventBus, pid: number): PraetorEvent {
  return bus.publish({ kind: 'process.exec', sandboxId: 'sb-t', pid, path: '/bin/x', argv: ['x'] } as never);
}

test('a late subscriber sees the cause before the alert a listener published for it', () => {
  const bus = new EventBus();
  const returned: PraetorEvent[] = [];
  // The "rule engine": registered first, raises an alert from inside its listener.
  bus.subscribe((e) => {
    if (e.kind !== 'process.exec') return;
    returned.push(bus.publish({ kind: 'alert', sandboxId: e.sandboxId, rule: 'r', priority: 'WARNING', tags: [], output: 'o', evidence: [e.id], maturity: 'stable', actions: ['alert'] } as never));
  });
  const late: string[] = [];
  bus.subscribe((e) => late.push(`${e.kind}:${e.id}`));
  const cause = exec(bus, 1);
  assert.equal(returned.length, 1, 'the nested publish returned its stamped event synchronously');
  assert.ok(returned[0]!.id && returned[0]!.ts >= cause.ts);
  assert.deepEqual(late, [`process.exec:${cause.id}`, `alert:${returned[0]!.id}`]);
});

test('every subscriber sees one order, nested publishes FIFO, all delivered before publish returns', () => {
  const bus = new EventBus();
  const views: string[][] = [[], [], []];
  // Listener 0 turns each exec into two alerts; listener 1 turns each alert into a containment.
  bus.subscribe((e) => {
    views[0]!.push(e.kind);
    if (e.kind === 'process.exec') for (let i = 0; i < 2; i++) bus.publish({ kind: 'alert', sandboxId: 'sb-t', rule: `r${i}`, priority: 'WARNING', tags: [], output: 'o', evidence: [e.id], maturity: 'stable', actions: ['alert'] } as never);
  });
  bus.subscribe((e) => {
    views[1]!.push(e.kind);
    if (e.kind === 'alert') bus.publish({ kind: 'containment', sandboxId: 'sb-t', action: 'freeze', alertId: e.id, rule: 'r', ok: true, latencyMs: 0 } as never);
  });
  bus.subscribe((e) => views[2]!.push(e.kind));
  exec(bus, 1);
  const want = ['process.exec', 'alert', 'alert', 'containment', 'containment'];
  for (const v of views) assert.deepEqual(v, want);
});

test('a throwing listener neither silences the others nor wedges the queue', () => {
  const errors: unknown[] = [];
  const bus = new EventBus({ onListenerError: (err) => errors.push(err) });
  bus.subscribe((e) => {
    if (e.kind === 'process.exec') { bus.publish({ kind: 'sandbox.paused', sandboxId: 'sb-t' } as never); throw new Error('boom'); }
  });
  const seen: string[] = [];
  bus.subscribe((e) => seen.push(e.kind));
  exec(bus, 1);
  exec(bus, 2);
  assert.equal(errors.length, 2);
  assert.deepEqual(seen, ['process.exec', 'sandbox.paused', 'process.exec', 'sandbox.paused']);
});
