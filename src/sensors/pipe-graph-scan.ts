import { readdirSync, readFileSync } from 'node:fs';
import { errorMessage } from '../errors.ts';
import type { EventBus, PraetorEvent } from '../events/index.ts';
import { readStartTime } from '../util/index.ts';
import { PipeGraph, type ProcNode } from './pipe-graph.ts';
import { readInetInodes, readNetSockets, readOutbound, readProcNode, settleSockets, type NetSockets } from './pipe-graph-read.ts';
import { readCgroupV2Path, readCmdline, readLink, sandboxCgroupPath, unifiedRoot } from './proc-util.ts';
import { HOST_SANDBOX, type SandboxResolver } from './sensor-types.ts';

// When the pipe graph is resolved, and what is published. The kernel sensor hands us its own
// exec and connect events (pipe-graph-tap.ts); from them we scan the sandbox's processes and
// publish `process.stdio` for every process whose fd 0 is fed by, and whose fd 1 or 2 feeds, a
// process holding an outbound inet socket. Rules decide what that means (a shell or
// interpreter wired so is a reverse shell); the sensor does not read names.
//
// Triggers: an outbound connect (the relay just dialled out), and an exec whose stdio is a
// pipe, FIFO, socket or pty in a sandbox that has dialled out before (the shell joined an
// existing relay). A pipeline assembles asynchronously — `sh -i <f` blocks in open() until
// the relay opens the FIFO, the relay dials after its exec — so each trigger scans at once, +30 ms,
// +250 ms, +1 s and +3 s.
//
// Races that remain (documented, not hidden):
// - a chain assembled more than ~3 s after the last exec or connect of its parts is not
//   rescanned until the next trigger (a shell started, then a relay that dials 10 s later is
//   still caught by the relay's connect; a relay that dials and then waits 10 s for a shell
//   is caught by the shell's exec);
// - a part that lives less than the scan's delay (a relay that exits before +30 ms) is missed;
// - /proc is read process by process: a dup2 between two reads can hide or invent one edge
//   for one scan (the next scan reads again);
// - sockets come from one `ss` after the fds were read; a socket opened in between is not seen
//   as inet (next scan), one closed in between simply has no peer;
// - ptys are paired by their number in the sandbox's devpts; a sandbox using the host's
//   /dev/pts could collide with a host pty of the same number (Praetor's runtimes mount their
//   own devpts).

const DELAYS_MS = [0, 30, 250, 1000, 3000];
/** a sandbox not heard of this long is forgotten (the tap does not see sandbox.destroyed) */
const FORGET_MS = 10 * 60_000;
/** at most one scan per sandbox this often, however many execs a build fires */
const MIN_GAP_MS = 50;
const MAX_PROCS = 512;

interface SbState {
  anchors: number[];
  dialled: boolean;
  due: number[];
  timer?: NodeJS.Timeout;
  scanning: boolean;
  published: Set<string>;
  lastScan: number;
  lastSeen: number;
  /** pid → known tool from its exec's identity (a renamed shell is still a shell on stdio). */
  tools: Map<number, string>;
}

export interface PipeGraphScanner {
  observe(e: PraetorEvent): void;
  stop(): void;
  /** scans now (tests); resolves with the events published */
  scanNow(sandboxId: string): Promise<PraetorEvent[]>;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.|0\.0\.0\.0$|::$)/;

