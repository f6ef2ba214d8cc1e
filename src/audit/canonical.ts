// Canonical JSON: the bytes a record's hash covers. Deterministic on purpose — keys sorted at
// every level, no whitespace — so two honest serialisations of one event never differ, and a
// verifier (or a court) can re-derive the exact bytes from the event alone. Non-finite numbers
// and values JSON cannot carry are refused rather than silently turned into null: a ledger that
// stores something other than what happened is worse than one that refuses to store it.
//
// Speed matters (every event passes here on the hot path): objects whose keys are already in
// order at every level — the common case, since events of a kind are built the same way — go
// straight to the engine's native JSON.stringify; only out-of-order objects are rebuilt sorted.
import { PraetorError } from '../errors.ts';

export function canonicalJson(value: unknown): string {
  const out = JSON.stringify(sorted(value, 0));
  if (out === undefined) throw bad(`a ${typeof value} cannot be recorded`);
  return out;
}

/** The value itself when already canonical, else a copy with keys sorted at every level. */
function sorted(v: unknown, depth: number): unknown {
  if (depth > 64) throw bad('nested deeper than 64 levels');
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) throw bad(`non-finite number ${v}`);
      return v;
    case 'bigint': case 'symbol':
      throw bad(`a ${typeof v} cannot be recorded`);
    case 'object': {
      if (v === null) return v;
      if (Array.isArray(v)) {
        let copy: unknown[] | null = null;
        for (let i = 0; i < v.length; i++) {
          const x: unknown = v[i];
          const y = sorted(x, depth + 1);
          if (y !== x && copy === null) copy = v.slice(0, i);
          if (copy !== null) copy.push(y);
        }
        return copy ?? v;
      }
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') throw bad('objects with toJSON cannot be recorded canonically');
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      let inOrder = true;
      // Each value is checked (and, if it needs it, sorted) once: the rebuild below reuses these
      // results. Only values that changed are remembered — every other one is its own result.
      let changed: Map<string, unknown> | null = null;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (i > 0 && keys[i - 1]! >= k) inOrder = false;
        const x = o[k];
        const y = sorted(x, depth + 1);
        if (y !== x) (changed ??= new Map()).set(k, y);
      }
      // Integer-like keys are always enumerated first by the engine, whatever the insertion
      // order; such an object can never be rebuilt in pure string order, so it never counts as
      // "in order" and the rebuild below yields the engine's order — deterministic either way.
      if (inOrder && changed === null) return v;
      const copy: Record<string, unknown> = {};
      for (const k of keys.sort()) copy[k] = changed !== null && changed.has(k) ? changed.get(k) : o[k];
      return copy;
    }
    default:
      return v;
  }
}

function bad(what: string): PraetorError {
  return new PraetorError('BAD_ARGUMENT', `event cannot be serialised canonically: ${what}`, {
    hint: 'events must be plain JSON data (finite numbers, strings, booleans, arrays, objects)',
  });
}
