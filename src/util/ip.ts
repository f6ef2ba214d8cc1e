// IPv4 arithmetic for the policy (config), the policy matcher and the link pool (net): in util, so
// config need not import net. IPv4 only on purpose: the gateway does not carry IPv6 end to end,
// so every IPv6 packet from a sandbox is dropped and recorded.

export interface Cidr { base: number; prefix: number; text: string }

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(s: string): boolean { return V4.test(s); }

/** Dotted quad to an unsigned 32-bit number; null when not a canonical IPv4 literal. */
export function ipv4ToInt(s: string): number | null {
  if (!V4.test(s)) return null;
  return s.split('.').reduce((acc, o) => (acc * 256) + Number(o), 0);
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/n` or a bare address (= /32). Throws a plain Error with the fix. */
export function parseCidr(text: string): Cidr {
  const [addr, pfx, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) throw new Error(`"${text}" is not a CIDR; write it as a.b.c.d/n`);
  const base = ipv4ToInt(addr);
  if (base === null) {
    if (addr.includes(':')) throw new Error(`"${text}" is IPv6, which the gateway does not carry; use an IPv4 CIDR`);
    throw new Error(`"${text}" is not an IPv4 address; write it as a.b.c.d/n`);
  }
  const prefix = pfx === undefined ? 32 : Number(pfx);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32 || (pfx !== undefined && !/^\d+$/.test(pfx))) {
    throw new Error(`"${text}" has a bad prefix length; use /0 to /32`);
  }
  if (((base & mask(prefix)) >>> 0) !== base) {
    throw new Error(`"${text}" has host bits set; write ${intToIpv4((base & mask(prefix)) >>> 0)}/${prefix} (or a.b.c.d/32 for one host)`);
  }
  return { base, prefix, text: `${addr}/${prefix}` };
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

/** Whether `inner` lies entirely inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.base);
}

/**
 * Ranges a sandbox never reaches unless a CIDR rule names a range inside them: the host itself,
 * cloud metadata (169.254.169.254 and all link-local), private networks for lateral movement,
 * the CGNAT block the sandbox links live in, multicast and reserved space.
 */
export const PROTECTED_RANGES: ReadonlyArray<{ name: string; cidr: Cidr }> = [
  ['this-network', '0.0.0.0/8'],
  ['loopback', '127.0.0.0/8'],
  ['link-local', '169.254.0.0/16'],
  ['rfc1918', '10.0.0.0/8'],
  ['rfc1918', '172.16.0.0/12'],
  ['rfc1918', '192.168.0.0/16'],
  ['cgnat', '100.64.0.0/10'],
  ['multicast', '224.0.0.0/4'],
  ['reserved', '240.0.0.0/4'],
].map(([name, c]) => ({ name: name as string, cidr: parseCidr(c as string) }));
