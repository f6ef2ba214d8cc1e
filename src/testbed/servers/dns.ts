// Authoritative-only DNS server for `*.test` names, over UDP and TCP. It has no upstream and no
// forwarding code at all: a name that is not in its table is NXDOMAIN, so a scenario can never
// make the machine's resolver (or anything beyond this namespace) look up a pool or tunnel name.
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { listen } from './http.ts';
import { addr, type Logger } from './log.ts';

const TYPES: Record<number, string> = { 1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 65: 'HTTPS', 255: 'ANY' };
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

interface Question { id: number; flags: number; name: string; qtype: number; qclass: number; end: number }

function parseQuestion(msg: Buffer): Question | null {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let off = 12;
  // Bounded: at most 128 labels; compression pointers are not valid in a query's question.
  for (let i = 0; i < 128; i++) {
    if (off >= msg.length) return null;
    const len = msg[off]!;
    off += 1;
    if (len === 0) {
      if (off + 4 > msg.length) return null;
      return { id: msg.readUInt16BE(0), flags: msg.readUInt16BE(2), name: labels.join('.').toLowerCase(), qtype: msg.readUInt16BE(off), qclass: msg.readUInt16BE(off + 2), end: off + 4 };
    }
    if (len > 63 || off + len > msg.length) return null;
    labels.push(msg.toString('latin1', off, off + len));
    off += len;
  }
  return null;
}

export function lookup(records: Record<string, string>, name: string): string | undefined {
  // Own properties only: a query for "constructor" or "__proto__" must be NXDOMAIN, not a crash.
  const get = (k: string) => (Object.hasOwn(records, k) ? records[k] : undefined);
  const exact = get(name);
  if (exact) return exact;
  const labels = name.split('.');
  for (let i = 1; i < labels.length; i++) {
    const hit = get(`*.${labels.slice(i).join('.')}`);
    if (hit) return hit;
  }
  return undefined;
}

function respond(records: Record<string, string>, msg: Buffer): { out: Buffer | null; fields: Record<string, unknown> } {
  const q = parseQuestion(msg);
  if (!q) return { out: null, fields: { malformed: true, bytes: msg.length } };
  const ip = lookup(records, q.name);
  const rcode = ip === undefined ? 3 : 0;
  const answer = ip !== undefined && q.qtype === 1 && (q.qclass === 1 || q.qclass === 255);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, the query's opcode and RD, AA set, RA clear (we recurse for nobody).
  header.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0400 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answer ? 1 : 0, 6);
  const parts = [header, msg.subarray(12, q.end)];
  if (answer) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(5, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
    parts.push(rr);
  }
  return {
    out: Buffer.concat(parts),
    fields: { name: q.name, type: TYPES[q.qtype] ?? String(q.qtype), rcode: RCODES[rcode], answer: answer ? ip : null, forwarded: false },
  };
}

export async function startDns(log: Logger, ip: string, port: number, records: Record<string, string>): Promise<{ close(): void }> {
  const udp = createSocket({ type: 'udp4' });
  udp.on('message', (msg, rinfo) => {
    const { out, fields } = respond(records, msg);
    log('query', { transport: 'udp', remote: addr(rinfo.address, rinfo.port), ...fields });
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address: ip, port, exclusive: true }, () => { udp.off('error', reject); resolve(); });
  });
  const tcp: Server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // Bounded: one TCP connection answers at most what fits in 64 KiB of queued input.
      if (buf.length > 65536) return socket.destroy();
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const { out, fields } = respond(records, msg);
        log('query', { transport: 'tcp', remote: addr(socket.remoteAddress, socket.remotePort), ...fields });
        if (!out) return socket.destroy();
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        socket.write(Buffer.concat([len, out]));
      }
    });
  });
  await listen(tcp, ip, port);
  return { close: () => { udp.close(); tcp.close(); } };
}
