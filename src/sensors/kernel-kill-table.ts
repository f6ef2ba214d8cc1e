import type { KernelKillRule } from './sensor-types.ts';

// Which sandbox the kernel kills what in (issue 17 §3), as data in two BPF maps of the running
// sensor, so one resident sensor serves runs with different rules and modes:
//   @kp[sandbox cgroup id] = profile      a sandbox whose owner enforces kernel_kill rules
//   @kc[profile, comm]     = rule + 1     the names those rules kill; bit 32 set: only with
//                                         an inet socket with a peer on fd 0-2 (stdioNet)
// A profile is one distinct set of kill rules (usually every run has the same: the shipped
// pack), so @kc stays small however many sandboxes there are. `rule` indexes ruleNames, which
// turns the kernel's K record back into the rule's name. A sandbox with no @kp entry (detect
// mode, another Praetor instance, a host process) is never killed in the kernel.

/** How the table reaches the kernel (BpftraceMaps in production). */
export interface KillMaps {
  update(name: 'kp' | 'kc', key: Buffer, value: Buffer): number;
  delete(name: 'kp' | 'kc', key: Buffer): void;
}

/** A kernel comm holds at most TASK_COMM_LEN - 1 bytes, no NUL: longer rule names can never match. */
const isComm = (c: string): boolean => c.length > 0 && !c.includes('\0') && Buffer.byteLength(c) <= 15;

const NET_BIT = 1n << 32n;
const u64 = (x: bigint | number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(x)); return b; };
const comm16 = (s: string): Buffer => { const b = Buffer.alloc(16); b.write(s); return b; };

export class KernelKillTable {
  /** rule names by the index the kernel reports (K record): shared by every profile */
  readonly ruleNames: string[] = [];
  readonly #profiles = new Map<string, number>();
  readonly #maps: KillMaps;

  constructor(maps: KillMaps) { this.#maps = maps; }

  /**
   * Arms the kernel kill for one sandbox with `rules` (none, or none with a usable name: disarms
   * it). Returns an error in words when the kernel refused (a full map): the rules then contain
   * from user space.
   */
  set(sandboxCgroupId: bigint, rules: readonly KernelKillRule[]): string | undefined {
    const usable = rules.map((r) => ({ rule: r.rule, net: !!r.stdioNet, comms: [...new Set(r.comms)].filter(isComm) })).filter((r) => r.comms.length > 0);
    if (usable.length === 0) { this.clear(sandboxCgroupId); return undefined; }
    const key = JSON.stringify(usable.map((r) => [r.rule, r.net, [...r.comms].sort()]));
    let profile = this.#profiles.get(key);
    if (profile === undefined) {
      profile = this.#profiles.size + 1;
      // One entry per name: the first rule that names it, unless a later one kills it without
      // the stdio test (it kills in more cases, and a kill is a kill).
      const entry = new Map<string, bigint>();
      for (const r of usable) {
        const value = BigInt(this.ruleNames.push(r.rule)) | (r.net ? NET_BIT : 0n);
        for (const c of r.comms) { const had = entry.get(c); if (had === undefined || ((had & NET_BIT) !== 0n && !r.net)) entry.set(c, value); }
      }
      for (const [c, value] of entry) {
        const e = this.#maps.update('kc', Buffer.concat([u64(profile), comm16(c)]), u64(value));
        if (e !== 0) return `the kernel refused kill name ${c} (errno ${-e})`;
      }
      this.#profiles.set(key, profile);
    }
    const e = this.#maps.update('kp', u64(sandboxCgroupId), u64(profile));
    return e === 0 ? undefined : `the kernel refused sandbox cgroup ${sandboxCgroupId} (errno ${-e}${e === -7 ? ': the map is full' : ''})`;
  }

  /** Disarms it (the sandbox ends, or its owner stops enforcing); the cgroup's removal does it too. */
  clear(sandboxCgroupId: bigint): void {
    this.#maps.delete('kp', u64(sandboxCgroupId));
  }
}
