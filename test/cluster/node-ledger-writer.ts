// A node's ledger writer in a process of its own, so a test (or bench cluster-ledger) can kill -9
// it: opens the node chain named by argv (url, nodeId, stateDir), appends records with ids
// `<prefix>-<i>` as fast as it can and prints, after each flush() resolves, `acked N`: events
// 0..N-1 are durable. Every count printed is a promise the chain must keep after the kill.
import { openNodeLedger } from '../../src/audit/index.ts';
import type { PraetorEvent } from '../../src/events/schema.ts';
import { eventStream } from '../audit/events.ts';

const [url, nodeId, stateDir, prefix] = process.argv.slice(2) as [string, string, string, string];
const ledger = await openNodeLedger({ url, nodeId, stateDir, batchMs: 2, checkpointEvery: 2000, checkpointMs: 200 });
process.stdout.write(`open ${ledger.ledgerId}\n`);
const pool = [...eventStream(5800)];
let i = 0;
for (;;) {
  for (let k = 0; k < 200; k++, i++) ledger.append({ ...pool[i % pool.length]!, id: `${prefix}-${i}` } as PraetorEvent);
  await ledger.flush();
  process.stdout.write(`acked ${ledger.acknowledged}\n`);
}
