// Arena scenarios: one YAML file per scenario under scenarios/, validated by one strict schema.
// A scenario is a scripted "policy": the model outputs (tool calls) it replays step by step,
// the sandbox and egress policy of its episode, and what it is expected to be (malicious or
// benign) with its family and MITRE technique — so a silent typo (`expectd:`) is an error, not a
// scenario that quietly expects nothing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';

export const SCENARIOS_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

export const FAMILIES = [
  'cpu-mining', 'gpu-mining', 'ssh-tunnel', 'reverse-shell', 'tunnel-tool', 'internal-probing',
  'credential-hunting', 'dns-tunnelling', 'on-chain', 'persistence', 'resource-exhaustion',
  'sandbox-escape', 'multi-step', 'benign',
] as const;
export type Family = (typeof FAMILIES)[number];

/** Fake servers whose logs can prove delivery (src/testbed SERVERS keys, plus the arena mirror). */
export const LOGGED_SERVERS = ['web', 'tls', 'stratum', 'ssh', 'jsonrpc', 'dns', 'sink', 'internal', 'metadata'] as const;

const FileRef = z.object({ file: z.string().regex(/^[a-z0-9][a-z0-9._/-]*$/, 'a path below scenarios/, e.g. scripts/miner.py').describe('file under scenarios/ whose text is used') }).strict();
const Text = z.union([z.string(), FileRef]).describe('inline text, or { file: scripts/NAME } read from scenarios/');

export const StepSchema = z.union([
  z.object({
    bash: z.string().min(1).describe('shell command the model asks for'),
    timeout_ms: z.number().int().positive().max(600_000).optional().describe('per-command timeout'),
    say: z.string().optional().describe('assistant text that accompanies the tool call'),
  }).strict(),
  z.object({
    write_file: z.object({ path: z.string().min(1).describe('path in the sandbox'), content: Text }).strict().describe('file the model writes'),
    say: z.string().optional().describe('assistant text'),
  }).strict(),
  z.object({
    read_file: z.object({ path: z.string().min(1).describe('path in the sandbox') }).strict().describe('file the model reads'),
    say: z.string().optional().describe('assistant text'),
  }).strict(),
]).describe('one model output: exactly one tool call');
export type Step = z.infer<typeof StepSchema>;

export const DeniedSchema = z.object({
  server: z.enum(LOGGED_SERVERS).describe('fake server that must receive nothing from this scenario'),
  name_suffix: z.string().optional().describe('dns only: count only queries for names ending in this'),
  methods: z.array(z.string().min(1)).min(1).optional().describe('jsonrpc only: count only calls of these methods (the reads beside them may pass)'),
}).strict().refine((d) => d.methods === undefined || d.server === 'jsonrpc', { message: 'methods applies to the jsonrpc server only', path: ['methods'] }).describe('a destination the scenario must not deliver a byte to');

export const ScenarioSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'kebab-case id, e.g. cpu-mining-plain').describe('stable id (the file name without .yaml)'),
  title: z.string().min(1).describe('one line for the report'),
  family: z.enum(FAMILIES).describe('detection matrix row'),
  mitre: z.string().regex(/^(T\d{4}(\.\d{3})?|none)$/, 'a MITRE ATT&CK technique id such as T1496, or none').describe('MITRE ATT&CK technique'),
  expected: z.enum(['malicious', 'benign']).describe('what a correct guard concludes'),
  suites: z.array(z.enum(['quick', 'full'])).min(1).describe('suites that include it (full always includes every scenario)'),
  requires: z.array(z.enum(['gpu'])).default([]).describe('host capabilities; the scenario is skipped without them'),
  task: z.string().default('Complete the task in /workspace.').describe('the task prompt (first observation)'),
  policy: z.record(z.string(), z.unknown()).optional().describe('Praetor policy document of the episode (default: the arena policy)'),
  sandbox: z.record(z.string(), z.unknown()).default({}).describe('sandbox spec (cpus, memory, pids, …)'),
  setup: z.array(z.string()).default([]).describe('setup-phase commands, run before the first step'),
  steps: z.array(StepSchema).min(1).max(64).describe('the model outputs, replayed in order'),
  reward: z.number().default(1).describe('reward the scripted trainer reports at the end'),
  denied: z.array(DeniedSchema).default([]).describe('destinations that must receive zero bytes'),
  expect_rule: z.string().optional().describe('rule expected to fire (informational)'),
  note: z.string().optional().describe('why the scenario exists, known gaps'),
}).strict().describe('an arena scenario');
export type Scenario = z.infer<typeof ScenarioSchema>;

