import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import { nowNs } from '../util/index.ts';
import { bpftraceSpawn, writeTrimmedEvents } from './bpftrace-launch.ts';
import { SensorCatchUp } from './sensor-catch-up.ts';
import { LineAssembler, type KernelRecord } from './ebpf-parse.ts';
import { DENIED_SYSCALLS, defaultScriptOptions, generateScript, PLACE_SYSCALLS, STRLEN } from './ebpf-script.ts';
import { describeFd, peersForInodes, readCmdline, readLink, sandboxCgroupIds, unifiedRoot } from './proc-util.ts';
import { isSensitivePath, isWatchedPath, resolveOpenPath } from './sensitive-paths.ts';
import { BpftraceMaps, bpfMapsUnavailableReason } from './bpf-maps.ts';
import { KernelKillTable } from './kernel-kill-table.ts';
import { fileId, SecretIdentities } from './secret-identities.ts';
import { scanCredentials } from './credential-scan.ts';
import type { SandboxResolver } from './sensor-types.ts';
import { ensureTracefs } from './tracefs.ts';

// The eBPF backend: one long-lived bpftrace per praetor process. Sandbox membership is decided in
// the kernel by cgroup ancestry (a `praetor*` directory above the task's cgroup, walked at exec,
// see ebpf-script.ts) and mapped to a sandbox id here. What changes while it runs (which sandbox
// the kernel kills what in) is written into its maps from here (bpf-maps.ts), never a restart.

export interface EbpfBackend {
  ready: Promise<void>;
  /** Resolves true once every event before `ns` (hrtime) was published; false on timeout or stop. */
  caughtUp(ns: bigint, timeoutMs: number): Promise<boolean>;
  /** the kernel kill's table (arm a sandbox with it), or why there is none */
  kernelKill(): KernelKillTable | string;
  /** learns the credentials a new sandbox already holds (KernelSensor.knowCredentials) */
  knowCredentials(sandboxCgroupId: bigint, pids: readonly number[]): number | string;
  stop(): Promise<void>;
}
export interface EbpfOptions {
  bus: EventBus; resolver: SandboxResolver;
  kernelFilter: boolean; praetorLevel: number; bpftrace?: string;
  /** bpftrace died after it was ready (not on stop) */
  onDied: (reason: string) => void;
  /** load the kill program: sandboxes armed through `kernelKill` get their names SIGKILLed at exec */
  kernelKill?: boolean;
  /** something the sensor cannot see from the start, in words */
  onDegraded?: (why: string) => void;
}

const READY_TIMEOUT_MS = 60_000;
/** bpftrace's nice value while it compiles (root may raise priority; back to 0 once ready) */
const COMPILE_NICE = -10;
/** sandbox cgroups seeded into the kernel filter at start (one map update each in BEGIN) */
const SEED_MAX = 1024;
/** how long a connect waits for its result line before it is reported as still pending */
const CONNECT_WAIT_MS = 20;

export function findBpftrace(explicit?: string): string | undefined {
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  for (const p of ['/usr/bin/bpftrace', '/usr/local/bin/bpftrace', '/usr/sbin/bpftrace']) if (existsSync(p)) return p;
  return undefined;
}

/** Why eBPF cannot run here, or undefined when it may. */
export function ebpfUnavailableReason(bin: string | undefined): string | undefined {
  if (!bin) return 'bpftrace not installed (apt-get install bpftrace)';
  if (process.getuid?.() !== 0) return 'not root: bpftrace needs CAP_BPF and CAP_PERFMON';
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux); the script reads task_struct';
  return undefined;
}

/** What the bpftrace process is started with; a prestarted one is adopted only if these match. */
type LaunchOptions = Pick<EbpfOptions, 'kernelFilter' | 'praetorLevel' | 'bpftrace' | 'kernelKill'>;

