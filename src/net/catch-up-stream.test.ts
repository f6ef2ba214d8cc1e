import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CatchUpError, CatchUpStream, type CatchUp } from './catch-up-stream.ts';

/** A sensor whose watermark moves only when the test ticks it. */
function fakeSensor(): { catchUp: CatchUp; tick(): void } {
  let mark = 0n;
  const waiters: Array<{ at: bigint; done: (ok: boolean) => void }> = [];
  return {
    catchUp: (at) => (at <= mark ? Promise.resolve(true) : new Promise((done) => waiters.push({ at, done }))),
    tick() {
      mark = process.hrtime.bigint();
      for (const w of waiters.splice(0)) if (w.at <= mark) w.done(true); else waiters.push(w);
    },
  };
}
const settle = () => new Promise((r) => setImmediate(r));

test('nothing passes before the sensor is past it; every chunk that came before a tick leaves with it, in order', async () => {
  const s = fakeSensor();
  const hold = new CatchUpStream(s.catchUp);
  const out: string[] = [];
  hold.on('data', (d: Buffer) => out.push(d.toString()));
  for (let i = 0; i < 10; i++) hold.write(`c${i};`);
  await settle();
  assert.deepEqual(out, [], 'held until the sensor reports up to them');
  s.tick();
  await settle();
  assert.equal(out.join(''), Array.from({ length: 10 }, (_, i) => `c${i};`).join(''), 'one tick releases all ten');
  hold.write('late;');
  await settle();
  assert.equal(out.length, 10, 'a chunk after the tick waits for the next');
  const ended = new Promise((r) => hold.once('end', r));
  hold.end();
  s.tick();
  await ended;
  assert.equal(out.at(-1), 'late;');
});

test('a sensor that does not catch up fails the stream closed: the held bytes never leave', async () => {
  const hold = new CatchUpStream(async () => false);
  const out: Buffer[] = [];
  hold.on('data', (d: Buffer) => out.push(d));
  const err = new Promise<Error>((r) => hold.once('error', r));
  hold.write('secret');
  assert.ok((await err) instanceof CatchUpError);
  assert.deepEqual(out, []);
});
