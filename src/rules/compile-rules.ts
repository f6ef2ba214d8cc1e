import type { EventKind } from '../events/index.ts';
import { compileNode, type Compiled, type CompileEnv, type Matcher } from './compile-condition.ts';
import { ConditionSyntaxError, parseCondition, type Node } from './condition-parser.ts';
import { EVENT_KINDS_FOR_RULES, fieldDef, type Ctx, type FieldDef } from './fields.ts';
import type { Diagnostic, Fragment, LoadedItem, SourcePos } from './loader.ts';
import { kernelKillSet, type KernelKillSet } from './kernel-kill.ts';
import { joinFragments, mergeItems, type RuleDef, type RuleSetDefs } from './ruleset.ts';
import { Maturity, MITRE_TAG, RULE_ACTIONS, type Priority, type RuleAction } from './vocabulary.ts';

// Compiles merged definitions into rules that are ready to run: one closure per condition,
// event kinds indexed, output templates pre-split, actions already gated by maturity. Every
// problem becomes a Diagnostic with file:line; the engine refuses a set that has errors.

export type CompiledWindow = {
  mode: 'count' | 'for' | 'after';
  count: number;
  withinNs: number;
  forNs: number;
  distinct?: FieldDef;
  by: FieldDef[];
  after?: Matcher;
  afterKinds: ReadonlySet<EventKind>;
};

export type CompiledRule = {
  name: string;
  desc: string;
  priority: Priority;
  maturity: Maturity;
  tags: string[];
  /** What the rule file asked for. */
  declaredActions: RuleAction[];
  /** What the engine will emit: alert first, containment only for stable rules. */
  actions: RuleAction[];
  enabled: boolean;
  pos: SourcePos;
  kinds: ReadonlySet<EventKind>;
  match: Matcher;
  window?: CompiledWindow;
  throttleNs: number;
  render: (c: Ctx) => string;
  condition: string;
  /** `kernel_kill: true` and the kernel can check part of the condition: the names it kills. */
  kernelKill?: KernelKillSet;
};

export type CompiledRuleSet = {
  rules: CompiledRule[];
  lists: ReadonlyMap<string, readonly string[]>;
  macros: ReadonlyMap<string, string>;
};

export function compileItems(items: readonly LoadedItem[], diags: Diagnostic[]): CompiledRuleSet {
  const defs = mergeItems(items, diags);
  return compileDefs(defs, diags);
}

function compileDefs(defs: RuleSetDefs, diags: Diagnostic[]): CompiledRuleSet {
  const lists = new Map([...defs.lists].map(([k, v]) => [k, v.items] as const));
  const done = new Map<string, Compiled>();
  const active = new Set<string>();

  const compileText = (frags: readonly Fragment[], fallback: SourcePos, what: string): Compiled | undefined => {
    const joined = joinFragments(frags);
    let ok = true;
    const env: CompileEnv = {
      lists,
      macro: compileMacro,
      report: (p) => {
        ok = false;
        const at = joined.locate(p.pos, joined.text.slice(p.pos, p.pos + 30));
        diags.push({ ...(at.line ? at : fallback), severity: 'error', message: `${what}: ${p.message}`, ...(p.hint ? { hint: p.hint } : {}) });
      },
    };
    try {
      const c = compileNode(parseCondition(joined.text), env);
      return ok ? c : undefined;
    } catch (e) {
      if (!(e instanceof ConditionSyntaxError)) throw e;
      const at = joined.locate(e.pos, e.near);
      diags.push({ ...(at.line ? at : fallback), severity: 'error', message: `${what}: syntax error: ${e.message} near '${e.near}'`,
        hint: 'conditions combine `field op value` with and/or/not and parentheses' });
      return undefined;
    }
  };

  /** A macro compiled once, on first use; a broken one compiles to never-true (its errors are reported). */
  function compileMacro(name: string): Compiled | undefined | 'cycle' {
    const hit = done.get(name);
    if (hit) return hit;
    if (active.has(name)) return 'cycle';
    const m = defs.macros.get(name);
    if (!m) return undefined;
    active.add(name);
    const r = compileText(m.condition, m.pos, `macro '${name}'`) ?? { fn: () => false, tri: new Map() };
    active.delete(name);
    done.set(name, r);
    return r;
  }

  // Macros are compiled even when unused so lint reports their errors too.
  for (const name of defs.macros.keys()) compileMacro(name);

  const macros = new Map([...defs.macros].map(([k, v]) => [k, joinFragments(v.condition).text] as const));
  const quiet: CompileEnv = { lists, macro: compileMacro, report: () => {} };
  const kernelEnv = { lists, macros, compile: (n: Node) => compileNode(n, quiet) };
  const rules: CompiledRule[] = [];
  for (const def of defs.rules.values()) {
    const r = compileRule(def, compileText, diags);
    if (r && def.kernel_kill) withKernelKill(r, kernelEnv, diags);
    if (r) rules.push(r);
  }
  return { rules, lists, macros };
}

