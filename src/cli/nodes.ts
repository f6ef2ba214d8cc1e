// `praetor nodes`: the cluster's nodes as the coordination database sees them: state, heartbeat
// age, capacity and what is reserved on it, and the sensors it reports degraded.
import { PraetorError } from '../errors.ts';
import { formatBytes } from '../util/index.ts';
import { parseFlags, table } from './common.ts';

const USAGE = `praetor nodes --cluster URL [--json]

  --cluster URL   the cluster's PostgreSQL (default $PRAETOR_CLUSTER)
  --json          one JSON array`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, { cluster: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const url = v.cluster ?? process.env.PRAETOR_CLUSTER;
  if (!url) throw new PraetorError('BAD_ARGUMENT', 'which cluster?', { hint: 'pass --cluster postgres://… or set PRAETOR_CLUSTER' });
  const { ClusterControl } = await import('../cluster/control.ts');
  const ctl = await ClusterControl.open({ url, poolSize: 1 });
  try {
    const nodes = await ctl.nodes();
    if (v.json) { process.stdout.write(`${JSON.stringify(nodes)}\n`); return 0; }
    process.stdout.write(`${table([
      ['NODE', 'STATE', 'EPOCH', 'HEARTBEAT', 'SANDBOXES', 'CPUS', 'MEMORY', 'ADDRESS', 'DEGRADED'],
      ...nodes.map((n) => [n.nodeId, n.state, String(n.epoch), `${(n.heartbeatAgeMs / 1000).toFixed(1)}s ago`,
        `${n.used.sandboxes}/${n.capacity.maxSandboxes}`, `${n.used.cpus}/${n.capacity.cpus}`,
        `${formatBytes(n.used.memoryBytes)}/${formatBytes(n.capacity.memoryBytes)}`, n.address, n.degraded.join(', ') || '-']),
    ])}\n`);
    return 0;
  } finally {
    await ctl.close();
  }
}
