import { EVENT_KINDS, type EventKind, type EventOf, type PraetorEvent } from '../events/index.ts';
import { parseSshArgv } from './ssh-argv.ts';
import { readsProgramFromStdin } from './stdin-program.ts';

// The fields a condition may name, Falco style, as one table: name → type, the event kinds that
// carry it, and an accessor. The linter rejects unknown fields and type errors from this table;
// the compiler uses `kinds` to index rules by event kind, so a rule about process.exec is never
// evaluated against a gpu.sample. A field that does not apply to an event reads as undefined,
// and every comparison on undefined is false (as in Falco).

export type FieldType = 'string' | 'number' | 'bool' | 'strings';

/** Per-event evaluation context: derived values (cmdline, parsed ssh argv) are computed once. */
export type Ctx = { e: PraetorEvent; memo?: Map<string, unknown> };

export type FieldDef = {
  type: FieldType;
  kinds: readonly EventKind[];
  desc: string;
  get: (c: Ctx) => string | number | boolean | readonly string[] | undefined;
};

type Val = string | number | boolean | readonly string[] | undefined;

function on<K extends EventKind>(
  type: FieldType, kinds: readonly K[], desc: string, fn: (e: EventOf<K>, c: Ctx) => Val,
): FieldDef {
  const set = new Set<string>(kinds);
  const only = kinds.length === 1 ? kinds[0] : undefined;
  const get: FieldDef['get'] = only !== undefined
    ? (c) => (c.e.kind === only ? fn(c.e as EventOf<K>, c) : undefined)
    : (c) => (set.has(c.e.kind) ? fn(c.e as EventOf<K>, c) : undefined);
  return { type, kinds, desc, get };
}

/** A value derived from the event, computed once per event (per Ctx) however many rules read it. */
export function memo<T>(c: Ctx, key: string, f: () => T): T {
  const m = (c.memo ??= new Map());
  if (m.has(key)) return m.get(key) as T;
  const v = f();
  m.set(key, v);
  return v;
}

const basename = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const dirname = (p: string): string => { const i = p.lastIndexOf('/'); return i <= 0 ? '/' : p.slice(0, i); };

// Alerts and containment are the engine's own output; rules never match them (no feedback loop).
const ALL: readonly EventKind[] = EVENT_KINDS.filter((k) => k !== 'alert' && k !== 'containment');
// process.identity repeats its exec's fields with the identity filled in (a big binary hashed
// late, a tool found by markers), so a rule on proc.tool is evaluated again when it arrives;
// rules that say `spawned_process` (evt.kind = process.exec) are not. Typed as process.exec on
// purpose: both kinds carry the same ExecFields (schema.ts), so every accessor written for the
// exec reads the identity unchanged.
const EXEC = ['process.exec', 'process.identity'] as readonly EventKind[] as readonly ['process.exec'];
/** A process as the pipe graph found it wired: names and argv as on exec. */
const STDIO = ['process.stdio'] as const;
const EXEC_LIKE = ['process.exec', 'process.identity', 'process.stdio'] as readonly EventKind[] as readonly ['process.exec', 'process.stdio'];
/** Events that name the process's executable. */
const WITH_EXE = ['process.exec', 'process.identity', 'process.stdio', 'process.cpu'] as readonly EventKind[] as readonly ['process.exec', 'process.stdio', 'process.cpu'];
const PROC_NAMED = ['process.exec', 'process.identity', 'process.exit', 'net.connect', 'file.open', 'syscall.denied', 'process.stdio', 'process.cpu'] as const;
const NET = ['net.connect', 'net.flow', 'net.attempt'] as const;
const GATEWAY = ['net.flow', 'net.attempt', 'dns.query'] as const;

/** A network-facing stdio entry: the sensor's `stdioPeers`, or a stdio string naming tcp/udp. */
function stdioNet(e: EventOf<'process.exec'>): boolean {
  if (e.stdioPeers?.some((p) => p !== '')) return true;
  return e.stdio?.some((s) => /^(tcp|udp|inet)/.test(s)) ?? false;
}

