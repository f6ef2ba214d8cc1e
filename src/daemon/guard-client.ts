// The thin side of `praetor run`: finds (or starts) the resident guard of this state directory
// and network namespace, hands it the run, streams stdin/stdout/stderr, forwards Ctrl-C and
// SIGTERM, and returns the guard's report. Kept light on purpose: it loads no sandbox, sensor or
// rule code, so a run costs little more than a node start.
import { closeSync, openSync, statSync, unlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { PraetorError } from '../errors.ts';
import { ensureGuardDir, guardPaths, readGuardPid, type GuardPaths } from './paths.ts';
import { encode, lineReader, praetorVersion, PROTOCOL, type ClientMessage, type ServerMessage, type WireRunRequest } from './protocol.ts';

/** How long a client waits for a guard it started (or saw being started) to listen. */
const START_WAIT_MS = 20_000;
/** A guard that accepts but does not say hello within this long is wedged. */
const HELLO_TIMEOUT_MS = 10_000;
/** A start lock older than this belongs to a starter that died. */
const STALE_LOCK_MS = 20_000;

export interface GuardConnection {
  readonly guardPid: number;
  send(m: ClientMessage): void;
  /** Messages after the hello; `onClose` fires once, whether or not the guard said goodbye. */
  onMessage(fn: (m: ServerMessage) => void): void;
  onClose(fn: () => void): void;
  close(): void;
}

export type ConnectResult = { ok: true; conn: GuardConnection; started: boolean } | { ok: false; reason: string };

/**
 * Connects to the resident guard, starting one when none listens and `start` is set. Throws (no
 * fallback) when the guard refuses this client: not root, or another version.
 */
export async function connectGuard(stateDir: string, opts: { start: boolean }): Promise<ConnectResult> {
  const paths = guardPaths(stateDir);
  let sock = await tryConnect(paths.sock);
  let started = false;
  if (sock.kind === 'refused') throw notRoot(paths, sock.code);
  if (sock.kind === 'absent') {
    if (!opts.start) return { ok: false, reason: 'no resident guard is running' };
    const r = await startAndWait(stateDir, paths);
    if (!r.ok) return r;
    sock = r.sock;
    started = true;
  }
  if (sock.kind !== 'ok') return { ok: false, reason: 'the resident guard did not answer' };
  try {
    const conn = await hello(sock.sock, paths);
    return { ok: true, conn, started };
  } catch (e) {
    // A wedged guard is no guard: run in-process rather than hang (refusals still throw).
    if (e instanceof PraetorError && e.code === 'GUARD_UNAVAILABLE') return { ok: false, reason: e.message };
    throw e;
  }
}

type Attempt = { kind: 'ok'; sock: Socket } | { kind: 'absent' } | { kind: 'refused'; code: string };

function tryConnect(path: string): Promise<Attempt> {
  return new Promise((res) => {
    const s = connect(path);
    s.once('connect', () => { s.removeAllListeners('error'); res({ kind: 'ok', sock: s }); });
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.destroy();
      if (e.code === 'EACCES' || e.code === 'EPERM') res({ kind: 'refused', code: e.code });
      else res({ kind: 'absent' }); // ENOENT, ECONNREFUSED (a dead guard's socket), ENOTDIR
    });
  });
}

function notRoot(p: GuardPaths, code: string): PraetorError {
  return new PraetorError('GUARD_REFUSED', `the resident guard's socket ${p.sock} is root-only (${code}): praetor runs sandboxes as root, and this CLI runs as uid ${process.getuid?.()}`, { hint: 'run praetor as root (sudo praetor run …)' });
}

/** Starts a guard (unless another client is starting one) and waits until it listens. */
async function startAndWait(stateDir: string, paths: GuardPaths): Promise<{ ok: true; sock: Attempt } | { ok: false; reason: string }> {
  try { ensureGuardDir(paths); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw notRoot(paths, code);
    throw e;
  }
  let exited: string | undefined;
  if (takeStartLock(paths)) {
    let logFd: number | undefined;
    try {
      logFd = openSync(paths.log, 'a', 0o600);
      const main = new URL('../cli/main.ts', import.meta.url).pathname;
      const { spawn } = await import('node:child_process'); // only a starting client needs it
      // The state as an absolute path: the guard runs in /, not in this shell's directory.
      // Detached, in its own session: the user's Ctrl-C reaches the client (which forwards it for
      // its own run), never the guard that serves other runs too.
      const child = spawn(process.execPath, [main, 'daemon', 'run', '--state', resolve(stateDir)], { detached: true, stdio: ['ignore', logFd, logFd], cwd: '/', env: process.env });
      child.once('error', (e) => { exited = `could not start it: ${e.message}`; });
      child.once('exit', (code, sig) => { exited = `it exited (${sig ?? `code ${code}`}) at start; see ${paths.log}`; });
      child.unref();
    } catch (e) {
      try { unlinkSync(paths.startLock); } catch { /* gone */ }
      return { ok: false, reason: `could not start the resident guard: ${(e as Error).message}` };
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
  }
  const end = Date.now() + START_WAIT_MS;
  for (;;) {
    const a = await tryConnect(paths.sock);
    if (a.kind === 'ok') return { ok: true, sock: a };
    if (a.kind === 'refused') throw notRoot(paths, a.code);
    if (exited && !readGuardPid(paths)) {
      try { unlinkSync(paths.startLock); } catch { /* gone */ }
      return { ok: false, reason: `the resident guard did not start: ${exited}` };
    }
    if (Date.now() > end) return { ok: false, reason: `the resident guard did not listen within ${START_WAIT_MS / 1000} s; see ${paths.log}` };
    // Another client's starter died before the guard listened: take over.
    if (!exited && staleLock(paths) && takeStartLock(paths)) return startAndWait(stateDir, paths);
    await new Promise((r) => setTimeout(r, 15));
  }
}

function takeStartLock(p: GuardPaths): boolean {
  try { closeSync(openSync(p.startLock, 'wx', 0o600)); return true; } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    if (!staleLock(p)) return false;
    try { unlinkSync(p.startLock); } catch { /* another took it */ }
    try { closeSync(openSync(p.startLock, 'wx', 0o600)); return true; } catch { return false; }
  }
}