type CompileText = (frags: readonly Fragment[], fallback: SourcePos, what: string) => Compiled | undefined;

function compileRule(def: RuleDef, compileText: CompileText, diags: Diagnostic[]): CompiledRule | undefined {
  const what = `rule '${def.name}'`;
  const problem = (message: string, hint?: string, severity: 'error' | 'warning' = 'error'): void => {
    diags.push(hint === undefined ? { ...def.pos, severity, message: `${what}: ${message}` } : { ...def.pos, severity, message: `${what}: ${message}`, hint });
  };
  const tags = def.tags ?? [];
  const mats = tags.filter((t) => t.startsWith('maturity_')).map((t) => t.slice('maturity_'.length));
  const maturity = Maturity.safeParse(mats[0]);
  if (mats.length !== 1 || !maturity.success) {
    problem('needs exactly one maturity tag', `add one of ${Maturity.options.map((m) => `maturity_${m}`).join(', ')} to tags`);
  }
  for (const t of tags) {
    if (/^T\d/.test(t) && !MITRE_TAG.test(t)) problem(`tag '${t}' is not a MITRE ATT&CK technique id`, 'write e.g. T1496 or T1059.004');
  }
  const cond = compileText(def.condition, def.pos, what);
  const render = compileOutput(def.output ?? '', problem);
  const window = def.window ? compileWindow(def, compileText, problem) : undefined;
  if (!cond || !render || !maturity.success || (def.window && !window)) return undefined;

  const kinds = new Set<EventKind>();
  for (const k of EVENT_KINDS_FOR_RULES) if (cond.tri.get(k) !== 0) kinds.add(k);
  if (kinds.size === 0) problem('condition can never be true for any event kind', 'check evt.kind and the fields it uses');
  if (kinds.size === EVENT_KINDS_FOR_RULES.length) problem('condition can match every event kind', 'scope it with evt.kind = … so it is only evaluated where it applies', 'warning');

  const declared = def.actions ?? ['alert'];
  const stable = maturity.data === 'stable';
  if (!stable && declared.some((a) => a !== 'alert')) {
    problem(`is ${maturity.data}: its actions ${declared.join(', ')} are downgraded to alert`, 'promote it to maturity_stable once its false-positive rate is known', 'warning');
  }
  const actions: RuleAction[] = stable
    ? RULE_ACTIONS.filter((a) => a === 'alert' || declared.includes(a))
    : ['alert'];
  return {
    name: def.name, desc: def.desc ?? '', priority: def.priority ?? 'WARNING', maturity: maturity.data, tags,
    declaredActions: declared, actions, enabled: def.enabled ?? true, pos: def.pos, kinds, match: cond.fn,
    ...(window ? { window } : {}), throttleNs: (def.throttle ?? 0) * 1e6, render,
    condition: joinFragments(def.condition).text,
  };
}

/**
 * Kernel kills are for stable rules that kill anyway: they only move the kill earlier. A rule
 * whose condition no longer reduces to a name set (a user extended its allow-list with a
 * condition the kernel cannot check) keeps user-space containment, with a warning.
 */