/** fd 0 or 1 when it is a pipe (`pipe:[ino]`), else undefined. */
function pipeOn(e: EventOf<'process.exec'>, fd: 0 | 1): string | undefined {
  const s = e.stdio?.[fd];
  return s !== undefined && s.startsWith('pipe:') ? s : undefined;
}

/** Whether this exec is a shell or interpreter whose program arrives on stdin, once per event. */
function stdinProgram(e: EventOf<'process.exec'>, c: Ctx): boolean {
  return memo(c, 'stdinProgram', () => readsProgramFromStdin(basename(e.path), e.argv));
}

type DnsName = { name: string; labels: string[]; maxLabelLen: number };

/** The queried name normalised (lower case, no trailing dot) and split into labels, once per event. */
function dnsName(e: EventOf<'dns.query'>, c: Ctx): DnsName {
  return memo(c, 'dns', () => {
    const name = e.name.replace(/\.$/, '').toLowerCase();
    const labels = name.split('.');
    let maxLabelLen = 0;
    for (const l of labels) if (l.length > maxLabelLen) maxLabelLen = l.length;
    return { name, labels, maxLabelLen };
  });
}

export const FIELDS: Readonly<Record<string, FieldDef>> = {
  // envelope
  'evt.kind': on('string', ALL, 'event kind, e.g. process.exec', (e) => e.kind),
  'evt.id': on('string', ALL, 'event id', (e) => e.id),
  'evt.ts': on('number', ALL, 'event time, ns since the epoch', (e) => e.ts),
  'evt.sandbox': on('string', ALL, 'sandbox id', (e) => e.sandboxId),
  'evt.episode': on('string', ALL, 'episode id, when known', (e) => e.episodeId),
  'evt.tool_call': on('string', ALL, 'tool call id, when known', (e) => e.toolCallId),
  'proc.pid': on('number', ALL, 'host pid, when known', (e) => e.pid),

  // processes
  'proc.name': on('string', PROC_NAMED, 'comm of the process (kernel truncates to 15 chars)', (e) => e.comm),
  'proc.exe': on('string', WITH_EXE, 'path of the executed file', (e) => e.path),
  'proc.exe_name': on('string', WITH_EXE, 'basename of proc.exe (not truncated, survives argv0 tricks)', (e) => basename(e.path)),
  'proc.exe_dir': on('string', WITH_EXE, 'directory of proc.exe', (e) => dirname(e.path)),
  'proc.argv0': on('string', EXEC_LIKE, 'argv[0] as the process set it', (e) => e.argv[0] ?? ''),
  'proc.cmdline': on('string', EXEC_LIKE, 'argv joined by spaces', (e, c) => memo(c, 'cmdline', () => e.argv.join(' '))),
  'proc.args': on('strings', EXEC_LIKE, 'argv[1..] as a list (operators apply to any element)', (e, c) => memo(c, 'args', () => e.argv.slice(1))),
  'proc.argc': on('number', EXEC_LIKE, 'number of arguments after argv[0]', (e) => Math.max(0, e.argv.length - 1)),
  'proc.pname': on('string', EXEC_LIKE, 'comm of the parent', (e) => e.parentComm),
  'proc.ppid': on('number', EXEC_LIKE, 'parent pid', (e) => e.ppid),
  'proc.uid': on('number', EXEC, 'uid', (e) => e.uid),
  'proc.stdio': on('strings', EXEC, 'what fds 0-2 point at, e.g. socket:[123], pipe:[9], /dev/pts/0', (e) => e.stdio),
  'proc.stdio_net': on('bool', EXEC, 'some fd 0-2 is an inet socket with a remote peer (not a socketpair)', (e) => stdioNet(e)),
  'proc.stdio_peers': on('strings', EXEC, 'remote ip:port of fds 0-2 that are inet sockets', (e) => e.stdioPeers),
  // Pipes between processes, from the kernel's view of fds 0-1 at exec (reliable even for a
  // stage that exits at once). `a | b` shares one pipe: a's stdout is b's stdin.
  'proc.stdin_pipe': on('string', EXEC, 'fd 0 when it is a pipe, e.g. pipe:[123]', (e) => pipeOn(e, 0)),
  'proc.stdout_pipe': on('string', EXEC, 'fd 1 when it is a pipe, e.g. pipe:[123]', (e) => pipeOn(e, 1)),
  'proc.stdin_program': on('bool', EXEC, 'a shell or interpreter with no script and no inline code: its program is whatever arrives on stdin (curl … | sh, find -exec /bin/sh)', (e, c) => stdinProgram(e, c)),
  'proc.pipe_link': on('string', EXEC, 'the pipe that links a pipeline stage to its neighbour: stdin for a process reading its program from stdin, else stdout (key windows by it to join `a | b`)', (e, c) => pipeOn(e, stdinProgram(e, c) ? 0 : 1)),
  'proc.sensor': on('string', EXEC, 'ebpf or procfs', (e) => e.sensor),
  'proc.stdio_in_via': on('string', STDIO, 'how fd 0 is fed from an outbound socket: direct, pipeline (relays on their stdio: nc, openssl, a FIFO loop), supervisor (a parent on fds >= 3), none', (e) => e.inVia),
  'proc.stdio_out_via': on('string', STDIO, 'how fds 1-2 reach an outbound socket: direct, pipeline, supervisor, none', (e) => e.outVia),
  'proc.stdio_same_host': on('bool', STDIO, 'fd 0 and fds 1-2 reach the same remote host: the loop of a reverse shell', (e) => e.sameHost),
  'proc.stdio_chain': on('strings', STDIO, 'the pipe/FIFO/socket/pty hops from fds 0-2 to the outbound sockets', (e) => e.chain),
  'proc.stdio_chain_peers': on('strings', STDIO, 'remote ip:port of the outbound sockets the stdio chain reaches', (e) => e.peers),
  // per-process CPU and the connections its tree keeps (process.cpu, from the cgroup sampler)
  'proc.cpu_pct': on('number', ['process.cpu'], 'percent of one CPU the process used over the last second', (e) => e.cpuPct),
  'proc.cpu_quota_pct': on('number', ['process.cpu'], 'process CPU as percent of min(quota, one CPU)', (e) => (100 * e.cpuPct) / Math.min(e.cpuLimitPct ?? 100, 100)),
  'proc.cpu_saturated_ms': on('number', ['process.cpu'], 'how long the process has held >= 80 % of min(quota, one CPU)', (e) => e.saturatedMs),
  'proc.threads': on('number', ['process.cpu'], 'threads of the process', (e) => e.threads),
  'proc.top_thread': on('string', ['process.cpu'], 'name of its busiest thread', (e) => e.topThreadComm),
  'proc.net_conns': on('number', ['process.cpu'], 'established outbound connections held by the process, its ancestors or descendants', (e) => e.netConns),
  'proc.net_peers': on('strings', ['process.cpu'], 'their remote ip:port', (e) => e.netPeers),
  'proc.net_conn_age_ms': on('number', ['process.cpu'], 'how long the oldest of them has been held', (e) => e.netConnAgeMs),
  'proc.net_bytes_per_s': on('number', ['process.cpu'], 'bytes per second of the most periodic of those connections while the process was saturated (up to 120 s)', (e) => e.netBytesPerSec),
  'proc.net_active_s': on('number', ['process.cpu'], 'seconds of that window in which the connection moved bytes (periodic exchanges show in several)', (e) => e.netActiveSecs),
  'proc.net_per_socket': on('bool', ['process.cpu'], 'the volume figures are the connection\'s own (tcp_info), not the namespace\'s interface counters', (e) => e.netPerSocket),
  'proc.exit_code': on('number', ['process.exit'], 'exit code', (e) => e.exitCode ?? undefined),
  'proc.signal': on('number', ['process.exit'], 'terminating signal', (e) => e.signal ?? undefined),
  // executable identity (issue 13): what the file is, not what it is called
  'proc.tool': on('string', EXEC_LIKE, 'known tool the executable is a copy of, by content (ssh, socat, nc, python3, bash …); a #! script names its interpreter', (e) => e.tool ?? undefined),
  'proc.sha256': on('string', EXEC, 'SHA-256 of the executable that runs (a script: its interpreter)', (e) => e.sha256),
  'proc.ptool': on('string', EXEC, 'proc.tool of the parent process, when known', (e) => e.parentTool),
  'proc.identity': on('string', EXEC, 'where proc.sha256 came from: exe, path (degraded), pending, unavailable', (e) => e.identity),
  'proc.tool_by': on('string', EXEC, 'how proc.tool was recognised: hash, marker, busybox, shebang', (e) => e.toolBy),
  'ssh.config_opts': on('strings', EXEC, 'option keys in force from ssh configuration files (-F, Include, ~/.ssh/config, /etc/ssh/ssh_config) for this destination, e.g. remoteforward; on a git exec, those of its GIT_SSH_COMMAND (flags included)', (e) => e.sshConfigOpts),
  'ssh.config_files': on('strings', EXEC, 'ssh configuration files the client will read', (e) => e.sshConfigFiles),
  'ssh.config_unresolved': on('strings', EXEC, 'ssh configuration that could not be inspected, and why', (e) => e.sshConfigUnresolved),
  'ssh.flags': on('strings', EXEC, 'single-letter options before the destination of an ssh argv, e.g. -R, -N', (e, c) => memo(c, 'ssh', () => parseSshArgv(e.argv)).flags),
  'ssh.opts': on('strings', EXEC, '-o option keys (lower case) of an ssh argv, e.g. remoteforward', (e, c) => memo(c, 'ssh', () => parseSshArgv(e.argv)).optionKeys),

  // network: kernel connects and gateway verdicts
  'fd.sip': on('string', NET, 'destination ip', (e) => e.dstIp),
  'fd.sport': on('number', NET, 'destination port', (e) => e.dstPort),
  'fd.dst': on('string', NET, 'destination ip:port (one value per service, for distinct counts across hosts and ports)', (e) => (e.dstPort === undefined ? e.dstIp : `${e.dstIp}:${e.dstPort}`)),
  'fd.family': on('string', ['net.connect'], 'inet, inet6, unix, other', (e) => e.family),
  'net.protocol': on('string', ['net.flow', 'net.attempt'], 'protocol the gateway recognised (http, tls, ssh, stratum, jsonrpc-tx, chisel …)', (e) => e.protocol),
  'net.decision': on('string', GATEWAY, 'gateway decision: allow or deny', (e) => e.decision),
  'net.rule': on('string', GATEWAY, 'policy rule that decided', (e) => e.rule),
  'net.reason': on('string', GATEWAY, 'why the gateway decided so', (e) => e.reason),
  'net.domain': on('string', ['net.flow'], 'destination name: domain, else SNI, else Host', (e) => e.domain ?? e.sni ?? e.host),
  'net.sni': on('string', ['net.flow'], 'TLS SNI', (e) => e.sni),
  'net.layers': on('string', ['net.flow'], 'layer path of the gateway verdict joined by ">", e.g. tls>http>websocket>stratum (use contains / startswith)', (e) => e.layers?.join('>')),
  'net.host': on('string', ['net.flow'], 'HTTP Host', (e) => e.host),
  'net.bytes_out': on('number', ['net.flow'], 'bytes sent', (e) => e.bytesOut),
  'net.bytes_in': on('number', ['net.flow'], 'bytes received', (e) => e.bytesIn),

  // dns
  'dns.name': on('string', ['dns.query'], 'queried name, lower case, no trailing dot', (e, c) => dnsName(e, c).name),
  'dns.qtype': on('string', ['dns.query'], 'query type, e.g. A, TXT, NULL', (e) => e.qtype.toUpperCase()),
  'dns.answers': on('strings', ['dns.query'], 'answers', (e) => e.answers),
  'dns.domain': on('string', ['dns.query'], 'last two labels of the name (a cheap registered domain)', (e, c) => memo(c, 'dns.domain', () => dnsName(e, c).labels.slice(-2).join('.'))),
  'dns.labels': on('number', ['dns.query'], 'number of labels', (e, c) => dnsName(e, c).labels.length),
  'dns.max_label_len': on('number', ['dns.query'], 'length of the longest label (tunnels pack data into labels)', (e, c) => dnsName(e, c).maxLabelLen),

  // files
  'file.path': on('string', ['file.open'], 'opened path', (e) => e.path),
  'file.name': on('string', ['file.open'], 'basename of file.path', (e) => basename(e.path)),
  'file.dir': on('string', ['file.open'], 'directory of file.path', (e) => dirname(e.path)),
  'file.canary': on('string', ['file.open'], 'name of the Praetor canary credential planted at this path in this sandbox (ssh-key, aws-credentials, netrc)', (e) => e.canary),
  'file.write': on('bool', ['file.open'], 'opened for writing', (e) => e.write),

  // refused syscalls (escape attempts the isolation stopped)
  'syscall.name': on('string', ['syscall.denied'], 'refused syscall, e.g. unshare, mount, setns, bpf, ptrace', (e) => e.syscall),
  'syscall.errno': on('number', ['syscall.denied'], 'errno it was refused with: 1 EPERM, 13 EACCES', (e) => e.errno),

  // resources
  'res.cpu_pct': on('number', ['resource.sample'], 'percent of one CPU', (e) => e.cpuPct),
  'res.cpu_limit_pct': on('number', ['resource.sample'], 'CPU quota as percent of one CPU', (e) => e.cpuLimitPct ?? undefined),
  'res.cpu_quota_pct': on('number', ['resource.sample'], 'CPU use as percent of the quota', (e) => (e.cpuLimitPct ? (100 * e.cpuPct) / e.cpuLimitPct : undefined)),
  'res.saturated_ms': on('number', ['resource.sample'], 'how long CPU has stayed at ≥ 80 % of its quota, judged over the last second', (e) => e.saturatedMs),
  'res.mem_bytes': on('number', ['resource.sample'], 'memory in use', (e) => e.memBytes),
  'res.mem_pct': on('number', ['resource.sample'], 'memory as percent of its limit', (e) => (e.memLimitBytes ? (100 * e.memBytes) / e.memLimitBytes : undefined)),
  'res.pids': on('number', ['resource.sample'], 'tasks in the sandbox', (e) => e.pids),
  'limit.resource': on('string', ['sandbox.limit'], 'limit that was hit: memory, pids, cpu, disk', (e) => e.resource),
  'limit.detail': on('string', ['sandbox.limit'], 'detail of the limit event', (e) => e.detail),
  'oom.count': on('number', ['sandbox.oom'], 'OOM kills so far', (e) => e.count),

  // gpu
  'gpu.index': on('number', ['gpu.sample'], 'GPU index', (e) => e.gpu),
  'gpu.util_pct': on('number', ['gpu.sample'], 'utilisation percent', (e) => e.utilPct),
  'gpu.mem_bytes': on('number', ['gpu.sample'], 'GPU memory in use', (e) => e.memBytes),
  'gpu.power_w': on('number', ['gpu.sample'], 'power draw, W', (e) => e.powerW ?? undefined),
  'gpu.sanctioned': on('bool', ['gpu.sample'], 'the using sandbox holds a GPU grant', (e) => e.sanctioned),
  'gpu.proc_count': on('number', ['gpu.sample'], 'compute processes on the GPU', (e) => e.processes.length),
  'gpu.proc_names': on('strings', ['gpu.sample'], 'names of the compute processes', (e) => e.processes.map((p) => p.name)),
  'gpu.unsanctioned_count': on('number', ['gpu.sample'], 'compute processes outside the sanctioned set', (e) => e.processes.filter((p) => p.sanctioned === false).length),
  'gpu.unsanctioned_names': on('strings', ['gpu.sample'], 'names of compute processes outside the sanctioned set', (e) => e.processes.filter((p) => p.sanctioned === false).map((p) => p.name)),
};

export function fieldDef(name: string): FieldDef | undefined {
  return Object.hasOwn(FIELDS, name) ? FIELDS[name] : undefined;
}

export const EVENT_KINDS_FOR_RULES = ALL;
