// One writer per ledger file. Two writers would each extend the chain from the same head and
// fork it; the second one must be refused, loudly. The lock is a file created with O_EXCL that
// names its owner by pid and process start time, so a lock left by a SIGKILLed writer is
// recognised as stale (and taken over) while a live writer's lock is never stolen, even after
// pid reuse.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { PraetorError } from '../errors.ts';
import { pidAlive, readStartTime } from '../util/index.ts';

type Owner = { pid: number; start: string };

function alive(o: Owner): boolean {
  return pidAlive(o.pid, o.start);
}

export type FileLock = { release: () => void };

export function acquireWriterLock(ledgerPath: string): FileLock {
  const lockPath = `${ledgerPath}.lock`;
  const me: Owner = { pid: process.pid, start: readStartTime(process.pid) ?? '' };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o644);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      return {
        release: () => {
          try {
            const o = JSON.parse(readFileSync(lockPath, 'utf8')) as Owner;
            if (o.pid === me.pid && o.start === me.start) unlinkSync(lockPath);
          } catch { /* already gone */ }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PraetorError('LEDGER_UNAVAILABLE', `cannot create the ledger lock ${lockPath}: ${(e as Error).message}`, {
          hint: 'make the ledger directory writable and ensure the disk is not full', cause: e,
        });
      }
    }
    let owner: Owner | null = null;
    try { owner = JSON.parse(readFileSync(lockPath, 'utf8')) as Owner; } catch { /* half-written or gone */ }
    if (owner !== null && alive(owner)) {
      throw new PraetorError('CONFLICT', `the ledger ${ledgerPath} is being written by pid ${owner.pid}`, {
        hint: 'one writer per ledger: stop that praetor or use another --ledger path',
      });
    }
    // Stale (its writer is dead) or unreadable: remove and retry.
    try { unlinkSync(lockPath); } catch { /* raced with another taker */ }
  }
  throw new PraetorError('CONFLICT', `could not take the ledger lock ${lockPath}`, { hint: 'retry; another process keeps taking it' });
}
