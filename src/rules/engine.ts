import type { EventBus, EventKind, EventOf, PraetorEvent } from '../events/index.ts';
import { errorMessage } from '../errors.ts';
import { newId, nowNs } from '../util/index.ts';
import type { CompiledRule, CompiledRuleSet } from './compile-rules.ts';
import type { Ctx } from './fields.ts';
import type { RuleAction } from './vocabulary.ts';
import { BoundedMap, createWindowState, windowKey, type WindowState } from './window.ts';

// The rule engine: events in, alerts out. It only decides; src/contain acts on `actions`.
// Synchronous and allocation-light on purpose: containment latency starts at the event's ts.
// Fail closed: if a rule throws while enforcing, the sandbox is contained and the alert says
// which rule failed and why, because a rule that could not run cannot vouch for the sandbox.

export type AlertEvent = EventOf<'alert'> & { actions: RuleAction[] };
export type AlertInput = Omit<AlertEvent, 'id'>;

export type RuleEngineOptions = {
  rules: CompiledRuleSet;
  /** Called for every alert, with the event that triggered it (for latency and evidence). */
  onAlert?: (alert: AlertEvent, trigger: PraetorEvent) => void;
  /** enforce (default): stable rules contain. detect: every alert carries only `alert`. */
  mode?: 'enforce' | 'detect';
  /** Bound on window/throttle keys per rule. */
  maxKeysPerRule?: number;
  now?: () => number;
};

export type RuleEngine = {
  /** Evaluates one event; returns (and reports via onAlert) the alerts it raised. */
  process(e: PraetorEvent): AlertEvent[];
  /** Subscribes to a bus: each alert is published on it (the bus stamps id) and reported. */
  attach(bus: EventBus): () => void;
  readonly rules: readonly CompiledRule[];
  stats(): { events: number; alerts: number; ruleFailures: number; windowKeys: number };
};

export const RULE_FAILURE = 'Rule failed while enforcing (fail closed)';

type Slot = { rule: CompiledRule; win?: WindowState; throttle?: BoundedMap<number> };

export function createRuleEngine(opts: RuleEngineOptions): RuleEngine {
  const mode = opts.mode ?? 'enforce';
  const maxKeys = opts.maxKeysPerRule ?? 10_000;
  const now = opts.now ?? nowNs;
  const active = opts.rules.rules.filter((r) => r.enabled);
  const byKind = new Map<EventKind, Slot[]>();
  const afterByKind = new Map<EventKind, Slot[]>();
  const all: Slot[] = [];
  for (const rule of active) {
    const slot: Slot = { rule };
    all.push(slot);
    if (rule.window) slot.win = createWindowState(rule.window, maxKeys);
    if (rule.throttleNs > 0) slot.throttle = new BoundedMap<number>(maxKeys);
    for (const k of rule.kinds) push(byKind, k, slot);
    for (const k of rule.window?.afterKinds ?? []) push(afterByKind, k, slot);
  }
  const counters = { events: 0, alerts: 0, ruleFailures: 0 };
  const idPrefix = newId('al', 4);
  let alertSeq = 0;

  function evaluate(e: PraetorEvent): AlertInput[] {
    counters.events++;
    const slots = byKind.get(e.kind);
    const afters = afterByKind.get(e.kind);
    if (!slots && !afters) return [];
    const c: Ctx = { e };
    const out: AlertInput[] = [];
    let remember: Slot[] | undefined;
    if (afters) {
      for (const s of afters) {
        try {
          if (s.rule.window?.after?.(c)) (remember ??= []).push(s);
        } catch (err) { out.push(failure(s.rule, e, err)); }
      }
    }
    if (slots) matchSlots(slots, e, c, out);
    // Remembered only after this event's own rules ran: `after` asks for an *earlier* event, so
    // an event that satisfies both `after` and the condition pairs with the one before it (if
    // any), never with itself — and then becomes the earlier event for the ones that follow.
    if (remember) for (const s of remember) s.win?.remember(c);
    return out;
  }

  function matchSlots(slots: readonly Slot[], e: PraetorEvent, c: Ctx, out: AlertInput[]): void {
    for (const s of slots) {
      try {
        const hit = s.rule.match(c);
        let evidence: string[] | undefined;
        if (s.win) {
          const w = s.win.observe(c, hit);
          if (w) evidence = w.evidence;
        } else if (hit) evidence = [e.id];
        if (!evidence) continue;
        if (s.throttle) {
          const key = windowKey(c, s.rule.window?.by);
          const last = s.throttle.get(key);
          if (last !== undefined && e.ts - last < s.rule.throttleNs) continue;
          s.throttle.set(key, e.ts);
        }
        out.push(alertFor(s.rule, e, s.rule.render(c), evidence, mode === 'enforce' ? s.rule.actions : ['alert']));
      } catch (err) {
        out.push(failure(s.rule, e, err));
      }
    }
  }

  function failure(rule: CompiledRule, e: PraetorEvent, err: unknown): AlertInput {
    counters.ruleFailures++;
    const contain: RuleAction[] = mode === 'enforce' ? ['alert', 'freeze', 'isolate'] : ['alert'];
    return alertFor({ ...rule, name: RULE_FAILURE, priority: 'CRITICAL', maturity: 'stable', tags: ['maturity_stable', 'praetor_internal'] }, e,
      `rule "${rule.name}" threw on event ${e.id} (${e.kind}): ${errorMessage(err)}; sandbox ${e.sandboxId} is ${mode === 'enforce' ? 'contained (fail closed)' : 'unchecked (detect mode)'}`,
      [e.id], contain);
  }

  function alertFor(rule: Pick<CompiledRule, 'name' | 'priority' | 'maturity' | 'tags'>, e: PraetorEvent, output: string,
    evidence: string[], actions: RuleAction[]): AlertInput {
    const a: AlertInput = {
      kind: 'alert', ts: now(), sandboxId: e.sandboxId, rule: rule.name, priority: rule.priority, tags: rule.tags,
      output, evidence, maturity: rule.maturity, actions: [...actions],
    };
    if (e.episodeId !== undefined) a.episodeId = e.episodeId;
    if (e.step !== undefined) a.step = e.step;
    if (e.toolCallId !== undefined) a.toolCallId = e.toolCallId;
    if (e.modelCallId !== undefined) a.modelCallId = e.modelCallId;
    if (e.pid !== undefined) a.pid = e.pid;
    counters.alerts++;
    return a;
  }

  function safeEvaluate(e: PraetorEvent): AlertInput[] {
    try {
      return evaluate(e);
    } catch (err) {
      const rule = { name: '(engine)', priority: 'CRITICAL', maturity: 'stable', tags: [] } as const;
      return [failure(rule as unknown as CompiledRule, e, err)];
    }
  }

  return {
    rules: active,
    process(e) {
      const alerts = safeEvaluate(e).map((a) => ({ ...a, id: `${idPrefix}-${++alertSeq}` }) as AlertEvent);
      for (const a of alerts) opts.onAlert?.(a, e);
      return alerts;
    },
    attach(bus) {
      return bus.subscribe((e) => {
        if (e.kind === 'alert' || e.kind === 'containment') return;
        for (const input of safeEvaluate(e)) {
          const published = bus.publish(input) as AlertEvent;
          opts.onAlert?.(published, e);
        }
      });
    },
    stats: () => ({
      ...counters,
      windowKeys: all.reduce((n, s) => n + (s.win?.size() ?? 0), 0),
    }),
  };
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) { if (!a.includes(v)) a.push(v); } else m.set(k, [v]);
}
