// The policy file: one YAML document validated by one zod schema. Unknown keys are errors
// (a typo such as `alow:` must not silently turn into "no rules"), and every problem names the
// key, its file:line and the fix. Other sections (limits, rules, …) are added to SECTIONS.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Node } from 'yaml';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';
import { parseCidr, parseSize } from '../util/index.ts';

const PortRange = z.string().regex(/^\d{1,5}-\d{1,5}$/, 'a port range is written "lo-hi", e.g. "8000-8100"')
  .refine((s) => { const [a, b] = s.split('-').map(Number); return a! >= 1 && b! <= 65535 && a! <= b!; },
    'a port range needs 1 <= lo <= hi <= 65535');
const Port = z.union([z.number().int().min(1).max(65535), PortRange])
  .describe('a TCP port (1-65535) or a range "lo-hi"');

// A domain is a DNS name, or `*.` + a name meaning any depth below it but not the apex. IP
// literals belong in `cidr:` so that "reachable by IP" is always a deliberate, visible choice.
const DOMAIN = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$/;
const Domain = z.string().transform((s) => s.toLowerCase()).superRefine((s, ctx) => {
  if (/^[\d.]+$/.test(s) || s.includes(':')) ctx.addIssue({ code: 'custom', message: `"${s}" is an IP literal; write it as cidr: "${s}/32"` });
  else if (!DOMAIN.test(s) || s.length > 253) ctx.addIssue({ code: 'custom', message: `"${s}" is not a domain; write a name like web.example.test or *.example.test` });
  else if (s.startsWith('*.') && !s.slice(2).includes('.')) ctx.addIssue({ code: 'custom', message: `"${s}" would allow a whole top-level domain; name a registrable domain below it` });
}).describe('DNS name, or *.name for any name below it (not the apex)');
const CidrText = z.string().superRefine((s, ctx) => {
  try { parseCidr(s); } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); }
}).describe('IPv4 CIDR such as 203.0.113.0/24 (a bare address means /32)');

export const NetRuleSchema = z.object({
  domain: Domain.optional(),
  cidr: CidrText.optional(),
  ports: z.array(Port).min(1, 'list at least one port, e.g. ports: [443]').describe('TCP ports this rule covers'),
  comment: z.string().optional().describe('free text, shown in events'),
  inspect: z.enum(['tls', 'passthrough']).optional()
    .describe('TLS to this destination: tls (default for domain rules) terminates it with the Praetor CA and inspects the decrypted stream; passthrough forwards it unread (a documented risk: a miner or exfiltration inside it is not seen). CIDR rules default to passthrough'),
  http: z.object({
    methods: z.array(z.string().regex(/^[A-Z]+$/, 'an HTTP method in capitals, e.g. GET')).min(1).optional()
      .describe('HTTP methods allowed to this destination (e.g. [GET]); others are denied'),
    paths: z.array(z.string().regex(/^\//, 'a path glob starts with /, e.g. /v1/*')).min(1).optional()
      .describe('path globs allowed (* within a segment, ** across segments; the query string is ignored)'),
  }).strict().optional().describe('L7 rules for HTTP to this destination (plain, or inside intercepted TLS)'),
}).strict().superRefine((r, ctx) => {
  if ((r.domain === undefined) === (r.cidr === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'a rule needs exactly one of domain or cidr' });
  }
}).describe('one destination: a domain or a CIDR, and ports');

// A brokered credential: the sandbox sees only a placeholder in the env var `name`; the gateway
// adds the real header to requests for `domain`, and blocks the placeholder anywhere else.
export const SecretSchema = z.object({
  name: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'a secret name is an environment variable name, e.g. GITHUB_TOKEN').describe('the env var that holds the placeholder in the sandbox'),
  domain: Domain.describe('the only destination that receives the real value'),
  header: z.string().regex(/^[A-Za-z0-9-]+$/, 'an HTTP header name, e.g. Authorization').describe('the header the gateway sets on requests to domain'),
  value: z.string().min(1).optional().describe('the header value (kept outside the sandbox)'),
  env: z.string().min(1).optional().describe("read the header value from this variable of praetor's own environment"),
}).strict().superRefine((r, ctx) => {
  if ((r.value === undefined) === (r.env === undefined)) ctx.addIssue({ code: 'custom', message: 'a secret needs exactly one of value or env' });
}).describe('a credential brokered by the gateway');
export type BrokeredSecretConfig = z.infer<typeof SecretSchema>;
export type NetRule = z.infer<typeof NetRuleSchema>;

const RuleList = z.array(NetRuleSchema).default([]);
export const PROTOCOL_GATES = ['ssh', 'stratum', 'tunnel', 'jsonrpc-tx'] as const;
export type ProtocolGate = (typeof PROTOCOL_GATES)[number];

