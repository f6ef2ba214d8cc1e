// The TypeScript client for Praetor's API. Plain fetch, no dependencies; errors come back as
// PraetorApiError carrying the server's stable code, so callers branch on codes, not text.
export interface ClientOptions { url: string; token: string; timeoutMs?: number }

export class PraetorApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | undefined;
  constructor(status: number, code: string, message: string, hint?: string) {
    super(message);
    this.name = 'PraetorApiError';
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

export interface SandboxInfo { id: string; tenant: string; state: string; image: string; runtime: string; phase: string; limits: Record<string, number | null>; labels: Record<string, string>; episode_id: string | null; created_at: string }
export interface ExecResult { exec_id: string; exit_code: number | null; code: number; signal: string | null; timed_out: boolean; duration_ms: number; stdout: string; stderr: string }
export interface Safety { verdict: 'allow' | 'deny' | 'terminate'; rule: string | null; severity: string | null; evidence_event_ids: string[] }
export interface StepResult { episode_id: string; step: number; tool_call_id: string; observation: string; exit_code: number | null; terminated: boolean; truncated: boolean; safety: Safety; info: Record<string, unknown> }
export type Action =
  | { tool: 'bash'; arguments: { command: string; timeout_ms?: number }; tool_call_id?: string; model_call_id?: string }
  | { tool: 'read_file'; arguments: { path: string }; tool_call_id?: string; model_call_id?: string }
  | { tool: 'write_file'; arguments: { path: string; content: string }; tool_call_id?: string; model_call_id?: string }
  | { tool: 'edit'; arguments: { path: string; old_text: string; new_text: string }; tool_call_id?: string; model_call_id?: string };
export interface Report { episode_id: string; status: string; end_reason: string | null; steps: number; flags: Array<Safety & { step: number; tool_call_id: string }>; recommended_training_action: 'keep' | 'penalize' | 'mask' | 'drop'; suggested_penalty: number; rewards: Array<{ step: number | null; value: number; source: string | null }> }

export class PraetorClient {
  readonly url: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(o: ClientOptions) {
    this.url = o.url.replace(/\/+$/, '');
    this.#token = o.token;
    this.#timeoutMs = o.timeoutMs ?? 600_000;
  }

  async request<T>(method: string, path: string, body?: unknown, init: { raw?: Uint8Array; query?: Record<string, string> } = {}): Promise<T> {
    const q = init.query ? `?${new URLSearchParams(init.query)}` : '';
    const res = await fetch(`${this.url}${path}${q}`, {
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        ...(init.raw ? { 'content-type': 'application/octet-stream' } : body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.raw ? { body: init.raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    if (res.headers.get('content-type')?.startsWith('application/octet-stream')) {
      if (!res.ok) throw new PraetorApiError(res.status, 'HTTP_ERROR', await res.text());
      return new Uint8Array(await res.arrayBuffer()) as T;
    }
    const text = await res.text();
    let json: unknown;
    try { json = JSON.parse(text); } catch { json = undefined; }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
      throw new PraetorApiError(res.status, e?.code ?? 'HTTP_ERROR', e?.message ?? (text.slice(0, 500) || res.statusText), e?.hint);
    }
    return json as T;
  }

  // Sandboxes
  createSandbox(spec: Record<string, unknown> = {}): Promise<SandboxInfo> { return this.request('POST', '/v1/sandboxes', spec); }
  getSandbox(id: string): Promise<SandboxInfo> { return this.request('GET', `/v1/sandboxes/${enc(id)}`); }
  async listSandboxes(): Promise<SandboxInfo[]> { return (await this.request<{ sandboxes: SandboxInfo[] }>('GET', '/v1/sandboxes')).sandboxes; }
  async deleteSandbox(id: string): Promise<void> { await this.request('DELETE', `/v1/sandboxes/${enc(id)}`); }
  pause(id: string): Promise<SandboxInfo> { return this.request('POST', `/v1/sandboxes/${enc(id)}/pause`); }
  resume(id: string): Promise<SandboxInfo> { return this.request('POST', `/v1/sandboxes/${enc(id)}/resume`); }
  setPhase(id: string, phase: 'setup' | 'agent'): Promise<{ id: string; phase: string }> { return this.request('POST', `/v1/sandboxes/${enc(id)}/phase`, { phase }); }
  exec(id: string, command: string | string[], opts: { shell?: boolean; timeout_ms?: number; cwd?: string; env?: Record<string, string> } = {}): Promise<ExecResult> {
    return this.request('POST', `/v1/sandboxes/${enc(id)}/exec`, { command, ...opts });
  }
  stats(id: string): Promise<Record<string, unknown>> { return this.request('GET', `/v1/sandboxes/${enc(id)}/stats`); }

  // Sessions
  async openSession(id: string, name = 'default', opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<void> { await this.request('POST', `/v1/sandboxes/${enc(id)}/sessions`, { name, ...opts }); }
  /** `input` is the command's stdin; without it stdin is empty (a command reading it sees EOF). */
  runInSession(id: string, name: string, command: string, timeout_ms?: number, input?: string): Promise<{ output: string; exit_code: number; timed_out: boolean }> {
    return this.request('POST', `/v1/sandboxes/${enc(id)}/sessions/${enc(name)}/run`, { command, ...(timeout_ms ? { timeout_ms } : {}), ...(input !== undefined ? { input } : {}) });
  }
  async closeSession(id: string, name: string): Promise<void> { await this.request('DELETE', `/v1/sandboxes/${enc(id)}/sessions/${enc(name)}`); }

  // Files
  async readFile(id: string, path: string): Promise<string> { return (await this.request<{ content: string }>('GET', `/v1/sandboxes/${enc(id)}/files`, undefined, { query: { path } })).content; }
  async writeFile(id: string, path: string, content: string): Promise<number> { return (await this.request<{ size: number }>('PUT', `/v1/sandboxes/${enc(id)}/files`, { path, content })).size; }
  async upload(id: string, path: string, data: Uint8Array): Promise<number> { return (await this.request<{ size: number }>('PUT', `/v1/sandboxes/${enc(id)}/files/upload`, undefined, { raw: data, query: { path } })).size; }
  download(id: string, path: string): Promise<Uint8Array> { return this.request('GET', `/v1/sandboxes/${enc(id)}/files/download`, undefined, { query: { path } }); }

  // Episodes
  createEpisode(body: { task?: string; seed?: number; sandbox?: Record<string, unknown>; policy?: Record<string, unknown>; phases?: { setup?: string[] }; max_steps?: number } = {}): Promise<{ episode_id: string; sandbox_id: string; observation: string; tools: unknown[]; info: Record<string, unknown> }> {
    return this.request('POST', '/v1/episodes', body);
  }
  step(episodeId: string, action: Action): Promise<StepResult> { return this.request('POST', `/v1/episodes/${enc(episodeId)}/step`, { action }); }
  async stepBatch(steps: Array<{ episode_id: string; action: Action }>): Promise<Array<StepResult | { episode_id: string; error: { code: string; message: string } }>> {
    return (await this.request<{ results: Array<StepResult | { episode_id: string; error: { code: string; message: string } }> }>('POST', '/v1/episodes/step', { steps })).results;
  }
  reward(episodeId: string, value: number, opts: { step?: number; tool_call_id?: string; source?: string } = {}): Promise<{ event_id: string }> {
    return this.request('POST', `/v1/episodes/${enc(episodeId)}/reward`, { value, ...opts });
  }
  report(episodeId: string): Promise<Report> { return this.request('GET', `/v1/episodes/${enc(episodeId)}/report`); }
  endEpisode(episodeId: string): Promise<Report> { return this.request('DELETE', `/v1/episodes/${enc(episodeId)}`); }

  /** Streams a command's output over WebSocket; resolves with the exit frame. */
  execStream(id: string, command: string | string[], on: { stdout?: (s: string) => void; stderr?: (s: string) => void } = {}): Promise<Omit<ExecResult, 'stdout' | 'stderr'>> {
    const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/v1/sandboxes/${enc(id)}/exec/ws`, { headers: { authorization: `Bearer ${this.#token}` } } as unknown as string[]);
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (f: () => void) => { if (!settled) { settled = true; f(); } };
      ws.onopen = () => ws.send(JSON.stringify({ command }));
      ws.onmessage = (m) => {
        const f = JSON.parse(String(m.data)) as { type: string; data?: string; error?: { code: string; message: string; hint?: string } };
        if (f.type === 'stdout') on.stdout?.(f.data ?? '');
        else if (f.type === 'stderr') on.stderr?.(f.data ?? '');
        else if (f.type === 'exit') done(() => resolve(f as never));
        else if (f.type === 'error') done(() => reject(new PraetorApiError(400, f.error?.code ?? 'ERROR', f.error?.message ?? 'error', f.error?.hint)));
      };
      ws.onerror = () => done(() => reject(new PraetorApiError(0, 'WEBSOCKET', 'websocket error')));
      // A socket that closes without an exit or error frame (server restart, proxy timeout, a
      // dropped connection) must not leave the caller waiting forever.
      ws.onclose = (e) => done(() => reject(new PraetorApiError(0, 'WEBSOCKET', `the stream closed before the command ended (code ${e.code}${e.reason ? `: ${e.reason}` : ''})`)));
    });
  }
}

const enc = encodeURIComponent;
