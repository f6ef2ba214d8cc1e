// What of a credential file an agent read must never leave the sandbox, as egress tokens.
// Threat (issue 13, "data flow"): the agent reads a private key or a cloud credential, not a
// planted canary, and posts it to an API the policy allows. Name-based rules can only alert on
// the read (honest tools read keys too); the gateway's egress-token scan (token-scanner.ts) can
// keep the bytes themselves from leaving, in plain, hex or base64 form, inside TLS, WebSocket
// frames or chunked bodies. This file turns a file's content into those tokens.
//
// Only values with a fixed wire form and enough entropy to never match by chance become tokens
// (at least MIN_SECRET characters): key bodies, secret keys, passwords in URLs. A `.env` or a
// shell history is not parsed: which of its values are secrets, and where each may honestly go,
// cannot be told from the file (use network.secrets for those: the agent then never sees them).
import { createHash } from 'node:crypto';
import type { EgressToken } from './token-scanner.ts';

const MIN_SECRET = 16;

/**
 * Private key material in any PEM form goes nowhere, whoever read it and whatever file it came
 * from: its marker is a token of every sandbox that has egress tokens. It needs no read to have
 * been seen first, so it holds even when the sensor's report of the read comes after the post.
 */
export const KEY_MATERIAL_TOKENS: readonly EgressToken[] = [{ name: 'pem-private-key', value: 'PRIVATE KEY-----', kind: 'secret' }];

interface Found { what: string; value: string; domains?: string[] }

/** Each extractor reads one credential format; rules as data, one line of why each. */
const EXTRACTORS: ReadonlyArray<{ name: string; find: (text: string) => Found[] }> = [
  {
    // A key's body lines: each is contiguous on the wire whatever the agent does to the header
    // and line breaks (strip them, JSON-escape them, base64 the whole file).
    name: 'pem-private-key',
    find: (t) => [...t.replace(/\\n/g, '\n').matchAll(/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----([\s\S]*?)-----END/g)].flatMap((m) => {
      const lines = m[1]!.split(/\s+/).filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l));
      const pick = [...new Set([lines[0], lines[Math.floor(lines.length / 2)], lines.at(-2)])].filter((l): l is string => !!l);
      return pick.map((value) => ({ what: 'private key', value }));
    }),
  },
  {
    // AWS signs requests with the secret and never sends it (SigV4); a session token does go,
    // as a header, to AWS endpoints only.
    name: 'aws',
    find: (t) => [
      ...[...t.matchAll(/^\s*aws_secret_access_key\s*[=:]\s*(\S+)/gim)].map((m) => ({ what: 'AWS secret access key', value: m[1]! })),
      ...[...t.matchAll(/^\s*aws_session_token\s*[=:]\s*(\S+)/gim)].map((m) => ({ what: 'AWS session token', value: m[1]!, domains: ['*.amazonaws.com'] })),
    ],
  },
  {
    // .netrc: a password goes, in a login, to its own machine only.
    name: 'netrc',
    find: (t) => [...t.matchAll(/machine\s+(\S+)(?:(?!machine\s)[\s\S])*?password\s+(\S+)/g)].map((m) => ({ what: `password for ${m[1]}`, value: m[2]!, domains: [m[1]!] })),
  },
  {
    // git's credential store: https://user:token@host, the token for that host only.
    name: 'git-credentials',
    find: (t) => [...t.matchAll(/^[a-z][a-z0-9+.-]*:\/\/[^:@\s/]*:([^@\s]+)@([^/:\s]+)/gim)].map((m) => ({ what: `token for ${m[2]}`, value: decodeURIComponent(m[1]!), domains: [m[2]!] })),
  },
  {
    // kubeconfig: a client key goes nowhere (TLS proves it, never sends it); a bearer token
    // goes to the cluster's own API server.
    name: 'kubeconfig',
    find: (t) => {
      const servers = [...t.matchAll(/server:\s*https?:\/\/([^/:\s]+)/g)].map((m) => m[1]!);
      return [
        ...[...t.matchAll(/client-key-data:\s*(\S+)/g)].map((m) => ({ what: 'Kubernetes client key', value: m[1]!.slice(0, 64) })),
        ...[...t.matchAll(/^\s*token:\s*(\S+)/gm)].map((m) => ({ what: 'Kubernetes token', value: m[1]!, domains: servers })),
      ];
    },
  },
  {
    // Password hashes (/etc/shadow) are offline-cracking material: nobody honest sends them.
    name: 'shadow',
    find: (t) => [...t.matchAll(/^[^:\s]+:(\$[0-9a-z]+\$[^:\s]{20,}):/gm)].map((m) => ({ what: 'password hash', value: m[1]! })),
  },
  {
    // Wallet keystores (Ethereum's JSON keystore): the encrypted key is still the wallet.
    name: 'keystore',
    find: (t) => [...t.matchAll(/"ciphertext"\s*:\s*"([0-9a-f]{32,})"/g)].map((m) => ({ what: 'wallet ciphertext', value: m[1]!.slice(0, 64) })),
  },
];

export interface SecretFingerprints {
  tokens: EgressToken[];
  /** For the record: what each token is and its hash, never the value. */
  found: Array<{ name: string; what: string; sha256: string; domains?: string[] }>;
}

/** The egress tokens for a credential file's content; `label` names them (e.g. the file's base name). */
export function secretFingerprints(label: string, content: string): SecretFingerprints {
  const out: SecretFingerprints = { tokens: [], found: [] };
  const seen = new Set<string>();
  for (const x of EXTRACTORS) {
    for (const f of x.find(content)) {
      if (f.value.length < MIN_SECRET || seen.has(f.value)) continue;
      seen.add(f.value);
      const name = `read:${label}#${out.tokens.length + 1}`;
      out.tokens.push({ name, value: f.value, kind: 'secret', ...(f.domains?.length ? { domains: f.domains } : {}) });
      out.found.push({ name, what: f.what, sha256: createHash('sha256').update(f.value).digest('hex'), ...(f.domains?.length ? { domains: f.domains } : {}) });
    }
  }
  return out;
}
