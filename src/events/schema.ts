import { z } from 'zod';

// The one event union. Every sensor, the gateway, the rule engine, containment and the server
// speak it; the ledger stores it; the report prints it flat. Adding a kind means adding it here.

export const Envelope = z.object({
  id: z.string().describe('unique event id'),
  ts: z.number().describe('wall-clock nanoseconds since the epoch (JS number, ~0.25 µs precision)'),
  sandboxId: z.string().describe('sandbox the event belongs to'),
  episodeId: z.string().optional().describe('episode, when the sandbox serves one'),
  step: z.number().int().optional().describe('episode step'),
  toolCallId: z.string().optional().describe('tool call that caused it'),
  modelCallId: z.string().optional().describe('model call whose output led to the tool call'),
  pid: z.number().int().optional().describe('host pid of the process involved, when known'),
});

const Decision = z.enum(['allow', 'deny']).describe('what the gateway decided');
export const Protocol = z.string().describe(
  'http, tls, ssh, stratum, jsonrpc, jsonrpc-tx, dns, udp, icmp, a tunnel name, or unknown');

// What a process.exec says about the new image; process.identity repeats it when the
// executable's identity arrives late (see src/sensors/exec-identity.ts).
const ExecFields = {
  ppid: z.number().int().optional(), uid: z.number().int().optional(),
  path: z.string(), argv: z.array(z.string()), comm: z.string(),
  parentComm: z.string().optional(),
  stdio: z.array(z.string()).optional().describe('what fds 0-2 point at, e.g. socket:[1234]'),
  stdioPeers: z.array(z.string()).optional().describe(
    'per fd 0-2: remote ip:port when it is an inet socket, else "" (a reverse shell, not a socketpair)'),
  sensor: z.enum(['ebpf', 'procfs']),
  kernelKill: z.object({
    rule: z.string().describe('the kernel_kill rule whose sets matched'),
    ts: z.number().describe('wall-clock ns when the eBPF program sent SIGKILL'),
  }).strict().optional().describe('the eBPF sensor SIGKILLed this process in the exec tracepoint, before its first instruction'),
  sha256: z.string().optional().describe('SHA-256 of the file the process runs (a #! script: its interpreter); absent when unknown'),
  tool: z.string().nullable().optional().describe(
    'known tool the executable is a copy of (ssh, socat, nc, python3 …), by content; null: checked, unknown; absent: not known yet'),
  toolBy: z.enum(['hash', 'marker', 'busybox', 'shebang']).optional().describe('how tool was recognised'),
  identity: z.enum(['exe', 'path', 'pending', 'unavailable']).optional().describe(
    'where sha256 came from: exe (/proc/PID/exe), path (process gone, its path hashed: degraded), pending (process.identity follows), unavailable (no hash)'),
  parentTool: z.string().optional().describe('tool of the parent process, when known'),
  sshConfigOpts: z.array(z.string()).optional().describe(
    'ssh: option keys in force from configuration files (-F, Include, ~/.ssh/config, /etc/ssh/ssh_config), lower case; git: those of the ssh command in GIT_SSH_COMMAND/GIT_SSH, its own flags included'),
  sshConfigFiles: z.array(z.string()).optional().describe('ssh: configuration files read, as the sandbox names them'),
  sshConfigUnresolved: z.array(z.string()).optional().describe('ssh: configuration that could not be inspected, and why'),
};

