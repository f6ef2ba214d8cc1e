// Episodes: each owns one sandbox. A step runs one tool call in it, tagged with episode, step
// and tool call ids (so the ledger links reward → step → tool call → process → flow), and
// collects what the guard published for that sandbox meanwhile to decide the verdict. A step
// that gets the sandbox contained terminates the episode and destroys the sandbox (threat: a
// compromised sandbox kept around for "one more step").
import { randomBytes } from 'node:crypto';
import { PraetorError, errorMessage } from '../errors.ts';
import type { PraetorEvent } from '../events/index.ts';
import { notFound } from '../errors.ts';
import { editFile, readFile, writeFile, toArgv, type Tags } from '../sandbox/index.ts';
import { parseInput, newId } from '../util/index.ts';
import type { Caller, EpisodeHost, HostedSandbox } from './host.ts';
import { recommend, verdictOf } from './safety.ts';
import { ActionSchema, type Action, type Report, type Safety, type StepResult } from './schema.ts';

export interface EpisodeCreate {
  task?: string | undefined;
  seed?: number | undefined;
  spec: Record<string, unknown>;
  policy?: unknown;
  setup?: string[] | undefined;
  maxSteps?: number | undefined;
}

export interface Episode {
  id: string;
  tenant: string;
  task: string;
  seed: number | null;
  entry: HostedSandbox;
  status: 'running' | 'terminated' | 'truncated' | 'closed';
  endReason: string | null;
  step: number;
  maxSteps: number;
  flags: Report['flags'];
  rewards: Report['rewards'];
  infraFailure: boolean;
  busy: boolean;
  createdAt: number;
}

const OUTPUT_CAP = 10 * 2 ** 20; // Inspect's exec cap
/** How long an episode whose sandbox has ended stays readable (report, trace) before it is forgotten. */
export const EPISODE_RETENTION_MS = 15 * 60_000;

export interface EpisodeServiceOptions {
  /** retention of ended episodes (default 15 min). */
  retentionMs?: number | undefined;
  /** episode ids (default `ep-<12 hex>`); a cluster node's name its ordinal so any control replica routes them. */
  newId?: (() => string) | undefined;
}

/** What a step's safety verdict is judged on. */
const VERDICT_KINDS = new Set(['alert', 'containment', 'net.attempt', 'net.flow', 'dns.query']);

export class EpisodeService {
  readonly #core: EpisodeHost;
  readonly #episodes = new Map<string, Episode>();
  /** The events seen during the step a sandbox is running now (one step per episode at a time). */
  readonly #stepping = new Map<string, PraetorEvent[]>();
  readonly #unsubscribe: () => void;
  readonly #retentionMs: number;
  readonly #newId: () => string;
  readonly #forgetTimers = new Set<NodeJS.Timeout>();
  readonly #forgetHandlers: Array<(episodeId: string) => void> = [];

