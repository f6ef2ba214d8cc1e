// Writes into the maps of a running bpftrace: how user space changes what the one long-lived
// probe does (which sandbox gets which kernel kill set) without restarting it, so one resident
// sensor serves runs with different rules and modes. bpftrace 0.17 cannot pin maps or read
// commands, so the maps are reached through bpftrace's own file descriptors: pidfd_getfd copies
// each fd that /proc/<pid>/fdinfo says is a BPF map, and BPF_OBJ_GET_INFO_BY_FD names it
// (bpftrace calls the map @x "AT_x"). Privileged code (libc through koffi), kept small for
// audit, like sandbox/syscalls.ts. Only root can do any of this; the sensor runs as root.
import { closeSync, readdirSync, readFileSync } from 'node:fs';
import { arch } from 'node:os';
import koffi from 'koffi';
import { PraetorError } from '../errors.ts';

type Libc = { syscall: (...args: unknown[]) => number | bigint; errno: () => number };
let libc: Libc | undefined;

function lib(): Libc {
  if (libc) return libc;
  const l = koffi.load('libc.so.6');
  const errnoLoc = l.func('int *__errno_location(void)');
  libc = { syscall: l.func('long syscall(long number, ...)') as Libc['syscall'], errno: () => koffi.decode(errnoLoc(), 'int') as number };
  return libc;
}

// bpf(2) is one of the few syscalls whose number differs between the two architectures.
const SYS_BPF: Partial<Record<string, number>> = { x64: 321, arm64: 280 };
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_MAP_DELETE_ELEM = 3;
const BPF_OBJ_GET_INFO_BY_FD = 15;
const ENOENT = 2;

/** Why maps of another process cannot be written here, or undefined when they can. */
export function bpfMapsUnavailableReason(): string | undefined {
  if (SYS_BPF[arch()] === undefined) return `no bpf(2) syscall number known for ${arch()}`;
  if (process.getuid?.() !== 0) return 'not root';
  return undefined;
}

/** Calls bpf(cmd, attr) with `attr` built from 64-bit fields; pointers are koffi allocations. */
function bpf(cmd: number, fields: (number | bigint)[]): number {
  const attr = Buffer.alloc(fields.length * 8);
  fields.forEach((f, i) => attr.writeBigUInt64LE(BigInt(f), i * 8));
  const r = Number(lib().syscall(SYS_BPF[arch()]!, 'int', cmd, 'void *', attr, 'uint', attr.length));
  return r < 0 ? -lib().errno() : r;
}

/** Native memory holding `bytes` (the kernel reads and writes it by address), freed after `fn`. */
function withNative<T>(bytes: Buffer, fn: (addr: bigint, now: () => Buffer) => T): T {
  const p = koffi.alloc('uint8_t', Math.max(1, bytes.length));
  try {
    const view = (): Buffer => Buffer.from(koffi.view(p, bytes.length) as ArrayBuffer);
    view().set(bytes);
    return fn(BigInt(koffi.address(p) as bigint | number), () => Buffer.from(view()));
  } finally { koffi.free(p); }
}

interface MapInfo { fd: number; keySize: number; valueSize: number }

/** The named maps of one bpftrace process, held open through copies of its fds. */
export class BpftraceMaps {
  readonly #maps: Map<string, MapInfo>;
  private constructor(maps: Map<string, MapInfo>) { this.#maps = maps; }

  /** Opens the maps `names` (bpftrace names: `kc` for @kc) of process `pid`; throws naming what is missing. */
  static open(pid: number, names: readonly string[]): BpftraceMaps {
    const why = bpfMapsUnavailableReason();
    if (why) throw new PraetorError('HOST_UNSUPPORTED', `cannot write the kernel sensor's maps: ${why}`, { hint: 'kernel kills stay in user space' });
    const l = lib();
    const pidfd = Number(l.syscall(SYS_PIDFD_OPEN, 'int', pid, 'uint', 0));
    if (pidfd < 0) throw new PraetorError('INTERNAL', `pidfd_open(${pid}) failed with errno ${l.errno()}`, { hint: 'the kernel sensor exited; Linux 5.6+ is needed for pidfd_getfd' });
    const want = new Set(names.map((n) => `AT_${n}`.slice(0, 15)));
    const maps = new Map<string, MapInfo>();
    try {
      for (const ent of readdirSync(`/proc/${pid}/fdinfo`)) {
        let info: string;
        try { info = readFileSync(`/proc/${pid}/fdinfo/${ent}`, 'utf8'); } catch { continue; }
        if (!/^map_id:/m.test(info)) continue;
        const fd = Number(l.syscall(SYS_PIDFD_GETFD, 'int', pidfd, 'int', Number(ent), 'uint', 0));
        if (fd < 0) continue;
        const name = mapName(fd);
        if (name !== undefined && want.has(name) && !maps.has(name)) {
          maps.set(name, { fd, keySize: Number(/^key_size:\s*(\d+)/m.exec(info)?.[1]), valueSize: Number(/^value_size:\s*(\d+)/m.exec(info)?.[1]) });
        } else closeSync(fd);
      }
    } finally { closeSync(pidfd); }
    const missing = [...want].filter((n) => !maps.has(n));
    if (missing.length > 0) {
      for (const m of maps.values()) closeSync(m.fd);
      throw new PraetorError('INTERNAL', `the kernel sensor (pid ${pid}) has no map ${missing.join(', ')}`, { hint: 'the generated script and this code disagree: report it as a bug' });
    }
    return new BpftraceMaps(maps);
  }

  /** Sets `key` to `value` in map `name`; returns 0 or a negative errno (E2BIG: the map is full). */
  update(name: string, key: Buffer, value: Buffer): number {
    const m = this.#get(name, key, value);
    return withNative(key, (k) => withNative(value, (v) => bpf(BPF_MAP_UPDATE_ELEM, [m.fd, k, v, 0])));
  }

  /** Removes `key` from map `name`; absent keys are fine. */
  delete(name: string, key: Buffer): void {
    const m = this.#get(name, key);
    const r = withNative(key, (k) => bpf(BPF_MAP_DELETE_ELEM, [m.fd, k]));
    if (r < 0 && r !== -ENOENT) throw new PraetorError('INTERNAL', `deleting from the kernel sensor's map ${name} failed with errno ${-r}`, { hint: 'report this as a bug' });
  }

  close(): void {
    for (const m of this.#maps.values()) closeSync(m.fd);
    this.#maps.clear();
  }

  #get(name: string, key: Buffer, value?: Buffer): MapInfo {
    const m = this.#maps.get(`AT_${name}`.slice(0, 15));
    if (!m) throw new PraetorError('INTERNAL', `the kernel sensor's map ${name} is not open`, { hint: 'it was closed with the sensor' });
    if (key.length !== m.keySize || (value && value.length !== m.valueSize)) {
      throw new PraetorError('INTERNAL', `map ${name} takes ${m.keySize}-byte keys and ${m.valueSize}-byte values, not ${key.length} and ${value?.length ?? '-'}`, { hint: 'report this as a bug' });
    }
    return m;
  }
}

/** The name the kernel keeps for map `fd` (struct bpf_map_info.name, at offset 24). */
function mapName(fd: number): string | undefined {
  const info = Buffer.alloc(96);
  return withNative(info, (addr, now) => {
    // struct { u32 bpf_fd; u32 info_len; u64 info; }
    if (bpf(BPF_OBJ_GET_INFO_BY_FD, [BigInt(fd) | (BigInt(info.length) << 32n), addr]) < 0) return undefined;
    return now().subarray(24, 40).toString('latin1').replace(/\0.*$/s, '');
  });
}
