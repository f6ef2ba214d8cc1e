// Applies one image layer (a tar, possibly compressed) onto a root, with OCI whiteouts:
// `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` empties its directory first.
//
// Threat: a hostile image. Path text alone cannot be trusted, because an earlier layer may have
// left a symlink (`x -> /etc`) that a later layer walks through: `x/.wh.passwd` would make us
// delete the host's /etc/passwd as root, and tar itself follows an existing directory symlink
// when it writes `x/passwd`. So (a) every whiteout is resolved with realpath and must stay under
// the real root, and (b) tar runs in a private mount namespace in which only the root is
// writable: whatever a symlink points at, a write outside the root fails (EROFS) and the import
// is refused as BAD_IMAGE. A legitimate image that writes through an absolute symlink is refused
// too (fails closed): the unpacker has no chroot, so it cannot tell where such a link should point.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { basename, dirname, join, normalize, sep } from 'node:path';
import { PraetorError, errorMessage } from '../errors.ts';
import { USR_LINKS } from './runtimes/types.ts';

const BWRAP = '/usr/bin/bwrap';

function safeJoin(root: string, entry: string): string | undefined {
  const rel = normalize(entry.replace(/^\.?\/+/, ''));
  if (rel.startsWith('..') || rel === '.' || rel === '') return undefined; // path traversal in a hostile layer
  return join(root, rel);
}

function escapeError(layer: string, entry: string, detail: string): PraetorError {
  return new PraetorError('BAD_IMAGE', `layer ${basename(layer)} reaches outside the image root at ${entry} (${detail})`, {
    hint: 'the image is malformed or hostile: a symlink from an earlier layer leads out of the root; rebuild it without such links',
  });
}

/**
 * The real directory `dir` names, or undefined when it does not exist yet (nothing to delete).
 * Throws BAD_IMAGE when a symlink on the way leads outside the real root.
 */
function realDirUnder(realRoot: string, dir: string, layer: string, entry: string): string | undefined {
  let real: string;
  try { real = realpathSync(dir); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // new in this layer, or a file: nothing below it to whiteout
    throw new PraetorError('BAD_IMAGE', `cannot resolve ${entry} in the image root: ${errorMessage(e)}`, { hint: 'check the image layers', cause: e });
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) throw escapeError(layer, entry, `resolves to ${real}`);
  return real;
}

export function applyLayer(layer: string, root: string): void {
  const list = spawnSync('tar', ['-tf', layer], { encoding: 'utf8', maxBuffer: 512 << 20 });
  if (list.status !== 0) throw new PraetorError('BAD_IMAGE', `layer ${layer} is not a readable tar: ${list.stderr.trim()}`, { hint: 'check the image archive is complete' });
  const realRoot = realpathSync(root);
  const entries = list.stdout.split('\n').filter(Boolean);
  for (const e of entries) {
    const base = e.replace(/\/$/, '').split('/').pop() ?? '';
    if (!base.startsWith('.wh.')) continue;
    const dir = safeJoin(root, dirname(e));
    if (!dir && dirname(e) !== '.') continue;
    // (a) resolve the parent through any symlinks of earlier layers before deleting anything.
    const realDir = realDirUnder(realRoot, dir ?? root, layer, e);
    if (!realDir) continue;
    if (base === '.wh..wh..opq') {
      for (const c of readdirSync(realDir)) rmSync(join(realDir, c), { recursive: true, force: true });
    } else {
      const name = base.slice(4);
      if (!name || name === '.' || name === '..' || name.includes('/')) continue;
      // rmSync does not follow a symlink named by the path itself: it removes the link.
      rmSync(join(realDir, name), { recursive: true, force: true });
    }
  }
  // (b) tar in a mount namespace where only the root is writable (see the header). bwrap as root
  // keeps tar's capabilities, so --numeric-owner/--same-permissions and device nodes still work.
  // --numeric-owner keeps image uids; GNU tar refuses absolute and .. members by default.
  const x = confinedTar(layer, realRoot, ['--numeric-owner', '--same-permissions', '--exclude=.wh.*', '--exclude=*/.wh.*']);
  if (x.status !== 0) {
    const detail = (x.stderr || x.error?.message || '').trim().split('\n').slice(-3).join('; ');
    // EROFS is the mount namespace stopping a write that a symlink redirected out of the root.
    if (/Read-only file system/.test(x.stderr ?? '')) throw escapeError(layer, 'a tar member', detail);
    throw new PraetorError('BAD_IMAGE', `cannot unpack layer ${layer}: ${detail}`, { hint: 'check the image archive is complete and the disk has space' });
  }
}

/**
 * `tar -xf archive -C root ARGS` in a private mount namespace in which only `root` is writable:
 * a member that walks out of the root, by `..`, an absolute name or a symlink planted by an
 * earlier member, fails with EROFS instead of writing on the host. `dropCaps` also drops every
 * capability (an outer archive needs none: no owners, no device nodes).
 */
export function confinedTar(archive: string, root: string, tarArgs: string[], opts: { dropCaps?: boolean } = {}): SpawnSyncReturns<string> {
  if (!existsSync(BWRAP)) throw new PraetorError('HOST_UNSUPPORTED', `${BWRAP} is missing: image archives are unpacked inside it`, { hint: 'apt-get install bubblewrap' });
  const realRoot = realpathSync(root);
  const realArchive = realpathSync(archive);
  return spawnSync(BWRAP, [
    '--die-with-parent', '--unshare-pid', ...(opts.dropCaps ? ['--cap-drop', 'ALL'] : []),
    ...tarView(), '--dev', '/dev', '--proc', '/proc', '--ro-bind', realArchive, realArchive, '--bind', realRoot, realRoot, '--',
    'tar', '-xf', realArchive, '-C', realRoot, ...tarArgs,
  ], { encoding: 'utf8' });
}

/**
 * What tar and its decompressors need of the host, read-only: /usr (and the merged-/usr links
 * or directories beside it) and /etc (the loader's cache). Not the whole host: binding `/`
 * remounts every submount read-only, and one that goes away meanwhile (another sandbox's
 * network namespace under /run/netns) fails the import ("Unable to apply mount flags").
 */
function tarView(): string[] {
  const out = ['--ro-bind', '/usr', '/usr', '--ro-bind', '/etc', '/etc'];
  for (const d of USR_LINKS) {
    let st;
    try { st = lstatSync(`/${d}`); } catch { continue; }
    if (st.isSymbolicLink()) out.push('--symlink', readlinkSync(`/${d}`), `/${d}`);
    else if (st.isDirectory()) out.push('--ro-bind', `/${d}`, `/${d}`);
  }
  return out;
}
