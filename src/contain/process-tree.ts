// Finds a process and its descendants among a sandbox's processes. Used with the sandbox frozen,
// so nothing forks or exits between the walk and the kill.
import { readFileSync } from 'node:fs';

function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch { return undefined; }
}

/** The process has exited (zombie or dead) or does not exist. */
export function hasExited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch { return true; }
}

/** pid and every descendant of it, restricted to `members` (the sandbox's cgroup). */
export function descendants(pid: number, members: number[]): number[] {
  const set = new Set(members);
  if (!set.has(pid)) return [];
  const children = new Map<number, number[]>();
  for (const p of members) {
    const pp = ppidOf(p);
    if (pp === undefined) continue;
    const list = children.get(pp) ?? [];
    list.push(p);
    children.set(pp, list);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}
