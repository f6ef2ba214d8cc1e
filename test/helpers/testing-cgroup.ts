import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { unifiedRoot } from '../../src/sensors/proc-util.ts';
import type { SandboxResolver } from '../../src/sensors/index.ts';

// Test support (not shipped, hence in test/): a real sandbox-shaped cgroup in the unified
// hierarchy, `praetor-test<rand>/sb-<12hex>`, with processes really placed in it. remove() kills
// what is left (cgroup.kill) and removes both directories; tests call it in `finally`/`after`.

export interface TestCgroup {
  dir: string; id: bigint; sandboxId: string; resolver: SandboxResolver;
  /** runs `sh -c script` inside the cgroup; resolves with the exit code */
  run(script: string, env?: Record<string, string>): Promise<number | null>;
  remove(): Promise<void>;
}

export function createTestCgroup(): TestCgroup {
  const root = unifiedRoot();
  if (!root) throw new Error('no unified cgroup hierarchy');
  const parent = `${root}/praetor-test${randomBytes(3).toString('hex')}`;
  const sandboxId = `sb-${randomBytes(6).toString('hex')}`;
  const dir = `${parent}/${sandboxId}`;
  mkdirSync(dir, { recursive: true });
  const id = statSync(dir, { bigint: true }).ino;
  const resolver: SandboxResolver = {
    sandboxForCgroupId: (x) => (BigInt(x) === id ? sandboxId : undefined),
    sandboxForPid: (pid) => {
      try { return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${sandboxId}`) ? sandboxId : undefined; } catch { return undefined; }
    },
  };
  return {
    dir, id, sandboxId, resolver,
    run(script, env = {}) {
      // The shell moves itself into the cgroup before running anything, so every process of
      // the script is a sandbox process from its first exec on.
      const c = spawn('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec /bin/sh -c "$PRAETOR_SCRIPT"`], {
        env: { ...process.env, ...env, PRAETOR_SCRIPT: script }, stdio: ['ignore', 'ignore', 'inherit'],
      });
      return new Promise((res) => c.once('exit', (code) => res(code)));
    },
    async remove() {
      for (let i = 0; i < 50 && existsSync(dir); i++) {
        try { writeFileSync(`${dir}/cgroup.kill`, '1'); } catch { /* pre-5.14 kernel */ }
        try { rmdirSync(dir); } catch { await new Promise((r) => setTimeout(r, 20)); }
      }
      try { rmdirSync(parent); } catch { /* leak check will say */ }
    },
  };
}
