// What the gateway applies inside a connection it can read (plain HTTP, intercepted TLS): per
// sandbox, the interception CA and upstream trust, the egress tokens, the brokered secrets; per
// connection, the hooks the layer inspector calls (protocol gates, fronting, L7 rules, header
// injection). One place, so plain and decrypted traffic are judged alike.
import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import { parseRequestHead, requestHost, type HttpHead } from './protocols/index.ts';
import type { LayerHooks, LayerVerdict } from './layer-inspector.ts';
import { l7Violation } from './l7-rules.ts';
import type { Decision, PhaseMatcher } from './policy-matcher.ts';
import type { InterceptCa } from './tls-ca.ts';
import { KEY_MATERIAL_TOKENS } from './secret-fingerprints.ts';
import { tokenHash, tokensFor, type EgressToken, type TokenSet } from './token-scanner.ts';
import { normaliseName } from './policy-matcher.ts';
import type { BrokeredSecretConfig } from '../config/index.ts';
import { PraetorError } from '../errors.ts';

/** A brokered secret as the gateway holds it: the real value never leaves this process. */
export interface BrokeredSecret { readonly name: string; readonly domain: string; readonly header: string; readonly value: string; readonly placeholder: string }

export interface SandboxInspection {
  ca: InterceptCa | null;
  /** Trusts the host store + network.upstreamCa: built once per sandbox (parsing ~500 roots per connection would cost milliseconds). */
  upstream: SecureContext | null;
  tokens: readonly EgressToken[];
  secrets: readonly BrokeredSecret[];
  /** Upstream TLS sessions by name:ip, so a repeated connection resumes instead of a full handshake. */
  sessions?: Map<string, Buffer>;
}

/** Resolves each configured secret's value (inline or from praetor's env) and makes its placeholder. */
export function brokerSecrets(cfg: readonly BrokeredSecretConfig[] | undefined, env: NodeJS.ProcessEnv = process.env): BrokeredSecret[] {
  return (cfg ?? []).map((s) => {
    const value = s.value ?? env[s.env!];
    if (value === undefined || value === '') {
      throw new PraetorError('BAD_POLICY', `network.secrets ${s.name}: environment variable ${s.env} is not set in praetor's environment`, { hint: `export ${s.env}=… before starting praetor, or give the secret a value` });
    }
    return { name: s.name, domain: normaliseName(s.domain), header: s.header, value, placeholder: `praetor-placeholder-${s.name.toLowerCase()}-${randomBytes(12).toString('hex')}` };
  });
}

/** Tokens kept from leaving: the caller's (canaries), each placeholder and each real secret, allowed only to its domain. */
export function allTokens(extra: readonly EgressToken[] | undefined, secrets: readonly BrokeredSecret[]): EgressToken[] {
  const named = [
    ...(extra ?? []),
    ...secrets.flatMap((s): EgressToken[] => [
      { name: s.name, value: s.placeholder, kind: 'placeholder', domains: [s.domain] },
      { name: s.name, value: s.value, kind: 'secret', domains: [s.domain] },
    ]),
  ];
  // A sandbox whose flows are scanned anyway also keeps private key material in: no extra cost.
  return named.length > 0 ? withKeyMaterial(named) : [];
}

/** `tokens` plus the PEM private-key marker (secret-fingerprints.ts), once. */
export function withKeyMaterial(tokens: readonly EgressToken[]): EgressToken[] {
  return [...tokens, ...KEY_MATERIAL_TOKENS.filter((k) => !tokens.some((t) => t.value === k.value))];
}

/** Names and hashes of what the sandbox was given, for the record: never values. */
export function describeSecrets(secrets: readonly BrokeredSecret[]): Array<{ name: string; domain: string; sha256: string }> {
  return secrets.map((s) => ({ name: s.name, domain: s.domain, sha256: tokenHash(s.value) }));
}

export interface ConnectionCtx { matcher: () => PhaseMatcher; d: Decision; port: number; names: string[]; insp: SandboxInspection | undefined }

export function connectionHooks(c: ConnectionCtx): { hooks: Omit<LayerHooks, 'onDeny' | 'onLayers'>; tokens: TokenSet | null; judgeServer: (p: string, layers: string[], detail?: string) => LayerVerdict | null } {
  const judgeProtocol = (protocol: string, layers: string[]): LayerVerdict | null => {
    const p = c.matcher().protocol(protocol);
    if (p.allow) return null;
    return { rule: p.rule, reason: `${p.reason ?? `${protocol} denied`} (seen at ${layers.join('>')})`, protocol, layers };
  };
  const judgeRequest = (head: HttpHead, layers: string[]): LayerVerdict | null => {
    const host = requestHost(head);
    let via = c.d;
    if (host) {
      const h = c.matcher().hostName(host, c.port, c.d, c.names);
      if (!h.allow) return { rule: h.rule, reason: h.reason ?? 'host denied', protocol: layers.at(-1) ?? 'http', layers, host };
      via = h;
    }
    if (via.http) {
      const why = l7Violation(via.http, head.method, head.target);
      if (why) return { rule: `${via.rule}.http`, reason: `${why} at ${layers.join('>')}`, protocol: layers.at(-1) ?? 'http', layers, ...(host ? { host } : {}), respond: 403 };
    }
    return null;
  };
  const secrets = c.insp?.secrets ?? [];
  const rewriteHead = (head: HttpHead, raw: Buffer): Buffer => {
    if (secrets.length === 0) return raw;
    const host = normaliseName(requestHost(head) ?? c.d.domain ?? '');
    const mine = secrets.filter((s) => s.domain === host && (c.d.domain === undefined || normaliseName(c.d.domain) === host));
    if (mine.length === 0) return raw;
    const drop = new Set(mine.map((s) => s.header.toLowerCase()));
    const end = raw.indexOf('\r\n\r\n');
    if (end < 0) return raw;
    const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
    const kept = [lines[0]!, ...lines.slice(1).filter((l) => !drop.has(l.slice(0, Math.max(0, l.indexOf(':'))).trim().toLowerCase()))];
    const out = Buffer.from([...kept, ...mine.map((s) => `${s.header}: ${s.value}`)].join('\r\n') + '\r\n\r\n', 'latin1');
    // The rewritten head must still parse as the same request (framing unchanged).
    const check = parseRequestHead(out);
    return check && check !== 'more' ? out : raw;
  };
  return {
    hooks: { judgeProtocol, judgeRequest, rewriteHead },
    tokens: tokensFor(c.insp?.tokens ?? [], c.d.domain ?? c.names[0]),
    judgeServer: judgeProtocol,
  };
}
