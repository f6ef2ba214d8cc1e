// WebSocket framing (RFC 6455 §5.2): after an HTTP Upgrade, client frames are masked with a
// 4-byte key. The gateway unmasks payloads to judge what they carry (a miner's Stratum login
// inside a WebSocket to an allowed web host), and forwards the frames unchanged.
export interface FrameHeader { fin: boolean; opcode: number; mask: Buffer | null; length: number; headerLen: number }

/** Longest payload accepted in one frame header: larger lengths are malformed or abusive. */
const MAX_FRAME = 2 ** 40;

/** Parses a frame header; 'more' while incomplete, null when malformed. */
export function parseFrameHeader(buf: Buffer): FrameHeader | 'more' | null {
  if (buf.length < 2) return 'more';
  const b0 = buf[0]!; const b1 = buf[1]!;
  if ((b0 & 0x70) !== 0) return null; // RSV bits: no extension was negotiated through the gateway
  const opcode = b0 & 0x0f;
  if ((opcode > 2 && opcode < 8) || opcode > 10) return null;
  const masked = (b1 & 0x80) !== 0;
  let len = b1 & 0x7f; let p = 2;
  if (len === 126) { if (buf.length < 4) return 'more'; len = buf.readUInt16BE(2); p = 4; }
  else if (len === 127) {
    if (buf.length < 10) return 'more';
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(MAX_FRAME)) return null;
    len = Number(big); p = 10;
  }
  if (opcode >= 8 && len > 125) return null; // control frames are small
  const headerLen = p + (masked ? 4 : 0);
  if (buf.length < headerLen) return 'more';
  return { fin: (b0 & 0x80) !== 0, opcode, mask: masked ? Buffer.from(buf.subarray(p, p + 4)) : null, length: len, headerLen };
}

/** XORs payload bytes with the key, `offset` bytes into the payload. */
export function unmask(b: Buffer, key: Buffer, offset: number): Buffer {
  const out = Buffer.allocUnsafe(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b[i]! ^ key[(offset + i) & 3]!;
  return out;
}

/** Builds a masked client frame (tests, the arena's WebSocket clients). */
export function clientFrame(payload: Buffer, opcode = 1, key = Buffer.from([0x12, 0x34, 0x56, 0x78]), fin = true): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | n])
    : n < 65536 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, n >> 8, n & 0xff])
    : (() => { const h = Buffer.alloc(10); h[0] = (fin ? 0x80 : 0) | opcode; h[1] = 0x80 | 127; h.writeBigUInt64BE(BigInt(n), 2); return h; })();
  return Buffer.concat([head, key, unmask(payload, key, 0)]);
}
