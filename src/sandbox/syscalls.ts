// The few libc calls Node has no API for, through koffi (prebuilt FFI, no compiler at install).
// Kept in one small file: this is privileged code and should be easy to audit.
import koffi from 'koffi';
import { PraetorError } from '../errors.ts';

type Libc = {
  mount: (src: string, target: string, fstype: string | null, flags: number, data: string | null) => number;
  umount2: (target: string, flags: number) => number;
  openat2: (nr: number, dirfd: number, path: string, how: Buffer, size: number) => number;
  errno: () => number;
  strerror: (n: number) => string;
};

let libc: Libc | undefined; // lazily bound: loading libc costs ~1 ms, not every command needs it

function lib(): Libc {
  if (libc) return libc;
  const l = koffi.load('libc.so.6');
  const errnoLoc = l.func('int *__errno_location(void)');
  libc = {
    mount: l.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: l.func('int umount2(const char *target, int flags)'),
    // syscall(2) with openat2's own arguments: integers and pointers only, so the variadic
    // call passes them in the same registers a fixed prototype does.
    openat2: l.func('long syscall(long nr, int dirfd, const char *path, void *how, size_t size)'),
    errno: () => koffi.decode(errnoLoc(), 'int') as number,
    strerror: l.func('const char *strerror(int errnum)'),
  };
  return libc;
}

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MNT_DETACH = 2;

export function mount(src: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  const l = lib();
  if (l.mount(src, target, fstype, flags, data) !== 0) {
    const e = l.errno();
    throw new PraetorError('SANDBOX_FAILED', `mount ${fstype ?? src} on ${target} failed: ${l.strerror(e)}`, {
      hint: e === 1 ? 'run praetor as root (it mounts the sandbox filesystems)' : 'check the state directory is on a local filesystem',
    });
  }
}

/** Lazy unmount; returns false (never throws) when nothing was mounted there. */
export function umount(target: string): boolean {
  return lib().umount2(target, MNT_DETACH) === 0;
}

const SYS_OPENAT2 = 437; // the same number on x86_64 and aarch64 (the generic syscall table)
const O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000, O_NOCTTY = 0o400;
const RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_IN_ROOT = 0x10;

/**
 * Opens `path` for reading as if `rootDir` (an open directory fd) were `/`: absolute symlinks and
 * `..` stay inside it, magic links (/proc/self/root tricks) are refused. Threat: a root process
 * reading a path an agent controls, where a planted symlink to the host's /etc/shadow would
 * otherwise be followed out of the sandbox. Non-blocking, so a FIFO planted in its place cannot
 * hang the reader. Returns the fd, or -errno.
 */
export function openInRoot(rootDir: number, path: string): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(O_NONBLOCK | O_CLOEXEC | O_NOCTTY), 0);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), 16);
  const l = lib();
  const fd = l.openat2(SYS_OPENAT2, rootDir, path, how, how.length);
  return fd >= 0 ? fd : -l.errno();
}
