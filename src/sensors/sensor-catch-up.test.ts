import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpuList, SensorCatchUp } from './sensor-catch-up.ts';

const MS = 1_000_000n;
/** A tick read live: 1 ms after its stamp. */
const live = (c: SensorCatchUp, cpu: number, ns: bigint) => c.tick(cpu, ns, ns + MS);

test('a wait resolves only once every busy CPU ticked past it', async () => {
  const c = new SensorCatchUp(() => [0, 1]);
  live(c, 0, 100n * MS); live(c, 1, 100n * MS);
  const w = c.wait(105n * MS, 1000);
  let done: boolean | undefined; void w.then((ok) => { done = ok; });
  live(c, 0, 110n * MS); await Promise.resolve();
  assert.equal(done, undefined, 'CPU 1 still at 100 ms: its ring may hold an event from before 105');
  live(c, 1, 111n * MS); await w;
  assert.equal(done, true);
  assert.equal(await c.wait(108n * MS, 10), true, 'already past: at once');
});

test('an idle CPU (silent next to live ticks) holds nothing', () => {
  const c = new SensorCatchUp(() => [0, 1]);
  live(c, 0, 100n * MS); live(c, 1, 100n * MS);
  live(c, 0, 200n * MS);
  assert.equal(c.watermark(), 200n * MS);
  const never = new SensorCatchUp(() => [0, 1]);
  live(never, 0, 50n * MS);
  assert.equal(never.watermark(), undefined, 'the sensor is not yet steadily live');
  live(never, 0, 80n * MS);
  assert.equal(never.watermark(), 80n * MS, 'a CPU that never ticked is idle once the sensor has been live for 25 ms');
});

test('after a stall, one CPU\'s backlog read first does not release what another CPU\'s ring still holds', () => {
  const c = new SensorCatchUp(() => [0, 1]);
  live(c, 0, 100n * MS); live(c, 1, 100n * MS);
  // bpftrace stopped for 1.2 s: CPU 0's backlog comes first, read well after its stamps.
  c.tick(0, 700n * MS, 1300n * MS);
  c.tick(0, 1290n * MS, 1300n * MS + 6n * MS);
  assert.equal(c.watermark(), 100n * MS, 'not live: CPU 1 is not taken for idle');
  // Once CPU 1's ring was read and ticks are live again, it moves.
  c.tick(1, 1295n * MS, 1301n * MS); live(c, 0, 1300n * MS);
  assert.equal(c.watermark(), 1295n * MS);
});

test('after a stall, a backlog that ends in live ticks does not make another CPU idle until the sensor has been live a while', () => {
  // Seen in the full suite: bpftrace read CPU 0's whole backlog, its last ticks stamped just
  // before the read, while CPU 1's ring (holding the key's read) was still unread.
  const c = new SensorCatchUp(() => [0, 1]);
  live(c, 0, 100n * MS); live(c, 1, 100n * MS);
  c.tick(0, 700n * MS, 1300n * MS);
  live(c, 0, 1299n * MS);
  assert.equal(c.watermark(), 100n * MS, 'CPU 1 may hold an event from before 1299 ms');
  live(c, 0, 1310n * MS);
  assert.equal(c.watermark(), 100n * MS, 'live for 11 ms only');
  c.tick(1, 1200n * MS, 1312n * MS); // CPU 1's backlog, read late: the live run starts over
  live(c, 0, 1330n * MS);
  assert.equal(c.watermark(), 1200n * MS, 'CPU 1 was read up to 1200 ms; not yet idle');
  live(c, 0, 1356n * MS);
  assert.equal(c.watermark(), 1356n * MS, 'live for 26 ms since the last late read: CPU 1 is idle');
});

test('only online CPUs count', () => {
  assert.deepEqual(parseCpuList('0-2,4\n'), [0, 1, 2, 4]);
  const c = new SensorCatchUp(() => [0, 2]);
  live(c, 0, 500n * MS); live(c, 1, 100n * MS); live(c, 2, 498n * MS);
  assert.equal(c.watermark(), 498n * MS, 'CPU 1 is offline');
});

test('fails closed: a timeout or a stopped sensor answers false', async () => {
  const c = new SensorCatchUp(() => [0]);
  assert.equal(await c.wait(5n, 20), false, 'no tick ever came');
  const w = c.wait(10n, 10_000);
  c.close();
  assert.equal(await w, false);
  assert.equal(await c.wait(1n, 10_000), false);
});
