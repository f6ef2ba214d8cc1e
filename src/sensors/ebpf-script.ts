import { endianness } from 'node:os';
import { BORING_OPEN_PREFIXES, BORING_WRITE_EXCEPTIONS } from './sensitive-paths.ts';

// Generates the one bpftrace program of the kernel sensor. Threats it watches for: an agent
// executing miners or tunnel tools (exec + full argv), phoning home (connect, failed or not),
// reading credentials (openat of secret files), and reverse shells (stdio that is a socket).
//
// Line protocol (one record per line, first field a random per-run token so that text an
// attacker controls can never pass for a record):
//   T X ns pid ppid uid cgid sbcg arglen m0 i0 m1 i1 m2 i2 commhex pcommhex   exec header
//   T F pid filename…                                          exec filename
//   T A pid idx hex                                            argv chunk (kernel memory)
//   T P ns pid sbcg exitcode commhex                            process exit (whole group)
//   T C ns pid tid sbcg commhex sockaddrhex                     connect() entry, AF_INET/6
//   T R pid tid ret                                             connect() result
//   T O ns pid sbcg flags ret fid commhex path…                 openat() of a non-system path or of a
//                                                               file in @si; fid: the opened file (FILE_ID_MUL)
//   T D ns pid sbcg ret commhex probe                           escape-relevant syscall refused
//   T K ns pid sbcg rule ino fam dport daddr4 daddr6hex         SIGKILLed at exec (kernel_kill rule);
//                                                               the socket on its stdio, if that was the test
//   T M sbcg                                                    sandbox cgroup not registered (@sbc full)
// Binary data is printed with %rx (\xNN per byte): unambiguous, unlike %r, which leaves a
// literal backslash as is. Paths are printed with %s as the LAST field, because copying them a
// second time for %rx blows the 512-byte BPF stack in bpftrace 0.17; a path holding a newline
// continues on lines that do not start with the token, and the parser joins them back.

export interface ScriptOptions {
  /** random token that starts every record */
  token: string;
  /** level (below the unified root) of the `praetor-<hash>` directories; sandboxes sit one below */
  praetorLevel: number;
  /** drop events of processes outside praetor cgroups in the kernel (false: Node filters) */
  kernelFilter: boolean;
  /** kernfs parent field: `__parent` since Linux 6.15, `parent` before */
  kernfsParent: '__parent' | 'parent';
  /** argv bytes read from the new process image, in chunks of ARGV_CHUNK */
  argvMax: number;
  /** extra open-like syscalls present on this kernel (openat2, open) */
  openSyscalls: readonly string[];
  /** syscalls that create a path without opening it (rename*, link*, symlink*), present here */
  placeSyscalls?: readonly string[];
  /** escape-relevant syscalls whose refusal is reported (those with a sys_exit tracepoint here) */
  deniedSyscalls: readonly string[];
  /**
   * Kernel kills (rules with `kernel_kill: true`): a sandbox process whose comm its owner armed
   * (maps @kp and @kc, written by kernel-kill-table.ts) is SIGKILLed in the exec tracepoint.
   * Needs bpftrace --unsafe and bpf_send_signal.
   */
  kernelKill?: boolean;
  /** wait syscalls with a sys_exit tracepoint here (wait4, waitid): where a killed one's parent stops */
  waitSyscalls?: readonly string[];
  /** sandbox cgroups that already exist (task cgroup id → sandbox cgroup id), seeded into @sbc */
  seedCgroups?: readonly (readonly [bigint, bigint])[];
  /** whether cgroup:cgroup_rmdir exists here (it drops removed cgroups from @sbc) */
  cgroupRmdir?: boolean;
}