const PhaseSchema = z.object({
  allow: RuleList.describe('extra destinations open during this phase'),
  deny: RuleList.describe('extra denials during this phase; deny wins'),
}).strict();

export const NetworkPolicySchema = z.object({
  allow: RuleList.describe('destinations the sandbox may reach; everything else is denied'),
  deny: RuleList.describe('destinations never reached; deny wins over allow'),
  protocols: z.object({
    allow: z.array(z.enum(PROTOCOL_GATES)).default([])
      .describe('risky protocols permitted on allowed destinations (ssh, stratum, tunnel, jsonrpc-tx)'),
    unknown: z.enum(['allow', 'deny']).default('allow')
      .describe('what to do with protocols the gateway does not recognise, on allowed destinations'),
  }).strict().default({ allow: [], unknown: 'allow' }),
  phases: z.object({
    setup: PhaseSchema.optional().describe('a more open phase the sandbox starts in (package installs)'),
    agent: PhaseSchema.optional().describe('rules added while the agent runs'),
  }).strict().optional().describe('optional setup phase, then the agent phase'),
  upstreamCa: z.union([z.string().min(1), z.array(z.string().min(1))]).optional()
    .describe('PEM file(s) of extra CAs trusted for upstream certificates when TLS is intercepted (besides the host trust store)'),
  secrets: z.array(SecretSchema).optional().describe('credentials the gateway injects; the sandbox sees placeholders only'),
  modelGateway: z.boolean().default(false)
    .describe('the sandbox reaches its model only through the model gateway of `praetor serve`, at http://model.praetor.internal/v1 (OPENAI_BASE_URL is set); the upstream model host is denied to it directly'),
}).strict().describe('egress policy: default deny');
export type NetworkPolicy = z.infer<typeof NetworkPolicySchema>;

// Sizes as in the CLI (`64M`, `1g`, `512MiB`) or a byte count.
const Size = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try { return parseSize(v); } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); return z.NEVER; }
}).describe('a size: bytes, or a number with a unit such as 64M, 1g, 512MiB');

export const SandboxPolicySchema = z.object({
  runtime: z.enum(['bwrap', 'crun', 'runsc']).optional().describe('isolation runtime (default bwrap; runsc = gVisor)'),
  image: z.string().min(1).optional().describe('image from the cache, or host (default host)'),
  cpus: z.number().positive().optional().describe('CPU quota in CPUs, fractions allowed (default 1)'),
  memory: Size.optional().describe('memory limit, no swap (default 1g)'),
  pids: z.number().int().min(8).optional().describe('process limit (default 512)'),
  disk: Size.optional().describe('size of the writable layer (default 1g)'),
  gpus: z.union([z.number().int().min(0), z.literal('all')]).optional().describe('GPUs granted (default 0)'),
  timeout: z.number().positive().optional().describe('seconds before a command is killed (exit 124)'),
}).strict().describe('sandbox defaults; command-line flags and API requests override them');

export const RulesPolicySchema = z.object({
  files: z.array(z.string().min(1)).default([]).describe('your rule files (tuning), loaded after the shipped pack'),
  mode: z.enum(['enforce', 'detect']).default('enforce').describe('enforce: stable rules contain; detect: every rule only alerts'),
}).strict().describe('detection rules and what they may do');

/** Top-level sections. Add a section with one line here; the object stays strict. */
export const SECTIONS = {
  version: z.literal(1).optional().describe('policy format version'),
  network: NetworkPolicySchema.optional().describe('egress: what the sandbox may reach'),
  sandbox: SandboxPolicySchema.optional().describe('isolation and resource limits'),
  rules: RulesPolicySchema.optional().describe('detection rules and containment mode'),
  canaries: z.boolean().optional().describe('plant canary credentials in each sandbox (a fake SSH key, AWS credentials, .netrc, a secret variable): any read alerts, any appearance in egress is contained (default true; turn off for tasks that use cloud CLIs without their own credentials)'),
};
export const PolicySchema = z.object(SECTIONS).strict().describe('a Praetor policy file');
export type Policy = z.infer<typeof PolicySchema>;

export const EMPTY_NETWORK_POLICY: NetworkPolicy = NetworkPolicySchema.parse({});

/** True when no phase allows any destination and the model is not reached through the gateway: the sandbox then gets only `lo`. */
export function policyAllowsNothing(p: NetworkPolicy | Policy | undefined): boolean {
  const n: NetworkPolicy | undefined = p && 'allow' in p ? p as NetworkPolicy : (p as Policy | undefined)?.network;
  if (!n) return true;
  return !n.modelGateway && n.allow.length === 0 && (n.phases?.setup?.allow.length ?? 0) === 0 && (n.phases?.agent?.allow.length ?? 0) === 0;
}

export interface PolicyProblem { file: string; line: number; col: number; path: string; message: string; fix: string }

