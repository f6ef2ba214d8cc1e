import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { EventSchema, type PraetorEvent } from '../events/index.ts';
import type { CompiledRuleSet } from './compile-rules.ts';
import { createRuleEngine } from './engine.ts';
import { parseYamlSeq, type Diagnostic, type SourcePos } from './loader.ts';
import { Duration } from './rule-file-schema.ts';
import { RuleAction } from './vocabulary.ts';

// Rule tests written as data: events in, the exact set of rules that fire out. Benign
// look-alikes (`ssh -V`, a compiler at 100 % CPU) sit here beside the attacks, so a rule
// change that starts firing on them fails `praetor rules test`.

const EventTemplate = z.object({
  at: Duration.optional().describe('time offset from the start of the test'),
  repeat: z.number().int().min(1).max(10_000).optional().describe('emit this event N times'),
  every: Duration.optional().describe('spacing of repeats (default 10ms)'),
  vary: z.record(z.string(), z.union([z.number(), z.string()])).optional()
    .describe('per repeat i: numbers become base+i, strings have {i} replaced'),
}).catchall(z.unknown());

export const RuleTest = z.object({
  test: z.string().min(1),
  desc: z.string().optional(),
  events: z.array(EventTemplate).min(1),
  expect: z.object({
    fired: z.array(z.string()).describe('exactly the rules that must fire; [] for a benign look-alike'),
    actions: z.record(z.string(), z.array(RuleAction)).optional().describe('rule → exact actions'),
  }).strict(),
}).strict();
export type RuleTest = z.infer<typeof RuleTest>;

export type LoadedTest = { test: RuleTest; pos: SourcePos; events: PraetorEvent[] };
export type RuleTestResult = { name: string; pos: SourcePos; ok: boolean; fired: string[]; problems: string[] };

const BASE_TS = 1_760_000_000_000_000_000;

const DEFAULTS: Record<string, Record<string, unknown>> = {
  'process.exec': { sensor: 'ebpf' },
  'net.connect': { family: 'inet', sensor: 'ebpf' },
  'net.flow': { bytesOut: 0, bytesIn: 0, decision: 'allow', rule: 'test' },
  'net.attempt': { decision: 'deny', rule: 'test' },
  'dns.query': { qtype: 'A', answers: [], decision: 'allow', rule: 'test' },
  'file.open': { write: false },
  'resource.sample': { cpuLimitPct: 100, memBytes: 1e8, memLimitBytes: 1e9, pids: 5, saturatedMs: 0 },
  'gpu.sample': { gpu: 0, utilPct: 0, memBytes: 0, powerW: null, processes: [], sanctioned: true },
  'process.exit': { exitCode: 0, signal: null },
};

function expandEvent(raw: z.infer<typeof EventTemplate>, n: { seq: number; ts: number }): Record<string, unknown>[] {
  const { at, repeat, every, vary, ...ev } = raw;
  const out: Record<string, unknown>[] = [];
  if (at !== undefined) n.ts = BASE_TS + at * 1e6;
  for (let i = 0; i < (repeat ?? 1); i++) {
    const e: Record<string, unknown> = { ...DEFAULTS[String(ev.kind)], ...ev };
    for (const [k, v] of Object.entries(vary ?? {})) e[k] = typeof v === 'number' ? v + i : v.replaceAll('{i}', String(i));
    if (e.kind === 'process.exec' && Array.isArray(e.argv)) {
      const a0 = String(e.argv[0] ?? '');
      e.path ??= a0.startsWith('/') ? a0 : `/usr/bin/${a0}`;
      e.comm ??= String(e.path).slice(String(e.path).lastIndexOf('/') + 1).slice(0, 15);
    }
    e.id ??= `ev-${++n.seq}`;
    e.ts ??= n.ts;
    e.sandboxId ??= 'sb-0000000000a1';
    n.ts += (every ?? 10) * 1e6;
    out.push(e);
  }
  return out;
}

export function parseRuleTests(file: string, text: string, diags: Diagnostic[]): LoadedTest[] {
  const out: LoadedTest[] = [];
  for (const entry of parseYamlSeq(file, text, diags)) {
    const r = RuleTest.safeParse(entry.value);
    if (!r.success) {
      for (const iss of r.error.issues) {
        diags.push({ ...(iss.path[0] !== undefined ? entry.keyPos(String(iss.path[0])) : entry.pos), severity: 'error',
          message: `test: ${iss.path.join('.')}: ${iss.message}`, hint: 'a test has test, events and expect.fired' });
      }
      continue;
    }
    const n = { seq: 0, ts: BASE_TS };
    const events: PraetorEvent[] = [];
    let bad = false;
    for (const [i, raw] of r.data.events.entries()) {
      for (const e of expandEvent(raw, n)) {
        const ev = EventSchema.safeParse(e);
        if (ev.success) { events.push(ev.data); continue; }
        bad = true;
        const iss = ev.error.issues[0];
        diags.push({ ...entry.keyPos('events'), severity: 'error', message: `test '${r.data.test}': event ${i + 1}: ${iss?.path.join('.')}: ${iss?.message}`,
          hint: 'events follow src/events/schema.ts; id, ts and sandboxId are filled in' });
      }
    }
    if (!bad) out.push({ test: r.data, pos: entry.pos, events });
  }
  return out;
}

/** Reads test files (or every *.yaml in a directory). */
export async function loadRuleTests(paths: readonly string[], diags: Diagnostic[]): Promise<LoadedTest[]> {
  const files: string[] = [];
  for (const p of paths) {
    if (p.endsWith('.yaml') || p.endsWith('.yml')) files.push(p);
    else {
      try {
        files.push(...(await readdir(p)).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(p, f)));
      } catch (e) {
        diags.push({ file: p, line: 0, col: 0, severity: 'error', message: `cannot read tests: ${(e as Error).message}` });
      }
    }
  }
  const out: LoadedTest[] = [];
  for (const f of files) {
    try {
      out.push(...parseRuleTests(f, await readFile(f, 'utf8'), diags));
    } catch (e) {
      diags.push({ file: f, line: 0, col: 0, severity: 'error', message: `cannot read tests: ${(e as Error).message}` });
    }
  }
  return out;
}

export function runRuleTests(ruleset: CompiledRuleSet, tests: readonly LoadedTest[]): RuleTestResult[] {
  const known = new Set(ruleset.rules.map((r) => r.name));
  return tests.map(({ test, pos, events }) => {
    const engine = createRuleEngine({ rules: ruleset, mode: 'enforce', now: () => BASE_TS });
    const actions = new Map<string, string[]>();
    for (const e of events) for (const a of engine.process(e)) actions.set(a.rule, a.actions);
    const fired = [...actions.keys()].sort();
    const want = [...new Set(test.expect.fired)].sort();
    const problems: string[] = [];
    for (const w of want) if (!known.has(w)) problems.push(`expects unknown rule '${w}'`);
    const missing = want.filter((w) => !actions.has(w));
    const extra = fired.filter((f) => !want.includes(f));
    if (missing.length) problems.push(`did not fire: ${missing.join('; ')}`);
    if (extra.length) problems.push(`fired unexpectedly: ${extra.join('; ')}`);
    for (const [rule, acts] of Object.entries(test.expect.actions ?? {})) {
      const got = actions.get(rule);
      if (got && got.join(',') !== acts.join(',')) problems.push(`'${rule}' actions [${got.join(', ')}], expected [${acts.join(', ')}]`);
      if (!got) problems.push(`'${rule}' has expected actions but did not fire`);
    }
    return { name: test.test, pos, ok: problems.length === 0, fired, problems };
  });
}