export function startPipeGraphScanner(o: { bus: EventBus; resolver: SandboxResolver; onDegraded?: (reason: string) => void }): PipeGraphScanner {
  const sbs = new Map<string, SbState>();
  const root = unifiedRoot();
  let stopped = false;
  const degraded = new Set<string>();
  const degrade = (reason: string): void => {
    if (degraded.has(reason)) return;
    degraded.add(reason);
    o.bus.publish({ kind: 'sensor.degraded', sandboxId: HOST_SANDBOX, sensor: 'pipe-graph', reason });
    o.onDegraded?.(reason);
  };
  try { readdirSync('/proc/self/fd'); } catch (e) { degrade(`cannot read /proc/<pid>/fd (${errorMessage(e)}): stdio chains through pipes are not resolved`); }

  const state = (id: string): SbState => {
    let s = sbs.get(id);
    const now = performance.now();
    if (!s) {
      for (const [k, v] of sbs) if (now - v.lastSeen > FORGET_MS && v.due.length === 0 && !v.scanning) sbs.delete(k);
      s = { anchors: [], dialled: false, due: [], scanning: false, published: new Set(), lastScan: 0, lastSeen: now, tools: new Map() };
      sbs.set(id, s);
    }
    s.lastSeen = now;
    return s;
  };

  const rememberTool = (s: SbState, pid: number, tool: string): void => {
    s.tools.set(pid, tool);
    if (s.tools.size > 4096) s.tools.delete(s.tools.keys().next().value!);
  };

  /** A few recent pids of the sandbox, to find its cgroup and network namespace from. */
  const remember = (s: SbState, pid: number): void => {
    if (s.anchors[0] === pid) return;
    s.anchors = [pid, ...s.anchors.filter((x) => x !== pid)].slice(0, 8);
  };

  const arm = (id: string, s: SbState): void => {
    if (stopped || s.scanning || s.due.length === 0) return;
    const next = Math.max(s.due[0]!, s.lastScan + MIN_GAP_MS);
    clearTimeout(s.timer);
    s.timer = setTimeout(() => { void run(id, s); }, Math.max(0, next - performance.now()));
    s.timer.unref();
  };

  const trigger = (id: string, pid: number | undefined): void => {
    const s = state(id);
    if (pid !== undefined) remember(s, pid);
    const now = performance.now();
    for (const d of DELAYS_MS) {
      const at = now + d;
      // Coalesce: a scan already due within a quarter of this delay (or the minimum gap)
      // serves this trigger too, so a burst of connects (a package install) costs a few scans.
      if (!s.due.some((x) => Math.abs(x - at) <= Math.max(d / 4, MIN_GAP_MS))) s.due.push(at);
    }
    s.due.sort((a, b) => a - b);
    arm(id, s);
  };

  const run = async (id: string, s: SbState): Promise<PraetorEvent[]> => {
    const now = performance.now();
    s.due = s.due.filter((x) => x > now + 5);
    s.scanning = true;
    let out: PraetorEvent[] = [];
    try { out = await scan(id, s); } catch (e) { degrade(`pipe graph scan failed: ${errorMessage(e)}`); }
    s.scanning = false;
    s.lastScan = performance.now();
    arm(id, s);
    return out;
  };

  const scan = async (id: string, s: SbState): Promise<PraetorEvent[]> => {
    const pids = sandboxPids(id, s);
    if (pids.length === 0) return [];
    const procs: ProcNode[] = [];
    for (const pid of pids.slice(0, MAX_PROCS)) { const n = readProcNode(pid); if (n) procs.push(n); }
    if (pids.length > MAX_PROCS) degrade(`pipe graph: sandbox ${id} has ${pids.length} processes; only ${MAX_PROCS} are resolved per scan`);
    const netPid = procs.find((p) => p.pid === s.anchors[0])?.pid ?? procs[procs.length - 1]?.pid;
    if (netPid === undefined) return [];
    // Nothing holds a socket: no chain can reach the network, and no ss is spawned.
    if (!procs.some((p) => p.fds.some((r) => r.obj.startsWith('s:')))) return [];
    let net: NetSockets;
    try {
      net = await readNetSockets(netPid);
    } catch (e) {
      // The process ended (or was killed) meanwhile and took its namespace link along, or the
      // whole sandbox did: not a degradation. Only a live namespace that ss cannot list is one.
      if (readLink(`/proc/${netPid}/ns/net`) === undefined) return [];
      degrade(`cannot list the sandbox's sockets with ss (needs nsenter and iproute2: ${errorMessage(e).slice(0, 120)}); reading /proc/PID/net tables instead, unix socketpairs are not followed`);
      net = { inet: readInetInodes(netPid), outbound: readOutbound(netPid), unixPeer: new Map() };
    }
    settleSockets(procs, net.inet);
    const { outbound, unixPeer } = net;
    if (outbound.size === 0) return []; // nothing dials out: no chain can reach the network
    const g = new PipeGraph(procs, { outbound, unixPeer });
    const published: PraetorEvent[] = [];
    for (const p of procs) {
      const r = g.reach(p.pid);
      if (r.inVia === 'none' || r.outVia === 'none') continue;
      const key = `${p.pid}:${p.start ?? ''}:${r.inVia}:${r.outVia}`;
      if (s.published.has(key)) continue;
      s.published.add(key);
      if (s.published.size > 4096) s.published.delete(s.published.values().next().value!);
      const argv = readCmdline(p.pid) ?? [];
      const path = readLink(`/proc/${p.pid}/exe`) ?? argv[0] ?? '';
      const tool = s.tools.get(p.pid);
      published.push(o.bus.publish({
        kind: 'process.stdio', sandboxId: id, pid: p.pid, ppid: p.ppid, comm: p.comm, path, argv, ...(tool ? { tool } : {}),
        parentComm: procs.find((q) => q.pid === p.ppid)?.comm,
        inVia: r.inVia, outVia: r.outVia, sameHost: r.sameHost, chain: r.chain, peers: r.peers, sensor: 'pipe-graph',
      }));
    }
    return published;
  };

  /** Host pids of the sandbox: its unified cgroup (and sub-cgroups), found from a pid it owns. */
  const sandboxPids = (id: string, s: SbState): number[] => {
    for (const anchor of s.anchors) {
      if (readStartTime(anchor) === undefined) continue;
      const rel = readCgroupV2Path(anchor);
      const sb = rel === undefined ? undefined : sandboxCgroupPath(rel);
      if (root && sb) {
        const pids: number[] = [];
        walkProcs(`${root}${sb}`, pids, 0);
        if (pids.length > 0) return pids;
      }
    }
    // No unified hierarchy (a pure v1 host): every /proc entry the resolver maps to the sandbox.
    if (!root) {
      const pids: number[] = [];
      let names: string[] = [];
      try { names = readdirSync('/proc'); } catch { return []; }
      for (const n of names) if (/^\d+$/.test(n) && o.resolver.sandboxForPid(Number(n)) === id) pids.push(Number(n));
      return pids;
    }
    return [];
  };

  return {
    observe(e) {
      if (stopped || e.sandboxId === HOST_SANDBOX) return;
      if (e.kind === 'net.connect') {
        if ((e.family !== 'inet' && e.family !== 'inet6') || LOOPBACK.test(e.dstIp)) return;
        state(e.sandboxId).dialled = true;
        trigger(e.sandboxId, e.pid);
      } else if (e.kind === 'process.identity') {
        if (e.tool && e.pid !== undefined) rememberTool(state(e.sandboxId), e.pid, e.tool);
      } else if (e.kind === 'process.exec') {
        const s = state(e.sandboxId);
        if (e.tool && e.pid !== undefined) rememberTool(s, e.pid, e.tool);
        if (!s.dialled) { if (e.pid !== undefined) remember(s, e.pid); return; }
        if (!(e.stdio ?? []).some((x) => /^(pipe:|socket:|\/dev\/pts\/|\/)/.test(x) && !/^\/dev\/null$/.test(x))) return;
        trigger(e.sandboxId, e.pid);
      }
    },
    stop() {
      stopped = true;
      for (const s of sbs.values()) clearTimeout(s.timer);
      sbs.clear();
    },
    async scanNow(id) { return run(id, state(id)); },
  };
}

function walkProcs(dir: string, into: number[], depth: number): void {
  try {
    for (const l of readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n')) if (l) into.push(Number(l));
  } catch { return; }
  if (depth >= 4) return;
  let subs: import('node:fs').Dirent[] = [];
  try { subs = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const d of subs) if (d.isDirectory()) walkProcs(`${dir}/${d.name}`, into, depth + 1);
}
