import type { ChildProcess } from 'node:child_process';
import type { CgroupLayout } from '../cgroup-layout.ts';

/** Capabilities the init keeps (to drop each command to the agent uid and signal it); nothing else. */
export const INIT_CAPS = ['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_KILL'] as const;
/** Top-level directories that are symlinks into /usr on merged-usr hosts (bound or linked alike). */
export const USR_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'] as const;

export type RuntimeName = 'bwrap' | 'crun' | 'runsc';
export const RUNTIME_NAMES: readonly RuntimeName[] = ['bwrap', 'crun', 'runsc'];

/**
 * A host character device granted to a sandbox. The numbers come from stat(2) of the node, never
 * from its name: nvidia-uvm, nvidia-uvm-tools and nvidia-modeset have dynamic majors, and a
 * guessed number would grant (in the cgroup or the OCI config) some other device instead.
 */
export interface DeviceNode { path: string; major: number; minor: number }

/** Everything a runtime needs to start a sandbox's init; runtime-neutral. */
export interface LaunchPlan {
  id: string;
  /** host: the host's userland read-only; dir: a prepared root (an image overlay). */
  root: { kind: 'host' } | { kind: 'dir'; path: string };
  /** per-sandbox writable dir on the sandbox's size-limited tmpfs: etc/, tmp/, home/, workspace/. */
  rwDir: string;
  /** the shared read-only /etc template (host root only); generated files are bound over it. */
  etcTemplate: string | undefined;
  workspace: string;
  home: string;
  initPath: string;
  hostname: string;
  shmBytes: number;
  /** extra device nodes (GPU grants), with their real numbers as stat reports them. */
  devices: DeviceNode[];
  cgroupProcs: string[];
  /** the cgroup's relative path, for runtimes that manage cgroups themselves. */
  cgroupRel: string;
  /** a state dir the runtime may use (bundle, runsc root). */
  runtimeDir: string;
  launcherPath: string;
  /** a trust bundle (the root's CAs + the gateway's interception CA) bound over the system bundle paths. */
  caBundle?: string;
}

export interface Runtime {
  readonly name: RuntimeName;
  /**
   * Why this runtime cannot run here, or undefined when it can. A manager passes the cgroup
   * layout it probed once; without it a runtime that needs it detects it itself.
   */
  unavailableReason(cgroups?: CgroupLayout): string | undefined;
  /** Starts the sandbox init with stdin/stdout as the control pipes. */
  spawn(plan: LaunchPlan): ChildProcess;
  /** Removes whatever the runtime left on the host after its process ended. */
  cleanup(plan: LaunchPlan): void;
}
