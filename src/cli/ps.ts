// `praetor ps`: sandboxes recorded in the state directory, with their owner and live usage.
import { listSandboxRecords } from '../sandbox/index.ts';
import { formatBytes } from '../util/index.ts';
import { parseFlags, stateDir, table } from './common.ts';

const USAGE = 'praetor ps [--json] [--state DIR]';

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, { json: { type: 'boolean' }, state: { type: 'string' } }, USAGE);
  const rows = listSandboxRecords(stateDir(v.state));
  if (v.json) { process.stdout.write(JSON.stringify(rows) + '\n'); return 0; }
  process.stdout.write(table([
    ['ID', 'STATE', 'IMAGE', 'RUNTIME', 'OWNER', 'CPU', 'MEM', 'PIDS', 'AGE'],
    ...rows.map((r) => [r.id, r.state, r.image, r.runtime, String(r.ownerPid), `${Math.round(r.usage.cpuMs)}ms`, formatBytes(r.usage.memBytes), String(r.usage.pids), `${Math.round((Date.now() - r.createdAt) / 1000)}s`]),
  ]) + '\n');
  return 0;
}
