// The dashboard's server side: read-only views over the live server (overview, one sandbox,
// episode traces, rules with hit counts, ledger verification, host status), the live event
// stream the browser listens to, and the built web/dist bundle served at `/`.
//
// The stream authenticates with the token as its first message: a browser cannot set an
// Authorization header on a WebSocket, and a token in the URL would end up in access logs,
// history and Referer headers (threat: token theft from logs). Events are delivered only to
// the tenant owning the sandbox (admins see all); an event whose sandbox is not yet known (it is
// published while the sandbox is being created) waits briefly and, still unknown, goes to admins
// only — never to everyone (threat: one tenant watching another's commands and flows).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { defaultLedgerPath, openReader, traceEpisode, verifyLedger, type VerifyReport } from '../../audit/index.ts';
import { PraetorError, errorMessage } from '../../errors.ts';
import type { EventKind, PraetorEvent } from '../../events/index.ts';
import { loadRules, type CompiledRuleSet } from '../../rules/index.ts';
import { hostStatus } from '../../runner/index.ts';
import type { Principal } from '../auth.ts';
import { notFound, type SandboxEntry } from '../core.ts';
import { parseInput, principal, route, type Ctx } from '../http.ts';

const STREAM_PATH = '/v1/dashboard/stream';
const SAMPLE_KINDS: ReadonlySet<EventKind> = new Set(['resource.sample', 'gpu.sample']);
// Delivered at once (alert latency is a target); everything else rides the next batch.
const URGENT = /^(alert|containment|sandbox\.|episode\.|sensor\.)/;
const SAMPLE_FLUSH_MS = 250;
const OTHER_FLUSH_MS = 50;
const UNKNOWN_TENANT_WAIT_NS = 2e9;
const MAX_ALERTS = 500;
const MAX_EVENTS_PER_SANDBOX = 1000;
const MAX_SAMPLES_PER_SANDBOX = 120;
const MAX_SANDBOXES_REMEMBERED = 2000;
const MAX_BUFFERED_BYTES = 8 * 2 ** 20;

/** Paths the auth hook lets through: the public bundle and the stream (which authenticates itself). */
export function isDashboardOpenPath(path: string): boolean {
  return path === '/' || path === '/index.html' || path === '/favicon.ico' || path.startsWith('/assets/') || path === STREAM_PATH;
}

type Alert = Extract<PraetorEvent, { kind: 'alert' }>;
type Sample = { ts: number; cpuPct: number; memBytes: number; memLimitBytes: number | null; gpuPct?: number };
type Conn = { principal: Principal; send: (s: string) => void; buffered: () => number };
type Memo = { tenant: string; episodeId: string | undefined; events: PraetorEvent[]; samples: Sample[] };

const IdParams = z.object({ id: z.string().min(1).max(200).describe('sandbox or episode id') }).strict();

