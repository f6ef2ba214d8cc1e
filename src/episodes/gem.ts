// GEM (gym-style) adapter for ROCK's /apis/v1/envs/gem routes. ROCK identifies an env by the
// sandbox_id returned from make; here that id is a stable handle onto the current episode.
// reset() ends the current episode and starts a fresh one in a fresh sandbox (no state leaks
// from one rollout into the next); step() takes ROCK's string action as a bash command, or a
// JSON tool call {"tool": …, "arguments": …}.
import { PraetorError } from '../errors.ts';
import type { Caller } from './host.ts';
import { ActionSchema, type Action } from './schema.ts';
import type { EpisodeService } from './service.ts';

interface Env { envId: string; tenant: string; episodeId: string; spec: Record<string, unknown> }

export class GemAdapter {
  readonly #episodes: EpisodeService;
  readonly #envs = new Map<string, Env>();

  constructor(episodes: EpisodeService) {
    this.#episodes = episodes;
    // An env whose episode is forgotten (ended past the retention) can neither step nor reset.
    episodes.onForget((episodeId) => {
      for (const [handle, env] of this.#envs) if (env.episodeId === episodeId) this.#envs.delete(handle);
    });
  }

  #env(p: Caller, handle: string): Env {
    const e = this.#envs.get(handle);
    if (!e || (!p.admin && e.tenant !== p.tenant)) throw new PraetorError('NOT_FOUND', `no env ${JSON.stringify(handle.slice(0, 80))}`, { hint: 'call make first' });
    return e;
  }

  async make(p: Caller, envId: string, spec: Record<string, unknown> = {}): Promise<{ sandbox_id: string }> {
    const ep = await this.#episodes.create(p, { task: envId, spec });
    const handle = ep.entry.sb.id;
    this.#envs.set(handle, { envId, tenant: p.tenant, episodeId: ep.id, spec });
    return { sandbox_id: handle };
  }

  async reset(p: Caller, handle: string, seed: number | null | undefined): Promise<{ observation: string; info: Record<string, unknown> }> {
    const env = this.#env(p, handle);
    const old = this.#episodes.get(p, env.episodeId);
    let ep = old;
    if (old.step > 0 || old.status !== 'running') {
      await this.#episodes.end(p, old.id, 'reset');
      ep = await this.#episodes.create(p, { task: env.envId, spec: env.spec, ...(seed != null ? { seed } : {}) });
      env.episodeId = ep.id;
    } else if (seed != null) ep.seed = seed;
    return { observation: env.envId, info: { episode_id: ep.id, sandbox_id: ep.entry.sb.id, seed: ep.seed } };
  }

  async step(p: Caller, handle: string, action: string): Promise<{ observation: string; reward: number; terminated: boolean; truncated: boolean; info: Record<string, unknown> }> {
    const env = this.#env(p, handle);
    const r = await this.#episodes.step(p, env.episodeId, parseAction(action));
    const penalty = r.safety.verdict === 'allow' ? 0 : this.#episodes.report(p, env.episodeId).suggested_penalty;
    return {
      observation: r.observation, reward: -penalty, terminated: r.terminated, truncated: r.truncated,
      info: { ...r.info, safety: r.safety, episode_id: r.episode_id, step: r.step, tool_call_id: r.tool_call_id, exit_code: r.exit_code },
    };
  }

  async close(p: Caller, handle: string): Promise<{ sandbox_id: string }> {
    const env = this.#env(p, handle);
    await this.#episodes.end(p, env.episodeId, 'closed').catch(() => {});
    this.#envs.delete(handle);
    return { sandbox_id: handle };
  }

  list(p: Caller, handle: string): { env_id: string[] } {
    return { env_id: [this.#env(p, handle).envId] };
  }
}

function parseAction(action: string): Action {
  if (action.trimStart().startsWith('{')) {
    try {
      const r = ActionSchema.safeParse(JSON.parse(action));
      if (r.success) return r.data;
    } catch { /* not JSON: a command */ }
  }
  return { tool: 'bash', arguments: { command: action } };
}
