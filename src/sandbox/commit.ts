// Saves a running sandbox's filesystem as a new image in the cache, so later sandboxes can start
// from it (ROCK's `commit`, E2B-style snapshots). The sandbox is frozen while its root is read,
// so the image is one consistent moment and a process cannot race the archiver; it is thawed
// afterwards whatever happens. The archive goes through the same confined import as any
// untrusted image: what the agent wrote is agent input, read by root.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { PraetorError } from '../errors.ts';
import type { ImageEntry } from './images.ts';
import type { SandboxManager } from './manager.ts';
import type { Sandbox } from './sandbox.ts';

/** The host path of a sandbox's merged root (an overlay on its image), or undefined for `host`. */
export function sandboxRootDir(manager: SandboxManager, sb: Sandbox): string | undefined {
  return sb.spec.image === 'host' ? undefined : `${manager.stateDir}/sandboxes/${sb.id}/root`;
}

export async function commitSandbox(manager: SandboxManager, sb: Sandbox, name: string): Promise<ImageEntry> {
  const root = sandboxRootDir(manager, sb);
  if (!root) {
    throw new PraetorError('BAD_STATE', `sandbox ${sb.id} runs on the host's read-only userland; there is no image layer to commit`, {
      hint: 'start the sandbox from an imported image (not host) to commit it',
    });
  }
  if (sb.state === 'destroyed') throw new PraetorError('BAD_STATE', `sandbox ${sb.id} is destroyed`, { hint: 'commit a running or stopped sandbox' });
  const tmp = mkdtempSync(`${manager.images.dir}/commit-`);
  const wasRunning = sb.state === 'running';
  try {
    if (wasRunning) await sb.pause();
    try {
      // --one-file-system: never descend into a mount under the root; symlinks are archived as
      // links, never followed, so a link to a host path archives the link, not the host file.
      await run('tar', ['--numeric-owner', '--one-file-system', '-C', root, '-cf', `${tmp}/rootfs.tar`, '.']);
    } finally {
      if (wasRunning && (sb.state as string) === 'paused') await sb.resume();
    }
    return await manager.images.import(`${tmp}/rootfs.tar`, name);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => code === 0 ? resolve() : reject(new PraetorError('SANDBOX_FAILED', `archiving the sandbox root failed (${cmd} exit ${code}): ${err.trim().slice(0, 500)}`, { hint: 'check the state directory has room for the image' })));
  });
}
