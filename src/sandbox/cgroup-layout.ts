// Finds the cgroup hierarchies this host offers — v1 controllers, a unified v2 mount, or pure v2 —
// and mounts them in praetor's own mount namespace when they are missing there (as under
// `ip netns exec`, which remounts /sys and loses /sys/fs/cgroup). Detected, never assumed.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { PraetorError } from '../errors.ts';
import { mount, MS_NODEV, MS_NOSUID } from './syscalls.ts';

export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer', 'devices'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

export interface CgroupLayout {
  /** `hybrid`: v1 controllers plus a unified mount; `v2`: pure unified; `v1`: no unified mount. */
  mode: 'hybrid' | 'v1' | 'v2';
  /** mount point of each v1 controller (several may share one, e.g. cpu,cpuacct). */
  v1: Partial<Record<V1Controller, string>>;
  /** mount point of the unified (v2) hierarchy, if any. */
  unified: string | undefined;
  /** controllers usable through the unified hierarchy. */
  v2Controllers: Set<string>;
}

interface MountEntry { mountPoint: string; fsType: string; superOpts: string[]; source: string }

function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fsType, source, opts] = post.split(' ');
    out.push({ mountPoint: f[4]!.replace(/\\040/g, ' '), fsType: fsType!, source: source!, superOpts: (opts ?? '').split(',') });
  }
  return out;
}

function layoutFrom(mounts: MountEntry[]): CgroupLayout {
  const v1: CgroupLayout['v1'] = {};
  let unified: string | undefined;
  for (const m of mounts) {
    if (m.fsType === 'cgroup2') unified ??= m.mountPoint;
    if (m.fsType === 'cgroup') for (const c of V1_CONTROLLERS) if (m.superOpts.includes(c)) v1[c] ??= m.mountPoint;
  }
  const v2Controllers = new Set<string>();
  if (unified && existsSync(`${unified}/cgroup.controllers`)) {
    for (const c of readFileSync(`${unified}/cgroup.controllers`, 'utf8').trim().split(/\s+/)) if (c) v2Controllers.add(c);
  }
  const hasV1 = Object.keys(v1).length > 0;
  const mode = hasV1 ? (unified ? 'hybrid' : 'v1') : 'v2';
  return { mode, v1, unified, v2Controllers };
}

/**
 * Returns the layout, mounting the host's hierarchies (as pid 1 sees them) when this mount
 * namespace has none. Only done in a private mount namespace, so the host is never changed.
 */
export function detectCgroupLayout(): CgroupLayout {
  const mine = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  const layout = layoutFrom(mine);
  if (layout.unified || Object.keys(layout.v1).length > 0) return layout;
  let hostMounts: MountEntry[];
  try { hostMounts = parseMountinfo(readFileSync('/proc/1/mountinfo', 'utf8')); } catch (cause) {
    throw new PraetorError('HOST_UNSUPPORTED', 'cgroups are not mounted here and the host\'s mounts cannot be read', {
      hint: 'run praetor as root in the host pid namespace', cause,
    });
  }
  // pid 1 seeing cgroup mounts that we do not proves we are in a private mount namespace (as
  // under `ip netns exec`), so mounting them here cannot change the host's view.
  if (!hostMounts.some((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2')) {
    throw new PraetorError('HOST_UNSUPPORTED', 'no cgroup hierarchy is mounted on this host', {
      hint: 'mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)',
    });
  }
  const wanted = hostMounts.filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2' || (m.fsType === 'tmpfs' && m.mountPoint === '/sys/fs/cgroup'));
  for (const m of wanted.sort((a, b) => a.mountPoint.length - b.mountPoint.length)) {
    mkdirSync(m.mountPoint, { recursive: true });
    const opts = m.superOpts.filter((o) => o !== 'rw' && o !== 'ro').join(',') || null;
    mount(m.fsType === 'tmpfs' ? 'tmpfs' : m.fsType, m.mountPoint, m.fsType, MS_NOSUID | MS_NODEV, m.fsType === 'tmpfs' ? 'mode=755' : opts);
  }
  return layoutFrom(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')));
}

/**
 * The root of every distinct hierarchy (v1 controllers that share a mount appear once, then the
 * unified one). The one list used to create, remove, list and reap sandbox cgroups, so no path
 * can miss a hierarchy that another one created a directory in.
 */
export function hierarchyRoots(layout: CgroupLayout): string[] {
  const roots = new Set<string>(Object.values(layout.v1).filter((r): r is string => !!r));
  if (layout.unified) roots.add(layout.unified);
  return [...roots];
}
