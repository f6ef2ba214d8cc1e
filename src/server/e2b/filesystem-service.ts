// envd's filesystem.Filesystem over Connect: Stat, MakeDir, Move, ListDir, Remove. Like every
// Praetor file operation (see ../sandbox-ops.ts), each runs as a small command inside the
// sandbox as the agent, so paths resolve in the sandbox's mount namespace with the agent's
// permissions and a planted symlink can never reach a host path. Watchers are not built.
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { errorMessage } from '../../errors.ts';
import { SandboxPath } from '../sandbox-ops.ts';
import { checkUser, resolvePath, userFromBasic } from './envd-user.ts';
import { toConnectError, unimplemented } from './errors.ts';
import type { E2bSandbox } from './registry.ts';
import type { EntryInfoSchema, Filesystem } from './gen/filesystem/filesystem_pb.js';

type Entry = MessageInitShape<typeof EntryInfoSchema>;

// find's -printf fields, NUL-separated (names may hold any byte but NUL): type, size, octal
// mode, symbolic mode, owner, group, mtime, symlink target, path.
const FIELDS = "'%y\\0%s\\0%m\\0%M\\0%u\\0%g\\0%T@\\0%l\\0%p\\0'";
const EXISTS = '{ [ -e "$1" ] || [ -L "$1" ]; } || { echo "no such file or directory: $1" >&2; exit 2; }';
const SCRIPTS = {
  stat: `${EXISTS}; exec find "$1" -maxdepth 0 -printf ${FIELDS}`,
  list: `${EXISTS}; [ -d "$1" ] || { echo "not a directory: $1" >&2; exit 3; }; exec find "$1" -mindepth 1 -maxdepth "$2" -printf ${FIELDS}`,
  mkdir: `{ [ -e "$1" ] || [ -L "$1" ]; } && { echo "already exists: $1" >&2; exit 17; }; mkdir -p -- "$1" && exec find "$1" -maxdepth 0 -printf ${FIELDS}`,
  move: `${EXISTS}; mkdir -p -- "$(dirname -- "$2")" && mv -T -- "$1" "$2" && exec find "$2" -maxdepth 0 -printf ${FIELDS}`,
  remove: `${EXISTS}; exec rm -rf -- "$1"`,
} as const;

// Go's os.FileMode type bits, which envd (Go) puts in EntryInfo.mode.
const GO_DIR = 0x80000000; const GO_SYMLINK = 0x08000000;
const TYPES: Record<string, number> = { f: 1, d: 2, l: 3 };

/** Entries from the find -printf output above (exported for its unit test). */
export function parseEntries(out: string): Entry[] {
  const f = out.split('\0');
  const entries: Entry[] = [];
  for (let i = 0; i + 9 <= f.length; i += 9) {
    const [y, size, mode, perms, owner, group, mtime, target, path] = f.slice(i, i + 9) as string[];
    const type = TYPES[y!] ?? 0;
    const m = parseInt(mode!, 8) | (y === 'd' ? GO_DIR : y === 'l' ? GO_SYMLINK : 0);
    const t = Number(mtime);
    const name = path === '/' ? '/' : path!.replace(/\/+$/, '').split('/').pop()!;
    entries.push({
      name, type, path, size: BigInt(size || '0'), mode: m >>> 0,
      permissions: y === 'l' ? `L${perms!.slice(1)}` : perms, owner, group,
      modifiedTime: { seconds: BigInt(Math.floor(t)), nanos: Math.round((t % 1) * 1e9) },
      ...(y === 'l' ? { symlinkTarget: target } : {}),
      metadata: {},
    });
  }
  return entries;
}

function checkPath(raw: string, field: string): string {
  const p = resolvePath(raw);
  const r = SandboxPath.safeParse(p);
  if (!r.success) throw new ConnectError(`${field}: ${r.error.issues[0]!.message}`, Code.InvalidArgument);
  return p;
}

export function filesystemService(o: { recordOf: (ctx: HandlerContext) => E2bSandbox; durable?: (() => Promise<void>) | undefined }): ServiceImpl<typeof Filesystem> {
  async function run(ctx: HandlerContext, script: keyof typeof SCRIPTS, args: string[]): Promise<string> {
    const r = o.recordOf(ctx);
    try { checkUser(userFromBasic(ctx.requestHeader.get('authorization'))); } catch (e) { throw toConnectError(e); }
    let res;
    try { res = await r.entry.sb.exec(['/bin/sh', '-c', SCRIPTS[script], 'sh', ...args], { timeoutMs: 60_000 }); } catch (e) { throw toConnectError(e); }
    // Answered only once the command's records are durable (a change to the sandbox's files is an action).
    try { await o.durable?.(); } catch (e) { throw new ConnectError(`the ledger could not make this operation's records durable: ${errorMessage(e)}`, Code.Unavailable); }
    const msg = (res.stderr || res.error || `exit ${res.code}`).trim().split('\n').pop()!.replace(/^(sh|find|mkdir|mv|rm|dirname): /, '');
    // find exits 1 when a subdirectory is unreadable but still lists the rest.
    if (res.code === 0 || (script === 'list' && res.code === 1 && res.stdout !== '')) return res.stdout;
    if (res.code === 2) throw new ConnectError(msg, Code.NotFound);
    if (res.code === 3) throw new ConnectError(msg, Code.InvalidArgument);
    if (res.code === 17) throw new ConnectError(msg, Code.AlreadyExists);
    if (/Permission denied|Read-only file system|Operation not permitted/.test(msg)) throw new ConnectError(`${msg} (the agent user cannot change it; use the home directory, /tmp or /workspace)`, Code.PermissionDenied);
    if (/No space left/.test(msg)) throw new ConnectError(`${msg}: the sandbox disk is full`, Code.ResourceExhausted);
    throw new ConnectError(msg, Code.Internal);
  }
  const one = (out: string) => {
    const e = parseEntries(out)[0];
    if (!e) throw new ConnectError('no entry information came back', Code.Internal);
    return e;
  };

  return {
    async stat(req, ctx) { return { entry: one(await run(ctx, 'stat', [checkPath(req.path, 'path')])) }; },
    async makeDir(req, ctx) { return { entry: one(await run(ctx, 'mkdir', [checkPath(req.path, 'path')])) }; },
    async move(req, ctx) { return { entry: one(await run(ctx, 'move', [checkPath(req.source, 'source'), checkPath(req.destination, 'destination')])) }; },
    async listDir(req, ctx) {
      const depth = Math.min(Math.max(req.depth || 1, 1), 64);
      return { entries: parseEntries(await run(ctx, 'list', [checkPath(req.path, 'path'), String(depth)])) };
    },
    async remove(req, ctx) { await run(ctx, 'remove', [checkPath(req.path, 'path')]); return {}; },
    // eslint-disable-next-line require-yield
    async *watchDir() { throw unimplemented('watching a directory (files.watchDir)'); },
    async createWatcher() { throw unimplemented('directory watchers'); },
    async getWatcherEvents() { throw unimplemented('directory watchers'); },
    async removeWatcher() { throw unimplemented('directory watchers'); },
  };
}
