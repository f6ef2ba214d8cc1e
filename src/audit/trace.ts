// "From reward to packet" as a query: an episode's records, plus the sandbox-only records
// (sensor events that carry no episode id) from its sandboxes while it ran, folded into one tree:
// step → reward, model calls → tool calls → commands → processes → flows → alerts → containment.
// Each event hangs under the most specific thing it names (evidence, alert, pid, tool call).
import type { LedgerStore, RecordRow } from './store.ts';

export type TraceNode = {
  seq: number; kind: string; ts: number; summary: string;
  event: Record<string, unknown>; children: TraceNode[];
};
export type StepTrace = { step: number; rewards: TraceNode[]; calls: TraceNode[] };
export type EpisodeTrace = {
  episodeId: string;
  sandboxes: string[];
  startTs: number | null;
  endTs: number | null;
  totalReward: number | null;
  lifecycle: TraceNode[];
  steps: StepTrace[];
  /** Events linked to the episode but to no step, call or process. */
  unlinked: TraceNode[];
  samples: Record<string, number>;
};

type Ev = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export async function traceEpisode(store: LedgerStore, episodeId: string): Promise<EpisodeTrace> {
  const own = await store.episodeRecords(episodeId);
  const sandboxes = [...new Set(own.map((r) => r.sandboxId).filter((s): s is string => s !== null))].sort();
  // One pass, no spread: Math.min(...array) overflows the call stack on large episodes.
  let start: number | null = null;
  let end: number | null = null;
  for (const r of own) {
    if (start === null || r.ts < start) start = r.ts;
    if (end === null || r.ts > end) end = r.ts;
  }
  const extra = start !== null && end !== null && sandboxes.length > 0 ? await store.sandboxRecords(sandboxes, start, end) : [];
  return buildTrace(episodeId, sandboxes, [...own, ...extra].sort((a, b) => a.seq - b.seq));
}

export function buildTrace(episodeId: string, sandboxes: string[], rows: RecordRow[]): EpisodeTrace {
  const out: EpisodeTrace = {
    episodeId, sandboxes, startTs: rows[0]?.ts ?? null, endTs: rows.at(-1)?.ts ?? null,
    totalReward: null, lifecycle: [], steps: [], unlinked: [], samples: {},
  };
  const steps = new Map<number, StepTrace>();
  const stepOf = (n: number): StepTrace => {
    let s = steps.get(n);
    if (!s) { s = { step: n, rewards: [], calls: [] }; steps.set(n, s); }
    return s;
  };
  const byId = new Map<string, TraceNode>();
  const models = new Map<string, TraceNode>();
  const tools = new Map<string, TraceNode>();
  const commands = new Map<string, TraceNode>();
  const procs = new Map<number, TraceNode>();
  // Sensors see pids, not tool calls: a process started in a sandbox while one of its commands
  // runs belongs to that command (and so to its tool call, model call and step).
  const running = new Map<string, TraceNode>();
  // An agent inside a sandbox asks its model through the model gateway, then runs what it was
  // told: a process started after such a call belongs to that model output, unless its own
  // parent started later still (then it belongs to the parent, and so to the same call).
  const sandboxModel = new Map<string, TraceNode>();
  const place = (n: TraceNode, e: Ev, parents: (TraceNode | undefined)[]): void => {
    const p = parents.find((x) => x !== undefined);
    if (p) { p.children.push(n); return; }
    const step = num(e.step);
    if (step !== undefined) stepOf(step).calls.push(n);
    else out.unlinked.push(n);
  };

  for (const r of rows) {
    const e = JSON.parse(r.body) as Ev;
    if (r.kind === 'resource.sample' || r.kind === 'gpu.sample') {
      out.samples[r.kind] = (out.samples[r.kind] ?? 0) + 1;
      continue;
    }
    const node: TraceNode = { seq: r.seq, kind: r.kind, ts: r.ts, summary: summarize(e), event: e, children: [] };
    const id = str(e.id);
    if (id !== undefined) byId.set(id, node);
    const tool = tools.get(str(e.toolCallId) ?? '');
    const model = models.get(str(e.modelCallId) ?? '');
    const proc = procs.get(num(e.pid) ?? NaN);
    switch (r.kind) {
      case 'reward':
        out.totalReward = (out.totalReward ?? 0) + (num(e.value) ?? 0);
        if (num(e.step) !== undefined) stepOf(num(e.step)!).rewards.push(node); else out.unlinked.push(node);
        break;
      case 'model.call':
        models.set(str(e.modelCallId) ?? id ?? '', node);
        if (e.via === 'sandbox' && r.sandboxId !== null) sandboxModel.set(r.sandboxId, node);
        place(node, e, []);
        break;
      case 'tool.call':
        tools.set(str(e.toolCallId) ?? id ?? '', node);
        place(node, e, [model]);
        break;
      case 'command.start':
        commands.set(str(e.execId) ?? '', node);
        running.set(r.sandboxId ?? '', node);
        place(node, e, [tool, model]);
        break;
      case 'command.end': {
        const start = commands.get(str(e.execId) ?? '');
        if (start !== undefined && running.get(r.sandboxId ?? '') === start) running.delete(r.sandboxId ?? '');
        place(node, e, [start, tool, model]);
        break;
      }
      case 'process.exec': {
        const parent = procs.get(num(e.ppid) ?? NaN);
        if (num(e.pid) !== undefined) procs.set(num(e.pid)!, node);
        const asked = sandboxModel.get(r.sandboxId ?? '');
        const fromModel = asked !== undefined && (parent === undefined || asked.seq > parent.seq) ? asked : undefined;
        place(node, e, [fromModel, parent, tool, model, running.get(r.sandboxId ?? '')]);
        break;
      }
      case 'alert': {
        const evidence = Array.isArray(e.evidence) ? e.evidence.map((x) => byId.get(String(x))).find((x) => x !== undefined) : undefined;
        place(node, e, [evidence, proc, tool, model]);
        break;
      }
      case 'containment':
        place(node, e, [byId.get(str(e.alertId) ?? ''), proc, tool, model]);
        break;
      default:
        if (r.kind.startsWith('episode.') || r.kind.startsWith('sandbox.') || r.kind.startsWith('sensor.')) out.lifecycle.push(node);
        else place(node, e, [proc, tool, model]);
    }
  }
  out.steps = [...steps.values()].sort((a, b) => a.step - b.step);
  return out;
}

