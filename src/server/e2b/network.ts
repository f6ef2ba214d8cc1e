// E2B's egress options mapped onto a Praetor network policy, inside the tenant's ceiling.
//
// E2B's model is "internet on, minus denyOut, plus allowOut exceptions"; Praetor's is default
// deny plus an allow-list. A request may only *narrow* the ceiling (the tenant's policy, else
// the server's): it can never open a destination the ceiling does not (threat: a caller of the
// E2B API widening its own egress with `allowInternetAccess: true`, the default of older SDKs).
//   - allowInternetAccess: false, or a denyOut covering everything (0.0.0.0/0): nothing, except
//     allowOut entries that fall inside a ceiling rule (kept with that rule's ports);
//   - denyOut CIDRs otherwise: added as deny rules (Praetor's deny wins, so an allowOut entry
//     inside a denied CIDR stays denied: stricter than E2B, never looser);
//   - allowOut alone, or allowInternetAccess: true: the ceiling unchanged (E2B would allow more;
//     Praetor stays at the ceiling).
// A domain allowOut entry never narrows a CIDR ceiling rule (or the reverse): what a name
// resolves to is not known here, so such pairs grant nothing.
import { NetworkPolicySchema, type NetRule, type NetworkPolicy } from '../../config/index.ts';
import { cidrWithin, ipv4ToInt, parseCidr, type Cidr } from '../../util/index.ts';
import { PraetorError } from '../../errors.ts';

export interface E2bNetworkRequest {
  allowInternetAccess?: boolean | undefined;
  allowOut?: string[] | undefined;
  denyOut?: string[] | undefined;
}

type Entry = { kind: 'cidr'; cidr: Cidr } | { kind: 'domain'; name: string };

function parseEntry(s: string, field: string, domains: boolean): Entry {
  const t = s.trim().toLowerCase();
  if (/^[\d./]+$/.test(t) || t.includes(':')) {
    try { return { kind: 'cidr', cidr: parseCidr(ipv4ToInt(t) !== null ? `${t}/32` : t) }; } catch (e) {
      throw new PraetorError('BAD_ARGUMENT', `network.${field}: ${(e as Error).message}`, { hint: 'give IPv4 CIDRs such as 203.0.113.0/24 or bare addresses' });
    }
  }
  if (!domains) throw new PraetorError('BAD_ARGUMENT', `network.${field}: "${s}" is a domain; E2B's denyOut takes CIDRs and addresses only`, { hint: 'deny by address, or leave the domain out of allowOut' });
  if (!/^(\*\.)?[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9])?$/.test(t)) throw new PraetorError('BAD_ARGUMENT', `network.${field}: "${s}" is not a domain, address or CIDR`, { hint: 'write example.com, *.example.com, 203.0.113.7 or 203.0.113.0/24' });
  return { kind: 'domain', name: t };
}

/** Whether domain pattern `outer` (a name or *.name) covers every name `inner` matches. */
function domainCovers(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  if (!outer.startsWith('*.')) return false;
  const suffix = outer.slice(1); // ".example.com"
  return inner.startsWith('*.') ? inner.slice(1).endsWith(suffix) : inner.endsWith(suffix);
}

/** The part of ceiling rule `r` that entry `e` names, or undefined when they do not overlap. */
function intersect(r: NetRule, e: Entry): NetRule | undefined {
  const note = { ports: r.ports, comment: 'narrowed by an E2B allowOut entry' };
  if (e.kind === 'domain' && r.domain !== undefined) {
    if (domainCovers(r.domain, e.name)) return { domain: e.name, ...note };
    if (domainCovers(e.name, r.domain)) return { domain: r.domain, ...note };
    return undefined;
  }
  if (e.kind === 'cidr' && r.cidr !== undefined) {
    const rc = parseCidr(r.cidr);
    if (cidrWithin(e.cidr, rc)) return { cidr: e.cidr.text, ...note };
    if (cidrWithin(rc, e.cidr)) return { cidr: rc.text, ...note };
  }
  return undefined;
}

/**
 * The network policy for an E2B create request, or undefined when the request asks for nothing
 * beyond the ceiling (the sandbox then gets the ceiling itself, as any Praetor sandbox does).
 */
export function narrowNetwork(ceiling: NetworkPolicy | undefined, req: E2bNetworkRequest): NetworkPolicy | undefined {
  const allowOut = (req.allowOut ?? []).map((s) => parseEntry(s, 'allowOut', true));
  const denyOut = (req.denyOut ?? []).map((s) => parseEntry(s, 'denyOut', false));
  const closeAll = req.allowInternetAccess === false || denyOut.some((d) => d.kind === 'cidr' && d.cidr.prefix === 0);
  if (!closeAll && denyOut.length === 0) return undefined;
  const base = ceiling ?? NetworkPolicySchema.parse({});
  const narrow = (rules: NetRule[]) => closeAll ? rules.flatMap((r) => allowOut.map((e) => intersect(r, e)).filter((x): x is NetRule => x !== undefined)) : rules;
  const denies: NetRule[] = closeAll ? [] : denyOut.map((d) => ({ cidr: (d as { cidr: Cidr }).cidr.text, ports: ['1-65535'], comment: 'E2B denyOut' }));
  const agent = base.phases?.agent;
  return NetworkPolicySchema.parse({
    ...base,
    allow: narrow(base.allow),
    deny: [...base.deny, ...denies],
    // E2B sandboxes start in the agent phase: the setup phase's extra destinations never apply.
    phases: agent ? { agent: { allow: narrow(agent.allow), deny: [...agent.deny, ...denies] } } : undefined,
  });
}
