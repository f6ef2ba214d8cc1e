// An OCI runtime bundle (config.json + root) equivalent to what the bwrap driver assembles, for
// crun and runsc. Same namespaces, same read-only host userland or image root, same writable
// binds, same init; the init keeps the same four capabilities and drops them for every command.
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { GENERATED_ETC } from '../etc-files.ts';
import { INIT_CAPS, USR_LINKS, type LaunchPlan } from './types.ts';


interface OciMount { destination: string; type: string; source: string; options: string[] }

function bind(src: string, dst: string, ro: boolean): OciMount {
  return { destination: dst, type: 'bind', source: src, options: ['rbind', ro ? 'ro' : 'rw', 'nosuid'] };
}

/** Writes the bundle under plan.runtimeDir and returns its path. */
export function writeOciBundle(plan: LaunchPlan, opts: { cgroupsPath?: string } = {}): string {
  const bundle = `${plan.runtimeDir}/bundle`;
  mkdirSync(bundle, { recursive: true });
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${plan.shmBytes}`] },
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', `size=${16 << 20}`] },
  ];
  let rootPath: string;
  if (plan.root.kind === 'host') {
    // A read-only skeleton root on the sandbox's tmpfs: the usr-merge links and mount points.
    rootPath = `${plan.rwDir}/ociroot`;
    mkdirSync(rootPath, { recursive: true });
    for (const d of ['usr', 'etc', 'tmp', 'home', 'workspace', 'proc', 'dev', 'run', 'var', 'opt']) mkdirSync(`${rootPath}/${d}`, { recursive: true });
    for (const d of USR_LINKS) {
      const p = `/${d}`;
      if (!existsSync(p) || existsSync(`${rootPath}/${d}`)) continue;
      if (lstatSync(p).isSymbolicLink()) symlinkSync(readlinkSync(p), `${rootPath}/${d}`);
      else { mkdirSync(`${rootPath}/${d}`); mounts.push(bind(p, p, true)); }
    }
    try { symlinkSync('../tmp', `${rootPath}/var/tmp`); } catch { /* exists */ }
    writeFileSync(`${rootPath}/.praetor-init`, '');
    mounts.push(bind('/usr', '/usr', true));
    if (existsSync('/opt')) mounts.push(bind('/opt', '/opt', true));
    mounts.push(bind(plan.etcTemplate!, '/etc', true));
    mounts.push(bind(`${plan.rwDir}/tmp`, '/tmp', false));
    mounts.push(bind(`${plan.rwDir}/home`, plan.home, false));
  } else {
    rootPath = plan.root.path;
    writeFileSync(`${rootPath}/.praetor-init`, '');
  }
  for (const f of GENERATED_ETC) mounts.push(bind(`${plan.rwDir}/etc/${f}`, `/etc/${f}`, true));
  mounts.push(bind(plan.workspace, '/workspace', false));
  mounts.push(bind(plan.initPath, '/.praetor-init', true));
  const devices = plan.devices.map(({ path, major, minor }) => ({ path, type: 'c', major, minor, fileMode: 0o666, uid: 0, gid: 0 }));
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/.praetor-init'],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: [...INIT_CAPS], effective: [...INIT_CAPS], permitted: [...INIT_CAPS] },
      noNewPrivileges: false,
    },
    root: { path: rootPath, readonly: plan.root.kind === 'host' },
    hostname: plan.hostname,
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }, { type: 'cgroup' }],
      ...(opts.cgroupsPath ? { cgroupsPath: opts.cgroupsPath } : {}),
      devices,
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  writeFileSync(`${bundle}/config.json`, JSON.stringify(config, null, 1));
  return bundle;
}
