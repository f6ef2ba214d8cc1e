// The server's state: one sandbox manager, one guard (policy, gateway, sensors, rules,
// containment), one ledger, and the table of which tenant owns which sandbox. Every lookup
// goes through `sandbox(principal, id)`, which answers NOT_FOUND for another tenant's id — the
// same answer as for an id that never existed, so ids cannot be probed across tenants.
import { PolicySchema, policyAllowsNothing, Tenants, checkQuota, type Policy, type Usage } from '../config/index.ts';
import { defaultLedgerPath, type Ledger } from '../audit/index.ts';
import { PraetorError, errorMessage, notFound } from '../errors.ts';
import { EventBus } from '../events/index.ts';
import { startGuard, type Guard } from '../runner/index.ts';
import { SandboxManager, type Sandbox, type SandboxSpecInput, type Session } from '../sandbox/index.ts';
import { CgroupSampler } from '../sensors/index.ts';
import type { Principal } from './auth.ts';
import { TokenStore } from './auth.ts';
import { sandboxModelRoute } from './model-sandbox-route.ts';
import type { ModelGatewayOptions } from './model-proxy.ts';

import type { Phase } from '../episodes/index.ts';
export type { Phase };

export interface SandboxEntry {
  sb: Sandbox;
  tenant: string;
  sessions: Map<string, Session>;
  phase: Phase;
  policy: Policy | undefined;
  episodeId: string | undefined;
  lastUsed: number;
  createdAt: number;
  /** per-sandbox idle TTL (ROCK's auto_clear_time_minutes); the tenant's when absent. */
  ttlSeconds?: number | undefined;
  /** session commands running now (each is a command of its own while it runs). */
  sessionRuns: number;
}

export interface CoreOptions {
  stateDir: string;
  /** SQLite path or postgres:// URL; default the embedded ledger in the state directory. */
  db?: string | undefined;
  /** record events in the ledger (default true). */
  ledger?: boolean;
  /** how long running sandboxes stay frozen while the ledger is down before they are destroyed. */
  ledgerGraceMs?: number;
  /** sensors and rules (default true). */
  detect?: boolean;
  policyFile?: string | undefined;
  /** start the egress gateway so sandboxes may get per-request network policies (default true). */
  gateway?: boolean;
  tenants?: Tenants;
  log?: (msg: string) => void;
  reapIntervalMs?: number;
  /** request body limit, for the API and the sandboxes' model route (default 16 MiB). */
  bodyLimit?: number;
  /** the model upstream behind /v1/chat/completions and the sandboxes' model route. */
  model?: ModelGatewayOptions;
  /**
   * Image names clients ask for, mapped to images in the cache or `host` (e.g. ROCK's SDK asks
   * for `python:3.11` by default). An alias never hides a real image of the same name.
   */
  imageAliases?: Readonly<Record<string, string>>;
  /** cluster node: sandbox ids reserved by the control plane (default: chosen here). */
  sandboxIds?: SandboxIdSource;
}

/**
 * Where a cluster node's sandbox ids come from, and where their ends go: the control plane's
 * reservation table (src/cluster/node-ids.ts). Absent in single-machine mode.
 */
export interface SandboxIdSource {
  /** the id for a new sandbox of `p` (throws when the reservation is not this node's, or quota/capacity is gone). */
  claim(p: Principal, want: Usage): Promise<string>;
  /** the sandbox now runs. */
  confirm(id: string): void;
  /** the sandbox ended, or its creation failed: capacity and quota return. */
  ended(id: string, reason: string): void;
  /** resolves once the confirms and ends reported so far are recorded (a reply waits for it). */
  settled?(): Promise<void>;
}

export const DEFAULT_BODY_LIMIT = 16 * 2 ** 20;

export class ServerCore {
  readonly stateDir: string;
  readonly bus: EventBus;
  readonly manager: SandboxManager;
  readonly guard: Guard;
  readonly tokens: TokenStore;
  readonly tenants: Tenants;
  readonly #entries = new Map<string, SandboxEntry>();
  readonly #pending = new Map<string, Usage>();
  readonly #reaper: NodeJS.Timeout;
  readonly #log: (msg: string) => void;
  readonly #terminateHandlers: Array<(sandboxId: string, reason: string) => void> = [];
  readonly startedAt = Date.now();

