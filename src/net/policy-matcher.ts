// The network policy compiled once into matchers. Every decision names the rule that made it,
// so an event says *why* a byte moved or did not. Deny wins; no rule means deny.
import type { NetRule, NetworkPolicy, ProtocolGate } from '../config/index.ts';
import { cidrContains, cidrWithin, ipv4ToInt, parseCidr, PROTECTED_RANGES, type Cidr } from '../util/index.ts';
import { compileL7, type L7Rule } from './l7-rules.ts';

export interface Decision {
  allow: boolean; rule: string; reason?: string; domain?: string;
  /** For allows: is TLS to this destination terminated and inspected (tls) or forwarded unread? */
  inspect?: 'tls' | 'passthrough';
  /** For allows: HTTP method/path rules of the allowing rule. */
  http?: L7Rule;
}

interface CompiledRule { id: string; domain?: string; wildcard: boolean; cidr?: Cidr; ports: Array<[number, number]>; inspect?: 'tls' | 'passthrough'; http?: L7Rule }

export interface PhaseMatcher {
  readonly phase: string;
  /** DNS: may this name be resolved at all (on any port)? */
  name(name: string): Decision;
  /** A connection to ip:port, given the allowed names this sandbox's resolver returned for ip. */
  connect(ip: string, port: number, boundNames: Iterable<string>): Decision;
  /** Is ip inside a protected range that no CIDR rule explicitly opens? (rebinding, SSRF) */
  protectedRange(ip: string, port?: number): string | null;
  /** Risky protocols are denied unless `protocols.allow` lists their gate. */
  protocol(protocol: string): Decision;
  /** Host/SNI check against the connection's allowed name (fronting). */
  hostName(name: string, port: number, allowedVia: Decision, boundNames: Iterable<string>): Decision;
}

export interface CompiledPolicy { readonly phases: string[]; readonly initialPhase: string; forPhase(phase: string): PhaseMatcher }

/** Ranges that are never reachable unless named: the fixed list plus the host's own and API addresses. */
export function protectedRanges(extra: { hostAddresses?: string[]; apiAddresses?: string[] } = {}): Array<{ name: string; cidr: Cidr }> {
  const own = (extra.hostAddresses ?? []).filter((a) => ipv4ToInt(a) !== null).map((a) => ({ name: 'host-address', cidr: parseCidr(a) }));
  const api = (extra.apiAddresses ?? []).filter((a) => ipv4ToInt(a) !== null).map((a) => ({ name: 'praetor-api', cidr: parseCidr(a) }));
  return [...PROTECTED_RANGES, ...own, ...api];
}

export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

const TUNNELS = new Set(['chisel', 'frp', 'bore', 'ngrok', 'cloudflared', 'yamux', 'ligolo', 'iodine', 'dnscat']);
/** Which `protocols.allow` gate a detected protocol falls under, if any. */
export function protocolGate(protocol: string): ProtocolGate | null {
  if (protocol === 'ssh' || protocol === 'stratum' || protocol === 'jsonrpc-tx') return protocol;
  if (TUNNELS.has(protocol)) return 'tunnel';
  return null;
}
export const KNOWN_PROTOCOLS = new Set(['http', 'tls', 'ssh', 'stratum', 'jsonrpc', 'jsonrpc-tx', 'dns', ...TUNNELS]);

function compileRules(rules: NetRule[], prefix: string): CompiledRule[] {
  return rules.map((r, i) => ({
    id: `${prefix}[${i}]`,
    ...(r.domain !== undefined ? { domain: normaliseName(r.domain.replace(/^\*\./, '')) } : {}),
    wildcard: r.domain?.startsWith('*.') ?? false,
    ...(r.cidr !== undefined ? { cidr: parseCidr(r.cidr) } : {}),
    // Named destinations are intercepted unless the rule says passthrough; CIDR rules only when asked.
    inspect: r.inspect ?? (r.domain !== undefined ? 'tls' : 'passthrough'),
    ...(compileL7(r.http) ? { http: compileL7(r.http)! } : {}),
    ports: r.ports.map((p): [number, number] => {
      if (typeof p === 'number') return [p, p];
      const [a, b] = p.split('-').map(Number);
      return [a!, b!];
    }),
  }));
}

function allowBy(r: CompiledRule, domain?: string): Decision {
  return { allow: true, rule: r.id, ...(domain !== undefined ? { domain } : {}), ...(r.inspect ? { inspect: r.inspect } : {}), ...(r.http ? { http: r.http } : {}) };
}

function nameMatches(r: CompiledRule, name: string): boolean {
  if (r.domain === undefined) return false;
  // `*.x` is any depth below x but never x itself: allowing a mirror must not allow the apex.
  return r.wildcard ? name.endsWith('.' + r.domain) : name === r.domain;
}
const portMatches = (r: CompiledRule, port: number) => r.ports.some(([a, b]) => port >= a && port <= b);

export interface CompileOptions {
  protected?: Array<{ name: string; cidr: Cidr }>;
  /** Hosts (a name or an IPv4 literal) denied on every port whatever the policy allows, each named by its id. */
  fixedDeny?: Array<{ id: string; host: string }>;
}

