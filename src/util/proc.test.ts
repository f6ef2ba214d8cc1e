import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeWaitStatus, pidAlive, readStartTime } from './proc.ts';

test('readStartTime and pidAlive tell a live process from a recycled or dead pid', () => {
  const mine = readStartTime(process.pid);
  assert.match(mine ?? '', /^\d+$/);
  assert.equal(pidAlive(process.pid, mine!), true);
  assert.equal(pidAlive(process.pid, '1'), false, 'same pid, other start time: not the recorded process');
  assert.equal(pidAlive(2 ** 22 + 1, '1'), false, 'beyond pid_max: never alive');
});

test('decodeWaitStatus', () => {
  assert.deepEqual(decodeWaitStatus(7 << 8), { code: 7, signal: null });
  assert.deepEqual(decodeWaitStatus(9), { code: null, signal: 9 });
  assert.deepEqual(decodeWaitStatus(0x80 | 11), { code: null, signal: 11 }, 'core-dump bit ignored');
});
