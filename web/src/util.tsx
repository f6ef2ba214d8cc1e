import type { Ev } from './api.ts';

export function fmtTime(ns: number | null | undefined): string {
  if (!ns) return '–';
  const d = new Date(ns / 1e6);
  return `${d.toLocaleTimeString(undefined, { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

export function fmtAgo(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function PriorityBadge(p: { priority: string }) {
  return <span class={`badge prio-${p.priority.toLowerCase()}`}>{p.priority}</span>;
}

export function SandboxLink(p: { id: string }) {
  return <a href={`#/sandboxes/${encodeURIComponent(p.id)}`}>{p.id}</a>;
}

export function EpisodeLink(p: { id: string | null | undefined; ev?: string }) {
  if (!p.id) return <span class="muted">no episode</span>;
  return <a href={`#/episodes/${encodeURIComponent(p.id)}${p.ev ? `/ev/${encodeURIComponent(p.ev)}` : ''}`}>{p.id}</a>;
}

/** One line for an event, for lists and the trace. */
export function summarize(e: Ev): string {
  const s = (k: string): string => String(e[k] ?? '');
  switch (e.kind) {
    case 'process.exec': return `exec ${(e.argv as string[] | undefined)?.join(' ') ?? s('path')} (pid ${s('pid')})`;
    case 'process.exit': return `exit pid ${s('pid')} ${e.signal !== null && e.signal !== undefined ? `signal ${s('signal')}` : `code ${s('exitCode')}`}`;
    case 'net.flow': return `${s('decision')} ${s('protocol')} ${s('domain') || s('dstIp')}:${s('dstPort')} (${s('bytesOut')} B out, ${s('bytesIn')} B in)`;
    case 'net.attempt': return `${s('decision')} ${s('protocol')} ${s('dstIp')}${e.dstPort !== undefined ? `:${s('dstPort')}` : ''}`;
    case 'net.connect': return `connect ${s('dstIp')}:${s('dstPort')} → ${s('result')}`;
    case 'dns.query': return `${s('decision')} DNS ${s('qtype')} ${s('name')}`;
    case 'alert': return `ALERT ${s('rule')} [${s('priority')}]`;
    case 'containment': return `${e.ok ? '' : 'FAILED '}${s('action')} in ${Number(e.latencyMs).toFixed(1)} ms`;
    case 'command.start': return `$ ${(e.argv as string[] | undefined)?.join(' ') ?? ''}`;
    case 'command.end': return `command ended: ${e.signal ? `signal ${s('signal')}` : `code ${s('exitCode')}`} after ${Number(e.durationMs).toFixed(0)} ms`;
    case 'tool.call': return `tool ${s('tool')} ${s('input').slice(0, 120)}`;
    case 'model.call': return `model ${s('model')} (${Number(e.latencyMs).toFixed(0)} ms)`;
    case 'reward': return `reward ${s('value')}`;
    case 'secret.tracked': return `credential ${s('path')} read: ${Array.isArray(e.secrets) ? e.secrets.length : 0} value(s) kept from egress`;
    default: return e.kind;
  }
}

export function isViolation(e: Ev): boolean {
  return e.kind === 'alert' || e.kind === 'containment' || e.kind === 'sensor.failed'
    || ((e.kind === 'net.flow' || e.kind === 'net.attempt' || e.kind === 'dns.query') && e.decision === 'deny');
}
