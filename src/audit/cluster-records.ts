// What the cluster chain records: a node's ledger key, pinned once when the node joins, and
// anchors of node checkpoints. The bodies are canonical JSON in an ordinary ledger table, so the
// single-node verifier checks the cluster chain itself; these schemas say what a body may hold.
import { z } from 'zod';
import { NodeId } from './node-chain.ts';

const Hash = z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256, hex');

export const NodePinnedSchema = z.object({
  kind: z.literal('cluster.node_pinned'),
  ts: z.number().describe('when it was pinned (ns since the epoch)'),
  nodeId: NodeId,
  keyId: z.string().describe('first 16 hex digits of the SHA-256 of the key (SPKI DER)'),
  publicKey: z.string().describe('the node\'s Ed25519 ledger key, SPKI PEM'),
}).strict();

export const AnchorSchema = z.object({
  kind: z.literal('cluster.anchor'),
  ts: z.number().describe('when it was anchored (ns since the epoch)'),
  nodeId: NodeId,
  ledgerId: z.string().describe('the node chain\'s ledger id'),
  seq: z.number().int().positive().describe('anchored record'),
  hash: Hash.describe('that record\'s hash'),
  checkpoint: z.number().int().positive().nullable().describe('the node checkpoint sealing it, when anchored from one'),
  checkpointTs: z.number().nullable().describe('when the node signed that checkpoint (ms since the epoch)'),
}).strict();

export const ClusterRecordSchema = z.discriminatedUnion('kind', [NodePinnedSchema, AnchorSchema]);
export type NodePinned = z.infer<typeof NodePinnedSchema>;
export type Anchor = z.infer<typeof AnchorSchema>;
export type ClusterRecord = z.infer<typeof ClusterRecordSchema>;

export function parseClusterRecord(body: string): ClusterRecord | string {
  let v: unknown;
  try { v = JSON.parse(body); } catch { return 'body is not JSON'; }
  const r = ClusterRecordSchema.safeParse(v);
  return r.success ? r.data : `not a cluster record: ${r.error.issues[0]?.path.join('.') || '(root)'}: ${r.error.issues[0]?.message}`;
}
