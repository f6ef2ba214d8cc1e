import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type EpisodeTrace, type TraceNode } from '../api.ts';
import type { LiveStore } from '../live.ts';
import { SandboxLink, fmtTime, isViolation } from '../util.tsx';

function Node(p: { n: TraceNode; episodeId: string; focus: string | undefined }) {
  const e = p.n.event;
  const violation = isViolation(e);
  return (
    <li id={`ev-${e.id}`} class={`node kind-${p.n.kind.replace(/\./g, '-')}${violation ? ' violation' : ''}${p.focus === e.id ? ' focused' : ''}`}
      tabIndex={p.focus === e.id ? -1 : undefined} data-kind={p.n.kind}>
      <div class="node-line">
        <time>{fmtTime(p.n.ts)}</time> <span class="kind">{p.n.kind}</span> <span class="summary">{p.n.summary}</span>
        <span class="muted"> #{p.n.seq}</span>
        {p.n.kind === 'alert' && Array.isArray(e.evidence) ? (
          <span class="evidence"> evidence: {(e.evidence as string[]).map((id) => (
            <a key={id} href={`#/episodes/${encodeURIComponent(p.episodeId)}/ev/${encodeURIComponent(id)}`}>{id}</a>
          ))}</span>
        ) : null}
        {p.n.kind === 'containment' ? <span class={e.ok ? 'contained' : 'failed'}> ({e.ok ? 'ok' : `failed: ${String(e.error ?? '')}`})</span> : null}
      </div>
      {p.n.children.length > 0 ? <ol>{p.n.children.map((c) => <Node key={c.seq} n={c} episodeId={p.episodeId} focus={p.focus} />)}</ol> : null}
    </li>
  );
}

export function EpisodeView(p: { store: LiveStore; id: string; focus?: string | undefined }) {
  const [trace, setTrace] = useState<EpisodeTrace | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<number | undefined>(undefined);
  // The episode's sandboxes as of the latest trace: a ref, so the event handler below (set up
  // once per episode) sees each newly loaded trace instead of the one of its first render.
  const sandboxIds = useRef<ReadonlySet<string>>(new Set());
  useEffect(() => {
    let live = true;
    sandboxIds.current = new Set();
    const load = async (): Promise<void> => {
      try {
        const t = await api<EpisodeTrace>(`/v1/dashboard/episodes/${encodeURIComponent(p.id)}/trace`);
        if (live) { sandboxIds.current = new Set(t.sandboxes); setTrace(t); setError(null); }
      } catch (e) { if (live) setError((e as Error).message); }
    };
    void load();
    // The ledger is the source of the trace; refetch shortly after anything in the episode's
    // sandboxes happens so a violation shows up here without a manual reload.
    const off = p.store.onEvent((e) => {
      if (e.kind === 'resource.sample' || e.kind === 'gpu.sample') return;
      if (e.episodeId !== p.id && !sandboxIds.current.has(e.sandboxId) && p.store.sandboxes.get(e.sandboxId)?.episodeId !== p.id) return;
      if (timer.current) clearTimeout(timer.current);
      timer.current = window.setTimeout(() => void load(), 300);
    });
    return () => { live = false; off(); if (timer.current) clearTimeout(timer.current); };
  }, [p.id, p.store]);
  useEffect(() => {
    if (!p.focus || !trace) return;
    const el = document.getElementById(`ev-${p.focus}`);
    if (el) { el.scrollIntoView({ block: 'center' }); el.focus(); }
  }, [p.focus, trace]);

  if (error) return <div class="error" role="alert">Episode {p.id}: {error}</div>;
  if (!trace) return <p>Loading trace of {p.id}…</p>;
  const violations = countViolations(trace);
  return (
    <div class="episode-view">
      <h1>Episode <code>{trace.episodeId}</code></h1>
      <p>
        total reward <strong>{trace.totalReward ?? '–'}</strong> · {fmtTime(trace.startTs)} – {fmtTime(trace.endTs)} ·
        sandboxes {trace.sandboxes.map((s) => <span key={s}><SandboxLink id={s} /> </span>)} ·
        <span class={violations ? 'failed' : ''}> {violations} violation{violations === 1 ? '' : 's'}</span>
        {Object.keys(trace.samples).length ? <span class="muted"> · {Object.entries(trace.samples).map(([k, v]) => `${v} ${k}`).join(', ')} not shown</span> : null}
      </p>
      <section aria-label="Trace">
        <h2>From reward back to the packet</h2>
        {trace.steps.length === 0 && trace.unlinked.length === 0 ? <p class="muted">Nothing recorded yet.</p> : null}
        <ol class="trace">
          {trace.steps.slice().reverse().map((s) => (
            <li key={s.step} class="step">
              <h3>Step {s.step}</h3>
              <ol>
                {s.rewards.map((n) => <Node key={n.seq} n={n} episodeId={trace.episodeId} focus={p.focus} />)}
                {s.calls.slice().reverse().map((n) => <Node key={n.seq} n={n} episodeId={trace.episodeId} focus={p.focus} />)}
              </ol>
            </li>
          ))}
          {trace.unlinked.length ? (
            <li class="step"><h3>Not linked to a step</h3>
              <ol>{trace.unlinked.slice().reverse().map((n) => <Node key={n.seq} n={n} episodeId={trace.episodeId} focus={p.focus} />)}</ol>
            </li>
          ) : null}
        </ol>
      </section>
      <section aria-label="Lifecycle">
        <h2>Lifecycle</h2>
        <ol class="trace">{trace.lifecycle.map((n) => <Node key={n.seq} n={n} episodeId={trace.episodeId} focus={p.focus} />)}</ol>
      </section>
    </div>
  );
}

function countViolations(t: EpisodeTrace): number {
  let n = 0;
  const walk = (x: TraceNode): void => { if (x.kind === 'alert') n++; x.children.forEach(walk); };
  for (const s of t.steps) { s.rewards.forEach(walk); s.calls.forEach(walk); }
  t.unlinked.forEach(walk);
  return n;
}
