// Egress token scanning. Threat: an agent that found a credential (a planted canary, a brokered
// secret's placeholder, the secret itself echoed back) posts it to an allowed API, splits it
// across writes, or wraps it in WebSocket frames. Every view of the outbound bytes (the raw
// stream, a WebSocket message's unmasked payload, a de-chunked body) is scanned with a carry of
// the last (longest token − 1) bytes, so a token split across chunks is still found; the caller
// holds back the stream's tail while it could still be the start of a token, so a hit is made
// before any byte of it is forwarded.
import { createHash } from 'node:crypto';

/** A token to keep from leaving: canaries nowhere, placeholders and secrets only to their domain. */
export interface EgressToken {
  readonly name: string;
  readonly value: string;
  readonly kind: 'canary' | 'placeholder' | 'secret';
  /** Domains this token may go to (placeholders, secrets); a canary may go nowhere. */
  readonly domains?: readonly string[];
}

export interface TokenHit { name: string; kind: EgressToken['kind']; sha256: string; view: string; encoding: string }

const MIN_TOKEN = 8;

/** The tokens in force on one connection: those not allowed to its destination. */
export interface TokenSet {
  readonly tokens: ReadonlyArray<{ t: EgressToken; bytes: Buffer; encoding: string }>;
  readonly maxLen: number;
  /** A fresh scanner for one view of one connection. */
  scanner(view: string): ViewScanner;
  /** Length of the longest suffix of buf that is a proper prefix of some token (what to hold back). */
  holdLength(buf: Buffer): number;
}

export interface ViewScanner {
  /** Feeds bytes; returns the first token found (across the carry and these bytes). */
  feed(b: Buffer): TokenHit | null;
  /** Bytes at the end of what was fed that could still begin a token. */
  pendingPrefix(): number;
}

export const tokenHash = (v: string): string => createHash('sha256').update(v).digest('hex');

/** Tokens that must not reach `domain` (undefined: a destination without a name). */
export function tokensFor(all: readonly EgressToken[], domain: string | undefined): TokenSet | null {
  const d = domain?.toLowerCase();
  const live = all.filter((t) => t.value.length >= MIN_TOKEN && !(d && t.kind !== 'canary' && (t.domains ?? []).some((x) => domainMatches(x, d))));
  if (live.length === 0) return null;
  const tokens = live.flatMap((t) => encodings(t.value).map((e) => ({ t, bytes: e.bytes, encoding: e.encoding })));
  const maxLen = Math.max(...tokens.map((x) => x.bytes.length));
  const holdLength = (buf: Buffer): number => {
    let best = 0;
    for (const { bytes } of tokens) {
      const max = Math.min(bytes.length - 1, buf.length);
      for (let n = max; n > best; n--) {
        if (buf.compare(bytes, 0, n, buf.length - n, buf.length) === 0) { best = n; break; }
      }
    }
    return best;
  };
  return {
    tokens, maxLen, holdLength,
    scanner(view) {
      let carry = Buffer.alloc(0);
      return {
        feed(b) {
          if (b.length === 0) return null;
          const hay = carry.length ? Buffer.concat([carry, b]) : b;
          for (const { t, bytes, encoding } of tokens) {
            if (hay.indexOf(bytes) >= 0) return { name: t.name, kind: t.kind, sha256: tokenHash(t.value), view, encoding };
          }
          carry = Buffer.from(hay.subarray(Math.max(0, hay.length - (maxLen - 1))));
          return null;
        },
        pendingPrefix: () => holdLength(carry),
      };
    },
  };
}

/**
 * The forms a token takes on the wire: as is, hex (both cases), and base64 (standard and URL-safe)
 * at each of the three alignments it can have inside a longer encoded text. Threat: `env | base64
 * | curl`. A base64 core covers only whole groups of the token, so it appears whatever precedes or
 * follows it; cores shorter than 12 characters are dropped (they would match by chance).
 */
function encodings(value: string): Array<{ encoding: string; bytes: Buffer }> {
  const v = Buffer.from(value, 'utf8');
  const out = [{ encoding: 'plain', bytes: v }, { encoding: 'hex', bytes: Buffer.from(v.toString('hex')) }, { encoding: 'hex', bytes: Buffer.from(v.toString('hex').toUpperCase()) }];
  for (let k = 0; k < 3; k++) {
    const part = v.subarray(k);
    const whole = Math.floor(part.length / 3) * 3;
    if (whole === 0) continue;
    const b64 = part.subarray(0, whole).toString('base64');
    if (b64.length < 12) continue;
    out.push({ encoding: 'base64', bytes: Buffer.from(b64) });
    const url = b64.replace(/\+/g, '-').replace(/\//g, '_');
    if (url !== b64) out.push({ encoding: 'base64url', bytes: Buffer.from(url) });
  }
  return out;
}

function domainMatches(rule: string, name: string): boolean {
  const r = rule.toLowerCase().replace(/\.$/, '');
  return r.startsWith('*.') ? name.endsWith(r.slice(1)) : name === r;
}

/** What a hit says in an event: the token's name, kind and hash, never its value. */
export function describeHit(h: TokenHit, layers: readonly string[]): string {
  return `${h.kind} token "${h.name}" (sha256 ${h.sha256.slice(0, 16)}…${h.encoding === 'plain' ? '' : `, ${h.encoding}-encoded`}) in outbound bytes at ${[...layers, ...(h.view === 'stream' ? [] : [h.view])].join('>')}; 0 bytes of it were forwarded`;
}
