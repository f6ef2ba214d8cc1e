// `praetor trace EPISODE [--json]`: the episode's timeline, reward first and back to the packet:
// reward ← steps ← model outputs ← tool calls ← processes and flows ← alerts and containment.
// A query, not a check: run `praetor audit verify` to know the records are genuine.
import { findEpisodeNodes, nodeChainUrl, openReader, renderTrace, resolveDb, traceEpisode } from '../audit/index.ts';
import { PraetorError } from '../errors.ts';
import { parseFlags, stateDir } from './common.ts';

const USAGE = `praetor trace EPISODE [--json] [--db PATH|URL | --cluster URL] [--state DIR]

  the episode's timeline from the audit ledger (reward ← steps ← model outputs ← tool calls ←
  processes and flows ← alerts and containment); --json prints the tree; --cluster reads it
  from whichever node's chain in the cluster database holds the episode`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' }, db: { type: 'string' }, state: { type: 'string' }, cluster: { type: 'string' } }, USAGE, true);
  const [episode, ...extra] = positionals;
  if (episode === undefined || extra.length > 0) {
    throw new PraetorError('BAD_ARGUMENT', episode === undefined ? 'no episode given' : `unexpected argument ${extra[0]}`, { hint: `usage: ${USAGE.split('\n')[0]}` });
  }
  if (values.cluster !== undefined && values.db !== undefined) throw new PraetorError('BAD_ARGUMENT', '--cluster and --db name two ledgers', { hint: 'give one of them' });
  let db = values.db;
  if (values.cluster !== undefined) {
    const nodes = await findEpisodeNodes(values.cluster, episode);
    if (nodes.length === 0) throw new PraetorError('NOT_FOUND', `no node chain in the cluster holds episode ${episode}`, { hint: 'check the episode id and the --cluster URL' });
    if (nodes.length > 1) process.stderr.write(`praetor: episode ${episode} has records on nodes ${nodes.join(', ')}; showing node ${nodes[0]}\n`);
    db = nodeChainUrl(values.cluster, nodes[0]!);
  }
  const { store } = await openReader(resolveDb({ db, stateDir: stateDir(values.state) }));
  try {
    const t = await traceEpisode(store, episode);
    if (t.startTs === null) {
      throw new PraetorError('NOT_FOUND', `no records for episode ${episode} in ${store.location}`, { hint: 'check the episode id, or pass --db for another ledger' });
    }
    process.stdout.write((values.json ? JSON.stringify(t, null, 2) : renderTrace(t)) + '\n');
  } finally {
    await store.close();
  }
  return 0;
}