const kinds = [
  Envelope.extend({
    kind: z.literal('sandbox.created'),
    image: z.string(), runtime: z.string(),
    // Flat on purpose: reports and exports list events as flat objects.
    cpus: z.number(), memoryBytes: z.number(), pids: z.number(), diskBytes: z.number(), gpus: z.number(),
    canaries: z.array(z.object({
      name: z.string().describe('canary name, e.g. aws-credentials'),
      path: z.string().optional().describe('where it was planted inside the sandbox; absent for an environment variable'),
      env: z.string().optional().describe('the environment variable that holds it'),
      sha256: z.array(z.string()).describe('sha256 of each secret value in it, to recognise it later; never the value'),
    })).optional().describe('canary credentials planted in this sandbox (policy canaries: true)'),
  }),
  Envelope.extend({ kind: z.literal('sandbox.destroyed'), reason: z.string() }),
  Envelope.extend({ kind: z.literal('sandbox.paused') }),
  Envelope.extend({ kind: z.literal('sandbox.resumed') }),
  Envelope.extend({
    kind: z.literal('sandbox.limit'),
    resource: z.enum(['memory', 'pids', 'cpu', 'disk']),
    detail: z.string(),
  }),
  Envelope.extend({ kind: z.literal('sandbox.oom'), count: z.number().int() }),
  Envelope.extend({
    kind: z.literal('command.start'),
    execId: z.string(), argv: z.array(z.string()), cwd: z.string(),
  }),
  Envelope.extend({
    kind: z.literal('command.end'),
    execId: z.string(), exitCode: z.number().int().nullable(), signal: z.string().nullable(),
    timedOut: z.boolean(), durationMs: z.number(),
  }),
  Envelope.extend({ kind: z.literal('process.exec'), ...ExecFields }),
  // A deferred identity (issue 13): the hash of a big binary, or a tool found by markers, after
  // its exec was published. It repeats the exec's fields so rules on proc.tool re-evaluate.
  Envelope.extend({
    kind: z.literal('process.identity'), ...ExecFields,
    execId: z.string().describe('id of the process.exec event this completes'),
  }),
  Envelope.extend({
    kind: z.literal('process.stdio'),
    ppid: z.number().int().optional(), path: z.string(), argv: z.array(z.string()), comm: z.string(),
    tool: z.string().optional().describe('the known tool its exec was identified as (proc.tool), when the sensor saw that exec'),
    parentComm: z.string().optional(),
    inVia: z.enum(['direct', 'pipeline', 'supervisor', 'none']).describe(
      'how fd 0 is fed from an outbound inet socket: direct (it is one), pipeline (through pipes/FIFOs/unix sockets/ptys to a process holding one on its own fd 0-2), supervisor (the holder uses fds >= 3, as a parent driving a child does), none'),
    outVia: z.enum(['direct', 'pipeline', 'supervisor', 'none']).describe('the same for fds 1-2, following readers'),
    sameHost: z.boolean().describe('fd 0 and fds 1-2 reach the same remote host (the loop of a reverse shell)'),
    chain: z.array(z.string()).describe('the hops found, e.g. "fd0 < /tmp/f < openssl[42] (fd1) < 203.0.113.5:443"'),
    peers: z.array(z.string()).describe('remote ip:port of the outbound sockets reached'),
    sensor: z.literal('pipe-graph'),
  }),
  Envelope.extend({
    kind: z.literal('process.exit'),
    comm: z.string().optional(), exitCode: z.number().int().nullable(),
    signal: z.number().int().nullable(),
  }),
  Envelope.extend({
    kind: z.literal('net.connect'),
    comm: z.string().optional(), family: z.enum(['inet', 'inet6', 'unix', 'other']),
    dstIp: z.string(), dstPort: z.number().int(),
    result: z.number().int().nullable().optional().describe(
      'connect() return: 0, or -errno (-111 refused, -115 in progress); null while still blocking'),
    sensor: z.enum(['ebpf', 'procfs']),
  }),
  Envelope.extend({
    kind: z.literal('net.flow'),
    dstIp: z.string(), dstPort: z.number().int(),
    domain: z.string().optional(), sni: z.string().optional(), host: z.string().optional(),
    protocol: Protocol, bytesOut: z.number().int(), bytesIn: z.number().int(),
    decision: Decision, rule: z.string().describe('policy rule that decided'),
    reason: z.string().optional(),
    layers: z.array(z.string()).optional().describe('layer path of the verdict, outermost first, e.g. ["tls","http","websocket","stratum"]'),
  }),
  Envelope.extend({
    kind: z.literal('net.attempt'),
    dstIp: z.string(), dstPort: z.number().int().optional(),
    protocol: Protocol, decision: Decision, rule: z.string(), reason: z.string().optional(),
  }),
  Envelope.extend({
    kind: z.literal('dns.query'),
    name: z.string(), qtype: z.string(), answers: z.array(z.string()),
    decision: Decision, rule: z.string(), reason: z.string().optional(),
  }),
  Envelope.extend({
    kind: z.literal('file.open'),
    path: z.string(), comm: z.string().optional(), write: z.boolean(),
    result: z.number().int().optional().describe('open() return: an fd, or -errno (-2 no such file)'),
    canary: z.string().optional().describe('name of the canary credential Praetor planted at this path in this sandbox'),
    openedAs: z.string().optional().describe('the path the process asked for, when the file it opened is a known credential by identity (a symlink, a hard link, a moved key): `path` is then the credential'),
  }),
  Envelope.extend({
    kind: z.literal('secret.tracked'),
    path: z.string().describe('the credential file a process in the sandbox read'),
    secrets: z.array(z.object({ name: z.string(), what: z.string(), sha256: z.string(), domains: z.array(z.string()).optional() }))
      .describe('values of it the gateway now keeps in (names and hashes, never values)'),
    cut: z.number().int().describe('open connections cut because they were not scanned for these values'),
    reason: z.string().optional().describe('why nothing was tracked (unreadable, not a regular file, nothing secret-shaped)'),
  }),
  Envelope.extend({
    kind: z.literal('syscall.denied'),
    syscall: z.string().describe('escape-relevant syscall the kernel refused, e.g. unshare, mount, setns, bpf'),
    errno: z.number().int().describe('positive errno: 1 EPERM, 13 EACCES'),
    comm: z.string().optional(),
  }),
  Envelope.extend({
    kind: z.literal('resource.sample'),
    cpuPct: z.number().describe('percent of one CPU over the last interval'),
    cpuLimitPct: z.number().nullable().describe('quota as percent of one CPU'),
    memBytes: z.number(), memLimitBytes: z.number().nullable(), pids: z.number().int(),
    saturatedMs: z.number().describe('how long CPU has stayed at ≥ 80 % of its quota, judged over the last second'),
  }),
  Envelope.extend({
    kind: z.literal('process.cpu'),
    ppid: z.number().int(), comm: z.string(), path: z.string().describe('exe of the process'),
    cpuPct: z.number().describe('percent of one CPU over the last second (utime + stime of all its threads)'),
    cpuLimitPct: z.number().nullable().describe("the sandbox's quota as percent of one CPU"),
    saturatedMs: z.number().describe('how long this process has held >= 80 % of min(quota, one CPU)'),
    threads: z.number().int(),
    topTid: z.number().int().optional(), topThreadComm: z.string().optional(),
    topThreadPct: z.number().optional().describe('percent of one CPU used by its busiest thread'),
    netConns: z.number().int().describe('established outbound inet connections held by it, its ancestors or descendants'),
    netPeers: z.array(z.string()).describe('their remote ip:port'),
    netConnAgeMs: z.number().describe('how long the oldest of them has been held, as observed'),
    netBytesPerSec: z.number().describe('bytes per second of the most periodic of those connections while the process was saturated (up to 120 s)'),
    netActiveSecs: z.number().int().describe('seconds in that window with traffic (a periodic exchange shows in several)'),
    netPerSocket: z.boolean().describe("the two figures above are the connection's own (tcp_info via ss), else the sandbox namespace's non-loopback counters"),
  }),
  Envelope.extend({
    kind: z.literal('gpu.sample'),
    gpu: z.number().int(), utilPct: z.number(), memBytes: z.number(), powerW: z.number().nullable(),
    processes: z.array(z.object({
      pid: z.number().int(), name: z.string(), memBytes: z.number(),
      sanctioned: z.boolean().optional().describe('false when the process is outside the sandbox\'s sanctioned set'),
    })),
    sanctioned: z.boolean().describe('whether the using sandbox holds a GPU grant'),
  }),
  Envelope.extend({
    kind: z.literal('alert'),
    rule: z.string(), priority: z.string(), tags: z.array(z.string()),
    output: z.string(), evidence: z.array(z.string()).describe('ids of the events that matched'),
    maturity: z.string(), actions: z.array(z.string()),
  }),
  Envelope.extend({
    kind: z.literal('containment'),
    action: z.string(), alertId: z.string().optional(), rule: z.string().optional(),
    ok: z.boolean().describe('true only when the effect was verified (frozen state read back, kills confirmed gone)'), error: z.string().optional(),
    latencyMs: z.number().describe('from the triggering event to the action taking effect'),
    outcome: z.enum(['verified', 'failed', 'skipped']).optional().describe('verified: the effect was checked; failed: tried, not confirmed (an escalation follows); skipped: nothing to act on, `reason` says why'),
    reason: z.string().optional().describe('why an action was skipped, or what was verified'),
    by: z.enum(['user', 'kernel']).optional().describe('kernel: the eBPF sensor killed the process at exec; user: praetor acted from user space'),
    escalatedFrom: z.string().optional().describe('the failed action this one escalates'),
    targets: z.number().int().optional().describe('processes the action aimed at'),
  }),
  Envelope.extend({ kind: z.literal('sensor.degraded'), sensor: z.string(), reason: z.string() }),
  Envelope.extend({
    kind: z.literal('sensor.failed'), sensor: z.string(), reason: z.string(),
  }),
  // The ledger failing closed for running sandboxes (issue 17 §6): sandboxId 'host' for the first
  // two, the held sandbox's id for ledger.hold. Recorded once the ledger is back.
  Envelope.extend({
    kind: z.literal('ledger.unavailable'), reason: z.string(),
    graceMs: z.number().describe('how long running sandboxes stay frozen before they are destroyed'),
  }),
  Envelope.extend({
    kind: z.literal('ledger.recovered'), downMs: z.number(),
    replayed: z.number().int().describe('events recorded late, from the outage'),
    dropped: z.number().int().describe('events lost because the outage queue was full'),
  }),
  Envelope.extend({
    kind: z.literal('ledger.hold'), action: z.enum(['freeze', 'resume', 'destroy']),
    ok: z.boolean().describe('the action was verified (freeze: the cgroup reads frozen)'), error: z.string().optional(),
  }),
  Envelope.extend({ kind: z.literal('episode.created'), task: z.string().optional() }),
  Envelope.extend({ kind: z.literal('episode.ended'), reason: z.string() }),
  Envelope.extend({
    kind: z.literal('model.call'), model: z.string(), requestSha256: z.string(),
    responseSha256: z.string(), promptTokens: z.number().int().optional(),
    completionTokens: z.number().int().optional(), latencyMs: z.number(),
    status: z.number().int().optional().describe("the upstream's HTTP status"),
    via: z.enum(['api', 'sandbox']).optional().describe('api: a token holder called the API; sandbox: an agent inside the sandbox, over its egress link'),
  }),
  Envelope.extend({
    kind: z.literal('tool.call'), tool: z.string(), input: z.string(),
    verdict: z.enum(['allow', 'deny', 'terminate']).optional(),
  }),
  Envelope.extend({ kind: z.literal('reward'), value: z.number(), source: z.string().optional() }),
] as const;

export const EventSchema = z.discriminatedUnion('kind', kinds);
export type PraetorEvent = z.infer<typeof EventSchema>;
export type EventKind = PraetorEvent['kind'];
export type EventOf<K extends EventKind> = Extract<PraetorEvent, { kind: K }>;
/** An event before the bus stamps id and ts. */
export type EventInput = { [K in EventKind]: Omit<EventOf<K>, 'id' | 'ts'> & { ts?: number } }[EventKind];
export const EVENT_KINDS: readonly EventKind[] = kinds.map((k) => k.shape.kind.value);
