import { decodeWaitStatus } from '../util/index.ts';
import { ARGV_CHUNK } from './ebpf-script.ts';

// Turns the bpftrace line protocol (see ebpf-script.ts) back into records. Pure and stateful
// per instance: no timers here, the sensor calls flush() on its own clock.

export interface StdioFd { mode: number; ino: number }
export interface ExecRecord {
  type: 'exec'; ktimeNs: bigint; pid: number; ppid: number; uid: number;
  cgroupId: bigint; sandboxCgroupId: bigint; comm: string; parentComm: string;
  filename: string; argv: string[]; argvBytes: number; argvTruncated: boolean; stdio: StdioFd[];
  /**
   * The kill program SIGKILLed it at exec: index of the kernel_kill rule, kernel time, and the
   * inet socket on its stdio when that was the test (user space cannot read it afterwards: the
   * process and its socket are gone).
   */
  kernelKill?: KernelKillMark;
}
export interface ExitRecord {
  type: 'exit'; ktimeNs: bigint; pid: number; sandboxCgroupId: bigint; comm: string;
  exitCode: number | null; signal: number | null;
}
export interface ConnectRecord {
  type: 'connect'; ktimeNs: bigint; pid: number; tid: number; sandboxCgroupId: bigint; comm: string;
  family: 'inet' | 'inet6'; dstIp: string; dstPort: number; result: number | null;
}
export interface OpenRecord {
  type: 'open'; ktimeNs: bigint; pid: number; sandboxCgroupId: bigint; comm: string;
  path: string; flags: number; result: number;
  /** the opened file's identity (ebpf-script.ts FILE_ID_MUL); 0 when the open failed, or for a rename/link onto the path */
  fileId: bigint;
}
export interface DeniedRecord {
  type: 'denied'; ktimeNs: bigint; pid: number; sandboxCgroupId: bigint; comm: string;
  syscall: string; errno: number;
}
/** A sandbox cgroup the kernel side could not register (its filter map is full): unwatched. */
export interface UnwatchedRecord { type: 'unwatched'; ktimeNs: bigint; pid: number; sandboxCgroupId: bigint }
export type KernelRecord = ExecRecord | ExitRecord | ConnectRecord | OpenRecord | DeniedRecord | UnwatchedRecord;

export interface KernelKillMark { rule: number; ktimeNs: bigint; socket?: { ino: number; peer: string } }
interface PendingExec { x?: string[]; file?: string; chunks: Map<number, Buffer>; since: number; kill?: KernelKillMark }
interface PendingConnect { rec?: ConnectRecord; ret?: number; since: number }

/** `\x2f\x62…` (bpftrace %rx) to bytes. */
export function unhex(s: string): Buffer {
  return Buffer.from(s.replace(/\\x/g, ''), 'hex');
}
function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
}

/** sockaddr_in / sockaddr_in6 bytes to family, address and port. */
/** `K ns pid sb rule ino fam dport daddr4 daddr6hex`: the socket is rebuilt as a sockaddr to decode it once. */
function killMark(f: string[]): KernelKillMark {
  const mark: KernelKillMark = { rule: Number(f[4]), ktimeNs: BigInt(f[1]!) };
  const fam = Number(f[6] ?? 0);
  if (fam !== 2 && fam !== 10) return mark;
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(fam, 0);
  sa.writeUInt16LE(Number(f[7]) & 0xffff, 2); // skc_dport is big-endian; its bytes land as they are
  if (fam === 2) sa.writeUInt32LE(Number(f[8]) >>> 0, 4); else unhex(f[9] ?? '').copy(sa, 8, 0, 16);
  const d = decodeSockaddr(sa);
  if (d) mark.socket = { ino: Number(f[5]), peer: d.family === 'inet' ? `${d.ip}:${d.port}` : `[${d.ip}]:${d.port}` };
  return mark;
}

