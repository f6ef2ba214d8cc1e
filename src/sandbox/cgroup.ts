// One cgroup per sandbox, in every hierarchy the host has: CPU quota, memory (no swap), pids,
// devices; live usage; freeze; kill of the whole tree. The unified hierarchy is used for
// freeze/kill/ids even on hybrid hosts, because cgroup.kill cannot miss a forking process.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { PraetorError, errorMessage } from '../errors.ts';
import { hierarchyRoots, type CgroupLayout, type V1Controller } from './cgroup-layout.ts';
import { killConfirmed } from './pidfd.ts';

export interface CgroupLimits {
  cpus?: number | undefined;        // fractions allowed
  memoryBytes?: number | undefined;
  pids?: number | undefined;
  /** extra character devices (major:minor or major:*) allowed, e.g. GPU grants. */
  devices?: string[] | undefined;
}

// The devices a task needs: null, zero, full, random, urandom, tty, ptmx and its own ptys.
// With a v1 devices controller everything else is denied at the cgroup too, so a device node
// that somehow appears inside the sandbox (a runtime bug, a bind mistake) still cannot be
// opened. On pure v2 there is no devices file: device control there needs a BPF_CGROUP_DEVICE
// program, which praetor does not attach, so v2 relies on the minimal /dev the runtime builds
// (only these nodes plus the granted GPU nodes are bound in) and nothing else.
const BASE_DEVICES = ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm', 'c 136:* rwm'];

export interface CgroupUsage {
  cpuMs: number;
  memBytes: number;
  memPeakBytes: number;
  pids: number;
  oomKills: number;
  memLimitHits: number;
  pidsLimitHits: number;
}

const CPU_PERIOD_US = 100_000;

