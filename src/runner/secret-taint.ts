// Data flow from a credential read to egress (issue 13). Threat: an agent reads a real private
// key or cloud secret (not a planted canary) and posts it to an API the policy allows. The read
// alone is only an alert (honest tools read keys), so the guard follows the data instead: when
// the kernel sensor reports a process of a sandbox opening a credential file, the guard reads
// what that process saw (readAsSeen: from the host, inside the sandbox's root, running nothing
// in it), and the gateway keeps the file's secret values in from then on, in every encoding its
// token scan knows. Connections open before the read were not scanned for them: unless the
// reader is the credential's own tool (ssh reading its key signs with it, it never sends it),
// they are cut, and the agent's next connection is scanned.
//
// No window between the read and its report: the gateway holds a sandbox's outbound bytes until
// the kernel sensor has reported everything before their arrival (net/catch-up-stream.ts), so a
// post made right after the read waits for this module to track the values (and cut it). With
// the /proc fallback there is no such promise; PEM private keys are covered regardless: their
// marker is a standing token (KEY_MATERIAL_TOKENS).
import { createHash } from 'node:crypto';
import { errorMessage } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import { secretFingerprints } from '../net/index.ts';
import { readAsSeen, type Sandbox } from '../sandbox/index.ts';
import { isSensitivePath } from '../sensors/index.ts';
import type { GuardNetwork } from './guard-network.ts';

const MAX_CREDENTIAL_BYTES = 256 * 1024;

export interface SecretTaintOptions {
  bus: EventBus;
  network: GuardNetwork;
  sandbox: (id: string) => Sandbox | undefined;
  /** process names that own credentials (the rule pack's credential_owner_binaries lists). */
  ownerTools: ReadonlySet<string>;
  log: (msg: string) => void;
}

/** Subscribes; returns the unsubscribe. */
export function trackSecretReads(o: SecretTaintOptions): () => void {
  // One look per sandbox, path and content: a file read in a loop is fingerprinted once.
  const seen = new Map<string, Set<string>>();
  return o.bus.subscribe((e) => {
    if (e.kind !== 'file.open' || e.write || (e.result ?? 0) < 0 || e.canary || !e.sandboxId) return;
    if (!isSensitivePath(e.path)) return;
    const sb = o.sandbox(e.sandboxId);
    if (!sb) return;
    try {
      // By the name it was opened by: a moved key is no longer at the credential's path.
      const seenFile = readAsSeen(sb, e.pid, e.openedAs ?? e.path, MAX_CREDENTIAL_BYTES);
      const base = { kind: 'secret.tracked' as const, sandboxId: e.sandboxId, ...(e.pid !== undefined ? { pid: e.pid } : {}), path: e.path, evidence: [e.id] };
      if (!seenFile.ok) { o.bus.publish({ ...base, secrets: [], cut: 0, reason: seenFile.reason }); return; }
      const key = `${e.path}\0${createHash('sha256').update(seenFile.content).digest('hex')}`;
      let s = seen.get(e.sandboxId);
      if (!s) { s = new Set(); seen.set(e.sandboxId, s); sb.onEnded(() => seen.delete(e.sandboxId)); }
      if (s.has(key)) return;
      s.add(key);
      const fp = secretFingerprints(e.path.split('/').pop() || e.path, seenFile.content.toString('latin1'));
      if (fp.tokens.length === 0) { o.bus.publish({ ...base, secrets: [], cut: 0, reason: 'nothing secret-shaped in it (see secret-fingerprints.ts)' }); return; }
      const owner = e.comm !== undefined && o.ownerTools.has(e.comm);
      const cut = o.network.track(e.sandboxId, fp.tokens, { cutOpen: !owner, why: `${e.comm ?? 'a process'} read ${e.path}; this connection was not scanned for its secrets` }) ?? 0;
      o.bus.publish({ ...base, secrets: fp.found, cut });
    } catch (err) {
      // Never lets a sensor event take the guard down; said, so the gap is visible.
      o.log(`secret tracking for ${e.path} in ${e.sandboxId} failed: ${errorMessage(err)}`);
    }
  });
}
