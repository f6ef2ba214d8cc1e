// `npm test`: type-check, then every test file (unit tests beside the code in src/, integration
// tests in test/), then a leak check — a run that leaves a namespace, cgroup or mount behind fails.
import { spawnSync } from 'node:child_process';
import { globSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const only = process.argv.slice(2);
const node = process.execPath;

function run(cmd: string, args: string[]): number {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  return r.status ?? 128 + 9;
}

if (only.length === 0) {
  console.error('test: type-checking');
  if (run(node, ['node_modules/typescript/bin/tsc', '-p', '.']) !== 0) process.exit(1);
}
const files = only.length > 0 ? only : [
  ...globSync('src/**/*.test.ts'), ...globSync('test/**/*.test.ts'), ...globSync('clients/**/*.test.ts'),
].sort();
// What was already there is not this run's leak (see check-leaks.ts).
const baseline = `${tmpdir()}/praetor-leak-baseline-${process.pid}.json`;
run(node, ['scripts/check-leaks.ts', '--baseline', baseline]);
const code = run(node, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files]);
const leaks = run(node, ['scripts/check-leaks.ts', '--against', baseline]);
rmSync(baseline, { force: true });
process.exit(code || leaks);
