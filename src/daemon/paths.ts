// Where a resident guard lives: one per state directory and network namespace. The socket path
// derives from the state directory, so parallel tests (each with its own state) and users of
// different states never meet one guard; the network namespace is part of the name because the
// guard's egress gateway runs in its own namespace, and a caller in another one (`ip netns exec`)
// must get a guard there, never sandboxes wired to a network it did not ask for.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, chmodSync } from 'node:fs';
import { resolve } from 'node:path';
import { PraetorError } from '../errors.ts';
import { pidAlive } from '../util/index.ts';

export interface GuardPaths { dir: string; sock: string; pidFile: string; log: string; startLock: string }

/** Unix socket paths are limited to 108 bytes (sun_path); leave room. */
const MAX_SOCK_PATH = 100;

export function guardPaths(stateDir: string): GuardPaths {
  const net = (() => { try { return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))?.[1] ?? 'net'; } catch { return 'net'; } })();
  const abs = resolve(stateDir);
  let dir = `${abs}/guard`;
  if (`${dir}/net-${net}.sock`.length > MAX_SOCK_PATH) {
    dir = `/run/praetor/guard-${createHash('sha256').update(abs).digest('hex').slice(0, 16)}`;
  }
  const base = `${dir}/net-${net}`;
  return { dir, sock: `${base}.sock`, pidFile: `${base}.pid`, log: `${base}.log`, startLock: `${base}.starting` };
}

/**
 * Creates the guard's directory root-owned and 0700 (only root can reach the socket in it), and
 * refuses one that someone else owns or opened up: a socket planted there would be a fake guard.
 */
export function ensureGuardDir(p: GuardPaths): void {
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(p.dir);
  if (!st.isDirectory() || st.uid !== 0) {
    throw new PraetorError('GUARD_REFUSED', `${p.dir} is not a directory owned by root`, { hint: `remove it (rm -rf ${p.dir}); praetor recreates it root-only` });
  }
  if ((st.mode & 0o077) !== 0) chmodSync(p.dir, 0o700);
}

export interface GuardPidRecord { pid: number; start: string; startedAt: number; version: string }

export function readGuardPid(p: GuardPaths): GuardPidRecord | undefined {
  try { return JSON.parse(readFileSync(p.pidFile, 'utf8')) as GuardPidRecord; } catch { return undefined; }
}

/** The resident guard of this state directory and namespace, when one is alive. */
export function residentGuard(stateDir: string): (GuardPidRecord & { uptimeMs: number; sock: string }) | undefined {
  const p = guardPaths(stateDir);
  const r = readGuardPid(p);
  if (!r || !pidAlive(r.pid, r.start)) return undefined;
  return { ...r, uptimeMs: Date.now() - r.startedAt, sock: p.sock };
}