/**
 * Syscalls an agent has no business calling, whose refusal (EPERM/EACCES) is an escape attempt
 * that isolation stopped: namespaces and mounts (unshare -r, nsenter, mount, pivot_root, the new
 * mount API), kernel attack surface (bpf, keyrings, modules, kexec, iopl, open_by_handle_at
 * "Shocker"), device nodes (mknod of a host disk), and other processes' memory (ptrace,
 * process_vm_*, pidfd_getfd). Measured on gcc, python, pip, node, git, curl, ssh -V, ps, df: none
 * of them sees these refused. Probes such as glibc's clone3 get ENOSYS, never EPERM, and clone3
 * is not here anyway. umount2's tracepoint is named umount.
 */
export const DENIED_SYSCALLS: readonly string[] = [
  'unshare', 'setns', 'mount', 'umount', 'pivot_root', 'chroot', 'fsopen', 'fsmount', 'fsconfig',
  'move_mount', 'open_tree', 'mount_setattr', 'bpf', 'keyctl', 'add_key', 'request_key',
  'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'iopl', 'ioperm',
  'open_by_handle_at', 'swapon', 'reboot', 'mknod', 'mknodat', 'ptrace', 'process_vm_readv',
  'process_vm_writev', 'pidfd_getfd',
];

/** bpftrace 0.17 caps buf()/str() at BPFTRACE_STRLEN, itself capped at 200. */
export const STRLEN = 200;
export const ARGV_CHUNK = 192;
/** how deep a sandbox may nest its own cgroups and still be attributed to it */
const MAX_NESTING = 8;

/**
 * The flags reported for a path placed by rename/link/symlink: O_WRONLY (it is a write of that
 * path) plus bit 30, which no open flag uses, so user space can say how it happened.
 */
export const PLACE_FLAGS = 0x40000001;
/**
 * The opened file's identity in one u64 (the BPF stack has no room for two more fields): its
 * inode number xor its filesystem's dev_t (kernel encoding) times this odd constant, so every
 * bit of both counts. Two files share one only by a 64-bit coincidence, which an agent cannot
 * steer (it does not choose inode numbers); the cost of one would be a plain file reported as
 * a credential, never a credential missed.
 */
export const FILE_ID_MUL = 0x61c8864680b583ebn; // below 2^63: bpftrace 0.17 reads literals as int64
export const PLACE_SYSCALLS = ['renameat2', 'renameat', 'rename', 'linkat', 'link', 'symlinkat', 'symlink'] as const;

/**
 * A path prefix of at most 8 bytes as [value, mask] of the u64 the kernel reads from the path's
 * first 8 bytes (host byte order). ASCII keeps both below 2^63, which bpftrace 0.17's int64
 * literals need.
 */
export function prefixWord(prefix: string): [string, string] {
  const b = Buffer.from(prefix, 'latin1');
  if (b.length === 0 || b.length > 8 || b.some((x) => x >= 0x80)) throw new Error(`boring prefix ${JSON.stringify(prefix)}: 1 to 8 ASCII bytes`);
  const word = Buffer.alloc(8);
  b.copy(word);
  const maskBytes = Buffer.alloc(8);
  maskBytes.fill(0xff, 0, b.length);
  const le = endianness() === 'LE';
  const rd = (x: Buffer): bigint => (le ? x.readBigUInt64LE(0) : x.readBigUInt64BE(0));
  return [`0x${rd(word).toString(16)}`, `0x${rd(maskBytes).toString(16)}`];
}

export function defaultScriptOptions(token: string, kernelRelease: string): ScriptOptions {
  const [maj = 0, min = 0] = kernelRelease.split(/[.-]/).map((x) => Number.parseInt(x, 10));
  return {
    token, praetorLevel: 1, kernelFilter: true,
    kernfsParent: maj > 6 || (maj === 6 && min >= 15) ? '__parent' : 'parent',
    argvMax: ARGV_CHUNK * 16, openSyscalls: ['openat'], deniedSyscalls: [],
  };
}

/**
 * Wraps `body` so it runs only for tasks in a sandbox cgroup, with `$sb` = the sb-* cgroup id,
 * found by walking the task's cgroup ancestry. Only the exec programs walk (see sandboxLookup);
 * with `register`, the walk also enters the task's cgroup in @sbc for the others. One exec
 * program registering is enough: every program on the exec tracepoint runs before the new image
 * makes its first syscall.
 */