/** The running bpftrace, its records parsed; where they go is attached later (see prestartEbpf). */
interface SensorProcess {
  readonly key: string;
  readonly ready: Promise<void>;
  /** the kernel kill's table once ready, or why there is none */
  readonly kill: () => KernelKillTable | string;
  /** its maps once ready (the credential identities @si, the kill maps), if they can be written */
  readonly maps: () => BpftraceMaps | undefined;
  /** what it could not set up at launch, reported by whoever adopts it */
  readonly notes: readonly string[];
  attach(sink: { records(recs: KernelRecord[]): void; lost(n: number): void; died(reason: string): void }): void;
  readonly catchUp: SensorCatchUp;
  stop(): Promise<void>;
}

const launchKey = (o: LaunchOptions): string => JSON.stringify([o.kernelFilter, o.praetorLevel, o.bpftrace ?? null, o.kernelKill ?? false]);

let prestarted: SensorProcess | undefined;

/**
 * Starts bpftrace before the rest of the process is loaded: its compile and attach take seconds
 * in its own process, so a resident guard starting for a user's first `praetor run` overlaps
 * them with its own imports (issue 16's cold start). The next startEbpf with the same options
 * adopts it; records before that concern no watched sandbox and are dropped.
 */
export function prestartEbpf(o: LaunchOptions): void {
  if (prestarted) return;
  const p = launchSensorProcess(o);
  if (typeof p !== 'string') prestarted = p;
}

/** Stops a prestarted bpftrace nobody adopted (its process failed to start). */
export async function discardPrestartedEbpf(): Promise<void> {
  const p = prestarted;
  prestarted = undefined;
  await p?.stop();
}

export function startEbpf(o: EbpfOptions): EbpfBackend {
  let proc: SensorProcess | string;
  if (prestarted && prestarted.key === launchKey(o)) { proc = prestarted; prestarted = undefined; }
  else { void discardPrestartedEbpf(); proc = launchSensorProcess(o); }
  if (typeof proc === 'string') return { ready: Promise.reject(new Error(proc)), caughtUp: async () => false, kernelKill: () => proc as string, knowCredentials: () => proc as string, stop: async () => {} };
  const parents = new Map<number, number>();
  const p = proc;
  const secrets = new SecretIdentities();
  for (const n of p.notes) o.onDegraded?.(n);
  void p.ready.then(() => {
    const m = p.maps();
    const e = m ? secrets.attachMap(m) : undefined;
    if (e) o.onDegraded?.(e);
  }, () => undefined);
  const state: PublishState = { parents, secrets, readers: new Map(), killNames: [] };
  p.attach({
    records: (recs) => {
      state.killNames = killNames(p);
      for (const r of recs) publishRecord(o.bus, o.resolver, r, state, o.onDegraded);
    },
    // Dropped events mean a sandbox may have done something unseen: say so, loudly.
    lost: (n) => { o.bus.publish({ kind: 'sensor.degraded', sandboxId: 'host', sensor: 'ebpf', reason: `perf buffer lost ${n} events` }); },
    died: o.onDied,
  });
  return {
    ready: p.ready, caughtUp: (ns, ms) => p.catchUp.wait(ns, ms), kernelKill: () => p.kill(),
    knowCredentials(cg, pids) {
      const root = sandboxRoot(pids);
      if (!root) return 'no process of the sandbox has a root of its own';
      sweepSecrets(secrets, o.resolver);
      const found = scanCredentials(root);
      for (const c of found) { const e = secrets.learn(cg, fileId(c.ino, c.dev), c.path); if (e) return e; }
      return found.length;
    },
    stop: () => { secrets.detachMap(); return p.stop(); },
  };
}

