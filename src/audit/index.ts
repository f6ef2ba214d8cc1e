// The audit ledger's public API. Everything else in src/audit is private to it.
import { PraetorError } from '../errors.ts';
import { loadTrustedPublicKey } from './keys.ts';
import { defaultLedgerPath } from './ledger.ts';
import { openReader } from './open-store.ts';
import { verifyStore, type VerifyReport } from './verify.ts';

export { openLedger, Ledger, LedgerOptionsSchema, defaultLedgerPath, type LedgerOptions } from './ledger.ts';
export { canonicalJson } from './canonical.ts';
export { genesisHash, recordHash, LEDGER_FORMAT, type CheckpointStatement } from './chain.ts';
export { publicKeyPath, loadTrustedPublicKey } from './keys.ts';
export type { VerifyReport, VerifyProblem } from './verify.ts';
export type { LedgerStore, RecordRow, CheckpointRow } from './store.ts';
export { ledgerAt } from './store.ts';
export { traceEpisode, renderTrace, type EpisodeTrace } from './trace.ts';
export { exportJsonl, exportAtif } from './export.ts';
export { openReader } from './open-store.ts';

// One ledger across a cluster: a chain per node, a cluster chain pinning their keys and
// anchoring their checkpoints, and the verifier that checks all of it.
export { openNodeLedger, nodeLedgerPublicKey, openNodeReader, findEpisodeNodes, nodeChainUrl, nodeChainSchema, clusterChainUrl, type NodeLedgerOptions } from './node-chain.ts';
export { ClusterLedger, type ClusterLedgerOptions, type PinResult, type AnchorResult, type AnchorRound } from './cluster-ledger.ts';
export { createClusterLedgerKey, CLUSTER_LEDGER_KEY_FILES } from './cluster-key.ts';
export { verifyCluster, type ClusterVerifyReport, type ClusterProblem, type NodeVerify } from './cluster-verify.ts';

export type LedgerTarget = {
  /** SQLite file or postgres:// URL; default <stateDir>/audit/ledger.db. */
  db?: string | undefined;
  stateDir?: string | undefined;
};

export function resolveDb(t: LedgerTarget): string {
  if (t.db !== undefined) return t.db;
  if (t.stateDir !== undefined) return defaultLedgerPath(t.stateDir);
  throw new PraetorError('BAD_ARGUMENT', 'no ledger given', { hint: 'pass --db PATH|URL or --state DIR' });
}

/**
 * Verifies every record, checkpoint and schema object of a ledger, trusting only the state
 * directory's public key or `pubkeyFile`. With a state directory, also checks its witness
 * (detects a ledger cut back to an older checkpoint).
 */
export async function verifyLedger(opts: LedgerTarget & { pubkeyFile?: string | undefined }): Promise<VerifyReport> {
  const publicKey = loadTrustedPublicKey(opts);
  const { store, expectedObjects } = await openReader(resolveDb(opts));
  try {
    return await verifyStore(store, { publicKey, stateDir: opts.stateDir, expectedObjects });
  } finally {
    await store.close();
  }
}
