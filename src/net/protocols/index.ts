// All sniffers, in priority order: tunnels and risky protocols first, so a tunnel hiding
// inside HTTP or a miner inside JSON-RPC is named for what it is.
import { httpSniffer } from './http.ts';
import { jsonrpcSniffer } from './jsonrpc.ts';
import { sshSniffer } from './ssh.ts';
import { stratumSniffer } from './stratum.ts';
import { tlsSniffer } from './tls.ts';
import { tunnelSniffer } from './tunnels.ts';
import type { Direction, HttpHead, SniffResult, Sniffer } from './types.ts';

export { type Direction, type HttpHead, type SniffResult, type Sniffer, SNIFF_LIMIT, BODY_LIMIT } from './types.ts';
export { parseRequestHead, requestHost } from './http.ts';
export { parseClientHello } from './tls.ts';

export const SNIFFERS: readonly Sniffer[] = [tunnelSniffer, sshSniffer, stratumSniffer, jsonrpcSniffer, tlsSniffer, httpSniffer];

export type Classification =
  | { state: 'more' }
  | { state: 'done'; protocol: string; sni?: string; host?: string; detail?: string; httpHead?: HttpHead;
      /** The head asks for 100-continue and no body byte came yet: the body is judged when it comes (layer-inspector.ts). */
      awaitsBody?: true };

/** Runs every sniffer for this direction; `final` means no more bytes will arrive in time. */
export function classify(buf: Buffer, dir: Direction, final = false): Classification {
  let more = false;
  for (const s of SNIFFERS) {
    if (!s.directions.includes(dir)) continue;
    let r: SniffResult;
    try { r = s.sniff(buf, dir); } catch { r = { state: 'no' }; }
    if (r.state === 'match') {
      const { state: _s, ...rest } = r;
      return { state: 'done', ...rest };
    }
    if (r.state === 'more') more = true;
  }
  // Still a prefix of something recognisable when time or bytes run out: fail closed as
  // 'incomplete' rather than forwarding half a handshake uninspected.
  if (more && !final) return { state: 'more' };
  return { state: 'done', protocol: more ? 'incomplete' : 'unknown' };
}
