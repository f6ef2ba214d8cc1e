import type { Compiled } from './compile-condition.ts';
import { parseCondition, type Item, type Node } from './condition-parser.ts';

// Which part of a rule's condition the eBPF sensor can check in the exec tracepoint, as data:
// the set of process names (comm) for which the condition is certainly true. The kernel then
// SIGKILLs a sandbox process whose comm is in the set before its first instruction (threat: a
// known-bad binary that writes, connects or forks in the milliseconds user space needs to react).
//
// Soundness is the point: the set is an UNDER-approximation, "comm in S implies the condition",
// never the other way, so the kernel never kills what the user-space rule would let run.
//   - a subtree always true for exec events (spawned_process, `not <empty allow-list>`) is ⊤;
//   - `proc.name = v` / `proc.name in (…)` is comm ∈ values (comm is ≤ 15 bytes: longer values
//     can never match and are dropped);
//   - `a or b` is the union of what each side gives; `a and b` the intersection;
//   - `proc.stdio_net = true` is a second test the kernel makes: some fd 0-2 is an inet socket
//     with a peer (a reverse shell's stdio), so `shell_procs and proc.stdio_net = true` kills a
//     shell that would answer the listener before it writes a byte;
//   - anything else (exe paths, argv, regexes, negations of real conditions, an allow-list a user
//     extended) gives nothing: user space still decides those.

/** TASK_COMM_LEN - 1: the kernel truncates comm to this many bytes. */
export const COMM_MAX = 15;

/** The names the kernel kills; with `stdioNet`, only when fd 0, 1 or 2 is an inet socket with a peer. */
export type KernelKillSet = { comms: string[]; stdioNet?: true };

/** `net`: the kernel also requires network stdio (the set is then a subset of the condition's). */
type Approx = ({ t: 'all' } | { t: 'set'; comms: Set<string> }) & { net?: true };
const NOTHING: Approx = { t: 'set', comms: new Set() };
const withNet = (a: Approx, net: boolean): Approx => (net ? { ...a, net: true } : a);

export interface KernelKillEnv {
  lists: ReadonlyMap<string, readonly string[]>;
  macros: ReadonlyMap<string, string>;
  /** compiles a subtree (to ask whether it is constant for exec events) */
  compile: (n: Node) => Compiled;
}

function expand(items: readonly Item[], lists: ReadonlyMap<string, readonly string[]>, seen = new Set<string>()): string[] {
  const out: string[] = [];
  for (const it of items) {
    const list = !it.quoted ? lists.get(it.v) : undefined;
    if (!list || seen.has(it.v)) { out.push(it.v); continue; }
    out.push(...expand(list.map((v) => ({ v, quoted: !lists.has(v), pos: it.pos })), lists, new Set([...seen, it.v])));
  }
  return out;
}

function approx(n: Node, env: KernelKillEnv, depth: number): Approx {
  if (depth > 32) return NOTHING;
  const tri = env.compile(n).tri.get('process.exec');
  if (tri === 1) return { t: 'all' };
  if (tri === 0) return NOTHING;
  switch (n.t) {
    case 'macro': {
      const text = env.macros.get(n.name);
      return text === undefined ? NOTHING : approx(parseCondition(text), env, depth + 1);
    }
    case 'or': {
      const l = approx(n.l, env, depth + 1);
      const r = approx(n.r, env, depth + 1);
      // One side with the stdio test and one without is not one set and one test: keep the side
      // without it (what it kills, the condition certainly kills), else the other.
      if (!!l.net !== !!r.net) return !l.net && !empty(l) ? l : !r.net && !empty(r) ? r : l.net ? l : r;
      if (l.t === 'all' || r.t === 'all') return withNet({ t: 'all' }, !!l.net);
      return withNet({ t: 'set', comms: new Set([...l.comms, ...r.comms]) }, !!l.net);
    }
    case 'and': {
      const l = approx(n.l, env, depth + 1);
      const r = approx(n.r, env, depth + 1);
      const net = !!(l.net || r.net);
      if (l.t === 'all') return withNet(r, net);
      if (r.t === 'all') return withNet(l, net);
      return withNet({ t: 'set', comms: new Set([...l.comms].filter((c) => r.comms.has(c))) }, net);
    }
    case 'cmp': {
      if (n.field === 'proc.stdio_net' && n.op === '=' && n.items.length === 1 && n.items[0]!.v === 'true') return { t: 'all', net: true };
      if (n.field !== 'proc.name' || (n.op !== '=' && n.op !== 'in')) return NOTHING;
      const vals = expand(n.items, env.lists).filter((v) => v.length > 0 && Buffer.byteLength(v) <= COMM_MAX && /^[\x21-\x7e]+$/.test(v));
      return { t: 'set', comms: new Set(vals) };
    }
    default: return NOTHING;
  }
}

/**
 * The kernel-checkable part of `condition`, or a reason why there is none. ⊤ (every exec) is
 * refused: a rule that would kill every process in the kernel is a mistake, not a guardrail.
 */
function empty(a: Approx): boolean { return a.t === 'set' && a.comms.size === 0; }

export function kernelKillSet(condition: string, env: KernelKillEnv): KernelKillSet | { why: string } {
  let a: Approx;
  try { a = approx(parseCondition(condition), env, 0); } catch (e) { return { why: `condition cannot be analysed: ${(e as Error).message}` }; }
  if (a.t === 'all') return { why: `the condition holds for every exec${a.net ? ' with network stdio' : ''}; the kernel would kill every such process` };
  if (a.comms.size === 0) return { why: 'no part of the condition is a process-name set the kernel can check (proc.name = / in, joined by and/or, with allow-lists still empty)' };
  return { comms: [...a.comms].sort(), ...(a.net ? { stdioNet: true as const } : {}) };
}
