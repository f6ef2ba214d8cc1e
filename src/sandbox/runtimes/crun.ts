// crun: a fast OCI runtime. Cgroups stay praetor's (--cgroup-manager=disabled): the launcher
// already placed the runtime in the sandbox's cgroups, and one owner of cgroups is simpler to reap.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { detectCgroupLayout, type CgroupLayout } from '../cgroup-layout.ts';
import { writeOciBundle } from './oci-bundle.ts';
import type { LaunchPlan, Runtime } from './types.ts';

const CRUN = '/usr/bin/crun';

export class CrunRuntime implements Runtime {
  readonly name = 'crun' as const;

  unavailableReason(cgroups?: CgroupLayout): string | undefined {
    if (!existsSync(CRUN)) return `${CRUN} is missing (apt-get install crun)`;
    // crun refuses hybrid hosts whose unified hierarchy has controllers, even with its cgroup
    // manager disabled ("cgroups in hybrid mode not supported"). The manager hands in the layout
    // it probed at open (this runs on every create); only standalone callers detect it here.
    const l = cgroups ?? detectCgroupLayout();
    if (l.mode === 'hybrid' && l.v2Controllers.size > 0) return `crun does not support this host's hybrid cgroups (unified hierarchy has controllers: ${[...l.v2Controllers].join(', ')})`;
    return undefined;
  }

  spawn(plan: LaunchPlan): ChildProcess {
    const bundle = writeOciBundle(plan);
    return spawn(plan.launcherPath, ['--enter', ...plan.cgroupProcs, '--', CRUN, '--root', `${plan.runtimeDir}/state`, '--cgroup-manager=disabled', 'run', '--bundle', bundle, plan.id], {
      stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  }

  cleanup(plan: LaunchPlan): void {
    spawnSync(CRUN, ['--root', `${plan.runtimeDir}/state`, 'delete', '--force', plan.id], { stdio: 'ignore', timeout: 5000 });
    rmSync(plan.runtimeDir, { recursive: true, force: true });
  }
}