export function decodeSockaddr(b: Buffer): { family: 'inet' | 'inet6'; ip: string; port: number } | undefined {
  if (b.length < 8) return undefined;
  const fam = b.readUInt16LE(0);
  const port = b.readUInt16BE(2);
  if (fam === 2) return { family: 'inet', ip: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port };
  if (fam === 10 && b.length >= 24) {
    const a = b.subarray(8, 24);
    if (a.subarray(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff) {
      return { family: 'inet6', ip: `::ffff:${a[12]}.${a[13]}.${a[14]}.${a[15]}`, port };
    }
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(a.readUInt16BE(i).toString(16));
    return { family: 'inet6', ip: compressV6(groups), port };
  }
  return undefined;
}
function compressV6(g: string[]): string {
  let best = -1; let bestLen = 1;
  for (let i = 0; i < g.length;) {
    if (g[i] !== '0') { i++; continue; }
    let j = i; while (j < g.length && g[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

/** Linux wait status as exit code or signal. */
export function decodeExitCode(code: number): { exitCode: number | null; signal: number | null } {
  // The same decoding as the init channel's, named for the event fields.
  const w = decodeWaitStatus(code);
  return { exitCode: w.code, signal: w.signal };
}

export class LineAssembler {
  readonly #token: string;
  readonly #argvMax: number;
  readonly #execs = new Map<number, PendingExec>();
  readonly #connects = new Map<number, PendingConnect>();
  /** the last record whose final field is a path, for continuation lines */
  #last: { fields: string[]; raw: string } | undefined;
  #ready = false;
  lost = 0;
  readonly #unwatched = new Set<string>();
  /**
   * CPU ticks read so far (cpu, kernel ns), for the caller to take after it delivered the
   * records push() returned: those include the ones a tick completes (see sensor-catch-up.ts).
   */
  readonly ticks: Array<[number, bigint]> = [];

  constructor(token: string, argvMax: number) {
    this.#token = token;
    this.#argvMax = argvMax;
  }
  get ready(): boolean { return this.#ready; }

  /** Feeds one line; returns the records it completed. `now` is a monotonic ms clock. */
  push(line: string, now: number): KernelRecord[] {
    const out: KernelRecord[] = [];
    if (!line.startsWith(`${this.#token} `)) {
      const lost = /Lost (\d+) events/.exec(line);
      if (lost) { this.lost += Number(lost[1]); return out; }
      // A path with a newline in it continues here; the record is only finished by the next
      // token line, so keep the text and re-emit the record then.
      if (this.#last) this.#last.raw += `\n${line}`;
      return out;
    }
    this.#finishLast(out, now);
    const body = line.slice(this.#token.length + 1);
    const f = body.split(' ');
    switch (f[0]) {
      case 'READY': this.#ready = true; break;
      // A CPU's tick: every line before it on that CPU's ring was pushed (see sensor-catch-up.ts).
      case 'T': this.ticks.push([Number(f[1]), BigInt(f[2]!)]); break;
      case 'X': this.#exec(Number(f[2]), now).x = f; this.#tryExec(Number(f[2]), out, false); break;
      case 'F': this.#last = { fields: f, raw: rest(body, 2) }; break;
      case 'A': this.#exec(Number(f[1]), now).chunks.set(Number(f[2]), unhex(f[3] ?? '')); this.#tryExec(Number(f[1]), out, false); break;
      // Printed by the first program on the exec tracepoint, so it comes before the exec's X/F/A.
      case 'K': this.#exec(Number(f[2]), now).kill = killMark(f); break;
      case 'P': {
        out.push({ type: 'exit', ktimeNs: BigInt(f[1]!), pid: Number(f[2]), sandboxCgroupId: BigInt(f[3]!),
          ...decodeExitCode(Number(f[4])), comm: cstr(unhex(f[5] ?? '')) });
        break;
      }
      case 'C': {
        const sa = decodeSockaddr(unhex(f[6] ?? ''));
        if (!sa) break;
        const tid = Number(f[3]);
        const p = this.#connects.get(tid) ?? { since: now };
        p.rec = { type: 'connect', ktimeNs: BigInt(f[1]!), pid: Number(f[2]), tid, sandboxCgroupId: BigInt(f[4]!),
          comm: cstr(unhex(f[5] ?? '')), family: sa.family, dstIp: sa.ip, dstPort: sa.port, result: null };
        this.#connects.set(tid, p);
        this.#tryConnect(tid, out, false);
        break;
      }
      case 'R': {
        const tid = Number(f[2]);
        const p = this.#connects.get(tid) ?? { since: now };
        p.ret = Number(f[3]);
        this.#connects.set(tid, p);
        this.#tryConnect(tid, out, false);
        break;
      }
      case 'O': this.#last = { fields: f, raw: rest(body, 8) }; break;
      // Once per sandbox: each exec in it after the map filled would repeat it.
      case 'M': {
        if (this.#unwatched.has(f[1]!)) break;
        this.#unwatched.add(f[1]!);
        out.push({ type: 'unwatched', ktimeNs: 0n, pid: 0, sandboxCgroupId: BigInt(f[1]!) });
        break;
      }
      case 'D': {
        // The probe name is the kernel's, never the process's: `tracepoint:syscalls:sys_exit_<name>`.
        const m = /^tracepoint:syscalls:sys_exit_([a-z0-9_]+)$/.exec(f[6] ?? '');
        if (!m) break;
        out.push({ type: 'denied', ktimeNs: BigInt(f[1]!), pid: Number(f[2]), sandboxCgroupId: BigInt(f[3]!),
          errno: -Number(f[4]), comm: cstr(unhex(f[5] ?? '')), syscall: m[1]! });
        break;
      }
      default: break;
    }
    return out;
  }

  /** Emits what waited too long for its other half (lost lines, or a connect still blocking). */
  flush(now: number, maxWaitMs: number): KernelRecord[] {
    const out: KernelRecord[] = [];
    this.#finishLast(out, now);
    for (const [pid, p] of this.#execs) if (now - p.since >= maxWaitMs) this.#tryExec(pid, out, true);
    for (const [tid, p] of this.#connects) if (now - p.since >= maxWaitMs) this.#tryConnect(tid, out, true);
    return out;
  }

  #finishLast(out: KernelRecord[], now: number): void {
    const l = this.#last;
    if (!l) return;
    this.#last = undefined;
    const f = l.fields;
    if (f[0] === 'F') {
      this.#exec(Number(f[1]), now).file = l.raw;
      this.#tryExec(Number(f[1]), out, false);
    } else if (f[0] === 'O') {
      out.push({ type: 'open', ktimeNs: BigInt(f[1]!), pid: Number(f[2]), sandboxCgroupId: BigInt(f[3]!),
        flags: Number(f[4]), result: Number(f[5]), fileId: BigInt(f[6] ?? 0), comm: cstr(unhex(f[7] ?? '')), path: l.raw });
    }
  }

  #exec(pid: number, now: number): PendingExec {
    let p = this.#execs.get(pid);
    if (!p) { p = { chunks: new Map(), since: now }; this.#execs.set(pid, p); }
    return p;
  }

  #tryExec(pid: number, out: KernelRecord[], force: boolean): void {
    const p = this.#execs.get(pid);
    if (!p) return;
    const x = p.x;
    if (!x) { if (force) this.#execs.delete(pid); return; }
    const argvBytes = Number(x[7]);
    const want = Math.ceil(Math.min(argvBytes, this.#argvMax) / ARGV_CHUNK);
    if (!force && (p.file === undefined || p.chunks.size < want)) return;
    this.#execs.delete(pid);
    const parts: Buffer[] = [];
    for (let i = 0; i < want; i++) { const c = p.chunks.get(i); if (c) parts.push(c); else break; }
    const raw = Buffer.concat(parts);
    const argv = raw.toString('utf8').split('\0');
    if (argv.length > 0 && argv[argv.length - 1] === '') argv.pop();
    const stdio: StdioFd[] = [];
    for (let i = 0; i < 3; i++) stdio.push({ mode: Number(x[8 + 2 * i]), ino: Number(x[9 + 2 * i]) });
    out.push({
      type: 'exec', ktimeNs: BigInt(x[1]!), pid, ppid: Number(x[3]), uid: Number(x[4]),
      cgroupId: BigInt(x[5]!), sandboxCgroupId: BigInt(x[6]!), argvBytes,
      argvTruncated: raw.length < argvBytes, argv, stdio,
      comm: cstr(unhex(x[14] ?? '')), parentComm: cstr(unhex(x[15] ?? '')), filename: p.file ?? argv[0] ?? '',
      ...(p.kill ? { kernelKill: p.kill } : {}),
    });
  }

  #tryConnect(tid: number, out: KernelRecord[], force: boolean): void {
    const p = this.#connects.get(tid);
    if (!p) return;
    if (!p.rec) { if (force) this.#connects.delete(tid); return; }
    if (p.ret === undefined && !force) return;
    this.#connects.delete(tid);
    out.push({ ...p.rec, result: p.ret ?? null });
  }
}

function rest(body: string, fieldsBefore: number): string {
  let i = 0;
  for (let n = 0; n < fieldsBefore; n++) i = body.indexOf(' ', i) + 1;
  return body.slice(i);
}
