import { z } from 'zod';
import { Priority, RuleAction } from './vocabulary.ts';

// The shape of a rule file: a YAML sequence of `list`, `macro` and `rule` items, as in Falco.
// Items are strict so a misspelt key (`conditon:`) is an error with a line, not a silent no-op.
// Definitions and overrides share one shape; the merger (ruleset.ts) checks that a first
// definition is complete and that an append/override names something defined before it.

const name = z.string().min(1).max(200);

/** `500ms`, `10s`, `5m`, `1h` → milliseconds. */
export const Duration = z.union([
  z.number().int().nonnegative().describe('milliseconds'),
  z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'a duration like 500ms, 10s, 5m or 1h'),
]).transform((v) => {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  const n = Number(m?.[1]);
  const unit = m?.[2] === 'ms' ? 1 : m?.[2] === 's' ? 1e3 : m?.[2] === 'm' ? 60e3 : 3600e3;
  return Math.round(n * unit);
});

const OverrideMode = z.enum(['append', 'replace']);

export const ListItem = z.object({
  list: name.describe('list name, referenced bare inside (…) in conditions'),
  items: z.array(z.union([z.string(), z.number()]).transform(String)).describe('values, or names of other lists'),
  append: z.boolean().optional().describe('add items to a list defined earlier (Falco style)'),
  override: z.object({ items: OverrideMode }).strict().optional().describe('append to or replace an earlier list'),
}).strict();

export const MacroItem = z.object({
  macro: name.describe('macro name, referenced bare in conditions'),
  condition: z.string().min(1).describe('condition fragment'),
  append: z.boolean().optional().describe('append text to a macro defined earlier, e.g. `or proc.name = x`'),
  override: z.object({ condition: OverrideMode }).strict().optional(),
}).strict();

export const WindowSpec = z.object({
  count: z.number().int().min(1).max(10_000).optional().describe('fire at this many matches (or distinct values) within `within`'),
  distinct: z.string().optional().describe('count distinct values of this field instead of events'),
  within: Duration.optional().describe('sliding window length'),
  for: Duration.optional().describe('fire when the condition has held on every in-scope event for this long'),
  after: z.string().optional().describe('fire only if an earlier event in the same sandbox matched this condition within `within`'),
  by: z.array(z.string()).max(4).optional().describe('fields that key the window besides the sandbox'),
}).strict();
export type WindowSpec = z.infer<typeof WindowSpec>;

export const RuleItem = z.object({
  rule: name.describe('rule name, unique, shown in alerts'),
  desc: z.string().optional().describe('what it detects and how it can be evaded'),
  condition: z.string().min(1).optional(),
  output: z.string().optional().describe('alert text; %field is replaced by its value'),
  priority: Priority.optional(),
  tags: z.array(z.string()).optional().describe('maturity_<level> first, then domain, MITRE tactic and technique ids'),
  actions: z.array(RuleAction).optional().describe('responses when the rule fires; only stable rules get more than alert'),
  enabled: z.boolean().optional(),
  window: WindowSpec.optional(),
  throttle: Duration.optional().describe('suppress repeats of this alert for the same sandbox (and window key) this long'),
  kernel_kill: z.boolean().optional().describe('also SIGKILL in the exec tracepoint, before the first instruction, when the process name is in the set the condition implies (stable rules with kill or kill-tree only)'),
  append: z.boolean().optional().describe('append text to the condition of a rule defined earlier'),
  override: z.object({
    condition: OverrideMode.optional(), output: z.literal('replace').optional(),
    priority: z.literal('replace').optional(), tags: OverrideMode.optional(),
    actions: z.literal('replace').optional(), enabled: z.literal('replace').optional(),
    window: z.literal('replace').optional(), throttle: z.literal('replace').optional(),
    kernel_kill: z.literal('replace').optional(),
  }).strict().optional(),
}).strict();

export type ListItem = z.infer<typeof ListItem>;
export type MacroItem = z.infer<typeof MacroItem>;
export type RuleItem = z.infer<typeof RuleItem>;