/** For usage samples only: a counter file this kernel lacks (memory.peak) reads as 0. */
function read(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

/**
 * For containment and membership: an unreadable file is an error, never ''. An empty answer
 * from cgroup.procs would make "kill every process" kill nothing and report success.
 */
function readStrict(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch (cause) {
    throw new PraetorError('SANDBOX_FAILED', `cannot read ${path}: ${errorMessage(cause)}`, {
      cause, hint: 'the sandbox\'s cgroup is gone or unreadable: destroy the sandbox, and check that praetor runs as root',
    });
  }
}

/** The error says the cgroup directory itself is gone (the sandbox was removed). */
export function isCgroupGone(e: unknown): boolean {
  return e instanceof PraetorError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
function keyed(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export class Cgroup {
  readonly layout: CgroupLayout;
  /** relative path below each hierarchy's root, e.g. `praetor-1a2b3c4d/sb-…`. */
  readonly rel: string;

  constructor(layout: CgroupLayout, rel: string) {
    this.layout = layout;
    this.rel = rel;
  }

  /** Every directory of this cgroup, one per distinct hierarchy. */
  dirs(): string[] {
    return hierarchyRoots(this.layout).map((r) => `${r}/${this.rel}`);
  }

  v1(ctrl: V1Controller): string | undefined {
    const root = this.layout.v1[ctrl];
    return root ? `${root}/${this.rel}` : undefined;
  }

  get unifiedDir(): string | undefined {
    return this.layout.unified ? `${this.layout.unified}/${this.rel}` : undefined;
  }

  /** The files a launcher writes its pid into, so the sandbox starts inside every hierarchy. */
  procsFiles(): string[] {
    return this.dirs().map((d) => `${d}/cgroup.procs`);
  }

  create(limits: CgroupLimits): void {
    const { layout } = this;
    if (layout.mode === 'v2' && layout.unified) enableV2Controllers(layout.unified, this.rel, layout.v2Controllers);
    for (const d of this.dirs()) mkdirSync(d, { recursive: true });
    try {
      this.applyLimits(limits);
    } catch (e) {
      this.removeUnused();
      throw e;
    }
  }

  private write(dir: string | undefined, file: string, value: string, required = true): boolean {
    if (!dir) return false;
    const path = `${dir}/${file}`;
    if (!existsSync(path)) {
      if (required) throw new PraetorError('HOST_UNSUPPORTED', `cgroup file ${path} is missing`, { hint: 'enable the cpu, memory and pids cgroup controllers' });
      return false;
    }
    try { writeFileSync(path, value); } catch (cause) {
      throw new PraetorError('SANDBOX_FAILED', `writing ${value.trim()} to ${path} failed: ${errorMessage(cause)}`, { cause, hint: 'check the limit is within what the host allows' });
    }
    return true;
  }

  applyLimits(l: CgroupLimits): void {
    const v2 = this.layout.mode === 'v2' ? this.unifiedDir : undefined;
    if (l.cpus !== undefined) {
      const quota = Math.max(1000, Math.round(l.cpus * CPU_PERIOD_US));
      if (v2) this.write(v2, 'cpu.max', `${quota} ${CPU_PERIOD_US}`);
      else {
        this.write(this.v1('cpu'), 'cpu.cfs_period_us', String(CPU_PERIOD_US));
        this.write(this.v1('cpu'), 'cpu.cfs_quota_us', String(quota));
      }
    }
    if (l.memoryBytes !== undefined) {
      if (v2) {
        this.write(v2, 'memory.max', String(l.memoryBytes));
        this.write(v2, 'memory.swap.max', '0', false);
      } else {
        const m = this.v1('memory');
        this.write(m, 'memory.limit_in_bytes', String(l.memoryBytes));
        // memsw exists only with swap accounting; without it there is no swap to escape into.
        this.write(m, 'memory.memsw.limit_in_bytes', String(l.memoryBytes), false);
        this.write(m, 'memory.swappiness', '0', false);
      }
    }
    if (l.pids !== undefined) this.write(v2 ?? this.v1('pids'), 'pids.max', String(l.pids));
    const dev = this.v1('devices');
    if (dev && !v2) {
      this.write(dev, 'devices.deny', 'a');
      for (const d of [...BASE_DEVICES, ...(l.devices ?? []).map((x) => `c ${x} rwm`)]) this.write(dev, 'devices.allow', d);
    }
  }

  usage(): CgroupUsage {
    const v2 = this.layout.mode === 'v2' ? this.unifiedDir : undefined;
    if (v2) {
      const cpu = read(`${v2}/cpu.stat`);
      const mev = read(`${v2}/memory.events`);
      return {
        cpuMs: keyed(cpu, 'usage_usec') / 1000,
        memBytes: Number(read(`${v2}/memory.current`)) || 0,
        memPeakBytes: Number(read(`${v2}/memory.peak`)) || 0,
        pids: Number(read(`${v2}/pids.current`)) || 0,
        oomKills: keyed(mev, 'oom_kill'),
        memLimitHits: keyed(mev, 'max'),
        pidsLimitHits: keyed(read(`${v2}/pids.events`), 'max'),
      };
    }
    const m = this.v1('memory');
    const p = this.v1('pids');
    const acct = this.v1('cpuacct');
    return {
      cpuMs: (Number(read(`${acct}/cpuacct.usage`)) || 0) / 1e6,
      memBytes: Number(read(`${m}/memory.usage_in_bytes`)) || 0,
      memPeakBytes: Number(read(`${m}/memory.max_usage_in_bytes`)) || 0,
      pids: Number(read(`${p}/pids.current`)) || 0,
      oomKills: keyed(read(`${m}/memory.oom_control`), 'oom_kill'),
      memLimitHits: Number(read(`${m}/memory.failcnt`)) || 0,
      pidsLimitHits: keyed(read(`${p}/pids.events`), 'max'),
    };
  }

  /**
   * The sandbox's cgroup no longer exists in the hierarchy that lists its processes. The kernel
   * removes a cgroup directory only when it holds no task, so this proves none remains.
   */
  gone(): boolean {
    const d = this.unifiedDir ?? this.v1('pids') ?? this.v1('memory');
    return d !== undefined && !existsSync(d);
  }

  /** Host pids of every process in the sandbox; throws (never []) when they cannot be read. */
  pids(): number[] {
    const d = this.unifiedDir ?? this.v1('pids') ?? this.v1('memory');
    if (!d) throw new PraetorError('HOST_UNSUPPORTED', 'no cgroup hierarchy lists the sandbox\'s processes', { hint: 'mount cgroup v2, or the v1 pids or memory controller' });
    return readStrict(`${d}/cgroup.procs`).split('\n').filter(Boolean).map(Number);
  }

  /** Which freezer this host gives us: v2 (cgroup.freeze; SIGKILL still kills) or v1 (frozen tasks cannot die). */
  freezer(): 'v2' | 'v1' | undefined {
    const u = this.unifiedDir;
    if (u && existsSync(`${u}/cgroup.freeze`)) return 'v2';
    return this.v1('freezer') ? 'v1' : undefined;
  }

  /** What the kernel says now: every task of the cgroup is frozen (not merely asked to be). */
  isFrozen(): boolean {
    const u = this.unifiedDir;
    if (this.freezer() === 'v2') return /^frozen 1$/m.test(readStrict(`${u}/cgroup.events`));
    const f = this.v1('freezer');
    if (!f) return false;
    return readStrict(`${f}/freezer.state`).trim() === 'FROZEN';
  }

  /**
   * Freezes or thaws, and resolves only once the kernel reports the new state (cgroup.events
   * `frozen 1`, freezer.state FROZEN). A freeze that has not taken effect by the deadline
   * throws TIMEOUT: containment must never record a freeze that did not happen.
   */
  async freeze(frozen: boolean, timeoutMs = 1000): Promise<void> {
    const kind = this.freezer();
    if (!kind) throw new PraetorError('HOST_UNSUPPORTED', 'no cgroup freezer on this host', { hint: 'enable the freezer controller (v1) or use cgroup v2' });
    const dir = kind === 'v2' ? this.unifiedDir! : this.v1('freezer')!;
    const file = kind === 'v2' ? 'cgroup.freeze' : 'freezer.state';
    try { writeFileSync(`${dir}/${file}`, kind === 'v2' ? (frozen ? '1' : '0') : (frozen ? 'FROZEN' : 'THAWED')); } catch (cause) {
      throw new PraetorError('SANDBOX_FAILED', `writing ${dir}/${file} failed: ${errorMessage(cause)}`, { cause, hint: 'the sandbox\'s cgroup is gone, or praetor is not root' });
    }
    await waitUntil(() => this.isFrozen() === frozen, timeoutMs,
      () => `cgroup ${this.rel} did not report ${frozen ? 'frozen' : 'thawed'} within ${timeoutMs} ms`);
  }

  /** The kernel kills the whole tree for us (Linux 5.14+, unified hierarchy). */
  hasKillFile(): boolean {
    const u = this.unifiedDir;
    return !!u && existsSync(`${u}/cgroup.kill`);
  }

  /**
   * SIGKILLs every process, including ones forking as we go, and resolves once the cgroup is
   * empty; throws TIMEOUT when processes remain at the deadline. With cgroup.kill the kernel
   * walks the tree; without it, each process is killed through a pidfd with the cgroup frozen.
   */
  async kill(timeoutMs = 2000): Promise<void> {
    if (this.hasKillFile()) {
      const u = this.unifiedDir!;
      try { writeFileSync(`${u}/cgroup.kill`, '1'); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; throw e; }
    } else {
      const kind = this.freezer();
      // Freeze first so nothing forks between listing and killing; a v1-frozen task dies only
      // once thawed, so thaw after the signals.
      if (kind) await this.freeze(true).catch(() => { /* killed unfrozen: the wait below still checks */ });
      await killConfirmed(this.pids(), this.rel, { timeoutMs: 1, beforeWait: async () => { if (kind) await this.freeze(false).catch(() => {}); } });
    }
    await waitUntil(() => this.empty(), timeoutMs, () => `cgroup ${this.rel} still has processes ${timeoutMs} ms after the kill`);
  }

  /** No process left (a removed cgroup is empty too). */
  empty(): boolean {
    try { return this.pids().length === 0; } catch (e) { if (isCgroupGone(e)) return true; throw e; }
  }

  /** Kills everything, waits (bounded) for the cgroup to empty, removes every directory. */
  async remove(): Promise<void> {
    try { await this.kill(); } catch { /* rmdir below fails EBUSY and says so */ }
    for (const d of this.dirs()) {
      for (let i = 0; i < 50; i++) {
        try { rmdirSync(d); break; } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || i === 49) throw new PraetorError('SANDBOX_FAILED', `cannot remove cgroup ${d}: ${errorMessage(e)}`, { cause: e });
          await this.kill().catch(() => {});
          await sleep(2);
        }
      }
    }
  }

  /** Removes the directories of a cgroup that never held a process (a failed create). */
  removeUnused(): void {
    for (const d of this.dirs()) try { rmdirSync(d); } catch { /* not created */ }
  }
}

function enableV2Controllers(unified: string, rel: string, available: Set<string>): void {
  const want = ['cpu', 'memory', 'pids'].filter((c) => available.has(c)).map((c) => `+${c}`).join(' ');
  if (!want) return;
  const parts = rel.split('/');
  let dir = unified;
  for (let i = 0; i < parts.length - 1; i++) {
    try { writeFileSync(`${dir}/cgroup.subtree_control`, want); } catch { /* may already be set */ }
    dir = `${dir}/${parts[i]}`;
    mkdirSync(dir, { recursive: true });
  }
  try { writeFileSync(`${dir}/cgroup.subtree_control`, want); } catch { /* may already be set */ }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `ok` until it holds; throws TIMEOUT at the deadline. Asynchronous on purpose: a
 * containment that waits for a freeze must not stall every other tenant's API and the gateway
 * (which share this event loop) for up to seconds.
 */
async function waitUntil(ok: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let delay = 1; !ok(); delay = Math.min(delay + 1, 5)) {
    if (Date.now() > end) throw new PraetorError('TIMEOUT', what(), { hint: 'the host is overloaded or the sandbox is stuck in the kernel; it will be destroyed' });
    await sleep(delay);
  }
}

/** Lists sandbox cgroups (`sb-…`) under a praetor group, in the first hierarchy that has it. */
export function listSandboxCgroups(layout: CgroupLayout, group: string): string[] {
  const ids = new Set<string>();
  for (const r of hierarchyRoots(layout)) {
    try { for (const d of readdirSync(`${r}/${group}`)) if (d.startsWith('sb-')) ids.add(d); } catch { /* none */ }
  }
  return [...ids];
}
