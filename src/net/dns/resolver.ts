// The gateway's resolver. A sandbox's every DNS query (UDP or TCP 53, to any address) lands
// here. Only names the policy allows are forwarded, to the nameservers of praetor's own network
// namespace; answers inside protected ranges are refused (DNS rebinding), and the addresses
// returned are bound to the name for that sandbox, which is what makes them reachable.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { errorMessage } from '../../errors.ts';
import { isIPv4 } from '../../util/index.ts';
import type { Decision, PhaseMatcher } from '../policy-matcher.ts';
import { buildQuery, buildResponse, parseMessage, qtypeName, RCODE, type Message } from './codec.ts';
import type { TunnelGuard } from './tunnel-guard.ts';

export interface DnsContext {
  matcher(): PhaseMatcher;
  guard: TunnelGuard;
  /** Records that `ip` was returned for `name` to this sandbox. */
  bind(ip: string, name: string): void;
  emit(e: { name: string; qtype: string; answers: string[]; decision: 'allow' | 'deny'; rule: string; reason?: string; pid?: number }): void;
  isolated(): boolean;
  /** Owner of the querying UDP socket (by its source port), best effort. */
  pidOf?(port: number): Promise<number | undefined>;
  /** Names the gateway itself serves (the model gateway), answered without asking upstream. */
  local?(name: string): { ip: string; rule: string } | undefined;
}

export interface Upstream { query(name: string, type: number): Promise<Message> }

/** Nameservers from resolv.conf (IPv4 only); under `ip netns exec` that is /etc/netns/<ns>/resolv.conf. */
export function systemNameservers(path = '/etc/resolv.conf'): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((x): x is string => !!x && isIPv4(x));
  } catch { return []; }
}

export function udpUpstream(servers: string[], timeoutMs = 2000): Upstream {
  const ask = async (name: string, type: number): Promise<Message> => {
    let lastErr: unknown = new Error('no nameservers configured');
    for (const server of servers) {
      try { return await queryOnce(server, name, type, timeoutMs); } catch (e) { lastErr = e; }
    }
    throw lastErr;
  };
  return coalesced(ask);
}

/**
 * Concurrent identical (name, type) queries share one in-flight upstream query. Threat: a
 * sandbox (or many) repeating one allowed name in a tight loop would otherwise open a UDP
 * socket and send a packet upstream per query (socket exhaustion, amplification towards the
 * nameserver). Only the in-flight promise is shared; nothing is cached once it settles.
 */
export function coalesced(ask: (name: string, type: number) => Promise<Message>): Upstream {
  const inflight = new Map<string, Promise<Message>>();
  return {
    query(name, type) {
      const key = `${type}|${name.toLowerCase()}`;
      let p = inflight.get(key);
      if (!p) {
        p = ask(name, type).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      return p;
    },
  };
}

function queryOnce(server: string, name: string, type: number, timeoutMs: number): Promise<Message> {
  return new Promise((resolve, reject) => {
    const id = Math.floor(Math.random() * 65536);
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => { sock.close(); reject(new Error(`nameserver ${server} timed out`)); }, timeoutMs);
    sock.on('error', (e) => { clearTimeout(timer); sock.close(); reject(e); });
    sock.on('message', (msg) => {
      let m: Message;
      try { m = parseMessage(msg); } catch { return; }
      // Only the reply to this query (id and question) counts: off-path spoofing defence.
      if (m.id !== id || m.questions[0]?.name.toLowerCase() !== name.toLowerCase()) return;
      clearTimeout(timer); sock.close(); resolve(m);
    });
    sock.send(buildQuery(id, name, type), 53, server);
  });
}

const MAX_TTL = 300;

