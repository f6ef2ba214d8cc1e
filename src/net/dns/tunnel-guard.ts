// DNS tunnelling (iodine, dnscat2, exfiltration through a wildcard-allowed domain): data hides
// in long, high-entropy labels, or in floods of unique names under one domain. A name that looks
// like either is refused before anything is forwarded upstream.

const LONG_LABEL = 40;          // iodine and dnscat fill labels to ~63 chars
const ENTROPIC_LABEL = 24;      // shorter labels need high entropy too
const ENTROPY_BITS = 3.6;       // bits per char; English-like hostnames sit well below
const NAME_LIMIT = 120;
const HEX_LABEL = /^[0-9a-f]{20,}$/i;
const UNIQUE_PER_WINDOW = 60;   // new distinct names allowed by one rule per window
const WINDOW_MS = 60_000;

export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) { const p = n / s.length; h -= p * Math.log2(p); }
  return h;
}

export interface TunnelGuard {
  /** Label shape (length, entropy, hex, dnscat): a reason to refuse `name`, or null. */
  check(name: string): string | null;
  /**
   * Flood of unique names: call only once the policy has allowed `name`, with `rule` the id of
   * the allow rule that matched. Threat: a tunnel under `*.example.test` sprays
   * `<data>.<rand>.example.test`; counting by the name's own last labels gives every query a
   * fresh key and never trips, while every name one wildcard rule allows shares its budget.
   * Denied names never reach this (they are not forwarded), so they cannot flush the counts.
   */
  flood(name: string, rule: string): string | null;
}

/** Per-sandbox guard. */
export function createTunnelGuard(now: () => number = Date.now): TunnelGuard {
  // Keyed by allow-rule id: bounded by the policy's size, so no eviction is needed.
  const seen = new Map<string, { start: number; names: Set<string> }>();
  return {
    check(name) {
      if (name.length > NAME_LIMIT) return `name of ${name.length} chars (tunnel-sized)`;
      for (const label of name.split('.')) {
        if (label.length >= LONG_LABEL) return `label of ${label.length} chars`;
        if (label.length >= ENTROPIC_LABEL && entropy(label) >= ENTROPY_BITS) return `high-entropy label (${entropy(label).toFixed(1)} bits/char)`;
        if (HEX_LABEL.test(label)) return 'hex-encoded label';
      }
      if (/^dnscat\./i.test(name)) return 'dnscat prefix';
      return null;
    },
    flood(name, rule) {
      const t = now();
      let w = seen.get(rule);
      if (!w || t - w.start > WINDOW_MS) { w = { start: t, names: new Set() }; seen.set(rule, w); }
      if (w.names.has(name)) return null;
      if (w.names.size >= UNIQUE_PER_WINDOW) return `flood of unique names allowed by ${rule} (${w.names.size} in ${WINDOW_MS / 1000}s)`;
      w.names.add(name);
      return null;
    },
  };
}