export function summarize(e: Ev): string {
  const s = (k: string): string => String(e[k] ?? '');
  switch (e.kind) {
    case 'reward': return `reward ${s('value')}${e.source ? ` (${s('source')})` : ''}`;
    case 'model.call': return `model call ${s('modelCallId')} ${s('model')} ${s('latencyMs')}ms${e.completionTokens !== undefined ? ` ${s('completionTokens')} tokens out` : ''}`;
    case 'tool.call': return `tool call ${s('toolCallId')} ${s('tool')}: ${clip(s('input'))}${e.verdict ? ` [${s('verdict')}]` : ''}`;
    case 'command.start': return `command ${clip(JSON.stringify(e.argv))} in ${s('cwd')}`;
    // exitCode is null when a signal ended the command: say so rather than print `exit=`.
    case 'command.end': return `command ended ${e.exitCode === null || e.exitCode === undefined ? 'with no exit code' : `exit=${s('exitCode')}`}${e.signal ? ` signal=${s('signal')}` : ''}${e.timedOut ? ' (timed out)' : ''} after ${fmtMs(Number(e.durationMs))}`;
    case 'process.exec': return `exec pid ${s('pid')} ${s('path')} ${clip((e.argv as string[] | undefined)?.join(' ') ?? '')}`;
    case 'process.exit': return `exit pid ${s('pid')} code=${s('exitCode')}${e.signal !== null && e.signal !== undefined ? ` signal=${s('signal')}` : ''}`;
    case 'net.flow': return `flow → ${s('dstIp')}:${s('dstPort')} ${s('protocol')}${e.sni ? ` sni=${s('sni')}` : ''}${e.domain ? ` ${s('domain')}` : ''} ${s('decision')} (${s('rule')}) out=${s('bytesOut')}B in=${s('bytesIn')}B`;
    case 'net.attempt': return `attempt → ${s('dstIp')}:${s('dstPort')} ${s('protocol')} ${s('decision')} (${s('rule')})`;
    case 'net.connect': return `connect → ${s('dstIp')}:${s('dstPort')}${e.comm ? ` by ${s('comm')}` : ''}`;
    case 'dns.query': return `dns ${s('name')} ${s('qtype')} ${s('decision')} (${s('rule')})`;
    case 'file.open': return `open ${s('path')}${e.write ? ' (write)' : ''}`;
    case 'secret.tracked': return secretTracked(e);
    case 'alert': return `ALERT [${s('priority')}] ${s('rule')}: ${clip(s('output'))}`;
    case 'containment': return `CONTAINMENT ${s('action')} ${e.ok ? 'ok' : `failed: ${s('error')}`} ${s('latencyMs')}ms`;
    case 'episode.created': return `episode created${e.task ? `: ${s('task')}` : ''}`;
    case 'episode.ended': return `episode ended: ${s('reason')}`;
    default: return String(e.kind);
  }
}

function secretTracked(e: Ev): string {
  const n = Array.isArray(e.secrets) ? e.secrets.length : 0;
  if (n === 0) return `credential ${String(e.path)} read, nothing tracked: ${String(e.reason ?? '')}`;
  return `credential ${String(e.path)} read: ${n} secret value${n === 1 ? '' : 's'} kept from egress${e.cut ? `, ${String(e.cut)} open connection(s) cut` : ''}`;
}

function clip(t: string, n = 100): string {
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

/** The text timeline, reward first (reward ← steps ← model outputs ← tool calls ← …). */
export function renderTrace(t: EpisodeTrace): string {
  const lines: string[] = [];
  const time = (ns: number | null): string => (ns === null ? '?' : new Date(ns / 1e6).toISOString());
  lines.push(`episode ${t.episodeId}  reward ${t.totalReward ?? 'none'}  sandboxes ${t.sandboxes.join(', ') || 'none'}`);
  lines.push(`  ${time(t.startTs)} … ${time(t.endTs)}`);
  for (const n of t.lifecycle) lines.push(`  · ${n.summary}`);
  const walk = (n: TraceNode, depth: number): void => {
    lines.push(`${'  '.repeat(depth)}${n.kind === 'alert' || n.kind === 'containment' ? '!' : '└'} #${n.seq} ${n.summary}`);
    for (const c of n.children) walk(c, depth + 1);
  };
  for (const s of t.steps) {
    const reward = s.rewards.map((r) => r.summary).join(', ');
    lines.push(`step ${s.step}${reward ? `  ${reward}` : ''}`);
    for (const c of s.calls) walk(c, 1);
  }
  if (t.unlinked.length > 0) {
    lines.push('not linked to a step:');
    for (const c of t.unlinked) walk(c, 1);
  }
  const samples = Object.entries(t.samples).map(([k, v]) => `${v} ${k}`).join(', ');
  if (samples) lines.push(`(${samples} not shown)`);
  return lines.join('\n');
}

/** A duration for people: 19.20202000000063 → "19.2 ms", 61234 → "61.2 s". */
function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '? ms';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}
