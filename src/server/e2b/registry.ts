// What the E2B API knows about the sandboxes it created, on top of the ordinary Praetor entry:
// the template name, metadata, the absolute timeout (E2B's lifetime model), the envd access
// token, the processes started through envd, and the containment verdicts on them. The sandbox
// itself is the ServerCore's entry with every guardrail; this is only the E2B view of it, and it
// goes when the sandbox ends, however it ends (kill, timeout, idle reaper, containment).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EventBus, PraetorEvent } from '../../events/index.ts';
import type { ExecHandle } from '../../sandbox/index.ts';
import type { Principal } from '../auth.ts';
import type { SandboxEntry } from '../core.ts';

/** E2B's maximum sandbox lifetime (24 h); a longer timeout is clamped to it. */
export const MAX_TIMEOUT_S = 24 * 3600;
/** What the SDK gets when it sends no timeout (the SDK's own default is 300 s). */
export const DEFAULT_TIMEOUT_S = 300;

type Containment = Extract<PraetorEvent, { kind: 'containment' }>;
type Alert = Extract<PraetorEvent, { kind: 'alert' }>;

export interface ProcessConfigView { cmd: string; args: string[]; envs: Record<string, string>; cwd?: string | undefined }

export type ProcEvent =
  | { kind: 'stdout' | 'stderr'; data: Buffer }
  | { kind: 'end'; exitCode: number; exited: boolean; status: string; error?: string | undefined };

export interface E2bProcess {
  pid: number;
  tag: string | undefined;
  config: ProcessConfigView;
  handle: ExecHandle;
  stdin: boolean;
  /** ns timestamp at start: containment verdicts after it concern this process. */
  startedNs: number;
  listeners: Set<(e: ProcEvent) => void>;
}

export interface E2bSandbox {
  id: string;
  entry: SandboxEntry;
  principal: Principal;
  templateId: string;
  image: string;
  metadata: Record<string, string>;
  startedAt: number;
  endAt: number;
  allowInternetAccess: boolean | null;
  network: { allowOut?: string[] | undefined; denyOut?: string[] | undefined } | undefined;
  /** kept in memory only: connect() hands it to holders of the tenant's API key, as E2B does. */
  accessToken: string;
  tokenHash: Buffer;
  procs: Map<number, E2bProcess>;
  containments: Containment[];
  alerts: Map<string, Alert>;
  timer: NodeJS.Timeout | undefined;
}

const sha = (s: string) => createHash('sha256').update(s).digest();
const MAX_VERDICTS = 64;

export class E2bRegistry {
  readonly #byId = new Map<string, E2bSandbox>();
  /** hex SHA-256 of an access token → its sandbox: older SDKs (2.8) send no E2b-Sandbox-Id on /files and /health. */
  readonly #byToken = new Map<string, E2bSandbox>();
  readonly #unsubscribe: () => void;

  constructor(bus: EventBus) {
    // One listener for every E2B sandbox (the bus fans out synchronously on the containment
    // path): only cheap bookkeeping here, bounded per sandbox.
    this.#unsubscribe = bus.subscribe((e) => {
      if (e.kind !== 'containment' && e.kind !== 'alert') return;
      const r = this.#byId.get(e.sandboxId);
      if (!r) return;
      if (e.kind === 'alert') {
        r.alerts.set(e.id, e);
        if (r.alerts.size > MAX_VERDICTS) r.alerts.delete(r.alerts.keys().next().value!);
      } else {
        r.containments.push(e);
        if (r.containments.length > MAX_VERDICTS) r.containments.shift();
      }
    });
  }

  /** Registers a new sandbox; returns its record and the envd access token (shown once). */
  add(init: Omit<E2bSandbox, 'accessToken' | 'tokenHash' | 'procs' | 'containments' | 'alerts' | 'timer' | 'id' | 'startedAt' | 'endAt'>, timeoutS: number): { record: E2bSandbox; accessToken: string } {
    // The token names its sandbox before the secret (base64url has no '.'): a control replica
    // routes an envd call that carries only the token (older SDKs on /files and /health) to
    // the node holding the sandbox; the node still checks the whole token.
    const accessToken = `e2bat_${init.entry.sb.id}.${randomBytes(24).toString('base64url')}`;
    const record: E2bSandbox = {
      ...init, id: init.entry.sb.id, startedAt: Date.now(), endAt: 0, accessToken, tokenHash: sha(accessToken),
      procs: new Map(), containments: [], alerts: new Map(), timer: undefined,
    };
    this.#byId.set(record.id, record);
    this.#byToken.set(record.tokenHash.toString('hex'), record);
    init.entry.sb.onEnded(() => {
      if (record.timer) clearTimeout(record.timer);
      this.#byId.delete(record.id);
      this.#byToken.delete(record.tokenHash.toString('hex'));
    });
    this.setTimeout(record, timeoutS);
    return { record, accessToken };
  }

  /** E2B's timeout is absolute: the sandbox ends `seconds` from now, whatever it is doing. */
  setTimeout(r: E2bSandbox, seconds: number): void {
    const s = Math.max(0, Math.min(MAX_TIMEOUT_S, Math.floor(seconds)));
    r.endAt = Date.now() + s * 1000;
    if (r.timer) clearTimeout(r.timer);
    r.timer = setTimeout(() => { void r.entry.sb.destroy(`E2B timeout of ${s} s reached`); }, s * 1000);
    r.timer.unref();
  }

  /** The caller's E2B sandbox, or undefined (unknown and other tenants' ids alike). */
  get(p: Principal, id: string): E2bSandbox | undefined {
    const r = this.#byId.get(id);
    if (!r || (!p.admin && r.principal.tenant !== p.tenant) || r.entry.sb.state === 'destroyed') return undefined;
    return r;
  }

  /**
   * The sandbox of an envd call: the one E2b-Sandbox-Id names, with `ok` when the access token
   * matches (constant-time compare); without an id, the one the token belongs to (192 random
   * bits, so the token alone identifies and authenticates).
   */
  byAccessToken(id: string | undefined, token: string | undefined): { record: E2bSandbox | undefined; ok: boolean } {
    if (id === undefined) {
      const r = token === undefined ? undefined : this.#byToken.get(sha(token).toString('hex'));
      return r && r.entry.sb.state !== 'destroyed' ? { record: r, ok: true } : { record: undefined, ok: false };
    }
    const r = this.#byId.get(id);
    if (!r || r.entry.sb.state === 'destroyed') return { record: undefined, ok: false };
    return { record: r, ok: token !== undefined && timingSafeEqual(sha(token), r.tokenHash) };
  }

  list(p: Principal): E2bSandbox[] {
    return [...this.#byId.values()].filter((r) => (p.admin || r.principal.tenant === p.tenant) && r.entry.sb.state !== 'destroyed');
  }

  /** The rule that contained a process of this sandbox since `sinceNs`, as one sentence. */
  containedBecause(r: E2bSandbox, sinceNs: number): string | undefined {
    const c = r.containments.find((x) => x.ok && x.ts >= sinceNs && x.action !== 'alert');
    if (!c) return undefined;
    const alert = c.alertId ? r.alerts.get(c.alertId) : undefined;
    return `contained by Praetor: rule "${c.rule ?? alert?.rule ?? 'unknown'}" (${c.action})${alert ? `: ${alert.output}` : ''}; see the ledger and the dashboard for the evidence`;
  }

  close(): void {
    this.#unsubscribe();
    for (const r of this.#byId.values()) if (r.timer) clearTimeout(r.timer);
  }
}