function sandboxGuard(o: ScriptOptions, body: string, register = false): string {
  if (!o.kernelFilter) return `  $sb = cgroup;\n${body}`;
  const L = o.praetorLevel;
  // Walk from the task's cgroup up to the sandbox's own directory (level L+1), then check that
  // its parent is a praetor-* directory. Only cgroup ids and an 8-byte name are read, so the
  // cost for host processes is a handful of loads.
  return `  $cg = (struct cgroup *)curtask->cgroups->dfl_cgrp;
  $lv = $cg->level;
  if ($lv > ${L}) {
    $kn = (struct kernfs_node *)$cg->kn;
    unroll(${MAX_NESTING}) { if ($lv > ${L + 1}) { $kn = (struct kernfs_node *)$kn->${o.kernfsParent}; $lv = $lv - 1; } }
    $top = (struct kernfs_node *)$kn->${o.kernfsParent};
    if (strncmp(str($top->name, 8), "praetor", 7) == 0) {
      $sb = $kn->id;
${register ? `      @sbc[cgroup] = $sb;\n      if (@sbc[cgroup] != $sb) { printf("${o.token} M %llu\\n", $sb); }\n` : ''}${body.replace(/^/gm, '    ')}
    }
  }`;
}

/**
 * Wraps `body` so it runs only for tasks whose cgroup an exec walk registered (@sbc), with `$sb`
 * the sandbox's cgroup id: one map lookup instead of the walk.
 *
 * Why not the walk everywhere: bpftrace 0.17 compiles one program per attach point, and the walk
 * (struct reads, an unrolled loop, a name compare) in each of the ~45 syscall programs was a
 * third of the sensor's start-up CPU (measured 2.44 → 1.60 s, median of 3), which the first
 * `praetor run` waits for. Why it is sound: every process in a sandbox descends from an exec
 * inside its cgroup after the probes attached (the launcher enters the cgroup, then execs the
 * runtime; commands run only once the sensor is ready), and a fork stays in its parent's
 * cgroup, which that exec registered. Cgroups that already held processes when bpftrace was
 * generated are seeded in BEGIN. A sandbox cannot move a process to a cgroup of its own making
 * (it has no writable cgroupfs). Entries go when the cgroup is removed, and a registration the
 * map refuses (full) is reported (record M), never silently dropped.
 */
function sandboxLookup(o: ScriptOptions, body: string): string {
  if (!o.kernelFilter) return `  $sb = cgroup;\n${body}`;
  return `  $sb = @sbc[cgroup];\n  if ($sb != 0) {\n${body.replace(/^/gm, '  ')}\n  }`;
}

function argvChunks(o: ScriptOptions): string {
  const n = Math.ceil(o.argvMax / ARGV_CHUNK);
  // The argv strings sit contiguously at mm->arg_start..arg_end of the new image; reading them
  // here (the new process's context, right after exec) gives full argv even for processes that
  // exit before user space could read /proc/<pid>/cmdline. Never read past arg_end: the
  // environment follows, and it holds secrets.
  return `$i = (uint64)0;
unroll(${n}) {
  if ($i * ${ARGV_CHUNK} < $alen) {
    $n = $alen - $i * ${ARGV_CHUNK};
    if ($n > ${ARGV_CHUNK}) { $n = ${ARGV_CHUNK}; }
    printf("${o.token} A %d %d %rx\\n", pid, $i, buf(uptr($as + $i * ${ARGV_CHUNK}), $n));
    $i = $i + 1;
  }
}`;
}

function fdInfo(n: number): string {
  return `$f${n} = (struct file *)*($fds + ${n});
$in${n} = (struct inode *)$f${n}->f_inode;`;
}

