// Fails when anything a test created is still around: praetor cgroups, test network
// namespaces, praetor nft tables, mounts under praetor state directories, sandbox processes.
// `--baseline FILE` writes what exists before the run; `--against FILE` then reports only what
// is new, so leftovers of something else on the machine (a guard someone left running, a
// crashed earlier run) are named as a warning and do not fail this run for what it did not do.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

function leftovers(): string[] {
  const found: string[] = [];
  for (const root of ['/sys/fs/cgroup', ...safeList('/sys/fs/cgroup').map((d) => `/sys/fs/cgroup/${d}`)]) {
    for (const d of safeList(root)) {
      if (!/^praetor-[0-9a-f]{8}$/.test(d)) continue;
      found.push(`cgroup ${root}/${d}`);
      // Each sandbox on its own line: a test's sandbox under a group that already existed is new.
      for (const c of safeList(`${root}/${d}`)) if (/^sb-/.test(c)) found.push(`cgroup ${root}/${d}/${c}`);
    }
  }
  if (existsSync('/run/netns')) for (const n of readdirSync('/run/netns')) if (/^pt-/.test(n)) found.push(`netns ${n}`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && /\/sandboxes\/sb-[0-9a-f]+\//.test(mp + '/')) found.push(`mount ${mp}`);
  }
  try {
    const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    for (const t of tables.split('\n')) if (/praetor|pt-/.test(t)) found.push(`nft ${t.trim()}`);
  } catch { /* nft missing: nothing of ours can exist */ }
  for (const l of safeList('/sys/class/net')) if (/^pt[a-z]?-/.test(l)) found.push(`link ${l}`);
  return found;
}

const args = process.argv.slice(2);
const flag = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const now = leftovers();
const baselineOut = flag('--baseline');
if (baselineOut) {
  writeFileSync(baselineOut, JSON.stringify(now));
  if (now.length > 0) console.error(`leak check: ${now.length} leftover(s) from before this run (not counted against it; \`praetor gc --state DIR\` removes a state's):\n  ${now.join('\n  ')}`);
  process.exit(0);
}
const against = flag('--against');
const before = new Set<string>(against && existsSync(against) ? JSON.parse(readFileSync(against, 'utf8')) as string[] : []);
const added = now.filter((f) => !before.has(f));
const stale = now.filter((f) => before.has(f));
if (stale.length > 0) console.error(`leak check: ${stale.length} leftover(s) were there before this run:\n  ${stale.join('\n  ')}`);
if (added.length > 0) {
  console.error(`leak check: ${added.length} leftover(s):\n  ${added.join('\n  ')}`);
  process.exit(1);
}
console.error('leak check: clean');

function safeList(p: string): string[] {
  try { return readdirSync(p); } catch { return []; }
}
