// The cluster's coordination tables in PostgreSQL. Nodes and control replicas coordinate only
// through these rows (no gossip, no consensus of our own): membership with heartbeats and a
// per-node epoch, and one reservation row per sandbox, written in the same transaction that
// checks the node's capacity and the tenant's cluster-wide quota.
import { z } from 'zod';

export const CLUSTER_SCHEMA = `
CREATE TABLE IF NOT EXISTS cluster_nodes (
  node_id text PRIMARY KEY,
  ordinal integer NOT NULL UNIQUE,
  address text NOT NULL,
  cpus double precision NOT NULL,
  memory_bytes bigint NOT NULL,
  max_sandboxes integer NOT NULL,
  epoch bigint NOT NULL,
  state text NOT NULL CHECK (state IN ('up', 'lost', 'left')),
  heartbeat_at timestamptz NOT NULL,
  joined_at timestamptz NOT NULL,
  degraded jsonb NOT NULL DEFAULT '[]');
-- where control replicas reach the node's E2B API (same mutual TLS as its API); null: none
ALTER TABLE cluster_nodes ADD COLUMN IF NOT EXISTS e2b_address text;
CREATE SEQUENCE IF NOT EXISTS cluster_node_ordinal;
CREATE TABLE IF NOT EXISTS cluster_sandboxes (
  sandbox_id text PRIMARY KEY,
  node_id text NOT NULL REFERENCES cluster_nodes (node_id),
  node_epoch bigint NOT NULL,
  tenant text NOT NULL,
  cpus double precision NOT NULL,
  memory_bytes bigint NOT NULL,
  state text NOT NULL CHECK (state IN ('reserved', 'running', 'lost', 'ended')),
  created_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  end_reason text);
CREATE INDEX IF NOT EXISTS cluster_sandboxes_live_node ON cluster_sandboxes (node_id) WHERE state IN ('reserved', 'running');
CREATE INDEX IF NOT EXISTS cluster_sandboxes_live_tenant ON cluster_sandboxes (tenant) WHERE state IN ('reserved', 'running');
`;

/** States in which a sandbox holds capacity and counts against its tenant's quota. */
export const LIVE_STATES = `('reserved', 'running')`;

export const NodeId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a node id is 1-63 lowercase letters, digits and dashes').describe('node name, unique in the cluster');

export const NodeCapacitySchema = z.object({
  cpus: z.number().positive().describe('CPUs this node offers to sandboxes'),
  memoryBytes: z.number().int().positive().describe('memory this node offers to sandboxes'),
  maxSandboxes: z.number().int().positive().describe('sandboxes at once'),
}).strict();
export type NodeCapacity = z.infer<typeof NodeCapacitySchema>;

export interface NodeRow {
  nodeId: string; ordinal: number; address: string; epoch: number; state: 'up' | 'lost' | 'left';
  /** the node's E2B API (https://host:port), when it serves one. */
  e2bAddress: string | undefined;
  capacity: NodeCapacity; heartbeatAgeMs: number; degraded: string[];
  used: { sandboxes: number; cpus: number; memoryBytes: number };
}

/**
 * Sandbox ids name their node, so a control replica routes a call without a lookup:
 * `sb-n<ordinal>-<12 hex>`. The ordinal is assigned once, when the node first joins.
 */
export function clusterSandboxId(ordinal: number, random: string): string {
  return `sb-n${ordinal}-${random}`;
}

export function nodeOrdinalOf(sandboxId: string): number | undefined {
  const m = /^sb-n(\d{1,9})-[0-9a-f]{12}$/.exec(sandboxId);
  return m ? Number(m[1]) : undefined;
}

/** Episode ids on a cluster node name it the same way: `ep-n<ordinal>-<12 hex>`. */
export function clusterEpisodeId(ordinal: number, random: string): string {
  return `ep-n${ordinal}-${random}`;
}

/** The node ordinal a sandbox or episode id names (the GEM handle is a sandbox id). */
export function ordinalOfId(id: string): number | undefined {
  const m = /^(?:sb|ep)-n(\d{1,9})-[0-9a-f]{12}$/.exec(id);
  return m ? Number(m[1]) : undefined;
}
