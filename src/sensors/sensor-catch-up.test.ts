import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpuList, SensorCatchUp } from './sensor-catch-up.ts';

test('a wait resolves only once every CPU ticked past it', async () => {
  const c = new SensorCatchUp(() => [0, 1]);
  c.tick(0, 100n); c.tick(1, 100n);
  const w = c.wait(150n, 1000);
  let done: boolean | undefined; void w.then((ok) => { done = ok; });
  c.tick(0, 200n); await Promise.resolve();
  assert.equal(done, undefined, 'CPU 1 still at 100: its ring may hold an event from before 150');
  c.tick(1, 160n); await w;
  assert.equal(done, true);
  assert.equal(await c.wait(120n, 10), true, 'already past: at once');
});

test('after a stall, one CPU\'s backlog far ahead does not release what another CPU\'s ring still holds', () => {
  const c = new SensorCatchUp(() => [0, 1]);
  c.tick(0, 1_000n); c.tick(1, 1_000n);
  c.tick(0, 5_000_000_000n); // CPU 0's ring read whole first, seconds ahead
  assert.equal(c.watermark(), 1_000n);
});

test('only online CPUs count: an offline one holds nothing, one without a tick yet holds everything', () => {
  assert.deepEqual(parseCpuList('0-2,4\n'), [0, 1, 2, 4]);
  const c = new SensorCatchUp(() => [0, 2]);
  c.tick(0, 500n); c.tick(1, 100n);
  assert.equal(c.watermark(), undefined, 'CPU 2 has not ticked');
  c.tick(2, 700n);
  assert.equal(c.watermark(), 500n, 'CPU 1 is offline');
});

test('fails closed: a timeout or a stopped sensor answers false', async () => {
  const c = new SensorCatchUp();
  assert.equal(await c.wait(5n, 20), false, 'no tick ever came');
  const w = c.wait(10n, 10_000);
  c.close();
  assert.equal(await w, false);
  assert.equal(await c.wait(1n, 10_000), false);
});
