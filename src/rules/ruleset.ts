import type { Diagnostic, Fragment, LoadedItem, SourcePos } from './loader.ts';
import type { RuleItem } from './rule-file-schema.ts';

// Merges items from several files, in order, into one set of definitions. This is where
// tuning happens: a user file appends to a shipped list or macro (`append: true` or
// `override: { items: append }`) or disables a rule, and never needs to edit the shipped file.

export type ListDef = { name: string; items: string[]; pos: SourcePos };
export type MacroDef = { name: string; condition: Fragment[]; pos: SourcePos };
export type RuleDef = Omit<RuleItem, 'condition' | 'append' | 'override' | 'rule'> & {
  name: string; condition: Fragment[]; after?: Fragment; pos: SourcePos;
};
export type RuleSetDefs = { lists: Map<string, ListDef>; macros: Map<string, MacroDef>; rules: Map<string, RuleDef> };

const REQUIRED = ['desc', 'condition', 'output', 'priority', 'tags'] as const;

export function mergeItems(items: readonly LoadedItem[], diags: Diagnostic[]): RuleSetDefs {
  const lists = new Map<string, ListDef>();
  const macros = new Map<string, MacroDef>();
  const rules = new Map<string, RuleDef>();
  const err = (pos: SourcePos, message: string, hint?: string): void => {
    diags.push(hint === undefined ? { ...pos, severity: 'error', message } : { ...pos, severity: 'error', message, hint });
  };

  for (const it of items) {
    if (it.type === 'list') {
      const { list: name, items: values, append, override } = it.item;
      const mode = append ? 'append' : override?.items;
      const prev = lists.get(name);
      if (mode) {
        if (!prev) { err(it.pos, `list '${name}' is appended to before it is defined`, 'load the file that defines it first, or drop `append`'); continue; }
        prev.items = mode === 'append' ? [...prev.items, ...values] : [...values];
      } else {
        if (prev) err(it.pos, `list '${name}' is defined twice (first at ${prev.pos.file}:${prev.pos.line})`, 'use `append: true` to extend a list');
        lists.set(name, { name, items: [...values], pos: it.pos });
      }
    } else if (it.type === 'macro') {
      const { macro: name, append, override } = it.item;
      const mode = append ? 'append' : override?.condition;
      const prev = macros.get(name);
      if (mode) {
        if (!prev) { err(it.pos, `macro '${name}' is appended to before it is defined`, 'load the file that defines it first'); continue; }
        prev.condition = mode === 'append' ? [...prev.condition, it.condition] : [it.condition];
      } else {
        if (prev) err(it.pos, `macro '${name}' is defined twice (first at ${prev.pos.file}:${prev.pos.line})`, 'use `append: true` to extend a macro');
        macros.set(name, { name, condition: [it.condition], pos: it.pos });
      }
    } else {
      mergeRule(it, rules, err);
    }
  }
  return { lists, macros, rules };
}

function mergeRule(it: Extract<LoadedItem, { type: 'rule' }>, rules: Map<string, RuleDef>,
  err: (pos: SourcePos, message: string, hint?: string) => void): void {
  const { rule: name, append, override, condition: _c, ...rest } = it.item;
  const prev = rules.get(name);
  // Against an existing rule, anything short of a full redefinition (no condition) is read as
  // an override, so `priority: DEBUG` without `override:` gets a precise error below.
  const isOverride = append === true || override !== undefined || (prev !== undefined && !it.condition);
  if (!isOverride) {
    if (prev) { err(it.pos, `rule '${name}' is defined twice (first at ${prev.pos.file}:${prev.pos.line})`, 'rename it, or use `override:` to change the earlier one'); return; }
    const missing = REQUIRED.filter((k) => (k === 'condition' ? !it.condition : rest[k] === undefined));
    if (missing.length) { err(it.pos, `rule '${name}' lacks ${missing.join(', ')}`, 'a new rule needs desc, condition, output, priority and tags'); return; }
    if (it.item.window?.after && !it.after) { err(it.pos, `rule '${name}': window.after must be a condition string`); return; }
    rules.set(name, { ...rest, name, condition: it.condition ? [it.condition] : [], ...(it.after ? { after: it.after } : {}), pos: it.pos });
    return;
  }
  if (!prev) { err(it.pos, `rule '${name}' is overridden before it is defined`, 'check the name, or load the file that defines it first'); return; }
  const cond = append ? 'append' : override?.condition;
  if (cond && it.condition) prev.condition = cond === 'append' ? [...prev.condition, it.condition] : [it.condition];
  if (rest.enabled !== undefined) prev.enabled = rest.enabled;
  if (override?.tags && rest.tags) prev.tags = override.tags === 'append' ? [...(prev.tags ?? []), ...rest.tags] : rest.tags;
  for (const k of ['output', 'priority', 'actions', 'window', 'throttle', 'kernel_kill'] as const) {
    if (override?.[k] === 'replace' && rest[k] !== undefined) (prev as Record<string, unknown>)[k] = rest[k];
  }
  if (override?.window === 'replace' && it.after) prev.after = it.after;
  const ignored = Object.keys(rest).filter((k) => k !== 'enabled' && !(override && k in override));
  if (ignored.length) err(it.pos, `rule '${name}' override sets ${ignored.join(', ')} without saying how`, `add \`override: { ${ignored[0]}: replace }\``);
}

/** Joins appended condition fragments into one text, keeping offsets mappable to files. */
export function joinFragments(frags: readonly Fragment[]): { text: string; locate: (offset: number, near: string) => SourcePos } {
  let text = '';
  const starts: number[] = [];
  for (const f of frags) { if (text) text += ' '; starts.push(text.length); text += f.text; }
  return {
    text,
    locate: (offset, near) => {
      let i = starts.length - 1;
      while (i > 0 && (starts[i] ?? 0) > offset) i--;
      const f = frags[i];
      return f ? f.locate(offset - (starts[i] ?? 0), near) : { file: '?', line: 0, col: 0 };
    },
  };
}
