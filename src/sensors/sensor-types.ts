import type { EventBus } from '../events/index.ts';
import type { ExecIdentity } from './exec-identity.ts';

/** Maps kernel identities to sandboxes; the sandbox manager implements it. */
export interface SandboxResolver {
  /** the id of the sandbox whose unified (v2) cgroup directory has this inode number */
  sandboxForCgroupId(id: bigint | number): string | undefined;
  sandboxForPid(pid: number): string | undefined;
  /** the canary credential planted at this path in this sandbox, if any (file.open's `canary`) */
  canaryAt?(sandboxId: string, path: string): string | undefined;
}

export interface KernelSensor {
  /** which backend watches now: it changes from 'ebpf' to 'procfs' if bpftrace dies */
  readonly mode: 'ebpf' | 'procfs';
  /** resolves once events are being captured */
  readonly ready: Promise<void>;
  /**
   * Resolves true once every event the kernel stamped before `ns` (process.hrtime.bigint())
   * was published on the bus (sensor-catch-up.ts); false after `timeoutMs` or once stopped. The
   * /proc scanner polls and can promise nothing: it answers true at once (it runs degraded).
   */
  caughtUp(ns: bigint, timeoutMs: number): Promise<boolean>;
  /**
   * Arms the kernel kill for one sandbox (its unified cgroup id): its processes whose name is in
   * a rule's set die at exec. Returns why not when it cannot (no eBPF, no bpf_send_signal, a full
   * map, a sensor started without `kernelKill`): those rules then contain from user space.
   * An empty rule list disarms it.
   */
  armKernelKill(sandboxCgroupId: bigint, rules: readonly KernelKillRule[]): string | undefined;
  /**
   * Learns the credential files a new sandbox already holds (image, canaries, host writes), seen
   * through the root of one of `pids` (its runtime's processes), so that a read of one by another
   * name (a symlink, a hard link, a moved key) is reported as a read of it. Returns how many were
   * found, or why it cannot (no eBPF: the /proc scanner matches names only).
   */
  knowCredentials(sandboxCgroupId: bigint, pids: readonly number[]): number | string;
  stop(): Promise<void>;
}

export interface KernelSensorOptions {
  bus: EventBus;
  resolver: SandboxResolver;
  /** called with the reason whenever the sensor runs below its best mode */
  onDegraded?: (reason: string) => void;
  /** 'auto' (default): bpftrace, else the /proc scanner. 'procfs' forces the fallback. */
  mode?: 'auto' | 'ebpf' | 'procfs';
  /** drop non-sandbox events in the kernel (default true); false leaves it to Node */
  kernelFilter?: boolean;
  /** level of the praetor-<hash> cgroup directories below the unified root (default 1) */
  praetorLevel?: number;
  /** /proc poll period of the fallback, ms (default 20) */
  procfsIntervalMs?: number;
  /** bpftrace binary (default: /usr/bin/bpftrace, else from PATH) */
  bpftrace?: string;
  /** executable identity for proc.tool (default: a new one from rules/known-tools.yaml); false: none */
  identity?: ExecIdentity | false;
  /** load the eBPF kill program, so that armKernelKill can arm sandboxes (needs --unsafe) */
  kernelKill?: boolean;
}

/**
 * One `kernel_kill: true` rule as the eBPF sensor needs it: its name, its comm set, and whether
 * the kernel also requires fd 0-2 to be an inet socket with a peer (a reverse shell's stdio).
 */
export interface KernelKillRule { rule: string; comms: readonly string[]; stdioNet?: boolean }

/** Events about the sensor itself concern every sandbox on the host. */
export const HOST_SANDBOX = 'host';