/** Spawns bpftrace with the generated script, or says why it cannot run here. */
function launchSensorProcess(o: LaunchOptions): SensorProcess | string {
  const bin = findBpftrace(o.bpftrace);
  const why = ebpfUnavailableReason(bin);
  if (why) return why;
  const tfs = ensureTracefs();
  if (!tfs.ok) return tfs.reason;

  const token = `pt${randomBytes(6).toString('hex')}`;
  const sopts = defaultScriptOptions(token, release());
  sopts.kernelFilter = o.kernelFilter;
  sopts.praetorLevel = o.praetorLevel;
  sopts.openSyscalls = ['openat', 'openat2', 'open'].filter((s) => existsSync(`${tfs.path}/events/syscalls/sys_enter_${s}`));
  sopts.placeSyscalls = PLACE_SYSCALLS.filter((s) => existsSync(`${tfs.path}/events/syscalls/sys_enter_${s}`));
  // Kernels without module or kexec support have no tracepoint for those; bpftrace refuses to
  // attach to a missing one, so only the ones present are asked for.
  sopts.deniedSyscalls = DENIED_SYSCALLS.filter((s) => existsSync(`${tfs.path}/events/syscalls/sys_exit_${s}`));
  // Processes already running in sandboxes (a sensor started after them) are known from the start.
  const notes: string[] = [];
  const root = unifiedRoot();
  if (root && o.kernelFilter) {
    const seed = sandboxCgroupIds(root, o.praetorLevel, SEED_MAX);
    sopts.seedCgroups = seed.ids;
    if (seed.skipped > 0) notes.push(`${seed.skipped} existing sandbox cgroups beyond the first ${SEED_MAX} are watched only from their next exec`);
  }
  sopts.cgroupRmdir = existsSync(`${tfs.path}/events/cgroup/cgroup_rmdir`);
  let killOff = o.kernelKill ? kernelKillUnavailableReason(o.kernelFilter) : 'the sensor was started without it';
  if (!killOff) {
    sopts.kernelKill = true;
    sopts.waitSyscalls = ['wait4', 'waitid'].filter((s) => existsSync(`${tfs.path}/events/syscalls/sys_exit_${s}`));
  }
  const mapsOff = sopts.kernelFilter ? bpfMapsUnavailableReason() : undefined;
  if (mapsOff) notes.push(`credentials opened by a path under a system prefix (/usr/../home/…) are not seen: ${mapsOff}`);
  const dir = mkdtempSync(join(tmpdir(), 'praetor-ebpf-'));
  const script = join(dir, 'sensor.bt');
  const text = generateScript(sopts);
  writeFileSync(script, text, { mode: 0o600 });
  const launch = bpftraceSpawn({ bin: bin!, args: [...(sopts.kernelKill ? ['--unsafe'] : []), '-B', 'line', script], tracefs: tfs.path, events: writeTrimmedEvents(tfs.path, text, dir) });
  const child: ChildProcess = spawn(launch.cmd, launch.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...launch.env, BPFTRACE_STRLEN: String(STRLEN), BPFTRACE_PERF_RB_PAGES: '256', BPFTRACE_NO_USER_SYMBOLS: '1' },
  });
  // Its compile is the first run's critical path (issue 16's cold start), and on a small host it
  // competes with the guard's own start and the first warm sandbox: it goes first until READY.
  if (child.pid !== undefined) { try { setPriority(child.pid, COMPILE_NICE); } catch { /* not permitted: only slower */ } }
  const asm = new LineAssembler(token, sopts.argvMax);
  const catchUp = new SensorCatchUp();
  let sink: Parameters<SensorProcess['attach']>[0] | undefined;
  let diedOf: string | undefined; // died after ready, possibly before anyone attached
  let stopping = false;
  let stderrTail = '';
  let partial = '';
  let reportedLost = 0;
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(() => {});

  // The maps exist once bpftrace has loaded its programs (READY comes after that).
  let kill: KernelKillTable | undefined;
  let maps: BpftraceMaps | undefined;
  const openMaps = (): void => {
    if (!sopts.kernelFilter || mapsOff || child.pid === undefined) return;
    try {
      maps = BpftraceMaps.open(child.pid, ['si', ...(sopts.kernelKill ? ['kp', 'kc'] : [])]);
      if (sopts.kernelKill) kill = new KernelKillTable(maps);
    } catch (e) {
      killOff = `its maps cannot be written: ${errorMessage(e)}`;
    }
  };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    const now = performance.now();
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      const wasReady = asm.ready;
      const recs = asm.push(line, now);
      if (sink) sink.records(recs);
      // Ticks count only once someone receives the records: before attach, nothing is watched.
      if (asm.ticks.length > 0) { if (sink) for (const [cpu, ns] of asm.ticks) catchUp.tick(cpu, ns); asm.ticks.length = 0; }
      if (!wasReady && asm.ready) {
        rmSync(dir, { recursive: true, force: true });
        if (child.pid !== undefined) { try { setPriority(child.pid, 0); } catch { /* it exited */ } }
        openMaps();
        resolveReady();
      }
    }
    if (asm.lost > reportedLost && sink) {
      sink.lost(asm.lost - reportedLost);
      reportedLost = asm.lost;
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => { stderrTail = (stderrTail + c).slice(-2000); });
  const timer = setInterval(() => { const recs = asm.flush(performance.now(), CONNECT_WAIT_MS); if (sink) sink.records(recs); }, 10);
  timer.unref();
  const readyTimer = setTimeout(() => rejectReady(new Error(`bpftrace not ready after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
  readyTimer.unref();

  const exited = new Promise<void>((res) => child.once('exit', (code, sig) => {
    clearInterval(timer);
    clearTimeout(readyTimer);
    rmSync(dir, { recursive: true, force: true });
    catchUp.close();
    const reason = `bpftrace exited (${sig ?? `code ${code}`}): ${lastError(stderrTail)}`;
    if (!asm.ready) rejectReady(new Error(reason));
    else if (!stopping) { diedOf = reason; sink?.died(reason); }
    res();
  }));
  child.once('error', (e) => rejectReady(new Error(`cannot start bpftrace: ${errorMessage(e)}`)));

  return {
    key: launchKey(o),
    ready,
    kill: () => kill ?? killOff ?? 'the sensor is not ready yet',
    maps: () => maps,
    notes,
    catchUp,
    attach(s) { sink = s; if (diedOf !== undefined) s.died(diedOf); },
    async stop() {
      stopping = true;
      kill = undefined;
      killOff = 'the sensor stopped';
      maps?.close();
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT'); // lets bpftrace detach its probes
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

function learnSecret(secrets: SecretIdentities, resolver: SandboxResolver, r: Extract<KernelRecord, { type: 'open' }>, path: string, onDegraded?: (why: string) => void): void {
  sweepSecrets(secrets, resolver);
  const e = secrets.learn(r.sandboxCgroupId, r.fileId, path);
  if (e) onDegraded?.(e);
}

function sweepSecrets(secrets: SecretIdentities, resolver: SandboxResolver): void {
  if (secrets.sandboxes().length <= SECRET_SANDBOXES_SWEEP) return;
  for (const cg of secrets.sandboxes()) if (resolver.sandboxForCgroupId(cg) === undefined) secrets.forget(cg);
}

/** /proc/<pid>/root of the first of `pids` whose mount namespace is not ours: the sandbox's /. */
function sandboxRoot(pids: readonly number[]): string | undefined {
  const ours = readLink('/proc/self/ns/mnt');
  for (const pid of pids) {
    const ns = readLink(`/proc/${pid}/ns/mnt`);
    if (ns !== undefined && ns !== ours) return `/proc/${pid}/root`;
  }
  return undefined;
}

function lastError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() && !/RLIMIT_MEMLOCK|WARNING|^\s*~|^\s{2,}/.test(l));
  return lines.slice(-3).join(' | ') || 'no output';
}

/** Kernel monotonic ns (bpftrace `nsecs`) to the bus's wall-clock ns. */
function kernelToWall(k: bigint): number {
  const lag = process.hrtime.bigint() - k;
  return nowNs() - Number(lag);
}

function sandboxOf(resolver: SandboxResolver, sb: bigint, pid: number, leaf?: bigint): string | undefined {
  return resolver.sandboxForCgroupId(sb) ?? (leaf !== undefined ? resolver.sandboxForCgroupId(leaf) : undefined) ?? resolver.sandboxForPid(pid);
}

/**
 * The kill program needs bpf_send_signal (5.3) and pidfd_getfd (5.6) to arm it through its maps,
 * known from the release (asking bpftrace --info costs a quarter second of every cold start),
 * bpftrace's --unsafe, and the in-kernel sandbox filter (a kill is scoped to a sandbox's cgroup).
 */
function kernelKillUnavailableReason(kernelFilter: boolean): string | undefined {
  if (!kernelFilter) return 'the in-kernel sandbox filter is off';
  const [maj = 0, min = 0] = release().split(/[.-]/).map((x) => Number.parseInt(x, 10));
  if (maj < 5 || (maj === 5 && min < 6)) return `Linux ${release()} has no bpf_send_signal or pidfd_getfd (5.6+)`;
  return bpfMapsUnavailableReason();
}

function killNames(p: SensorProcess): readonly string[] {
  const k = p.kill();
  return typeof k === 'string' ? [] : k.ruleNames;
}

/** How many recent exec'd pids keep their parent (for resolving relative opens), oldest dropped first. */
const PARENTS_MAX = 4096;

/**
 * The directory a relative open is relative to. A short-lived reader (`cd ~/.aws && cat
 * credentials`) has exited before its record is read, so its /proc/<pid>/cwd is gone; it
 * inherited its cwd from the parent that forked it, which is usually still waiting for it.
 */
function openCwd(pid: number, parents: ReadonlyMap<number, number>): string | undefined {
  const own = readLink(`/proc/${pid}/cwd`);
  if (own !== undefined) return own;
  const ppid = parents.get(pid);
  return ppid === undefined ? undefined : readLink(`/proc/${ppid}/cwd`);
}

interface PublishState {
  /** recent exec'd pids' parents (for resolving relative opens) */
  parents: Map<number, number>;
  /** credentials by the file they are (secret-identities.ts) */
  secrets: SecretIdentities;
  /** live copy tools (COPY_TOOLS) that opened a credential for reading, which, and how many copies they made */
  readers: Map<number, { path: string; copies: number }>;
  killNames: readonly string[];
}

/** files a copy tool writes after reading a credential that count as its copies (one per source, and slack) */
const COPIES_PER_READER = 4;
/** programs whose output files are copies of their input files */
const COPY_TOOLS: ReadonlySet<string> = new Set(['cp', 'mv', 'dd', 'install', 'rsync']);
/** sandboxes with credential identities beyond which the ended ones are swept */
const SECRET_SANDBOXES_SWEEP = 64;

function publishRecord(bus: EventBus, resolver: SandboxResolver, r: KernelRecord, st: PublishState, onDegraded?: (why: string) => void): void {
  const { parents, killNames } = st;
  const sandboxId = sandboxOf(resolver, r.sandboxCgroupId, r.pid, r.type === 'exec' ? r.cgroupId : undefined);
  if (sandboxId === undefined) return;
  const ts = kernelToWall(r.ktimeNs);
  switch (r.type) {
    case 'exec': {
      parents.delete(r.pid);
      parents.set(r.pid, r.ppid);
      if (parents.size > PARENTS_MAX) parents.delete(parents.keys().next().value!);
      let argv = r.argv;
      // Longer than what the kernel side copies (argvMax): /proc has the rest while it lives.
      if (r.argvTruncated) { const full = readCmdline(r.pid); if (full && full.join('\0').length > argv.join('\0').length) argv = full; }
      const stdio = r.stdio.map((s, i) => describeFd(s.mode, s.ino, (s.mode & 0xf000) === 0xc000 ? undefined : readLink(`/proc/${r.pid}/fd/${i}`)));
      // The socket inode comes from the kernel, so a reverse shell is seen even if it is gone by
      // now; its peer address needs /proc/<pid or parent>/net/tcp (same network namespace).
      // A process the kernel killed for its network stdio is gone with its socket: the kernel's
      // own reading of the peer stands in for /proc's.
      const killed = r.kernelKill?.socket;
      const stdioPeers = killed
        ? r.stdio.map((s) => ((s.mode & 0xf000) === 0xc000 && s.ino === killed.ino ? killed.peer : ''))
        : peersForInodes(r.stdio.map((s) => ((s.mode & 0xf000) === 0xc000 ? s.ino : undefined)), [r.pid, r.ppid]);
      bus.publish({ kind: 'process.exec', sandboxId, ts, pid: r.pid, ppid: r.ppid, uid: r.uid, path: r.filename,
        argv, comm: r.comm, parentComm: r.parentComm, stdio, stdioPeers, sensor: 'ebpf',
        ...(r.kernelKill && killNames[r.kernelKill.rule] !== undefined ? { kernelKill: { rule: killNames[r.kernelKill.rule]!, ts: kernelToWall(r.kernelKill.ktimeNs) } } : {}) });
      break;
    }
    case 'exit':
      st.readers.delete(r.pid);
      bus.publish({ kind: 'process.exit', sandboxId, ts, pid: r.pid, comm: r.comm, exitCode: r.exitCode, signal: r.signal });
      break;
    case 'connect':
      bus.publish({ kind: 'net.connect', sandboxId, ts, pid: r.pid, comm: r.comm, family: r.family, dstIp: r.dstIp,
        dstPort: r.dstPort, result: r.result, sensor: 'ebpf' });
      break;
    case 'open': {
      const asked = resolveOpenPath(r.path, r.path.startsWith('/') ? undefined : openCwd(r.pid, parents));
      const write = (r.flags & 3) !== 0;
      let path = asked;
      if (isSensitivePath(asked)) {
        if (r.result >= 0) learnSecret(st.secrets, resolver, r, asked, onDegraded);
      } else {
        // Not a credential by this name: is it one by identity (a link to it, a moved key)?
        const known = st.secrets.lookup(r.sandboxCgroupId, r.fileId);
        if (known !== undefined) path = known;
        else {
          const reader = write && r.result >= 0 ? st.readers.get(r.pid) : undefined;
          if (reader && reader.copies < COPIES_PER_READER) {
            // What a copy tool writes after reading a credential is its copy (`mv` across
            // filesystems, `cp`, `dd`): reads of it by its own name are reads of the
            // credential. Threat: launder a key through a copy whose original is gone before
            // the guard reads it. Copy tools only: pip reads ~/.netrc and then writes a wheel,
            // which is no copy of it (seen: the arena's pip install became a canary read).
            reader.copies++;
            learnSecret(st.secrets, resolver, r, reader.path, onDegraded);
          }
          if (!isWatchedPath(asked, write)) return;
        }
      }
      if (!write && r.result >= 0 && COPY_TOOLS.has(r.comm) && isSensitivePath(path)) {
        st.readers.delete(r.pid);
        st.readers.set(r.pid, { path, copies: 0 });
        if (st.readers.size > PARENTS_MAX) st.readers.delete(st.readers.keys().next().value!);
      }
      const canary = resolver.canaryAt?.(sandboxId, path);
      bus.publish({ kind: 'file.open', sandboxId, ts, pid: r.pid, comm: r.comm, path, write, result: r.result,
        ...(path !== asked ? { openedAs: asked } : {}), ...(canary ? { canary } : {}) });
      break;
    }
    case 'denied':
      bus.publish({ kind: 'syscall.denied', sandboxId, ts, pid: r.pid, comm: r.comm, syscall: r.syscall, errno: r.errno });
      break;
    case 'unwatched':
      // Its connects, opens and exits are no longer seen: the sandbox's owner contains it.
      bus.publish({ kind: 'sensor.failed', sandboxId, sensor: 'ebpf', reason: `the kernel sensor's sandbox filter map is full; cgroup ${r.sandboxCgroupId} is not watched` });
      break;
  }
}