  readonly #modelRoute: { close(): void } | undefined;

  readonly #imageAliases: Readonly<Record<string, string>>;
  readonly #ids: SandboxIdSource | undefined;

  private constructor(o: CoreOptions, bus: EventBus, manager: SandboxManager, guard: Guard, modelRoute: { close(): void } | undefined) {
    this.#modelRoute = modelRoute;
    this.stateDir = o.stateDir;
    this.bus = bus;
    this.manager = manager;
    this.guard = guard;
    this.tokens = new TokenStore(o.stateDir);
    this.tenants = o.tenants ?? Tenants.load(o.stateDir);
    this.#log = o.log ?? (() => {});
    this.#imageAliases = o.imageAliases ?? {};
    this.#ids = o.sandboxIds;
    this.#reaper = setInterval(() => this.#reapIdle(), o.reapIntervalMs ?? 5000);
    this.#reaper.unref();
  }

  static async open(o: CoreOptions): Promise<ServerCore> {
    const bus = new EventBus();
    const core: { c?: ServerCore } = {};
    // Sandboxes whose policy sets network.modelGateway reach the model over their egress link.
    const modelRoute = o.model ? sandboxModelRoute({
      model: o.model, bus, bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT,
      episodeOf: (id) => core.c?.episodeOf(id),
    }) : undefined;
    let guard: Guard | undefined;
    try {
      guard = await startGuard({
        ...(modelRoute ? { model: modelRoute } : {}),
        bus, stateDir: o.stateDir, detect: o.detect ?? true, log: o.log ?? (() => {}), gateway: o.gateway ?? true,
        // The ledger goes through the guard, as for `praetor run`: one code path that refuses new
        // sandboxes and freezes running ones while it cannot record (runner/ledger-guard.ts).
        ...(o.ledger !== false ? { ledgerPath: o.db ?? defaultLedgerPath(o.stateDir) } : {}),
        ...(o.ledgerGraceMs !== undefined ? { ledgerGraceMs: o.ledgerGraceMs } : {}),
        // An episode ends when contained (its service destroys the sandbox): hold it frozen so
        // the rest of the step's command never runs after the verdict.
        holdContained: (sb) => sb.spec.labels.episode !== undefined,
        ...(o.policyFile ? { policyFile: o.policyFile } : {}),
        onTerminateEpisode: (id, reason) => { if (core.c) for (const fn of core.c.#terminateHandlers) fn(id, reason); },
      });
      const manager = await SandboxManager.open({ stateDir: o.stateDir, bus, network: guard.network });
      core.c = new ServerCore(o, bus, manager, guard, modelRoute);
      return core.c;
    } catch (e) {
      modelRoute?.close();
      await guard?.close().catch(() => {});
      throw e;
    }
  }

  /** Called when containment terminates the episode a sandbox serves. */
  onTerminateEpisode(fn: (sandboxId: string, reason: string) => void): void { this.#terminateHandlers.push(fn); }

  /** Switches the network phase; a sandbox whose policy opens nothing has no network to switch. */
  setPhase(e: SandboxEntry, phase: Phase): void {
    if (!policyAllowsNothing(e.policy)) this.guard.setPhase(e.sb.id, phase);
    e.phase = phase;
  }

  /** The ledger recording this server (undefined when run without one). */
  get ledger(): Ledger | undefined { return this.guard.ledger?.ledger; }

  /** Ledger health; while it cannot record, new sandboxes are refused and running ones frozen. */
  get ledgerError(): string | undefined { return this.guard.ledger?.error; }

  usage(tenant: string): Usage {
    const u: Usage = { sandboxes: 0, cpus: 0, memoryBytes: 0 };
    for (const e of this.#entries.values()) {
      if (e.tenant !== tenant) continue;
      u.sandboxes++; u.cpus += e.sb.spec.cpus; u.memoryBytes += e.sb.spec.memoryBytes;
    }
    const p = this.#pending.get(tenant);
    if (p) { u.sandboxes += p.sandboxes; u.cpus += p.cpus; u.memoryBytes += p.memoryBytes; }
    return u;
  }

  async createSandbox(p: Principal, spec: SandboxSpecInput, opts: { policy?: unknown; phase?: Phase; episodeId?: string } = {}): Promise<SandboxEntry> {
    this.guard.ledger?.check();
    const settings = this.tenants.get(p.tenant);
    let policy: Policy | undefined = settings.policy;
    if (opts.policy !== undefined) {
      const r = PolicySchema.safeParse(opts.policy);
      if (!r.success) {
        const i = r.error.issues[0]!;
        throw new PraetorError('BAD_POLICY', `policy.${i.path.join('.')}: ${i.message}`, { hint: 'see docs/policy.md; unknown keys are errors' });
      }
      policy = r.data;
      // A brokered secret read from the server's own environment (`env:`) names a value of the
      // operator's, not the tenant's: from a request it would let a tenant send, say, the model
      // upstream's key to a host it allows. Only configured policies may do that.
      const fromEnv = (policy.network?.secrets ?? []).filter((x) => x.env !== undefined).map((x) => x.name);
      if (fromEnv.length > 0) throw new PraetorError('BAD_POLICY', `policy.network.secrets ${fromEnv.join(', ')}: env: reads the server's environment and is not accepted in a request`, { hint: 'give the value inline (value:), or put the secret in the tenant\'s configured policy' });
    }
    if (policy?.network?.modelGateway && !this.#modelRoute) {
      throw new PraetorError('BAD_POLICY', 'policy.network.modelGateway is set, but this server has no model upstream', { hint: 'start the server with --model-upstream URL, or remove modelGateway from the policy' });
    }
    // Fail closed: a per-sandbox policy that opens the network needs a gateway that enforces it.
    if (!policyAllowsNothing(policy) && !this.guard.network) {
      throw new PraetorError('RUNTIME_UNAVAILABLE', 'this policy allows network destinations but the server has no egress gateway', { hint: 'remove the network allow rules, or start the server with a gateway-enabled guard' });
    }
    const full = this.guard.applyPolicy({
      ...spec, ...(spec.image !== undefined ? { image: this.resolveImage(spec.image) } : {}), labels: { ...(spec.labels ?? {}), tenant: p.tenant, ...(opts.episodeId ? { episode: opts.episodeId } : {}) },
      ...(policy?.network ? { network: policy.network } : {}), ...(opts.phase ? { phase: opts.phase } : {}),
      ...(policy?.canaries !== undefined ? { canaries: policy.canaries } : {}),
    });
    const want = { cpus: full.cpus ?? 1, memoryBytes: full.memoryBytes ?? 2 ** 30 };
    checkQuota(p.tenant, settings, this.usage(p.tenant), want);
    const pend = this.#pending.get(p.tenant) ?? { sandboxes: 0, cpus: 0, memoryBytes: 0 };
    pend.sandboxes++; pend.cpus += want.cpus; pend.memoryBytes += want.memoryBytes;
    this.#pending.set(p.tenant, pend);
    let sb: Sandbox;
    let id: string | undefined;
    try {
      id = await this.#ids?.claim(p, { sandboxes: 1, ...want });
      sb = await this.manager.create(full, id !== undefined ? { id } : {});
    } catch (e) {
      if (id !== undefined) this.#ids!.ended(id, `creation failed: ${errorMessage(e)}`);
      throw e;
    } finally {
      pend.sandboxes--; pend.cpus -= want.cpus; pend.memoryBytes -= want.memoryBytes;
    }
    if (id !== undefined) {
      const ids = this.#ids!;
      ids.confirm(id);
      sb.onEnded((reason) => ids.ended(id, reason));
    }
    const entry: SandboxEntry = {
      sb, tenant: p.tenant, sessions: new Map(), phase: opts.phase ?? 'agent', policy,
      episodeId: opts.episodeId, lastUsed: Date.now(), createdAt: Date.now(), sessionRuns: 0,
    };
    // Idle means idle since the last command *ended*, not since the last request started.
    sb.onCommandEnd(() => { entry.lastUsed = Date.now(); });
    const sampler = new CgroupSampler(this.bus, { id: sb.id, usage: () => sb.usage(), cpuLimit: sb.spec.cpus, memLimitBytes: sb.spec.memoryBytes, onCommandEnd: (fn) => sb.onCommandEnd(fn), pids: () => sb.cgroup.pids() });
    sb.onEnded(() => { sampler.stop(); this.#entries.delete(sb.id); for (const s of entry.sessions.values()) s.close(); });
    this.#entries.set(sb.id, entry);
    try { this.guard.watch(sb); } catch (e) {
      await sb.destroy('guard could not watch it');
      throw new PraetorError('SANDBOX_FAILED', `the guard could not watch the sandbox: ${errorMessage(e)}`, { hint: 'see `praetor status`', cause: e });
    }
    return entry;
  }

  /**
   * The image a requested name stands for: an image in the cache by that name, else its alias.
   * An unknown name fails with how to import it or alias it, naming both fixes.
   */
  resolveImage(name: string): string {
    const known = this.manager.images.list().map((i) => i.name);
    if (name === 'host' || known.includes(name)) return name;
    const alias = this.#imageAliases[name];
    if (alias !== undefined) return alias;
    throw new PraetorError('UNKNOWN_IMAGE', `no image named "${name}"${known.length ? ` (known: host, ${known.join(', ')})` : ''}`, {
      hint: `import it with \`praetor image import PATH --name ${name}\`, or map the name with \`praetor serve --image-alias ${name}=IMAGE\` (IMAGE an imported image or host)`,
    });
  }

  /** The episode a sandbox serves (for tagging what it does; no tenant check: internal only). */
  episodeOf(sandboxId: string): string | undefined { return this.#entries.get(sandboxId)?.episodeId; }

  /** The caller's sandbox; NOT_FOUND for unknown ids and for other tenants' ids alike. */
  sandbox(p: Principal, id: string): SandboxEntry {
    const e = this.#entries.get(id);
    if (!e || (!p.admin && e.tenant !== p.tenant)) throw notFound('sandbox', id);
    e.lastUsed = Date.now();
    return e;
  }

  list(p: Principal): SandboxEntry[] {
    return [...this.#entries.values()].filter((e) => p.admin || e.tenant === p.tenant);
  }

  get all(): SandboxEntry[] { return [...this.#entries.values()]; }

  async destroy(p: Principal, id: string, reason = 'deleted through the API'): Promise<void> {
    const e = this.sandbox(p, id);
    await e.sb.destroy(reason);
  }

  /** The tenant that owns a sandbox (no tenant check: internal only). */
  tenantOf(sandboxId: string): string | undefined { return this.#entries.get(sandboxId)?.tenant; }

  /** A command is running: an exec, a file operation, or a command inside a session shell. */
  static busy(e: SandboxEntry): boolean {
    return e.sessionRuns > 0 || e.sb.runningCommands > 0;
  }

  #reapIdle(): void {
    const now = Date.now();
    for (const e of this.#entries.values()) {
      const ttl = e.ttlSeconds ?? this.tenants.get(e.tenant).idleTtlSeconds;
      // Never mid-command: a long exec or session command (up to 24 h) is use, not idleness.
      if (ttl > 0 && now - e.lastUsed > ttl * 1000 && e.sb.state !== 'destroyed' && !ServerCore.busy(e)) {
        this.#log(`sandbox ${e.sb.id} of ${e.tenant} idle for ${ttl} s: destroying`);
        void e.sb.destroy(`idle for more than ${ttl} s`);
      }
    }
  }

  /**
   * Resolves once everything a reply acknowledges is recorded: the ledger's records so far and,
   * on a cluster node, the catalog's confirms and ends (a killed sandbox is `ended` for every
   * replica before the kill's reply leaves).
   */
  async durable(): Promise<void> {
    await Promise.all([this.guard.flush(), this.#ids?.settled?.()]);
  }

  async close(): Promise<void> {
    clearInterval(this.#reaper);
    await this.manager.close();
    this.#modelRoute?.close();
    await this.guard.flush().catch(() => {});
    await this.guard.close().catch((e: unknown) => this.#log(`guard close: ${errorMessage(e)}`));
  }
}

export { notFound } from '../errors.ts';
