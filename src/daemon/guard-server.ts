// The resident guard: one long-lived root process per state directory and network namespace that
// keeps the kernel sensor, the GPU sensor and the compiled rules warm, and runs each `praetor
// run` it is asked for as today's in-process run would (runGuarded: its own bus, policy, rules,
// gateway, containment, ledger), streaming the command's output back over the socket.
//
// Fail closed, in both directions: a client that disconnects mid-run gets its sandbox destroyed
// (nobody would see what it does next); a guard that dies takes its sandboxes with it (their init
// holds pipes only to this process and exits at EOF; bwrap dies with its parent), and the next
// guard's start-up gc reaps what is left on disk.
import { chmodSync, existsSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { PraetorError, errorMessage, isPraetorError } from '../errors.ts';
import { runGuarded, startResidentHost, type ResidentHost } from '../runner/index.ts';
import { SandboxManager } from '../sandbox/index.ts';
import { readStartTime, pidAlive } from '../util/index.ts';
import { ensureGuardDir, guardPaths, readGuardPid, type GuardPaths, type GuardPidRecord } from './paths.ts';
import { createPeerCred } from './peer-cred.ts';
import { encode, lineReader, praetorVersion, PROTOCOL, type ServerMessage, type WireError } from './protocol.ts';
import { WireRunRequestSchema } from './run-request-schema.ts';

export interface GuardServer {
  readonly paths: GuardPaths;
  /** Resolves when the guard has stopped (asked to, signalled, or its socket was removed). */
  readonly stopped: Promise<void>;
  stop(reason: string): Promise<void>;
}

/** Default sandboxes kept ready: one run -- true takes one while the next is made. */
const DEFAULT_POOL = 2;
/** How often the guard checks that its socket and pid file still name it (a removed state dir). */
const WATCHDOG_MS = 1000;
/** How long a stop waits for runs to hand in their reports after their sandboxes were destroyed. */
const STOP_GRACE_MS = 10_000;

export async function startGuardServer(o: { stateDir: string; log: (msg: string) => void }): Promise<GuardServer> {
  if (process.getuid?.() !== 0) throw new PraetorError('NOT_ROOT', 'the resident guard needs root (namespaces, cgroups, eBPF, nftables)', { hint: 'run it as root' });
  const paths = guardPaths(o.stateDir);
  ensureGuardDir(paths);
  const version = praetorVersion();
  const me: GuardPidRecord = { pid: process.pid, start: readStartTime(process.pid) ?? '', startedAt: Date.now(), version };
  claimPidFile(paths, me);
  const release = () => {
    const r = readGuardPid(paths);
    if (r?.pid === me.pid && r.start === me.start) { rmSync(paths.pidFile, { force: true }); rmSync(paths.sock, { force: true }); }
  };
  let host: ResidentHost | undefined;
  let server: Server | undefined;
  try {
    rmSync(paths.sock, { force: true }); // a dead guard's; we hold the pid file now
    // The kernel sensor first: bpftrace compiles for seconds in its own process while the rest
    // starts (the first run waits for it, see startResidentHost's ready).
    // PRAETOR_GUARD_POOL: how many default sandboxes to keep ready (0: none).
    const poolSize = Number(process.env.PRAETOR_GUARD_POOL ?? DEFAULT_POOL);
    host = startResidentHost({ log: o.log, stateDir: o.stateDir, poolSize: Number.isInteger(poolSize) && poolSize >= 0 ? poolSize : DEFAULT_POOL });
    // Reap what a guard (or an in-process run) that died left behind, once, before serving.
    await SandboxManager.open({ stateDir: o.stateDir, gcOnOpen: true });
    // The warm pool fills now, while bpftrace compiles in its own process and this one idles:
    // filled after the sensor is ready, its synchronous setup delayed the first run by ~0.5 s.
    // A pool sandbox runs nothing until a run takes it, and runs start only once the sensor is
    // ready. A stop mid-fill waits for the creations in flight (WarmPool.close).
    void host.startPool().catch((e: unknown) => o.log(`warm pool: ${errorMessage(e)}`));
    server = createServer({ allowHalfOpen: false });
    const s = server;
    await new Promise<void>((res, rej) => { s.once('error', rej); s.listen(paths.sock, () => { s.off('error', rej); res(); }); });
  } catch (e) {
    server?.close();
    await host?.close({ wait: false });
    release();
    throw e;
  }
  // listen() creates the socket with the umask's mode; the directory (0700 root) is the gate,
  // the socket's own mode and SO_PEERCRED are the second and third.
  chmodSync(paths.sock, 0o600);
  rmSync(paths.startLock, { force: true });
  o.log(`guard ${version} listening on ${paths.sock} (pid ${process.pid})`);

  const peerCred = createPeerCred();
  const runs = new Map<Socket, { abort: AbortController; done: Promise<void> }>();
  const residentHost = host;
  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });

  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      o.log(`stopping: ${reason}`);
      clearInterval(watchdog);
      server!.close();
      for (const r of runs.values()) r.abort.abort('the resident guard is stopping');
      await Promise.race([Promise.allSettled([...runs.values()].map((r) => r.done)), new Promise((r) => setTimeout(r, STOP_GRACE_MS))]);
      await residentHost.close({ wait: true });
      release();
      resolveStopped();
    })();
    return stopping;
  };

  // A removed state directory (a test's cleanup) or a replaced pid file means this guard is no
  // longer the one clients find: it must not linger holding probes and sandboxes.
  const watchdog = setInterval(() => {
    const r = readGuardPid(paths);
    if (!existsSync(paths.sock) || r?.pid !== me.pid) void stop('its socket or pid file is gone');
  }, WATCHDOG_MS);
  watchdog.unref();

  server.on('connection', (sock) => {
    sock.on('error', () => { /* the client went away; handled on close */ });
    const send = (m: ServerMessage) => { if (!sock.destroyed) sock.write(encode(m)); };
    const fail = (err: WireError) => { send({ t: 'error', error: err }); sock.end(); };
    const cred = peerCred(sock);
    if (!cred || cred.uid !== 0) {
      // Sandboxes run as root on the caller's behalf; a non-root caller gets nothing.
      o.log(`refused a connection from uid ${cred?.uid ?? 'unknown'} (pid ${cred?.pid ?? '?'})`);
      fail({ code: 'GUARD_REFUSED', message: `the resident guard serves root only; this client runs as uid ${cred?.uid ?? 'unknown'}`, hint: 'run praetor as root (sudo praetor run …)' });
      return;
    }
    let greeted = false;
    let stdin: PassThrough | undefined;
    let abort: AbortController | undefined;
    const onMessage = (m: unknown) => {
      const msg = m as { t?: string; [k: string]: unknown };
      if (!greeted) {
        if (msg.t !== 'hello' || msg.version !== version || msg.protocol !== PROTOCOL) {
          fail({ code: 'GUARD_VERSION_MISMATCH', message: `the resident guard (pid ${process.pid}) is version ${version} (protocol ${PROTOCOL}); this CLI is ${String(msg.version)} (protocol ${String(msg.protocol)})`, hint: `stop the old guard with \`praetor daemon stop${o.stateDir ? ` --state ${o.stateDir}` : ''}\`; the next run starts one of this version` });
          return;
        }
        greeted = true;
        send({ t: 'hello', version, protocol: PROTOCOL, pid: process.pid, startedAt: me.startedAt });
        return;
      }
      switch (msg.t) {
        case 'status':
          send({ t: 'status', pid: process.pid, version, startedAt: me.startedAt, runs: runs.size, sensor: residentHost.sensorMode(), degraded: residentHost.degraded() });
          sock.end();
          return;
        case 'stop':
          void stop('asked to (praetor daemon stop)').then(() => { send({ t: 'stopped' }); sock.end(); });
          return;
        case 'stdin': stdin?.write(Buffer.from(String(msg.d), 'base64')); return;
        case 'stdin-end': stdin?.end(); return;
        case 'signal': abort?.abort(String(msg.sig)); return;
        case 'run': {
          if (abort || stopping) { fail({ code: 'BAD_STATE', message: stopping ? 'the resident guard is stopping' : 'one run per connection', hint: 'retry; the next run starts a new guard' }); return; }
          const parsed = WireRunRequestSchema.safeParse(msg.req);
          if (!parsed.success) { fail({ code: 'BAD_ARGUMENT', message: `bad run request: ${parsed.error.issues[0]?.message ?? 'invalid'}`, hint: 'use a CLI of the same version as the guard' }); return; }
          const ac = new AbortController();
          abort = ac;
          const w = parsed.data;
          if (w.stdin) stdin = new PassThrough();
          const done = runGuarded({
            argv: w.argv, stateDir: o.stateDir, spec: w.spec as never, detect: w.detect,
            ...(w.policyFile ? { policyFile: w.policyFile } : {}), ...(w.phase ? { phase: w.phase } : {}),
            ...(w.timeoutMs !== undefined ? { timeoutMs: w.timeoutMs } : {}), ...(w.ledgerPath ? { ledgerPath: w.ledgerPath } : {}),
            ...(stdin ? { stdin } : {}),
            stdout: (c) => send({ t: 'out', d: c.toString('base64') }),
            stderr: (c) => send({ t: 'err', d: c.toString('base64') }),
            log: (m2) => send({ t: 'log', msg: m2 }),
            signal: ac.signal, host: residentHost, gcOnOpen: false,
          }).then((report) => { send({ t: 'report', report }); sock.end(); }, (e: unknown) => {
            if (!isPraetorError(e)) o.log(`run failed: ${e instanceof Error ? e.stack : String(e)}`);
            fail(isPraetorError(e) ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } : { code: 'INTERNAL', message: `internal error in the resident guard: ${errorMessage(e)}`, hint: `see the guard's log, ${paths.log}` });
          }).finally(() => { runs.delete(sock); });
          runs.set(sock, { abort: ac, done });
          return;
        }
        default:
          fail({ code: 'BAD_ARGUMENT', message: `unknown message "${String(msg.t)}"`, hint: 'use a CLI of the same version as the guard' });
      }
    };
    sock.on('data', lineReader(onMessage, (why) => { fail({ code: 'BAD_ARGUMENT', message: `the client sent ${why}`, hint: 'use the praetor CLI' }); }));
    // The client went away mid-run (killed, Ctrl-C twice, its pipe closed): nobody would see what
    // the command does next, so its sandbox goes now.
    sock.on('close', () => { abort?.abort('the client disconnected'); stdin?.end(); });
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => { void stop(sig); });
  return { paths, stopped, stop };
}

/** Takes the pid file, or throws when a live guard holds it. */
function claimPidFile(p: GuardPaths, me: GuardPidRecord): void {
  for (let i = 0; i < 2; i++) {
    try { writeFileSync(p.pidFile, JSON.stringify(me), { flag: 'wx', mode: 0o600 }); return; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const r = readGuardPid(p);
      if (r && pidAlive(r.pid, r.start)) throw new PraetorError('CONFLICT', `a resident guard already runs (pid ${r.pid})`, { hint: 'use it, or stop it with `praetor daemon stop`' });
      try { unlinkSync(p.pidFile); } catch { /* raced with another starter */ }
    }
  }
  throw new PraetorError('CONFLICT', 'another resident guard is starting', { hint: 'retry in a moment' });
}
