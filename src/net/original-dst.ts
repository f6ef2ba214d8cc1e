// Recovers where a redirected TCP connection was going: after an nftables `redirect`, the
// accepted socket's SO_ORIGINAL_DST (netfilter conntrack) holds the sandbox's real destination.
// This is how programs that ignore proxy variables and dial raw IP literals are still judged.
import koffi from 'koffi';
import type { Socket } from 'node:net';

const SOL_IP = 0;
const SO_ORIGINAL_DST = 80;

type Getsockopt = (fd: number, level: number, name: number, optval: Buffer, optlen: Buffer) => number;

/** Loads libc's getsockopt once per caller (no module-level mutable state). */
export function createOriginalDst(): (sock: Socket) => { ip: string; port: number } | null {
  const lib = koffi.load('libc.so.6');
  // Raw pointers into buffers this closure owns: koffi then passes them through without the
  // copy-in/copy-out that _Out_ parameters cost. This runs on every connection's setup path.
  const getsockopt = lib.func('int getsockopt(int fd, int level, int optname, void *optval, void *optlen)') as unknown as Getsockopt;
  const addr = Buffer.alloc(16);
  const len = Buffer.alloc(4);
  return (sock) => {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return null;
    len.writeUInt32LE(addr.length);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, addr, len) !== 0) return null;
    if (addr.readUInt16LE(0) !== 2 /* AF_INET */) return null;
    return { ip: `${addr[4]}.${addr[5]}.${addr[6]}.${addr[7]}`, port: addr.readUInt16BE(2) };
  };
}