function withKernelKill(r: CompiledRule, env: Parameters<typeof kernelKillSet>[1], diags: Diagnostic[]): void {
  const warn = (message: string, hint: string, severity: 'error' | 'warning' = 'warning'): void => {
    diags.push({ ...r.pos, severity, message: `rule '${r.name}': kernel_kill ${message}`, hint });
  };
  if (!r.actions.includes('kill') && !r.actions.includes('kill-tree')) {
    if (r.maturity === 'stable') warn('needs a kill or kill-tree action', 'add kill-tree to actions, or drop kernel_kill', 'error');
    else warn(`is ignored: the rule is ${r.maturity}`, 'only stable rules contain');
    return;
  }
  if (r.window) { warn('cannot apply to a windowed rule: one exec does not fire it', 'drop kernel_kill, or the window', 'error'); return; }
  const set = kernelKillSet(r.condition, env);
  if ('why' in set) { warn(`is off: ${set.why}`, 'user space still contains; keep the kernel-checked part to proc.name sets'); return; }
  r.kernelKill = set;
}

function compileWindow(def: RuleDef, compileText: CompileText, problem: (m: string, h?: string) => void): CompiledWindow | undefined {
  const w = def.window;
  if (!w) return undefined;
  const modes = [w.count !== undefined, w.for !== undefined, w.after !== undefined].filter(Boolean).length;
  if (modes !== 1) { problem('window needs exactly one of count, for, after', 'count+within: N events (or distinct values); for: held this long; after+within: follows an earlier match'); return undefined; }
  if ((w.count !== undefined || w.after !== undefined) && w.within === undefined) { problem('window needs `within`', 'e.g. within: 10s'); return undefined; }
  if (w.distinct !== undefined && w.count === undefined) { problem('window.distinct needs count'); return undefined; }
  const field = (n: string): FieldDef | undefined => {
    const f = fieldDef(n);
    if (!f) problem(`window names unknown field '${n}'`, "run 'praetor rules ls --fields'");
    return f;
  };
  const by = (w.by ?? []).map(field);
  const distinct = w.distinct !== undefined ? field(w.distinct) : undefined;
  if (by.some((f) => !f) || (w.distinct !== undefined && !distinct)) return undefined;
  let after: Compiled | undefined;
  if (w.after !== undefined) {
    after = def.after ? compileText([def.after], def.pos, `rule '${def.name}' window.after`) : undefined;
    if (!after) return undefined;
  }
  const afterKinds = new Set<EventKind>();
  if (after) for (const k of EVENT_KINDS_FOR_RULES) if (after.tri.get(k) !== 0) afterKinds.add(k);
  return {
    mode: w.count !== undefined ? 'count' : w.for !== undefined ? 'for' : 'after',
    count: w.count ?? 1, withinNs: (w.within ?? 0) * 1e6, forNs: (w.for ?? 0) * 1e6,
    ...(distinct ? { distinct } : {}), by: by as FieldDef[], ...(after ? { after: after.fn } : {}), afterKinds,
  };
}

/** `text %proc.name more` → a renderer; unknown fields are lint errors. */
function compileOutput(tpl: string, problem: (m: string, h?: string) => void): ((c: Ctx) => string) | undefined {
  const parts: (string | FieldDef)[] = [];
  let last = 0;
  let ok = true;
  for (const m of tpl.matchAll(/%([a-z_]+\.[a-z_0-9]+)/g)) {
    const f = fieldDef(m[1] ?? '');
    if (!f) { problem(`output names unknown field '%${m[1]}'`, "run 'praetor rules ls --fields'"); ok = false; continue; }
    parts.push(tpl.slice(last, m.index), f);
    last = m.index + m[0].length;
  }
  parts.push(tpl.slice(last));
  if (!ok) return undefined;
  return (c) => {
    let s = '';
    for (const p of parts) {
      if (typeof p === 'string') { s += p; continue; }
      const v = p.get(c);
      s += v === undefined ? '<NA>' : Array.isArray(v) ? v.join(',') : String(v);
    }
    return s;
  };
}