export function dashboardRoutes(app: FastifyInstance, ctx: Ctx, opts: { webRoot?: string } = {}): void {
  const { core } = ctx;
  const webRoot = opts.webRoot ?? fileURLToPath(new URL('../../../web/dist/', import.meta.url));
  const memo = new Map<string, Memo>();
  const alerts: Alert[] = [];
  const containments = new Map<string, Extract<PraetorEvent, { kind: 'containment' }>[]>();
  const hits = new Map<string, { n: number; last: number }>();
  const conns = new Set<Conn>();
  let queue: PraetorEvent[] = [];
  let samples = new Map<string, PraetorEvent>();
  let urgentTimer: NodeJS.Immediate | undefined;
  let otherTimer: NodeJS.Timeout | undefined;
  let sampleTimer: NodeJS.Timeout | undefined;
  let entriesAt = 0;

  // Who owns a sandbox, remembered beyond its destruction so its events and trace stay visible
  // to its tenant; refreshed from the live table at most every 10 ms on a miss.
  const memoOf = (id: string): Memo | undefined => {
    let m = memo.get(id);
    if (m) return m;
    const now = Date.now();
    if (now - entriesAt < 10) return undefined;
    entriesAt = now;
    for (const e of core.all) remember(e);
    return memo.get(id);
  };
  const remember = (e: SandboxEntry): Memo => {
    let m = memo.get(e.sb.id);
    if (!m) {
      m = { tenant: e.tenant, episodeId: e.episodeId, events: [], samples: [] };
      memo.set(e.sb.id, m);
      if (memo.size > MAX_SANDBOXES_REMEMBERED) {
        for (const [k] of memo) { if (!core.all.some((x) => x.sb.id === k)) { memo.delete(k); break; } }
      }
    }
    m.episodeId ??= e.episodeId;
    return m;
  };
  const visible = (p: Principal, m: Memo | undefined): boolean => p.admin || (m !== undefined && m.tenant === p.tenant);

  // Runs inside the bus's synchronous fan-out, on the containment path: only cheap bookkeeping
  // here, serialisation and sending happen on the next turn.
  const onEvent = (e: PraetorEvent): void => {
    const m = memoOf(e.sandboxId);
    if (SAMPLE_KINDS.has(e.kind)) {
      if (m) pushSample(m, e);
      samples.set(e.kind === 'gpu.sample' ? `g:${e.sandboxId}:${e.gpu}` : `r:${e.sandboxId}`, e);
      sampleTimer ??= setTimeout(flush, SAMPLE_FLUSH_MS);
      return;
    }
    const ev = e.episodeId === undefined && m?.episodeId !== undefined ? { ...e, episodeId: m.episodeId } : e;
    if (m) { m.events.push(ev); if (m.events.length > MAX_EVENTS_PER_SANDBOX) m.events.splice(0, m.events.length - MAX_EVENTS_PER_SANDBOX); }
    if (ev.kind === 'alert') {
      alerts.push(ev);
      if (alerts.length > MAX_ALERTS) alerts.shift();
      const h = hits.get(ev.rule) ?? { n: 0, last: 0 };
      h.n++; h.last = ev.ts;
      hits.set(ev.rule, h);
    } else if (ev.kind === 'containment' && ev.alertId) {
      const list = containments.get(ev.alertId) ?? [];
      list.push(ev);
      containments.set(ev.alertId, list);
      if (containments.size > MAX_ALERTS * 2) containments.delete(containments.keys().next().value!);
    }
    queue.push(ev);
    if (URGENT.test(ev.kind)) urgentTimer ??= setImmediate(flush);
    else otherTimer ??= setTimeout(flush, OTHER_FLUSH_MS);
  };
  const pushSample = (m: Memo, e: PraetorEvent): void => {
    if (e.kind === 'resource.sample') {
      m.samples.push({ ts: e.ts, cpuPct: e.cpuPct, memBytes: e.memBytes, memLimitBytes: e.memLimitBytes });
      if (m.samples.length > MAX_SAMPLES_PER_SANDBOX) m.samples.shift();
    } else if (e.kind === 'gpu.sample') {
      const last = m.samples.at(-1);
      if (last) last.gpuPct = e.utilPct;
    }
  };

  function flush(): void {
    if (urgentTimer) { clearImmediate(urgentTimer); urgentTimer = undefined; }
    if (otherTimer) { clearTimeout(otherTimer); otherTimer = undefined; }
    if (sampleTimer) { clearTimeout(sampleTimer); sampleTimer = undefined; }
    const now = Date.now() * 1e6;
    const batch = [...queue, ...samples.values()];
    queue = []; samples = new Map();
    if (conns.size === 0) return;
    const out: { json: string; m: Memo | undefined; sample: boolean }[] = [];
    for (const e of batch) {
      const m = memoOf(e.sandboxId);
      if (!m && now - e.ts < UNKNOWN_TENANT_WAIT_NS && !SAMPLE_KINDS.has(e.kind)) { queue.push(e); continue; }
      out.push({ json: JSON.stringify(e), m, sample: SAMPLE_KINDS.has(e.kind) });
    }
    if (queue.length) otherTimer = setTimeout(flush, 200);
    for (const c of conns) {
      const congested = c.buffered() > MAX_BUFFERED_BYTES; // a slow browser loses samples, never alerts
      const parts = out.filter((o) => visible(c.principal, o.m) && !(congested && o.sample)).map((o) => o.json);
      if (parts.length) c.send(`{"type":"events","events":[${parts.join(',')}]}`);
    }
  }

  const unsubscribe = core.bus.subscribe((e) => { try { onEvent(e); } catch { /* the dashboard must never break the bus */ } });
  app.addHook('onClose', async () => {
    unsubscribe();
    if (urgentTimer) clearImmediate(urgentTimer);
    if (otherTimer) clearTimeout(otherTimer);
    if (sampleTimer) clearTimeout(sampleTimer);
  });

  app.get(STREAM_PATH, { websocket: true }, (socket, req) => {
    let conn: Conn | undefined;
    const deadline = setTimeout(() => socket.close(4401, 'no token'), 5000);
    socket.on('message', (raw: Buffer) => {
      if (conn) return; // the stream is one-way after the token
      clearTimeout(deadline);
      let token: unknown;
      try { token = (JSON.parse(raw.toString('utf8')) as { token?: unknown }).token; } catch { token = undefined; }
      const p = typeof token === 'string' ? core.tokens.verify(token) : undefined;
      if (!p) { socket.close(4401, 'invalid token'); return; }
      conn = { principal: p, send: (s) => socket.send(s), buffered: () => socket.bufferedAmount };
      conns.add(conn);
      socket.send(JSON.stringify({ type: 'ready', tenant: p.tenant, admin: p.admin }));
    });
    socket.on('close', () => { clearTimeout(deadline); if (conn) conns.delete(conn); });
    socket.on('error', () => socket.terminate());
    void req;
  });

  const rowOf = (e: SandboxEntry) => ({
    id: e.sb.id, tenant: e.tenant, state: e.sb.state, image: e.sb.spec.image, runtime: e.sb.spec.runtime,
    episodeId: e.episodeId ?? null, phase: e.phase, createdAt: e.createdAt, cpus: e.sb.spec.cpus, memoryBytes: e.sb.spec.memoryBytes,
  });
  const alertRow = (a: Alert) => ({
    id: a.id, ts: a.ts, sandboxId: a.sandboxId, episodeId: a.episodeId ?? memo.get(a.sandboxId)?.episodeId ?? null,
    rule: a.rule, priority: a.priority, output: a.output, actions: a.actions, evidence: a.evidence,
    containment: (containments.get(a.id) ?? []).map((c) => ({ action: c.action, ok: c.ok, latencyMs: c.latencyMs, ts: c.ts, ...(c.error ? { error: c.error } : {}) })),
  });
  const doc = (path: string, summary: string, errors: number[] = []) => ({ method: 'GET' as const, path, summary, tag: 'dashboard', errors });

  route(app, ctx, doc('/v1/dashboard/whoami', 'the principal behind the presented token'), async (req) => {
    const p = principal(req);
    return { tenant: p.tenant, admin: p.admin };
  });

  route(app, ctx, doc('/v1/dashboard/overview', 'live counts, sandboxes with recent samples, recent alerts, degraded sensors'), async (req) => {
    const p = principal(req);
    const live = core.list(p);
    for (const e of live) remember(e);
    const samplesOf: Record<string, Sample[]> = {};
    for (const e of live) samplesOf[e.sb.id] = memo.get(e.sb.id)?.samples ?? [];
    const mine = alerts.filter((a) => visible(p, memo.get(a.sandboxId))).slice(-200).reverse();
    const status = await cachedStatus();
    return {
      principal: { tenant: p.tenant, admin: p.admin },
      counts: {
        sandboxes: live.length, running: live.filter((e) => e.sb.state === 'running').length,
        paused: live.filter((e) => e.sb.state === 'paused').length,
        episodes: new Set(live.map((e) => e.episodeId).filter((x) => x !== undefined)).size,
      },
      sandboxes: live.map(rowOf), alerts: mine.map(alertRow),
      degraded: [...new Set([...status.degraded, ...core.guard.degraded()])], samples: samplesOf,
    };
  });

  route(app, ctx, doc('/v1/dashboard/sandboxes/:id', "a sandbox's recent events (processes, flows, DNS, alerts) and samples", [404]), async (req) => {
    const p = principal(req);
    const id = parseInput(IdParams, req.params, 'path').id;
    // list(), not sandbox(): looking at a sandbox must not count as using it (idle reaping).
    const live = core.list(p).find((e) => e.sb.id === id);
    const m = live ? remember(live) : memo.get(id);
    if (!m || !visible(p, m)) throw notFound('sandbox', id);
    const sandbox = live ? rowOf(live) : { id, tenant: m.tenant, state: 'destroyed', image: '', runtime: '', episodeId: m.episodeId ?? null, phase: '', createdAt: 0, cpus: 0, memoryBytes: 0 };
    return { sandbox, events: m.events, samples: m.samples, canAct: live !== undefined };
  });

  const trace = async (req: Parameters<Parameters<typeof route>[3]>[0]) => {
    const p = principal(req);
    const id = parseInput(IdParams, req.params, 'path').id;
    await core.ledger?.flush().catch(() => {});
    const { store } = await openReader(ledgerDb());
    try {
      const t = await traceEpisode(store, id);
      // An episode is yours when every sandbox it ran in is; unknown sandboxes fail closed.
      if (t.sandboxes.length === 0 || !t.sandboxes.every((s) => visible(p, memoOf(s)))) throw notFound('episode', id);
      return t;
    } finally { await store.close(); }
  };
  route(app, ctx, doc('/v1/dashboard/episodes/:id/trace', "an episode's timeline from reward back to the packet", [404]), trace);
  route(app, ctx, doc('/v1/episodes/:id/trace', "an episode's timeline from reward back to the packet", [404]), trace);

  let rules: Promise<CompiledRuleSet> | undefined;
  route(app, ctx, doc('/v1/rules', 'loaded rules with maturity, actions and hit counts since the server started'), async () => {
    rules ??= loadRules([]);
    const set = await rules;
    return {
      rules: set.rules.map((r) => ({
        name: r.name, desc: r.desc, priority: r.priority, maturity: r.maturity, tags: r.tags,
        declaredActions: r.declaredActions, actions: r.actions, enabled: r.enabled,
        hits: hits.get(r.name)?.n ?? 0, lastHitTs: hits.get(r.name)?.last ?? null,
      })),
    };
  });

  let audit: { at: number; value: Promise<unknown> } | undefined;
  route(app, ctx, doc('/v1/audit/status', 'ledger verification: verified up to record N, last checkpoint (cached 15 s; ?fresh=1 re-verifies)'), async (req) => {
    const fresh = (req.query as { fresh?: string } | undefined)?.fresh === '1';
    if (!audit || fresh || Date.now() - audit.at > 15_000) audit = { at: Date.now(), value: auditStatus() };
    return audit.value;
  });
  const ledgerDb = (): string => (core.ledger && core.ledger.location.startsWith('/') ? core.ledger.location : defaultLedgerPath(core.stateDir));
  const auditStatus = async () => {
    if (!core.ledger) return { ok: false, verifiedThrough: null, records: 0, checkpoints: 0, sealedThrough: 0, unsealed: 0, prunedThrough: 0, lastCheckpoint: null, problems: [{ where: 'server', reason: 'this server runs without a ledger' }], warnings: [], checkedAt: Date.now(), durationMs: 0, backend: 'none' };
    await core.ledger.flush().catch(() => {});
    const r: VerifyReport = await verifyLedger({ db: ledgerDb(), stateDir: core.stateDir });
    let lastCheckpoint: { n: number; throughSeq: number; ts: string | null } | null = null;
    const { store } = await openReader(ledgerDb());
    try {
      const cp = await store.lastCheckpoint();
      if (cp) {
        const ts = (JSON.parse(cp.payload) as { ts?: number }).ts;
        lastCheckpoint = { n: cp.n, throughSeq: cp.seq, ts: typeof ts === 'number' ? new Date(ts > 1e14 ? ts / 1e6 : ts).toISOString() : null };
      }
    } finally { await store.close(); }
    return {
      ok: r.ok, verifiedThrough: r.problems.length === 0 ? r.lastSeq : null, records: r.records, checkpoints: r.checkpoints,
      sealedThrough: r.sealedThrough, unsealed: r.unsealed, prunedThrough: r.prunedThrough, lastCheckpoint,
      problems: r.problems.map((x) => ({ where: x.where, reason: x.reason })), warnings: r.warnings,
      checkedAt: Date.now(), durationMs: r.durationMs, backend: r.backend,
    };
  };

  // hostStatus probes runtimes and sensors (subprocesses): cached, never on every overview.
  let status: { at: number; value: Promise<Awaited<ReturnType<typeof hostStatus>>> } | undefined;
  const cachedStatus = async () => {
    if (!status || Date.now() - status.at > 30_000) status = { at: Date.now(), value: hostStatus(core.stateDir).catch((e: unknown) => ({ ok: false, checks: [{ name: 'status', ok: false, detail: errorMessage(e) }], degraded: [] })) };
    return status.value;
  };
  route(app, ctx, doc('/v1/status', 'host status (what works, what runs degraded), as `praetor status` prints it'), async () => {
    const s = await cachedStatus();
    const live = core.guard.degraded();
    return { ...s, degraded: [...new Set([...s.degraded, ...live])] };
  });

  // ---- the built bundle ----
  let files = new Map<string, string>();
  let scannedAt = 0;
  const scan = (): void => {
    if (Date.now() - scannedAt < 2000) return;
    scannedAt = Date.now();
    const next = new Map<string, string>();
    const walk = (dir: string): void => {
      for (const d of readdirSync(dir, { withFileTypes: true })) {
        const f = join(dir, d.name);
        if (d.isDirectory()) walk(f); else if (d.isFile()) next.set(`/${relative(webRoot, f).split('\\').join('/')}`, f);
      }
    };
    if (existsSync(webRoot)) walk(webRoot);
    files = next;
  };
  // Only files found in web/dist are served, looked up by exact path: no path from the request
  // ever reaches the filesystem (threat: traversal out of the bundle).
  const serve = async (req: { url: string }, reply: import('fastify').FastifyReply) => {
    let path = req.url.split('?')[0]!;
    if (path === '/') path = '/index.html';
    if (!files.has(path)) scan();
    const file = files.get(path);
    void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer')
      .header('content-security-policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
      .header('x-frame-options', 'DENY');
    if (!file) {
      if (path !== '/index.html') throw new PraetorError('NOT_FOUND', `no dashboard file ${path.slice(0, 200)}`, { hint: 'reload the dashboard' });
      return reply.status(503).type('text/plain; charset=utf-8').send('The dashboard is not built. Run: npm run build:web\n');
    }
    void reply.header('cache-control', path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    return reply.type(MIME[extname(file)] ?? 'application/octet-stream').header('content-length', statSync(file).size).send(readFileSync(file));
  };
  app.get('/', serve);
  app.get('/index.html', serve);
  app.get('/assets/*', serve);
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2',
};
