// The cluster ledger key signs the cluster chain: the node keys it pins and the node checkpoints
// it anchors. It is created with the cluster CA (`praetor cluster init`) and kept beside the CA
// key, in the Secret only control replicas mount; nodes never hold it. Threat: a node, or anyone
// with write access to the database, who could sign cluster checkpoints could pin a key of their
// own for a node and re-anchor a rewritten chain. Verification trusts only the public half given
// to it (--pubkey), never a key the database names.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, PraetorError } from '../errors.ts';
import { keyIdOf } from './keys.ts';

export const CLUSTER_LEDGER_KEY_FILES = { key: 'ledger-key.pem', pub: 'ledger-key.pub.pem' } as const;

export type ClusterLedgerKey = { privateKey: KeyObject; publicKey: KeyObject; publicPem: string; keyId: string };

function writeNew(path: string, data: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try { writeSync(fd, data); } finally { closeSync(fd); }
  chmodSync(path, mode);
}

/**
 * Creates the cluster ledger key pair in `dir` (the cluster CA's directory) unless it exists:
 * never overwritten, since a new key would orphan every checkpoint the old one signed.
 */
export function createClusterLedgerKey(dir: string): { keyFile: string; pubkeyFile: string; keyId: string } {
  const keyFile = join(dir, CLUSTER_LEDGER_KEY_FILES.key);
  const pubkeyFile = join(dir, CLUSTER_LEDGER_KEY_FILES.pub);
  try {
    if (!existsSync(keyFile)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      writeNew(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
      if (!existsSync(pubkeyFile)) writeNew(pubkeyFile, publicKey.export({ format: 'pem', type: 'spki' }).toString(), 0o644);
    }
  } catch (e) {
    throw new PraetorError('BAD_STATE', `cannot create the cluster ledger key in ${dir}: ${errorMessage(e)}`, { hint: 'make the cluster CA directory writable', cause: e });
  }
  return { keyFile, pubkeyFile, keyId: loadClusterLedgerKey(keyFile).keyId };
}

/** Loads the signing key; refuses one that others on the host can read. */
export function loadClusterLedgerKey(keyFile: string): ClusterLedgerKey {
  let pem: string;
  try {
    const mode = statSync(keyFile).mode & 0o077;
    if (mode !== 0) {
      throw new PraetorError('FORBIDDEN', `the cluster ledger key ${keyFile} is readable by others (mode ${(statSync(keyFile).mode & 0o777).toString(8)})`, {
        hint: 'chmod 600 it, or mount its Secret with defaultMode: 0400',
      });
    }
    pem = readFileSync(keyFile, 'utf8');
  } catch (e) {
    if (e instanceof PraetorError) throw e;
    throw new PraetorError('NOT_FOUND', `no cluster ledger key at ${keyFile}: ${errorMessage(e)}`, {
      hint: 'create it with the cluster CA (praetor cluster init) and mount it on control replicas', cause: e,
    });
  }
  try {
    const privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`a ${privateKey.asymmetricKeyType} key`);
    const publicKey = createPublicKey(privateKey);
    return { privateKey, publicKey, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(), keyId: keyIdOf(publicKey) };
  } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `${keyFile} is not an Ed25519 private key (PKCS#8 PEM): ${errorMessage(e)}`, { hint: 'pass the ledger-key.pem written by praetor cluster init', cause: e });
  }
}

/** Parses a node's public key PEM as the cluster pins it. */
export function parseNodePublicKey(pem: string, nodeId: string): { publicKey: KeyObject; publicPem: string; keyId: string } {
  try {
    const publicKey = createPublicKey(pem);
    if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error(`a ${publicKey.asymmetricKeyType} key`);
    return { publicKey, publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(), keyId: keyIdOf(publicKey) };
  } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `node ${nodeId}'s ledger key is not an Ed25519 public key (SPKI PEM): ${errorMessage(e)}`, {
      hint: 'send the node\'s audit/ledger-signing-key.pub.pem (nodeLedgerPublicKey(stateDir))', cause: e,
    });
  }
}
