import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attemptDeltas, type AttemptCount } from './nft.ts';

const att = (dst: string, packets: number, dport?: number): AttemptCount => ({ src: '100.64.0.2', dst, proto: dport === undefined ? 1 : 17, ...(dport !== undefined ? { dport } : {}), packets, bytes: packets * 60 });

test('attempt deltas: growth is reported once, unchanged counts are not', () => {
  const r1 = attemptDeltas(new Map(), [att('203.0.113.10', 3, 9999), att('203.0.113.10', 1)]);
  assert.deepEqual(r1.fresh.map((f) => f.delta), [3, 1]);
  const r2 = attemptDeltas(r1.next, [att('203.0.113.10', 5, 9999), att('203.0.113.10', 1)]);
  assert.deepEqual(r2.fresh.map((f) => [f.attempt.dport, f.delta]), [[9999, 2]]);
});

test('attempt deltas: an expired element that came back with a restarted counter is not silenced', () => {
  const old = attemptDeltas(new Map(), [att('203.0.113.10', 500, 9999)]).next;
  // 1 h later the element expired and the sandbox tried again: the counter restarts at 1
  const r = attemptDeltas(old, [att('203.0.113.10', 1, 9999)]);
  assert.deepEqual(r.fresh.map((f) => f.delta), [1]);
  assert.equal(r.next.get('100.64.0.2|203.0.113.10|17|9999'), 1);
});

test('attempt deltas: counts are rebuilt from each read (elements gone from the table are forgotten)', () => {
  const first = attemptDeltas(new Map(), [att('203.0.113.10', 2, 1), att('203.0.113.11', 2, 2)]).next;
  const r = attemptDeltas(first, [att('203.0.113.11', 2, 2)]);
  assert.deepEqual([...r.next.keys()], ['100.64.0.2|203.0.113.11|17|2']);
  assert.equal(r.fresh.length, 0);
});