/**
 * The kill program (record `T K ns pid sbcg rule`): first on the exec tracepoint, so its record
 * precedes the exec's own on the same CPU. bpf_send_signal marks SIGKILL pending; the task dies on
 * its way back to user space, before the new image runs one instruction: a known-bad binary
 * cannot write, connect or fork first. What to kill where is data (kernel-kill-table.ts): the
 * sandbox's profile in @kp, the names of that profile in @kc; no entry, no kill.
 */
function kernelKillProgram(o: ScriptOptions): string | undefined {
  // Without the in-kernel sandbox filter there is no sandbox to scope a kill to: no kernel kill.
  if (!o.kernelFilter || !o.kernelKill) return undefined;
  // Only a parent in the same sandbox cgroup (never a host process), and never the sandbox's
  // init (it reaps commands; stopping it would stop the sandbox): a process naming itself so
  // only escapes the stop, not the kill.
  // Bit 32 of the entry: kill only with network stdio, some fd 0-2 an inet socket with a peer
  // (a reverse shell: \`sh\` whose stdio is the connection). A listening or unconnected socket
  // has no remote port; a socketpair is AF_UNIX.
  const netFd = (n: number): string => `$nf = (struct file *)*($kfds + ${n});
if ($nf != 0 && (((struct inode *)$nf->f_inode)->i_mode & 0xf000) == 0xc000) {
  $nsk = ((struct socket *)$nf->private_data)->sk;
  if (($nsk->__sk_common.skc_family == 2 || $nsk->__sk_common.skc_family == 10) && $nsk->__sk_common.skc_dport != 0) { $knet = 1; $ksk = $nsk; $kino = ((struct inode *)$nf->f_inode)->i_ino; }
}`.replace(/^/gm, '    ');
  const body = `$kp = @kp[$sb];
if ($kp != 0) {
  $kr = @kc[$kp, comm];
  $knet = 0;
  $ksk = (struct sock *)0;
  $kino = (uint64)0;
  if ($kr > 0xffffffff) {
    $kfds = (struct file **)curtask->files->fdt->fd;
${[0, 1, 2].map(netFd).join('\n')}
    if ($knet == 0) { $kr = 0; }
  }
  if ($kr != 0) {
    $kr = $kr & 0xffffffff;
    signal("SIGKILL");
    $pcg = (struct cgroup *)curtask->real_parent->cgroups->dfl_cgrp;
    if ($pcg->kn->id == $cg->kn->id && curtask->real_parent->comm != ".praetor-init") { @kkp[curtask->real_parent->tgid] = pid; }
    printf("${o.token} K %llu %d %llu %d %llu %d %d %u %rx\\n", nsecs, pid, $sb, $kr - 1, $kino, $ksk->__sk_common.skc_family, $ksk->__sk_common.skc_dport, $ksk->__sk_common.skc_daddr, buf($ksk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16));
  }
}`;
  // The killed process's parent (the agent's shell) would run its next command the moment it
  // reaps the child, before user space can freeze the sandbox ("nothing after the miner runs"):
  // it is SIGSTOPped on its way out of the wait that reaped the killed child. Containment holds it
  // stopped when the sandbox is held for its owner, and SIGCONTs it otherwise.
  const waits = (o.waitSyscalls ?? []).map((w) => w === 'wait4'
    // Any reaped child, not only the killed one: wait4 answers with the pid as the sandbox's pid
    // namespace numbers it, which is not the host tgid the kill program saw.
    ? `tracepoint:syscalls:sys_exit_wait4 /@kkp[pid]/ {\n  if (args->ret > 0) { signal("SIGSTOP"); delete(@kkp[pid]); }\n}`
    : `tracepoint:syscalls:sys_exit_${w} /@kkp[pid]/ {\n  if (args->ret == 0) { signal("SIGSTOP"); delete(@kkp[pid]); }\n}`);
  return [`tracepoint:sched:sched_process_exec {\n${sandboxGuard(o, body)}\n}`, ...waits].join('\n\n');
}