/** Answers one query from a sandbox; never throws (a failure is SERVFAIL, recorded). */
export async function answerQuery(raw: Buffer, ctx0: DnsContext, upstream: Upstream, srcPort?: number): Promise<Buffer | null> {
  // The querying process is looked up while the answer is being prepared; events wait for it.
  let pid: number | undefined;
  const pidP = srcPort !== undefined && ctx0.pidOf
    ? Promise.race([ctx0.pidOf(srcPort).then((p) => { pid = p; }, () => {}), new Promise<void>((r) => setTimeout(r, 25).unref())])
    : Promise.resolve();
  const ctx: DnsContext = { ...ctx0, emit: (e) => { void pidP.then(() => ctx0.emit({ ...e, ...(pid !== undefined ? { pid } : {}) })); } };
  let q: Message;
  try { q = parseMessage(raw); } catch { return null; }
  const question = q.questions[0];
  if (!question || (q.flags & 0x8000) !== 0) return null;
  const name = question.name.toLowerCase().replace(/\.$/, '');
  const qtype = qtypeName(question.type);
  const refuse = (rule: string, reason: string, rcode: number = RCODE.REFUSED) => {
    ctx.emit({ name, qtype, answers: [], decision: 'deny', rule, reason });
    return buildResponse(q, rcode);
  };
  if (ctx.isolated()) return refuse('isolated', 'sandbox isolated');
  if (q.questions.length !== 1) return refuse('dns-format', 'more than one question', RCODE.FORMERR);
  const tunnel = ctx.guard.check(name);
  if (tunnel) return refuse('dns-tunnel', tunnel);
  const local = ctx.local?.(name);
  if (local) {
    const answers = question.type === 1 ? [local.ip] : [];
    ctx.emit({ name, qtype, answers, decision: 'allow', rule: local.rule });
    return buildResponse(q, RCODE.NOERROR, answers.map((ip) => ({ name: question.name, type: 1, ttl: MAX_TTL, data: ip })));
  }
  let decision: Decision;
  try { decision = ctx.matcher().name(name); } catch (e) { return refuse('error', `policy failed: ${String(e)}`, RCODE.SERVFAIL); }
  if (!decision.allow) return refuse(decision.rule, decision.reason ?? 'name not allowed');
  // Counted only now, per allow rule: see TunnelGuard.flood (wildcard sprays, denied names).
  const flood = ctx.guard.flood(name, decision.rule);
  if (flood) return refuse('dns-tunnel', flood);
  // IPv6 is not carried end to end, and other types (TXT, NULL, MX…) are what tunnels ride on:
  // allowed names get an empty NOERROR answer for them, so clients fall back to A.
  if (question.type !== 1) {
    ctx.emit({ name, qtype, answers: [], decision: 'allow', rule: decision.rule, reason: `${qtype} answered empty (only A is carried)` });
    return buildResponse(q, RCODE.NOERROR);
  }
  let up: Message;
  try { up = await upstream.query(name, 1); } catch (e) {
    ctx.emit({ name, qtype, answers: [], decision: 'allow', rule: decision.rule, reason: `upstream failed: ${errorMessage(e)}` });
    return buildResponse(q, RCODE.SERVFAIL);
  }
  if (up.rcode !== RCODE.NOERROR) {
    ctx.emit({ name, qtype, answers: [], decision: 'allow', rule: decision.rule, reason: `upstream rcode ${up.rcode}` });
    return buildResponse(q, up.rcode);
  }
  const records = up.answers.filter((a) => a.type === 1 && typeof a.data === 'string');
  const ips = records.map((a) => a.data as string);
  const matcher = ctx.matcher();
  for (const ip of ips) {
    const pr = matcher.protectedRange(ip);
    // Rebinding: an allowed name that points at the host, metadata or a private network.
    if (pr) return refuse(`protected:${pr}`, `rebinding: ${name} resolved to ${ip} (${pr})`);
  }
  for (const ip of ips) ctx.bind(ip, name);
  ctx.emit({ name, qtype, answers: ips, decision: 'allow', rule: decision.rule });
  // CNAME chains are flattened: the sandbox sees only the name it asked for.
  return buildResponse(q, RCODE.NOERROR, records.map((a) => ({ name: question.name, type: 1, ttl: Math.min(a.ttl, MAX_TTL), data: a.data as string })));
}
