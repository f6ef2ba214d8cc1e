// One interface for every protocol sniffer. A sniffer sees the first bytes of one direction of
// a connection (nothing has been forwarded yet) and says: not mine, need more, or a match.
export type Direction = 'client' | 'server';

export type SniffResult =
  | { state: 'no' }
  | { state: 'more' }
  | { state: 'match'; protocol: string; sni?: string; host?: string; detail?: string; httpHead?: HttpHead; awaitsBody?: true };

/** A parsed HTTP/1 request head, carried with an HTTP match so the flow does not parse it again. */
export interface HttpHead { method: string; target: string; version: string; headers: Map<string, string>; headEnd: number }

export interface Sniffer {
  readonly name: string;
  /** Which side's first bytes it reads: client-speaks-first protocols, server banners, or both. */
  readonly directions: readonly Direction[];
  /** Pure and total: never throws, whatever the bytes. */
  sniff(buf: Buffer, dir: Direction): SniffResult;
}

export const NO: SniffResult = { state: 'no' };
export const MORE: SniffResult = { state: 'more' };
/** HTTP bodies are read up to this many bytes before anything is forwarded. */
export const BODY_LIMIT = 64 * 1024;
/** The most a sniffer may ask to buffer before it must decide. */
export const SNIFF_LIMIT = BODY_LIMIT + 32 * 1024;
