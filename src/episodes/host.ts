// What the episode service needs from whoever hosts its sandboxes (the server's core). An
// interface here, implemented there, so the dependency runs one way: server → episodes.
import type { EventBus } from '../events/index.ts';
import type { Sandbox, SandboxSpecInput } from '../sandbox/index.ts';

/** The network phase of a sandbox: setup (mirrors reachable) or agent (the task's policy). */
export type Phase = 'setup' | 'agent';

/** Who is calling: a tenant, or an admin who sees every tenant. */
export interface Caller { readonly tenant: string; readonly admin: boolean }

/** A hosted sandbox as episodes see it. */
export interface HostedSandbox { readonly sb: Sandbox; phase: Phase; lastUsed: number }

export interface EpisodeHost {
  readonly bus: EventBus;
  readonly guard: { contained(sandboxId: string): Promise<void> };
  createSandbox(p: Caller, spec: SandboxSpecInput, opts: { policy?: unknown; phase?: Phase; episodeId?: string }): Promise<HostedSandbox>;
  setPhase(e: HostedSandbox, phase: Phase): void;
  onTerminateEpisode(fn: (sandboxId: string, reason: string) => void): void;
}