function staleLock(p: GuardPaths): boolean {
  try { return Date.now() - statSync(p.startLock).mtimeMs > STALE_LOCK_MS; } catch { return false; }
}

function hello(sock: Socket, paths: GuardPaths): Promise<GuardConnection> {
  return new Promise((resolve, reject) => {
    let listener: ((m: ServerMessage) => void) | undefined;
    const closers: Array<() => void> = [];
    let greeted = false;
    let closed = false;
    const timer = setTimeout(() => {
      reject(new PraetorError('GUARD_UNAVAILABLE', `the resident guard at ${paths.sock} did not answer within ${HELLO_TIMEOUT_MS / 1000} s`, { hint: `see ${paths.log}; \`praetor daemon stop\` stops it` }));
      sock.destroy();
    }, HELLO_TIMEOUT_MS);
    sock.on('data', lineReader((raw) => {
      const m = raw as ServerMessage;
      if (!greeted) {
        if (m.t === 'error') { reject(new PraetorError(m.error.code as 'GUARD_REFUSED', m.error.message, m.error.hint ? { hint: m.error.hint } : {})); sock.destroy(); return; }
        if (m.t !== 'hello') { reject(new PraetorError('GUARD_VERSION_MISMATCH', `the resident guard at ${paths.sock} did not answer with a hello`, { hint: 'stop it with `praetor daemon stop` and retry' })); sock.destroy(); return; }
        greeted = true;
        clearTimeout(timer);
        resolve({
          guardPid: m.pid,
          send: (x) => { if (!sock.destroyed) sock.write(encode(x)); },
          onMessage: (fn) => { listener = fn; },
          onClose: (fn) => { if (closed) fn(); else closers.push(fn); },
          close: () => sock.destroy(),
        });
        return;
      }
      listener?.(m);
    }, () => sock.destroy()));
    sock.on('error', () => { /* reported as close */ });
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      if (!greeted) reject(new PraetorError('GUARD_LOST', `the resident guard at ${paths.sock} closed the connection before answering`, { hint: `see ${paths.log}` }));
      for (const fn of closers.splice(0)) fn();
    });
    sock.write(encode({ t: 'hello', version: praetorVersion(), protocol: PROTOCOL }));
  });
}

export interface ClientIo {
  stdout: (c: Buffer) => void;
  stderr: (c: Buffer) => void;
  log: (msg: string) => void;
  stdin?: NodeJS.ReadableStream;
}

/** Runs one command through the guard; resolves with its report, rejects with GUARD_LOST if the guard dies. */
export function runThroughGuard(conn: GuardConnection, req: WireRunRequest, io: ClientIo): { report: Promise<unknown>; signal: (sig: 'SIGINT' | 'SIGTERM') => void } {
  const report = new Promise<unknown>((resolve, reject) => {
    let done = false;
    conn.onMessage((m) => {
      switch (m.t) {
        case 'out': io.stdout(Buffer.from(m.d, 'base64')); break;
        case 'err': io.stderr(Buffer.from(m.d, 'base64')); break;
        case 'log': io.log(m.msg); break;
        case 'report': done = true; resolve(m.report); break;
        case 'error': done = true; reject(new PraetorError(m.error.code as 'INTERNAL', m.error.message, m.error.hint ? { hint: m.error.hint } : {})); break;
        default: break;
      }
    });
    conn.onClose(() => {
      if (done) return;
      reject(new PraetorError('GUARD_LOST', `the resident guard (pid ${conn.guardPid}) went away during the run; its sandbox died with it (fail closed) and no report was written`, { hint: 'run the command again: the next run starts a new guard, and its gc removes what is left' }));
    });
    conn.send({ t: 'run', req });
    if (req.stdin && io.stdin) {
      io.stdin.on('data', (c: Buffer | string) => conn.send({ t: 'stdin', d: (Buffer.isBuffer(c) ? c : Buffer.from(c)).toString('base64') }));
      io.stdin.once('end', () => conn.send({ t: 'stdin-end' }));
      io.stdin.once('error', () => conn.send({ t: 'stdin-end' }));
    }
  });
  return { report, signal: (sig) => conn.send({ t: 'signal', sig }) };
}