  constructor(core: EpisodeHost, opts: EpisodeServiceOptions = {}) {
    this.#core = core;
    this.#retentionMs = opts.retentionMs ?? EPISODE_RETENTION_MS;
    this.#newId = opts.newId ?? (() => newId('ep'));
    // One listener for all episodes: the bus fans out synchronously on the containment path, so
    // a listener per running step would make every event pay for every concurrent episode.
    this.#unsubscribe = core.bus.subscribe((e) => {
      if (!VERDICT_KINDS.has(e.kind)) return;
      this.#stepping.get(e.sandboxId)?.push(e);
    });
    // Containment that terminates an episode (a rule's terminate-episode action) ends it here,
    // so the next step answers with the reason instead of running in a contained sandbox.
    core.onTerminateEpisode((sandboxId, reason) => {
      for (const ep of this.#episodes.values()) {
        if (ep.entry.sb.id === sandboxId && ep.status === 'running') { ep.status = 'terminated'; ep.endReason = reason; }
      }
    });
  }

  get count(): number { return this.#episodes.size; }

  /** Called when an ended episode is forgotten after the retention (not on an explicit end()). */
  onForget(fn: (episodeId: string) => void): void { this.#forgetHandlers.push(fn); }

  #forget(id: string): void {
    if (!this.#episodes.delete(id)) return;
    for (const fn of this.#forgetHandlers) fn(id);
  }

  async create(p: Caller, c: EpisodeCreate): Promise<Episode> {
    const id = this.#newId();
    const entry = await this.#core.createSandbox(p, c.spec, { ...(c.policy !== undefined ? { policy: c.policy } : {}), phase: c.setup?.length ? 'setup' : 'agent', episodeId: id });
    const ep: Episode = {
      id, tenant: p.tenant, task: c.task ?? '', seed: c.seed ?? null, entry, status: 'running', endReason: null,
      step: 0, maxSteps: c.maxSteps ?? 100, flags: [], rewards: [], infraFailure: false, busy: false, createdAt: Date.now(),
    };
    this.#episodes.set(id, ep);
    // The guard holds a contained episode sandbox frozen; end it at once so the running step
    // returns with the verdict instead of waiting on a frozen command.
    let contained = false;
    void this.#core.guard.contained(entry.sb.id).then(() => { contained = true; return entry.sb.destroy(`contained (episode ${id})`); });
    entry.sb.onEnded((reason) => {
      if (ep.status === 'running') {
        ep.status = 'terminated';
        ep.endReason = `sandbox ended: ${reason}`;
        // The episode's own endings (end, a terminate verdict, a terminate-episode rule) change
        // its status before the sandbox goes, and containment is known from the guard. Anything
        // else — init exiting, the idle reaper, an operator's delete, a shutdown — cut the
        // trajectory short for reasons that are not the agent's: the sample is unusable, and
        // the report recommends dropping it.
        if (!contained) ep.infraFailure = true;
      }
      // Kept a while so report() and trace still answer, then forgotten (no unbounded growth).
      const timer = setTimeout(() => { this.#forgetTimers.delete(timer); this.#forget(id); }, this.#retentionMs);
      timer.unref();
      this.#forgetTimers.add(timer);
    });
    this.#core.bus.publish({ kind: 'episode.created', sandboxId: entry.sb.id, episodeId: id, ...(c.task ? { task: c.task.slice(0, 1000) } : {}) });
    try {
      for (const cmd of c.setup ?? []) {
        const r = await entry.sb.exec(['/bin/sh', '-c', cmd], { timeoutMs: 600_000, tags: { episodeId: id, step: 0 } });
        if (r.code !== 0) throw new PraetorError('BAD_ARGUMENT', `setup command failed (exit ${r.code}): ${cmd.slice(0, 200)}: ${r.stderr.slice(-500)}`, { hint: 'fix the setup commands' });
      }
      if (entry.phase !== 'agent') this.#core.setPhase(entry, 'agent');
    } catch (e) {
      await this.end(p, id, 'setup failed');
      throw e;
    }
    return ep;
  }

  get(p: Caller, id: string): Episode {
    const ep = this.#episodes.get(id);
    if (!ep || (!p.admin && ep.tenant !== p.tenant)) throw notFound('episode', id);
    return ep;
  }

  list(p: Caller): Episode[] { return [...this.#episodes.values()].filter((e) => p.admin || e.tenant === p.tenant); }

  async step(p: Caller, id: string, input: Action): Promise<StepResult> {
    const ep = this.get(p, id);
    // Every entry point (REST, batch, GEM, MCP) lands here, so the action schema — path rules
    // (no NUL, no `..`), sizes, timeouts — is enforced once for all of them.
    const action = parseInput(ActionSchema, input, 'action');
    if (ep.status !== 'running') throw new PraetorError('BAD_STATE', `episode ${id} has ended (${ep.status}${ep.endReason ? `: ${ep.endReason}` : ''})`, { hint: 'create a new episode' });
    if (ep.busy) throw new PraetorError('CONFLICT', `episode ${id} is running another step`, { hint: 'steps of one episode run one at a time; wait for the previous one' });
    ep.busy = true;
    const step = ++ep.step;
    const toolCallId = action.tool_call_id ?? `call_${randomBytes(6).toString('hex')}`;
    const sb = ep.entry.sb;
    const tags: Tags = { episodeId: id, step, toolCallId, ...(action.model_call_id ? { modelCallId: action.model_call_id } : {}) };
    const seen: PraetorEvent[] = [];
    this.#stepping.set(sb.id, seen);
    const started = performance.now();
    let observation = '';
    let exitCode: number | null = 0;
    try {
      this.#core.bus.publish({ kind: 'tool.call', sandboxId: sb.id, ...tags, tool: action.tool, input: JSON.stringify(action.arguments).slice(0, 4096) });
      ({ observation, exitCode } = await this.#run(ep, action, tags));
      // Sensors publish asynchronously; let already-queued events land before judging.
      await new Promise((r) => setImmediate(r));
    } catch (e) {
      // Documented, expected errors (missing file, bad state) are observations the model sees.
      observation = `error: ${errorMessage(e)}`;
      exitCode = 1;
    } finally {
      this.#stepping.delete(sb.id);
      ep.busy = false;
    }
    const gone = sb.state === 'destroyed' ? 'sandbox destroyed' : undefined;
    const safety: Safety = verdictOf(seen, gone);
    if (safety.verdict !== 'allow') ep.flags.push({ step, tool_call_id: toolCallId, ...safety });
    let terminated = false;
    if (safety.verdict === 'terminate') {
      terminated = true;
      ep.status = 'terminated';
      ep.endReason = safety.rule ? `contained: ${safety.rule}` : (ep.endReason ?? 'sandbox ended');
      this.#core.bus.publish({ kind: 'episode.ended', sandboxId: sb.id, episodeId: id, step, reason: ep.endReason });
      await sb.destroy(`episode terminated: ${ep.endReason}`);
    }
    const truncated = !terminated && step >= ep.maxSteps;
    if (truncated) { ep.status = 'truncated'; ep.endReason = `step budget of ${ep.maxSteps} used`; }
    return {
      episode_id: id, step, tool_call_id: toolCallId, observation, exit_code: exitCode, terminated, truncated, safety,
      info: {
        duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
        ...(safety.verdict !== 'allow' ? { failure_mode: 'safety_violation' } : {}),
        ...(terminated ? { reason: ep.endReason } : {}),
      },
    };
  }

  async #run(ep: Episode, a: Action, tags: Tags): Promise<{ observation: string; exitCode: number | null }> {
    const sb = ep.entry.sb;
    ep.entry.lastUsed = Date.now();
    switch (a.tool) {
      case 'bash': {
        const r = await sb.exec(toArgv(a.arguments.command, true), { timeoutMs: a.arguments.timeout_ms ?? 300_000, tags });
        const out = r.stdout + (r.stderr ? (r.stdout && !r.stdout.endsWith('\n') ? '\n' : '') + r.stderr : '');
        const note = r.timedOut ? `\n[timed out after ${a.arguments.timeout_ms ?? 300_000} ms]` : '';
        return { observation: (out.length > OUTPUT_CAP ? out.slice(0, OUTPUT_CAP) + '\n[output truncated]' : out) + note, exitCode: r.code };
      }
      case 'read_file':
        return { observation: (await readFile(sb, a.arguments.path, tags)).toString('utf8'), exitCode: 0 };
      case 'write_file': {
        const n = await writeFile(sb, a.arguments.path, Buffer.from(a.arguments.content), { tags });
        return { observation: `wrote ${n} bytes to ${a.arguments.path}`, exitCode: 0 };
      }
      case 'edit':
        await editFile(sb, a.arguments.path, a.arguments.old_text, a.arguments.new_text, tags);
        return { observation: `edited ${a.arguments.path}`, exitCode: 0 };
    }
  }

  /** The trainer's reward, recorded in the ledger next to the step and tool call it scores. */
  reward(p: Caller, id: string, r: { value: number; step?: number | undefined; toolCallId?: string | undefined; source?: string | undefined }): { event_id: string } {
    const ep = this.get(p, id);
    const step = r.step ?? (ep.step || undefined);
    if (step !== undefined && step > ep.step) throw new PraetorError('BAD_ARGUMENT', `step ${step} has not happened yet (episode is at step ${ep.step})`, { hint: 'report rewards for past steps, or omit step for the whole episode' });
    const toolCallId = r.toolCallId ?? (step !== undefined ? ep.flags.find((f) => f.step === step)?.tool_call_id : undefined);
    const e = this.#core.bus.publish({
      kind: 'reward', sandboxId: ep.entry.sb.id, episodeId: id, value: r.value,
      ...(step !== undefined ? { step } : {}), ...(toolCallId ? { toolCallId } : {}), ...(r.source ? { source: r.source } : {}),
    });
    ep.rewards.push({ step: step ?? null, value: r.value, source: r.source ?? null });
    return { event_id: e.id };
  }

  report(p: Caller, id: string): Report {
    const ep = this.get(p, id);
    const { action, penalty } = recommend(ep.flags, ep.rewards, ep.infraFailure);
    return {
      episode_id: id, status: ep.status, end_reason: ep.endReason, steps: ep.step, flags: ep.flags,
      recommended_training_action: action, suggested_penalty: penalty, rewards: ep.rewards,
    };
  }

  async end(p: Caller, id: string, reason = 'closed by the client'): Promise<Report> {
    const ep = this.get(p, id);
    if (ep.status === 'running') { ep.status = 'closed'; ep.endReason = reason; }
    const report = this.report(p, id);
    if (ep.entry.sb.state !== 'destroyed') {
      this.#core.bus.publish({ kind: 'episode.ended', sandboxId: ep.entry.sb.id, episodeId: id, reason: ep.endReason ?? reason });
      await ep.entry.sb.destroy(`episode ${reason}`);
    }
    this.#episodes.delete(id);
    return report;
  }

  /** Shutdown: forget every episode (the core destroys the sandboxes). */
  async close(): Promise<void> {
    this.#unsubscribe();
    for (const t of this.#forgetTimers) clearTimeout(t);
    this.#forgetTimers.clear();
    this.#stepping.clear();
    this.#episodes.clear();
  }
}
