// bubblewrap: the fast default. Namespaces (mount, pid, ipc, uts, net, cgroup), a tmpfs root
// assembled from read-only binds, private /proc and a minimal /dev. bwrap runs as root without a
// user namespace; the init keeps only the capabilities it needs to drop every command to the
// agent uid (SETUID, SETGID, SETPCAP to clear the bounding set, KILL to signal agent processes).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { CA_BUNDLE_PATHS, GENERATED_ETC } from '../etc-files.ts';
import { INIT_CAPS, USR_LINKS, type LaunchPlan, type Runtime } from './types.ts';

const BWRAP = '/usr/bin/bwrap';

/** bwrap's options (the command, /.praetor-init, is passed separately). */
export function bwrapArgs(plan: LaunchPlan): string[] {
  const a: string[] = [
    '--die-with-parent', '--new-session',
    '--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup',
    '--hostname', plan.hostname,
  ];
  // As root bwrap keeps every capability unless told otherwise: keep only the init's four.
  a.push('--cap-drop', 'ALL');
  for (const c of INIT_CAPS) a.push('--cap-add', c);
  const rw = plan.rwDir;
  if (plan.root.kind === 'host') {
    a.push('--ro-bind', '/usr', '/usr');
    for (const d of USR_LINKS) {
      const p = `/${d}`;
      if (!existsSync(p)) continue;
      if (lstatSync(p).isSymbolicLink()) a.push('--symlink', readlinkSync(p), p);
      else a.push('--ro-bind', p, p);
    }
    if (existsSync('/opt')) a.push('--ro-bind', '/opt', '/opt');
    a.push('--ro-bind', plan.etcTemplate!, '/etc');
    // Directories bwrap creates implicitly are 0700 root: make the path to the home traversable.
    a.push('--perms', '0755', '--dir', '/home', '--perms', '0755', '--dir', '/var');
    a.push('--bind', `${rw}/tmp`, '/tmp', '--bind', `${rw}/home`, plan.home);
    a.push('--symlink', '../tmp', '/var/tmp');
  } else {
    a.push('--bind', plan.root.path, '/');
  }
  for (const f of GENERATED_ETC) a.push('--ro-bind', `${rw}/etc/${f}`, `/etc/${f}`);
  // The trust bundle with the gateway's interception CA, over the system bundle paths the
  // sandbox's root has (the Debian path is always provided: the CA variables point there).
  if (plan.caBundle) {
    const inRoot = (p: string) => existsSync(plan.root.kind === 'host' ? `${plan.etcTemplate}${p.slice(4)}` : `${plan.root.path}${p}`);
    CA_BUNDLE_PATHS.forEach((p, i) => { if (inRoot(p) || (i === 0 && plan.root.kind === 'dir')) a.push('--ro-bind', plan.caBundle!, p); });
  }
  a.push('--bind', plan.workspace, '/workspace');
  a.push('--proc', '/proc', '--dev', '/dev');
  // /dev/shm and /run would otherwise be unbounded tmpfs: a way around the disk limit.
  a.push('--perms', '1777', '--size', String(plan.shmBytes), '--tmpfs', '/dev/shm');
  a.push('--size', String(16 << 20), '--tmpfs', '/run');
  for (const { path } of plan.devices) a.push('--dev-bind', path, path);
  a.push('--ro-bind', plan.initPath, '/.praetor-init');
  a.push('--chdir', '/');
  return a;
}

export class BwrapRuntime implements Runtime {
  readonly name = 'bwrap' as const;

  unavailableReason(): string | undefined {
    return existsSync(BWRAP) ? undefined : `${BWRAP} is missing (apt-get install bubblewrap)`;
  }

  spawn(plan: LaunchPlan): ChildProcess {
    // Arguments go through a pipe (--args 3), not argv: bwrap stays pid 1 in the sandbox and its
    // command line, host paths included, would otherwise be readable in /proc/1/cmdline.
    const child = spawn(plan.launcherPath, ['--enter', ...plan.cgroupProcs, '--', BWRAP, '--args', '3', '/.praetor-init'], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const argsPipe = child.stdio[3] as Writable;
    argsPipe.on('error', () => { /* bwrap failed early; reported through stderr */ });
    argsPipe.end(bwrapArgs(plan).map((x) => `${x}\0`).join(''));
    return child;
  }

  cleanup(): void { /* bwrap leaves nothing on the host */ }
}