export function compilePolicy(policy: NetworkPolicy, opts: CompileOptions = {}): CompiledPolicy {
  const prot = opts.protected ?? protectedRanges();
  const baseAllow = compileRules(policy.allow, 'network.allow');
  const fixed = (opts.fixedDeny ?? []).map(({ id, host }): CompiledRule => ({
    id, wildcard: false, ports: [[1, 65535]],
    ...(ipv4ToInt(host) !== null ? { cidr: parseCidr(host) } : { domain: normaliseName(host) }),
  }));
  const baseDeny = [...fixed, ...compileRules(policy.deny, 'network.deny')];
  const gates = new Set<string>(policy.protocols.allow);
  const phases = ['agent', ...(policy.phases?.setup ? ['setup'] : [])];
  const cache = new Map<string, PhaseMatcher>();

  function build(phase: string): PhaseMatcher {
    const extra = phase === 'setup' ? policy.phases?.setup : policy.phases?.agent;
    const allow = [...baseAllow, ...compileRules(extra?.allow ?? [], `network.phases.${phase}.allow`)];
    const deny = [...baseDeny, ...compileRules(extra?.deny ?? [], `network.phases.${phase}.deny`)];
    const cidrAllow = allow.filter((r) => r.cidr);

    const denyName = (name: string, port?: number) =>
      deny.find((r) => nameMatches(r, name) && (port === undefined || portMatches(r, port)));

    const protectedRange = (ip: string, port?: number): string | null => {
      const n = ipv4ToInt(ip);
      if (n === null) return 'not-ipv4';
      for (const p of prot) {
        if (!cidrContains(p.cidr, n)) continue;
        // Opened only by a CIDR rule that lies inside the protected range: 0.0.0.0/0 does not
        // open the metadata service, 169.254.169.254/32 does.
        const opened = cidrAllow.some((r) => cidrWithin(r.cidr!, p.cidr) && cidrContains(r.cidr!, n) && (port === undefined || portMatches(r, port)));
        if (!opened) return p.name;
      }
      return null;
    };

    return {
      phase,
      protectedRange,
      name(raw) {
        const name = normaliseName(raw);
        const d = denyName(name);
        if (d) return { allow: false, rule: d.id, reason: 'denied name', domain: name };
        const a = allow.find((r) => nameMatches(r, name));
        return a ? { allow: true, rule: a.id, domain: name } : { allow: false, rule: 'default-deny', reason: 'name not in policy', domain: name };
      },
      connect(ip, port, boundNames) {
        const n = ipv4ToInt(ip);
        if (n === null) return { allow: false, rule: 'ipv4-only', reason: 'not an IPv4 destination' };
        const dc = deny.find((r) => r.cidr && cidrContains(r.cidr, n) && portMatches(r, port));
        if (dc) return { allow: false, rule: dc.id, reason: 'denied range' };
        const names = [...boundNames].map(normaliseName);
        for (const name of names) {
          const dn = denyName(name, port);
          if (dn) return { allow: false, rule: dn.id, reason: 'denied name', domain: name };
        }
        const pr = protectedRange(ip, port);
        if (pr) return { allow: false, rule: `protected:${pr}`, reason: `${pr} address` };
        const ca = cidrAllow.find((r) => cidrContains(r.cidr!, n) && portMatches(r, port));
        if (ca) return allowBy(ca);
        for (const name of names) {
          const a = allow.find((r) => nameMatches(r, name) && portMatches(r, port));
          if (a) return allowBy(a, name);
        }
        return names.length > 0
          ? { allow: false, rule: 'default-deny', reason: `port ${port} not allowed for ${names[0]}`, domain: names[0]! }
          : { allow: false, rule: 'default-deny', reason: 'address not resolved by the gateway for an allowed name and no CIDR rule' };
      },
      protocol(protocol) {
        const gate = protocolGate(protocol);
        if (gate) return gates.has(gate) ? { allow: true, rule: 'protocols.allow' } : { allow: false, rule: 'protocols.allow', reason: `${protocol} is not in protocols.allow` };
        if (!KNOWN_PROTOCOLS.has(protocol) && policy.protocols.unknown === 'deny') return { allow: false, rule: 'protocols.unknown', reason: 'unrecognised protocol' };
        return { allow: true, rule: KNOWN_PROTOCOLS.has(protocol) ? 'protocol-ok' : 'protocols.unknown' };
      },
      hostName(raw, port, via, boundNames) {
        const name = normaliseName(raw.replace(/:\d+$/, ''));
        const d = denyName(name, port);
        if (d) return { allow: false, rule: d.id, reason: `${name} is denied`, domain: name };
        if (via.domain === undefined) return via; // allowed by a CIDR rule: the address itself was allowed
        // Fronting: the TLS SNI or HTTP Host must be a name this IP was resolved for and that
        // the policy allows on this port, or the real target hides behind an allowed front.
        if (name === via.domain) return via;
        for (const b of boundNames) {
          if (normaliseName(b) !== name) continue;
          const a = allow.find((r) => nameMatches(r, name) && portMatches(r, port));
          if (a) return allowBy(a, name);
        }
        return { allow: false, rule: 'fronting', reason: `${name} is not the name ${via.domain} this connection was allowed for`, domain: via.domain };
      },
    };
  }

  return {
    phases,
    initialPhase: policy.phases?.setup ? 'setup' : 'agent',
    forPhase(phase) {
      if (!phases.includes(phase)) throw new Error(`unknown phase "${phase}" (this policy has: ${phases.join(', ')})`);
      let m = cache.get(phase);
      if (!m) { m = build(phase); cache.set(phase, m); }
      return m;
    },
  };
}