/** A step whose file references are read, ready for the scripted model. */
export type ResolvedStep =
  | { tool: 'bash'; arguments: { command: string; timeout_ms?: number }; say?: string }
  | { tool: 'write_file'; arguments: { path: string; content: string }; say?: string }
  | { tool: 'read_file'; arguments: { path: string }; say?: string };
export type ResolvedScenario = Omit<Scenario, 'steps'> & { steps: ResolvedStep[]; file: string };

function text(t: z.infer<typeof Text>, dir: string, where: string): string {
  if (typeof t === 'string') return t;
  if (t.file.split('/').includes('..')) throw new PraetorError('BAD_ARGUMENT', `${where}: file ${t.file} leaves scenarios/`, { hint: 'name a file below scenarios/' });
  try { return readFileSync(join(dir, t.file), 'utf8'); } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `${where}: cannot read ${t.file}`, { hint: 'put the script under scenarios/scripts/', cause: e });
  }
}

export function resolveStep(s: Step, dir: string, where: string): ResolvedStep {
  const say = s.say !== undefined ? { say: s.say } : {};
  if ('bash' in s) return { tool: 'bash', arguments: { command: s.bash, ...(s.timeout_ms ? { timeout_ms: s.timeout_ms } : {}) }, ...say };
  if ('write_file' in s) return { tool: 'write_file', arguments: { path: s.write_file.path, content: text(s.write_file.content, dir, where) }, ...say };
  return { tool: 'read_file', arguments: { path: s.read_file.path }, ...say };
}

/** Parses one scenario file; every problem names the file, the key and the fix. */
export function parseScenario(yamlText: string, file: string, dir = SCENARIOS_DIR): ResolvedScenario {
  let raw: unknown;
  try { raw = parse(yamlText); } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`, { hint: 'fix the YAML syntax', cause: e });
  }
  const r = ScenarioSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${file}: ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new PraetorError('BAD_ARGUMENT', `invalid scenario:\n  ${lines.join('\n  ')}`, { hint: 'see scenarios/README.md for the scenario format; unknown keys are errors' });
  }
  const s = r.data;
  const base = file.split('/').pop()!.replace(/\.ya?ml$/, '');
  if (base !== s.id) throw new PraetorError('BAD_ARGUMENT', `${file}: id "${s.id}" differs from the file name "${base}"`, { hint: `rename the file to ${s.id}.yaml or fix id` });
  if (s.expected === 'benign' && s.family !== 'benign') throw new PraetorError('BAD_ARGUMENT', `${file}: a benign scenario has family benign`, { hint: 'set family: benign' });
  return { ...s, file, steps: s.steps.map((st, i) => resolveStep(st, dir, `${file}: steps.${i}`)) };
}

export type Suite = 'quick' | 'full';

/** Every scenario of a suite, sorted by id; `full` is every scenario. */
export function loadSuite(suite: Suite, dir = SCENARIOS_DIR, only?: string[]): ResolvedScenario[] {
  let files: string[];
  try { files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort(); } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `cannot read the scenarios directory ${dir}`, { hint: 'run from a Praetor checkout', cause: e });
  }
  const all = files.map((f) => parseScenario(readFileSync(join(dir, f), 'utf8'), f, dir));
  const ids = new Set<string>();
  for (const s of all) {
    if (ids.has(s.id)) throw new PraetorError('BAD_ARGUMENT', `duplicate scenario id ${s.id}`, { hint: 'ids are unique' });
    ids.add(s.id);
  }
  let picked = suite === 'full' ? all : all.filter((s) => s.suites.includes(suite));
  if (only && only.length > 0) {
    const unknown = only.filter((o) => !ids.has(o));
    if (unknown.length > 0) throw new PraetorError('BAD_ARGUMENT', `unknown scenario ${unknown.join(', ')}`, { hint: `known: ${[...ids].join(', ')}` });
    picked = all.filter((s) => only.includes(s.id));
  }
  return picked;
}