export function generateScript(o: ScriptOptions): string {
  const T = o.token;
  const exec = `$mm = (struct mm_struct *)curtask->mm;
$as = $mm->arg_start;
$alen = $mm->arg_end - $as;
if ($alen > ${o.argvMax}) { $alen = ${o.argvMax}; }
$fds = (struct file **)curtask->files->fdt->fd;
${fdInfo(0)}
${fdInfo(1)}
${fdInfo(2)}
printf("${T} X %llu %d %d %d %llu %llu %d %d %llu %d %llu %d %llu %rx %rx\\n", nsecs, pid, curtask->real_parent->tgid, uid, cgroup, $sb, $mm->arg_end - $as, $in0->i_mode & 0xf000, $in0->i_ino, $in1->i_mode & 0xf000, $in1->i_ino, $in2->i_mode & 0xf000, $in2->i_ino, buf(comm, 16), buf(curtask->real_parent->comm, 16));`;
  const file = `printf("${T} F %d %s\\n", pid, str(args->filename));`;
  // Header, filename and argv are three programs on the same tracepoint: together they overflow
  // bpftrace 0.17's 512-byte BPF stack. They may run in either order; the parser joins by pid.
  const argv = `$mm = (struct mm_struct *)curtask->mm;
$as = $mm->arg_start;
$alen = $mm->arg_end - $as;
if ($alen > ${o.argvMax}) { $alen = ${o.argvMax}; }
${argvChunks(o)}`;
  const exit = `printf("${T} P %llu %d %llu %d %rx\\n", nsecs, pid, $sb, curtask->exit_code, buf(comm, 16));`;
  // The sockaddr is read at entry so an attempt is reported before a blocking connect returns.
  // If that read fails (the page holding it not faulted in yet: a way to hide a connect from
  // entry-time tracing), it is read again at exit, after the kernel copied it in.
  const connect = `$fam = *(uint16 *)uptr(args->uservaddr);
$alen = args->addrlen;
if ($alen > 28) { $alen = 28; }
if ($fam == 2 || $fam == 10) {
  @pend[tid] = 1;
  printf("${T} C %llu %d %d %llu %rx %rx\\n", nsecs, pid, tid, $sb, buf(comm, 16), buf(uptr(args->uservaddr), $alen));
} else {
  if ($fam == 0) { @pend[tid] = 2; @cptr[tid] = args->uservaddr; @clen[tid] = $alen; @csb[tid] = $sb; }
}`;
  const connectExit = `if (@pend[tid] == 2) {
  $fam = *(uint16 *)uptr(@cptr[tid]);
  if ($fam == 2 || $fam == 10) {
    printf("${T} C %llu %d %d %llu %rx %rx\\n", nsecs, pid, tid, @csb[tid], buf(comm, 16), buf(uptr(@cptr[tid]), @clen[tid]));
  }
  delete(@cptr[tid]); delete(@clen[tid]); delete(@csb[tid]);
}
printf("${T} R %d %d %d\\n", pid, tid, args->ret);
delete(@pend[tid]);`;
  // The path is read at syscall EXIT: at entry, a path in a page not yet faulted in reads as
  // empty (seen for ld.so's own strings), which an agent could use to open a key unseen. At exit
  // the kernel has copied it, so the page is present. Only an 8-byte read is compared with the
  // boring prefixes: copying the whole path into a variable overflows bpftrace 0.17's BPF stack.
  const openEnter = (flags: string): string => `@op[tid] = args->filename; @of[tid] = ${flags}; @osb[tid] = $sb;`;
  // The first 8 bytes are read once, as one integer ($head), and compared with each prefix under
  // a mask: one user read per open instead of a str() and a map lookup per prefix (that exit
  // program was half the sensor's kernel time on a build, bench sensors). A read that fails (the
  // page gone) leaves 0, which matches no prefix: the open is reported, never hidden.
  const word = (p: string): string => { const [v, m] = prefixWord(p); return p.length === 8 ? `$head == ${v}` : `($head & ${m}) == ${v}`; };
  const notBoring = BORING_OPEN_PREFIXES.map((p) => `!(${word(p)})`).join(' && ');
  // A write to a persistence location under a boring prefix (BORING_WRITE_EXCEPTIONS) is
  // judged on its first 16 bytes. No room for a second variable on the stack: when the first
  // word is an exception's, $head becomes that word xor the second, 0 when the pair is an
  // exception's (0 matches no prefix: reported), else the first word again (judged as before).
  const exceptions = BORING_WRITE_EXCEPTIONS.map((p) => {
    if (p.length < 16 || /[^\x20-\x7e]/.test(p)) throw new Error(`write exception ${JSON.stringify(p)}: at least 16 printable bytes`);
    const [hv] = prefixWord(p.slice(0, 8));
    const pair = BigInt(hv) ^ BigInt(prefixWord(p.slice(8, 16))[0]);
    if (pair === 0n) throw new Error(`write exception ${JSON.stringify(p)}: its two words are equal`);
    return { first: BigInt(hv), pair };
  });
  const firstWords = [...new Set(exceptions.map((e) => `$head == 0x${e.first.toString(16)}`))].join(' || ');
  const pairs = exceptions.map((e) => `$head == 0x${e.pair.toString(16)}`).join(' || ');
  const writeException = `if ((@of[tid] & 3) != 0 && (${firstWords})) {
  $head = $head ^ *(uint64 *)uptr(@op[tid] + 8);
  if (${pairs}) { $head = 0; } else { $head = *(uint64 *)uptr(@op[tid]); }
}`;
  // The path names what was asked for; the file opened is what the kernel resolved (symlinks
  // followed, `..` and relative paths walked). Threat: `ln -s ~/.ssh/id_rsa /tmp/notes`, a
  // hard link, `mv` of a key, or `/usr/../home/agent/.aws/credentials` (past the boring-prefix
  // filter) all read a credential by a path no rule names. So every successful open also
  // reports the opened inode and its filesystem, and user space knows credentials by identity
  // (secret-identities.ts); @si holds those identities so the prefix filter never drops them.
  // fd[ret] is read after the kernel installed it: another thread of the process could close it
  // and open a plain file at the same number in between, a window of a few instructions.
  const identity = `$fid = (uint64)0;
if (args->ret >= 0) { $ofile = *(curtask->files->fdt->fd + args->ret); $fid = (uint64)$ofile->f_inode->i_ino ^ ((uint64)$ofile->f_inode->i_sb->s_dev * ${FILE_ID_MUL}); }`;
  const openExit = (opened: boolean): string => `${opened ? identity : '$fid = (uint64)0;'}
$head = *(uint64 *)uptr(@op[tid]);
${writeException}
if ((${notBoring})${opened && o.kernelFilter ? ' || @si[$fid] != 0' : ''}) {
  printf("${T} O %llu %d %llu %d %d %llu %rx %s\\n", nsecs, pid, @osb[tid], @of[tid], args->ret, $fid, buf(comm, 16), str(@op[tid]));
}
delete(@op[tid]); delete(@of[tid]); delete(@osb[tid]);`;
  // Filtered in the kernel twice: the tracepoints fire only for these rare syscalls, and the
  // predicate drops successes and other errors before the cgroup walk. EPERM (1) and EACCES (13)
  // are what isolation answers (no capability, LSM, seccomp); ENOSYS/EINVAL probes are not
  // attempts. `probe` names the syscall, so no per-architecture number table is needed.
  const denied = `printf("${T} D %llu %d %llu %d %rx %s\\n", nsecs, pid, $sb, args->ret, buf(comm, 16), probe);`;
  const deniedProbes = o.deniedSyscalls.map((s) => `tracepoint:syscalls:sys_exit_${s}`).join(',\n');
  const kill = kernelKillProgram(o);
  const parts = [
    `// generated by praetor src/sensors/ebpf-script.ts — do not edit`,
    // BEGIN gives the kill maps their types (a map only user space writes must be written here
    // once) and seeds the sandbox filter; READY comes after both.
    `BEGIN {${o.kernelFilter ? ' @si[(uint64)0] = 0; delete(@si[(uint64)0]);' : ''}${kill ? ' @kp[(uint64)0] = 0; delete(@kp[(uint64)0]); @kc[(uint64)0, comm] = 0; delete(@kc[(uint64)0, comm]);' : ''}${(o.kernelFilter ? o.seedCgroups ?? [] : []).map(([cg, sb]) => ` @sbc[${cg}] = ${sb};`).join('')} printf("${T} READY\\n"); }`,
    ...(o.kernelFilter && o.cgroupRmdir ? [`tracepoint:cgroup:cgroup_rmdir /args->root == 0/ { delete(@sbc[args->id]);${kill ? ' delete(@kp[args->id]);' : ''} }`] : []),
    // Ticks for the catch-up watermark (sensor-catch-up.ts): on every busy CPU's ring 100 times
    // a second, and from a timer that fires (on one CPU) even when every CPU is idle.
    `profile:hz:100,\ninterval:ms:10 { printf("${T} T %d %llu\\n", cpu, nsecs); }`,
    ...(kill ? [kill] : []),
    `tracepoint:sched:sched_process_exec {\n${sandboxGuard(o, exec, true)}\n}`,
    `tracepoint:sched:sched_process_exec {\n${sandboxGuard(o, file)}\n}`,
    `tracepoint:sched:sched_process_exec {\n${sandboxGuard(o, argv)}\n}`,
    `tracepoint:sched:sched_process_exit /args->group_dead/ {\n${sandboxLookup(o, exit)}\n}`,
    `tracepoint:syscalls:sys_enter_connect {\n${sandboxLookup(o, connect)}\n}`,
    `tracepoint:syscalls:sys_exit_connect /@pend[tid]/ {\n${connectExit}\n}`,
    // openat2 passes flags inside struct open_how, whose first member is the u64 flags.
    ...o.openSyscalls.map((s) => `tracepoint:syscalls:sys_enter_${s} {\n${sandboxLookup(o, openEnter(s === 'openat2' ? '*(uint64 *)uptr(args->how)' : 'args->flags'))}\n}`),
    ...o.openSyscalls.map((s) => `tracepoint:syscalls:sys_exit_${s} /@op[tid]/ {\n${openExit(true)}\n}`),
    // Threat: `mv /tmp/x ~/.ssh/authorized_keys` or `ln -sf /workspace/evil ~/.bashrc` puts a
    // file at a watched path without any open of that path. The destination is reported as an
    // open for write (flags PLACE_FLAGS), so every path rule applies to it unchanged.
    ...(o.placeSyscalls ?? []).map((s) => `tracepoint:syscalls:sys_enter_${s} {\n${sandboxLookup(o, `@op[tid] = args->newname; @of[tid] = ${PLACE_FLAGS}; @osb[tid] = $sb;`)}\n}`),
    ...(o.placeSyscalls ?? []).map((s) => `tracepoint:syscalls:sys_exit_${s} /@op[tid]/ {\n${openExit(false)}\n}`),
    ...(o.deniedSyscalls.length > 0 ? [`${deniedProbes} /args->ret == -1 || args->ret == -13/ {\n${sandboxLookup(o, denied)}\n}`] : []),
    // bpftrace prints every non-empty map when it exits; these are scratch, not results.
    `END {${o.kernelFilter ? ' clear(@sbc); clear(@si);' : ''} clear(@pend); clear(@cptr); clear(@clen); clear(@csb); clear(@op); clear(@of); clear(@osb);${kill ? ' clear(@kkp); clear(@kp); clear(@kc);' : ''} }`,
  ];
  return parts.join('\n\n') + '\n';
}
