import type { CompiledWindow } from './compile-rules.ts';
import type { Ctx } from './fields.ts';

// Windowed aggregates, keyed per sandbox (plus the rule's `by` fields), with bounded memory:
// at most `maxKeys` keys per rule (oldest evicted first) and, per key, at most
// `count` entries, because an agent that opens a million connections must not be able to
// exhaust the engine that is supposed to stop it.

export type WindowHit = { evidence: string[] };

type Seen = { ts: number; id: string };

/**
 * A Map with a hard size limit that evicts the oldest inserted key. FIFO rather than LRU: a
 * get is then a plain lookup, which matters on the per-connect path; an evicted key only
 * loses its partial window.
 */
export class BoundedMap<V> {
  readonly #m = new Map<string, V>();
  readonly #max: number;
  constructor(max: number) { this.#max = max; }
  get(k: string): V | undefined {
    return this.#m.get(k);
  }
  set(k: string, v: V): void {
    if (!this.#m.has(k) && this.#m.size >= this.#max) {
      const oldest = this.#m.keys().next();
      if (!oldest.done) this.#m.delete(oldest.value);
    }
    this.#m.set(k, v);
  }
  delete(k: string): void { this.#m.delete(k); }
  get size(): number { return this.#m.size; }
}

export function windowKey(c: Ctx, by: CompiledWindow['by'] | undefined): string {
  let k = c.e.sandboxId;
  if (by) for (const f of by) { const v = f.get(c); k += `\u0000${Array.isArray(v) ? v.join(',') : String(v)}`; }
  return k;
}

export type WindowState = {
  /** Called for every in-scope event; `matched` says whether the rule's condition held. */
  observe(c: Ctx, matched: boolean): WindowHit | undefined;
  /** Called for events that match window.after. */
  remember(c: Ctx): void;
  size(): number;
};

export function createWindowState(w: CompiledWindow, maxKeys: number): WindowState {
  const counts = new BoundedMap<Seen[]>(maxKeys);
  const distinct = new BoundedMap<Map<string, Seen>>(maxKeys);
  const since = new BoundedMap<Seen>(maxKeys);
  const prior = new BoundedMap<Seen>(maxKeys);

  return {
    size: () => counts.size + distinct.size + since.size + prior.size,
    remember(c) {
      // Keyed by sandbox only: the earlier event (a /tmp binary) rarely shares `by` fields.
      prior.set(c.e.sandboxId, { ts: c.e.ts, id: c.e.id });
    },
    observe(c, matched) {
      const now = c.e.ts;
      if (w.mode === 'for') {
        const key = windowKey(c, w.by);
        if (!matched) { since.delete(key); return undefined; }
        const first = since.get(key);
        if (!first) { since.set(key, { ts: now, id: c.e.id }); return undefined; }
        if (now - first.ts < w.forNs) return undefined;
        since.delete(key);
        return { evidence: [first.id, c.e.id] };
      }
      if (!matched) return undefined;
      if (w.mode === 'after') {
        const p = prior.get(c.e.sandboxId);
        // `after` means an earlier event: never the same one (evidence [id, id]).
        if (!p || p.id === c.e.id || now - p.ts > w.withinNs || now < p.ts) return undefined;
        return { evidence: [p.id, c.e.id] };
      }
      const key = windowKey(c, w.by);
      const cutoff = now - w.withinNs;
      if (w.distinct) {
        const raw = w.distinct.get(c);
        if (raw === undefined) return undefined;
        const value = Array.isArray(raw) ? raw.join(',') : String(raw);
        let m = distinct.get(key);
        if (!m) { m = new Map(); distinct.set(key, m); }
        m.delete(value);
        m.set(value, { ts: now, id: c.e.id });
        // Insertion order is time order (we re-insert on every sighting): expire from the front.
        for (const [v, s] of m) { if (s.ts >= cutoff) break; m.delete(v); }
        if (m.size < w.count) return undefined;
        distinct.delete(key);
        return { evidence: [...m.values()].map((s) => s.id) };
      }
      let a = counts.get(key);
      if (!a) { a = []; counts.set(key, a); }
      a.push({ ts: now, id: c.e.id });
      while (a.length > 0 && (a[0]?.ts ?? 0) < cutoff) a.shift();
      if (a.length < w.count) return undefined;
      counts.delete(key);
      return { evidence: a.map((s) => s.id) };
    },
  };
}
