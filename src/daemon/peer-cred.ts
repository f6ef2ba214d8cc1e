// Who is on the other end of a Unix socket, from the kernel (SO_PEERCRED), not from anything the
// peer says. Node has no API for it; libc's getsockopt through koffi on the accepted socket's fd.
// The guard runs sandboxes as root on the caller's behalf: a non-root caller must never get one,
// even if the socket's directory permissions were loosened by mistake.
import koffi from 'koffi';
import type { Socket } from 'node:net';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

type Getsockopt = (fd: number, level: number, name: number, optval: Buffer, optlen: Buffer) => number;

export interface PeerCred { pid: number; uid: number; gid: number }

/** Loads getsockopt once per caller (no module-level state). */
export function createPeerCred(): (sock: Socket) => PeerCred | undefined {
  const lib = koffi.load('libc.so.6');
  const getsockopt = lib.func('int getsockopt(int fd, int level, int optname, void *optval, void *optlen)') as unknown as Getsockopt;
  return (sock) => {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return undefined;
    const cred = Buffer.alloc(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
    const len = Buffer.alloc(4);
    len.writeUInt32LE(cred.length);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) return undefined;
    return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8) };
  };
}