/** Every problem in a policy text, with positions; empty when it is valid. */
export function checkPolicyText(text: string, file = '<policy>'): { policy?: Policy; problems: PolicyProblem[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined) => { const p = lc.linePos(offset ?? 0); return { line: p.line, col: p.col }; };
  const problems: PolicyProblem[] = doc.errors.map((e) => ({
    file, ...at(e.pos[0]), path: '', message: e.message.split('\n')[0]!,
    fix: e.code === 'DUPLICATE_KEY' ? 'remove the repeated key' : 'fix the YAML syntax at this position',
  }));
  if (problems.length > 0) return { problems };
  const parsed = PolicySchema.safeParse(doc.toJS() ?? {});
  if (parsed.success) return { policy: parsed.data, problems: [] };
  for (const issue of parsed.error.issues) {
    const path = issue.path.map((k) => (typeof k === 'number' ? k : String(k)));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const node = keyNode(doc.getIn(path, true) as Node | undefined, key);
        const where = [...path, key].join('.');
        problems.push({ file, ...at(node?.range?.[0]), path: where, message: `unknown key "${key}" at ${where}`,
          fix: `remove "${key}" or rename it to one of: ${knownKeys(path).join(', ')}` });
      }
      continue;
    }
    const node = nearestNode(doc.contents as Node | null, path);
    const where = path.join('.') || '(top level)';
    const semi = issue.message.indexOf('; ');
    const text = semi > 0 ? issue.message.slice(0, semi) : issue.message;
    problems.push({ file, ...at(node?.range?.[0]), path: where, message: `${where}: ${text}`, fix: fixFor(where, issue.message) });
  }
  return { problems };
}

/** Reads and validates a policy file; throws BAD_POLICY listing every problem. */
export function parsePolicyFile(path: string): Policy {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) {
    throw new PraetorError('BAD_POLICY', `cannot read policy file ${path}`, { hint: 'pass an existing YAML file to --policy', cause: e });
  }
  return parsePolicyText(text, path);
}

export function parsePolicyText(text: string, file = '<policy>'): Policy {
  const { policy, problems } = checkPolicyText(text, file);
  if (policy && problems.length === 0) return policy;
  const lines = problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`);
  throw new PraetorError('BAD_POLICY', `invalid policy:\n  ${lines.join('\n  ')}`, {
    hint: problems.map((p) => p.fix).join('; '),
  });
}

/** The node at path, or its nearest existing ancestor (a missing key points at its parent). */
function nearestNode(root: Node | null, path: (string | number)[]): Node | undefined {
  let node: Node | undefined = root ?? undefined;
  for (const k of path) {
    const next = (node as { get?: (k: unknown, keep: boolean) => unknown } | undefined)?.get?.(k, true) as Node | undefined;
    if (next === undefined || next === null || typeof next !== 'object') return node;
    node = next;
  }
  return node;
}

function keyNode(map: Node | undefined, key: string): Node | undefined {
  if (!isMap(map)) return map;
  for (const item of map.items) if (isPair(item) && isScalar(item.key) && String(item.key.value) === key) return item.key as Node;
  return map;
}

/** The keys the schema accepts at path, read from the schema itself so they never go stale. */
function knownKeys(path: (string | number)[]): string[] {
  let node: unknown = PolicySchema;
  const unwrap = (n: unknown): unknown => {
    for (let i = 0; i < 8; i++) {
      const def = (n as { def?: { innerType?: unknown; in?: unknown; element?: unknown } }).def;
      const next = def?.innerType ?? def?.in;
      if (!next) break;
      n = next;
    }
    return n;
  };
  for (const k of path) {
    node = unwrap(node);
    if (typeof k === 'number') node = (node as { def?: { element?: unknown } }).def?.element;
    else node = (node as { shape?: Record<string, unknown> }).shape?.[k];
    if (!node) return ['(see docs/policy-reference.md)'];
  }
  const shape = (unwrap(node) as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : ['(see docs/policy-reference.md)'];
}

function fixFor(where: string, message: string): string {
  if (/exactly one of domain or cidr/.test(message)) return 'give the rule either domain: NAME or cidr: A.B.C.D/N, not both or neither';
  const semi = message.indexOf('; ');
  if (semi > 0) return message.slice(semi + 2);
  if (/ports/.test(where)) return 'write ports as a list of numbers or "lo-hi" ranges, e.g. ports: [80, 443]';
  if (/protocols\.allow/.test(where)) return `list only: ${PROTOCOL_GATES.join(', ')}`;
  if (/unknown$/.test(where)) return 'write unknown: allow or unknown: deny';
  if (/expected array/.test(message)) return `make ${where} a list, e.g. ${where.split('.').pop()}: []`;
  if (/is not a size/.test(message)) return `write ${where} as a size such as 64M, 1g or 512MiB`;
  return `see ${where.split('.')[0]} in docs/policy-reference.md`;
}
