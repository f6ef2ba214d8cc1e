// `praetor serve` inside a topology's host namespace, for tests that drive it like a deployment:
// started, waited on until `healthUrl` answers (through curl in the same namespace), stopped
// with SIGTERM (bounded) by the returned stop().
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Topology } from './index.ts';

const PRAETOR = fileURLToPath(new URL('../../bin/praetor', import.meta.url));

export async function serveInHost(t: Topology, args: string[], healthUrl: string, opts: SpawnOptions = {}): Promise<{ server: ChildProcess; stop(): Promise<void> }> {
  const server = t.spawnInHost(PRAETOR, ['serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
  let stderr = ''; server.stderr?.on('data', (d) => { stderr += d; });
  const stop = async (): Promise<void> => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    server.kill('SIGTERM');
    await new Promise((r) => { server.once('exit', r); setTimeout(r, 20_000).unref(); });
  };
  for (let i = 0; ; i++) {
    const h = await t.execInHost('curl', ['-sf', '-m', '2', healthUrl]);
    if (h.code === 0) break;
    if (i > 100 || server.exitCode !== null) { await stop(); throw new Error(`praetor serve did not come up: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { server, stop };
}
