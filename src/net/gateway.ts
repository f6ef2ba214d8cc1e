// The egress gateway: one per praetor process, in praetor's own network namespace. It owns
// the nftables table, one transparent TCP listener, one resolver socket, and a link per
// sandbox; sandboxes are told apart by their link's source address (anti-spoofed in nft).
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import tls from 'node:tls';
import type { EventBus } from '../events/index.ts';
import { nowNs } from '../util/index.ts';
import { errorMessage, PraetorError } from '../errors.ts';
import { NetworkPolicySchema, type NetworkPolicy } from '../config/index.ts';
import { answerQuery, systemNameservers, udpUpstream, type DnsContext, type Upstream } from './dns/resolver.ts';
import { createTunnelGuard } from './dns/tunnel-guard.ts';
import type { CatchUp } from './catch-up-stream.ts';
import { DEFAULT_TIMING, handleFlow, type FlowHandle, type FlowTiming, type SandboxCtx } from './flow.ts';
import { handleProxy } from './connect-proxy.ts';
import { createLink, deleteLink, moveIntoSandbox, slotAddresses, type LinkAddrs, type NetnsRef } from './link.ts';
import { addLink, applyTable, attemptDeltas, deleteTable, readAttempts, removeLink, type AttemptCount } from './nft.ts';
import { createOriginalDst } from './original-dst.ts';
import { compilePolicy, protectedRanges, type CompiledPolicy, type PhaseMatcher } from './policy-matcher.ts';
import { allocateSlot, claimGateway, releaseGateway, releaseSlot, safeList, slotRoot, staleGateways } from './slots.ts';
import { createSpliceEngine, type SpliceEngine } from './splice-engine.ts';
import { createPidLookup } from './pid-lookup.ts';
import { FAST_CIPHERS, loadOrCreateCa, type InterceptCa } from './tls-ca.ts';
import { allTokens, brokerSecrets, describeSecrets, withKeyMaterial, type SandboxInspection } from './inspection.ts';
import type { EgressToken } from './token-scanner.ts';

export const PROXY_PORT = 3128;
export const DEFAULT_LINK_POOL = '100.64.0.0/16';
/** Where a sandbox with network.modelGateway reaches its model: port 80 of its gateway address. */
export const MODEL_HOST = 'model.praetor.internal';
/** Where a sandbox finds its trust bundle (host bundle + the Praetor CA); the variables point here. */
export const SANDBOX_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const CA_ENV = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT', 'AWS_CA_BUNDLE'] as const;
const MODEL_PORT = 80;
/** After a phase switch, open flows are judged this much later (FINs still queued get read first). */
const PHASE_JUDGE_DELAY_MS = 10;
/** How long a no-longer-allowed flow whose sandbox side closed may take to finish. */
const PHASE_SETTLE_MS = 300;

/** The model gateway of `praetor serve`, offered to sandboxes whose policy sets modelGateway. */
export interface ModelRoute {
  /** The upstream model's host: denied to those sandboxes directly, whatever else allows it. */
  upstreamHost: string;
  /** Serves one HTTP connection from the sandbox; the sandbox is known from its link. */
  serve(sandboxId: string, sock: net.Socket): void;
}

/** Fail closed: a policy that routes the model through Praetor never runs where nothing serves it. */
export function noModelGateway(): PraetorError {
  return new PraetorError('BAD_POLICY', 'network.modelGateway is set, but this praetor has no model gateway', { hint: 'run the sandbox through `praetor serve --model-upstream URL`, or remove modelGateway from the policy' });
}

export interface GatewayOptions {
  bus: EventBus; stateDir: string; apiAddresses?: string[];
  /** Pool the sandbox links' /30s come from (default 100.64.0.0/16, inside the protected CGNAT block). */
  linkPool?: string;
  /** Nameservers to forward allowed names to; default: resolv.conf of this namespace. */
  nameservers?: string[];
  attemptPollMs?: number;
  timing?: Partial<FlowTiming>;
  /** Move judged flows' bytes with splice(2) in a worker thread (default true). */
  splice?: boolean;
  model?: ModelRoute;
  /** Terminate and inspect TLS to rules with `inspect: tls` (default true; false forwards all TLS unread). */
  tlsInspection?: boolean;
  /**
   * The kernel sensor's catch-up: sandboxes' outbound bytes wait until it reported what happened
   * before they arrived (a credential read, see catch-up-stream.ts). Absent: forwarded once judged.
   */
  catchUp?: CatchUp;
}

export interface PrepareOptions {
  phase?: string;
  /**
   * Values that must not leave this sandbox (canary credentials, placeholders): any appearance
   * in outbound bytes, at any layer, to a destination not among the token's domains is cut with
   * 0 bytes of it delivered.
   */
  egressTokens?: readonly EgressToken[];
}

export interface SandboxNet {
  resolvConf: string; env: Record<string, string>; hosts?: string;
  /** The interception CA (PEM) the sandbox must trust, appended to its bundle at SANDBOX_CA_BUNDLE. */
  caCertPem?: string;
  /** Brokered secrets by name and hash (never the values), for the record. */
  secrets: Array<{ name: string; domain: string; sha256: string }>;
  gatewayIp: string; sandboxIp: string; hostIf: string;
  /** Moves the sandbox's end of the link into `netns` (an open namespace file, see NetnsRef). */
  attach(netns: NetnsRef): Promise<void>;
  setPhase(phase: string): void;
  readonly phase: string;
  isolate(): void;
  /**
   * A containment (a kill of the process tree that raised `rule`) is under way: every connection
   * opened since `sinceNs` (the triggering event; wall-clock ns) is cut now, and every new one
   * until `until` settles. Threat: the offending process connects in the milliseconds between
   * its exec and its death (a renamed ssh sent its first byte before the kill landed); flows
   * older than the trigger belong to work that came before it and are spared. Returns how many it cut.
   */
  containing(sinceNs: number, rule: string, until: Promise<unknown>): number;
  /**
   * Keeps more values in from now on (a credential the agent read: see secret-fingerprints.ts).
   * New connections are scanned for them; with `cutOpen`, every connection already open is cut,
   * since it was not scanned for them and could carry them next. Returns how many it cut.
   */
  track(tokens: readonly EgressToken[], o: { cutOpen: boolean; why: string }): number;
  detach(): Promise<void>;
}

export interface Gateway {
  prepare(sandboxId: string, policy: NetworkPolicy, opts?: PrepareOptions): Promise<SandboxNet>;
  /** The interception CA new sandboxes get, when TLS inspection is on. */
  readonly ca: InterceptCa | null;
  /**
   * CA rotation: a new CA for sandboxes prepared from now on (their bundle: the new CA plus the
   * retired one during its grace period); sandboxes prepared before keep being served by the
   * retired CA until the grace period ends, then their intercepted connections are refused with
   * a reason (restart them to get the new bundle).
   */
  rotateCa(graceMs?: number): Promise<InterceptCa>;
  close(): Promise<void>;
  readonly table: string;
}

interface SandboxState extends SandboxCtx { addrs: LinkAddrs; slot: number; dns: DnsContext; net: SandboxNet; attached: boolean; modelGateway: boolean; modelFlows: Set<FlowHandle> }

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const bus = opts.bus;
  const timing = { ...DEFAULT_TIMING, ...opts.timing };
  const pool = opts.linkPool ?? DEFAULT_LINK_POOL;
  const poolSize = 2 ** (32 - Number(pool.split('/')[1] ?? 32)) / 4;
  const gwId = freeGatewayId();
  const table = `praetor-gw-${gwId}`;
  const ifPrefix = `ptg-${gwId}`;
  const nameservers = opts.nameservers ?? systemNameservers();
  const upstream: Upstream = udpUpstream(nameservers);
  const originalDst = createOriginalDst();
  const bySource = new Map<string, SandboxState>();
  const root = slotRoot();
  claimGateway(root, gwId);

  const tcp = net.createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (sock) => { void onTcp(sock); });
  const udp = dgram.createSocket({ type: 'udp4' });
  let splice: SpliceEngine | null = null;
  let ca: InterceptCa | null = null;
  // One upstream trust context per distinct upstreamCa list (the host store holds ~500 roots:
  // parsing them costs tens of milliseconds, so never per sandbox or per connection).
  const trustContexts = new Map<string, tls.SecureContext>();
  const upstreamContext = (upstreamCa: string | string[] | undefined): tls.SecureContext => {
    const key = JSON.stringify(upstreamCa ?? null);
    let c = trustContexts.get(key);
    if (!c) { c = tls.createSecureContext({ ca: upstreamTrust(upstreamCa), minVersion: 'TLSv1.2', ciphers: FAST_CIPHERS }); if (trustContexts.size < 64) trustContexts.set(key, c); }
    return c;
  };
  // Setup is all or nothing: a step that fails (UDP bind, nftables) releases what the earlier
  // ones took. Otherwise a failed start leaves a listener, the splice worker and this process's
  // gateway claim behind, and `praetor gc` never sweeps a claim whose owner is still alive.
  try {
    if (opts.tlsInspection !== false) ca = await loadOrCreateCa(opts.stateDir);
    splice = opts.splice === false ? null : await createSpliceEngine();
    if (opts.splice !== false && !splice) bus.publish({ kind: 'sensor.degraded', sandboxId: 'host', sensor: 'gateway-splice', reason: 'splice engine unavailable; flows are copied by Node (slower)' });
    await new Promise<void>((resolve, reject) => { tcp.once('error', reject); tcp.listen(0, '0.0.0.0', () => resolve()); });
    await new Promise<void>((resolve, reject) => { udp.once('error', reject); udp.bind(0, '0.0.0.0', () => resolve()); });
    await installTable({ table, ifPrefix, tcpPort: (tcp.address() as net.AddressInfo).port, dnsPort: udp.address().port });
  } catch (e) {
    await splice?.close().catch(() => {});
    tcp.close();
    try { udp.close(); } catch { /* already closed */ }
    releaseGateway(root, gwId);
    if (e instanceof PraetorError) throw e;
    throw new PraetorError('HOST_UNSUPPORTED', `cannot open the gateway's sockets: ${errorMessage(e)}`, { hint: 'run praetor as root in a network namespace where it may listen on 0.0.0.0', cause: e });
  }

  udp.on('message', (msg, rinfo) => {
    const sb = bySource.get(rinfo.address);
    if (!sb) return; // not a sandbox link: never answer (no open resolver)
    void answerQuery(msg, sb.dns, upstream, rinfo.port).then((r) => { if (r) udp.send(r, rinfo.port, rinfo.address); });
  });

  const sockets = new Set<net.Socket>();
  async function onTcp(sock: net.Socket): Promise<void> {
    sock.on('error', () => {});
    sockets.add(sock); sock.once('close', () => sockets.delete(sock));
    const sb = bySource.get(sock.remoteAddress?.replace(/^::ffff:/, '') ?? '');
    const dst = originalDst(sock);
    if (!sb || !dst) { sock.destroy(); return; }
    try {
      if (dst.ip === sb.addrs.gatewayIp && dst.port === PROXY_PORT) return await handleProxy(sock, sb, sb.dns, upstream, { bus, timing, splice });
      if (dst.ip === sb.addrs.gatewayIp && dst.port === MODEL_PORT && sb.modelGateway && opts.model) return serveModel(sock, sb, opts.model);
      if (dst.port === 53) return serveDnsTcp(sock, sb);
      await handleFlow(sock, dst, sb, { bus, timing, splice });
    } catch (e) {
      // Fail closed: an error while judging a connection cuts it, and says so.
      sock.destroy();
      bus.publish({ kind: 'net.flow', sandboxId: sb.id, dstIp: dst.ip, dstPort: dst.port, protocol: 'unknown', bytesOut: 0, bytesIn: 0, decision: 'deny', rule: 'error', reason: String(e) });
    }
  }

  // A connection to the model gateway: handed to the server's model route, recorded as a flow.
  function serveModel(sock: net.Socket, sb: SandboxState, model: ModelRoute): void {
    const dst = { ip: sb.addrs.gatewayIp, port: MODEL_PORT };
    let cut: { rule: string; reason: string } | undefined;
    const handle: FlowHandle = {
      dstIp: dst.ip, dstPort: dst.port, names: [MODEL_HOST], protocol: 'http', openedAt: nowNs(),
      get sandboxEnded() { return sock.readableEnded; },
      cut(rule, reason) { cut ??= { rule, reason }; sock.resetAndDestroy(); },
    };
    if (sb.isolated()) handle.cut('isolated', 'sandbox isolated');
    sb.modelFlows.add(handle);
    sock.once('close', () => {
      sb.modelFlows.delete(handle);
      bus.publish({
        kind: 'net.flow', sandboxId: sb.id, dstIp: dst.ip, dstPort: dst.port, domain: MODEL_HOST, host: MODEL_HOST, protocol: 'http',
        bytesOut: sock.bytesRead, bytesIn: sock.bytesWritten, decision: cut ? 'deny' : 'allow',
        rule: cut?.rule ?? 'network.modelGateway', reason: cut?.reason ?? 'to the model gateway',
      });
    });
    if (!cut) model.serve(sb.id, sock);
  }

  function serveDnsTcp(sock: net.Socket, sb: SandboxState): void {
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0)); buf = buf.subarray(2 + msg.length);
        void answerQuery(msg, sb.dns, upstream).then((r) => {
          if (!r || sock.destroyed) return;
          const len = Buffer.alloc(2); len.writeUInt16BE(r.length); sock.write(Buffer.concat([len, r]));
        });
      }
      if (buf.length > 70_000) sock.destroy();
    });
    sock.setTimeout(30_000, () => sock.destroy());
    sock.resume();
  }

  // Attempts: every packet the table dropped, polled from its counting sets. The counts are
  // rebuilt from each read (attemptDeltas), so they hold only elements the table still has.
  let lastCounts = new Map<string, number>();
  let inflight: Promise<void> | null = null;
  const readAndPublish = async () => {
    const attempts = await readAttempts(table);
    if (!attempts) return; // table unreadable (gone during close): keep the old counts
    const { next, fresh } = attemptDeltas(lastCounts, attempts);
    for (const { attempt, delta } of fresh) publishAttempt(attempt, delta);
    lastCounts = next;
  };
  const publishAttempt = (a: AttemptCount, delta: number) => {
    const sb = bySource.get(a.src);
    const protocol = a.proto === 17 ? 'udp' : a.proto === 1 ? 'icmp' : a.proto === 6 ? 'tcp' : `ip-proto-${a.proto}`;
    bus.publish({ kind: 'net.attempt', sandboxId: sb?.id ?? `unknown:${a.src}`, dstIp: a.dst, ...(a.dport !== undefined ? { dstPort: a.dport } : {}),
      protocol, decision: 'deny', rule: 'gateway-only', reason: `${delta} packet(s) dropped: only TCP and DNS through the gateway leave a sandbox` });
  };
  /** One poll at a time; a caller arriving meanwhile shares the one in flight. */
  const poll = (): Promise<void> => (inflight ??= readAndPublish().catch(() => {}).finally(() => { inflight = null; }));
  /**
   * A poll that reads the table after now (detach): waits out one already in flight, which may
   * have read before the sandbox's last drops, so those are still attributed to the sandbox
   * before its address is forgotten.
   */
  const pollAfterNow = async (): Promise<void> => { await inflight; await poll(); };
  // Nothing to attribute while no sandbox is attached: skip the `nft -j list` every tick.
  const poller = setInterval(() => { if (bySource.size > 0) void poll(); }, opts.attemptPollMs ?? 500);
  poller.unref();

  const gateway: Gateway = {
    table,
    get ca() { return ca; },
    async rotateCa(graceMs) {
      if (!ca) throw new PraetorError('BAD_STATE', 'TLS inspection is off in this gateway: there is no interception CA to rotate', { hint: 'start the gateway with TLS inspection on' });
      ca = await ca.rotate(graceMs);
      return ca;
    },
    async prepare(sandboxId, rawPolicy, popts = {}) {
      // Re-validated here: a caller that built the policy in code gets the same checks as a file.
      const parsed = NetworkPolicySchema.safeParse(rawPolicy);
      if (!parsed.success) throw new PraetorError('BAD_POLICY', `invalid network policy: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { hint: 'check it with praetor policy check FILE' });
      const policy = parsed.data;
      if (policy.modelGateway && !opts.model) throw noModelGateway();
      const compiled: CompiledPolicy = compilePolicy(policy, {
        protected: protectedRanges({ hostAddresses: hostAddresses(), apiAddresses: opts.apiAddresses ?? [] }),
        // "Only through the gateway": the upstream itself is denied, whatever the allow rules say.
        ...(policy.modelGateway && opts.model ? { fixedDeny: [{ id: 'model-gateway-only', host: opts.model.upstreamHost }] } : {}),
      });
      let phase = popts.phase ?? compiled.initialPhase;
      checkPhase(compiled, phase);
      const secrets = brokerSecrets(policy.secrets);
      for (const sec of secrets) if (/[\r\n]/.test(sec.value)) throw new PraetorError('BAD_POLICY', `network.secrets ${sec.name}: the value contains a line break`, { hint: 'a header value is one line' });
      const inspection: SandboxInspection = {
        ca, upstream: ca ? upstreamContext(policy.upstreamCa) : null, secrets,
        tokens: allTokens(popts.egressTokens, secrets),
        sessions: new Map(),
      };
      // Leaves for the names the policy allows are minted now, off the first connection's path.
      if (ca) for (const r of [...policy.allow, ...(policy.phases?.setup?.allow ?? []), ...(policy.phases?.agent?.allow ?? [])]) {
        if (r.domain && !r.domain.startsWith('*.') && r.inspect !== 'passthrough') void ca.contextFor(r.domain).catch(() => {});
      }
      const slot = allocateSlot(root, poolSize, Math.floor(Math.random() * poolSize));
      const { gatewayIp, sandboxIp } = slotAddresses(pool, slot);
      const suffix = slot.toString(16).padStart(4, '0');
      const addrs: LinkAddrs = { hostIf: `${ifPrefix}${suffix}`, peerIf: `pts-${gwId}${suffix}`, gatewayIp, sandboxIp, prefix: 30 };
      const bindings = new Map<string, Set<string>>();
      let isolated = false; let detached = false;
      let containing: { rule: string; reason: string } | undefined;
      const flows = new Set<FlowHandle>();
      const matcher = (): PhaseMatcher => compiled.forPhase(phase);
      let nsPid: number | undefined;
      const pidLookup = createPidLookup(() => nsPid);
      const lookupWindow = { start: 0, n: 0 };
      const st: SandboxState = {
        id: sandboxId, addrs, slot, flows, attached: false, modelGateway: policy.modelGateway, modelFlows: new Set(), inspection, ...(opts.catchUp ? { catchUp: opts.catchUp } : {}),
        matcher, isolated: () => isolated, containing: () => containing,
        boundNames: (ip) => [...(bindings.get(ip) ?? [])],
        pidOf: (proto, local, remote) => {
          // Bounded: a sandbox hammering denied connections must not make the gateway scan /proc.
          const now = Date.now();
          if (now - lookupWindow.start > 1000) { lookupWindow.start = now; lookupWindow.n = 0; }
          return ++lookupWindow.n > 20 ? Promise.resolve(undefined) : pidLookup(proto, local, remote);
        },
        dns: {
          matcher, guard: createTunnelGuard(), isolated: () => isolated,
          bind(ip, name) {
            if (bindings.size > 10_000 && !bindings.has(ip)) return;
            let s = bindings.get(ip); if (!s) { s = new Set(); bindings.set(ip, s); } s.add(name);
          },
          emit: (e) => bus.publish({ kind: 'dns.query', sandboxId, ...(e.pid !== undefined ? { pid: e.pid } : {}), ...e }),
          ...(policy.modelGateway ? { local: (name: string) => (name === MODEL_HOST ? { ip: gatewayIp, rule: 'network.modelGateway' } : undefined) } : {}),
          pidOf: (port) => pidLookup('udp', { ip: sandboxIp, port }),
        },
        net: undefined as unknown as SandboxNet,
      };
      const cutNoLongerAllowed = (why: string, spareEnded = false) => {
        const m = matcher();
        const spared: Array<{ f: FlowHandle; rule: string; reason: string }> = [];
        for (const f of [...flows]) {
          const d = m.connect(f.dstIp, f.dstPort, f.names);
          const p = m.protocol(f.protocol);
          const verdict = !d.allow ? { rule: d.rule, reason: `${why}: ${d.reason ?? 'no longer allowed'}` }
            : !p.allow ? { rule: p.rule, reason: `${why}: ${p.reason ?? 'protocol no longer allowed'}` } : undefined;
          if (!verdict) continue;
          if (spareEnded && f.sandboxEnded) spared.push({ f, ...verdict }); else f.cut(verdict.rule, verdict.reason);
        }
        // A flow whose sandbox side already closed carries nothing more from the sandbox: it
        // finishes with its own verdict, bounded, instead of reading as a denial of the agent.
        if (spared.length > 0) setTimeout(() => { for (const x of spared) if (flows.has(x.f)) x.f.cut(x.rule, `${x.reason} (still open ${PHASE_SETTLE_MS} ms after the switch)`); }, PHASE_SETTLE_MS).unref();
      };
      const noProxy = `localhost,127.0.0.1,::1${policy.modelGateway ? `,${MODEL_HOST}` : ''}`;
      st.net = {
        resolvConf: `# written by praetor: the gateway's resolver answers only names the policy allows\nnameserver ${gatewayIp}\noptions timeout:2 attempts:2\n`,
        env: {
          HTTP_PROXY: `http://${gatewayIp}:${PROXY_PORT}`, HTTPS_PROXY: `http://${gatewayIp}:${PROXY_PORT}`,
          http_proxy: `http://${gatewayIp}:${PROXY_PORT}`, https_proxy: `http://${gatewayIp}:${PROXY_PORT}`,
          NO_PROXY: noProxy, no_proxy: noProxy,
          // OpenAI clients need a key to start; this one is not a secret and is ignored: the
          // gateway knows the sandbox by its link and adds the upstream's key itself.
          ...(policy.modelGateway ? { OPENAI_BASE_URL: `http://${MODEL_HOST}/v1`, OPENAI_API_BASE: `http://${MODEL_HOST}/v1`, OPENAI_API_KEY: 'praetor-sandbox' } : {}),
          // Tools that carry their own CA list (Python requests, Node, git, pip, AWS CLI) are pointed at the bundle that holds the Praetor CA.
          ...(ca ? Object.fromEntries(CA_ENV.map((k) => [k, SANDBOX_CA_BUNDLE])) : {}),
          // Brokered credentials: the sandbox holds only a placeholder; the gateway adds the real header.
          ...Object.fromEntries(secrets.map((x) => [x.name, x.placeholder])),
        },
        ...(ca ? { caCertPem: ca.bundlePem } : {}),
        secrets: describeSecrets(secrets),
        ...(policy.modelGateway ? { hosts: `${gatewayIp}\t${MODEL_HOST}\n` } : {}),
        gatewayIp, sandboxIp, hostIf: addrs.hostIf,
        get phase() { return phase; },
        async attach(ns) {
          if (detached) throw new PraetorError('BAD_STATE', `sandbox ${sandboxId}'s network was already detached`);
          try {
            await createLink(addrs);
            // Registered before the peer moves, so the sandbox's first packet is already judged.
            bySource.set(sandboxIp, st);
            await addLink(table, addrs.hostIf, sandboxIp);
            await moveIntoSandbox(addrs, ns);
            st.attached = true; nsPid = ns.pid;
          } catch (e) {
            await st.net.detach();
            throw new PraetorError('SANDBOX_FAILED', `cannot attach sandbox ${sandboxId} to the gateway: ${errorMessage(e)}`, { hint: 'check that the sandbox process is alive and praetor runs as root', cause: e });
          }
        },
        setPhase(next) {
          checkPhase(compiled, next);
          if (next === phase) return;
          phase = next;
          // New connections are judged by the new phase at once. Open ones are judged a moment
          // later: the setup command that just returned closed its sockets, and their FINs may
          // still wait in this event loop (seen as setup's own download denied in the agent phase).
          setTimeout(() => cutNoLongerAllowed(`phase switched to ${next}`, true), PHASE_JUDGE_DELAY_MS).unref();
        },
        isolate() {
          // Containment: no new DNS answers or connections from now on, every live one cut.
          isolated = true;
          for (const f of [...flows, ...st.modelFlows]) f.cut('isolated', 'sandbox isolated');
          void removeLink(table, addrs.hostIf, sandboxIp);
        },
        containing(sinceNs, rule, until) {
          const why = { rule: 'containing', reason: `containment for ${rule} under way` };
          containing = why;
          const cut = [...flows, ...st.modelFlows].filter((f) => f.openedAt >= sinceNs);
          for (const f of cut) f.cut(why.rule, why.reason);
          void until.finally(() => { if (containing === why) containing = undefined; });
          return cut.length;
        },
        track(tokens, t) {
          inspection.tokens = withKeyMaterial([...inspection.tokens, ...tokens.filter((x) => !inspection.tokens.some((y) => y.value === x.value))]);
          if (!t.cutOpen || isolated) return 0;
          const open = [...flows];
          for (const f of open) f.cut('egress-token-tracked', t.why);
          return open.length;
        },
        async detach() {
          if (detached) return;
          detached = true;
          // The sandbox's processes are gone: connections they closed a moment ago are still
          // finishing here. Give those a moment to end (and be recorded with their own verdict)
          // before cutting whatever is left; an isolated sandbox was cut already.
          const settle = Date.now() + 300;
          while (!isolated && flows.size > 0 && Date.now() < settle) await new Promise((r) => setTimeout(r, 10));
          isolated = true;
          for (const f of [...flows, ...st.modelFlows]) f.cut('detached', 'sandbox network detached');
          await removeLink(table, addrs.hostIf, sandboxIp);
          await deleteLink(addrs.hostIf);
          await pollAfterNow();
          bySource.delete(sandboxIp);
          sandboxes.delete(st);
          releaseSlot(root, slot);
        },
      };
      sandboxes.add(st);
      return st.net;
    },
    async close() {
      clearInterval(poller);
      await Promise.all([...sandboxes].map((s) => s.net.detach()));
      await deleteTable(table);
      await splice?.close();
      releaseGateway(root, gwId);
      try { rmdirSync(root); } catch { /* other gateways still hold slots here */ }
      udp.close();
      for (const s of sockets) s.destroy();
      // close()'s callback waits for every accepted connection to end; one a flow has not
      // tracked (half-open, mid-handshake) would hold shutdown forever. Bound the wait: the
      // listener is closed either way and the nft table that fed it is already gone.
      await new Promise<void>((r) => { const t = setTimeout(r, 1000); t.unref(); tcp.close(() => { clearTimeout(t); r(); }); });
    },
  };
  const sandboxes = new Set<SandboxState>();
  return gateway;
}

/** Installs the nftables table; a failure is the host's (no root, no nf_tables). */
async function installTable(plan: Parameters<typeof applyTable>[0]): Promise<void> {
  try {
    await applyTable(plan);
  } catch (e) {
    throw new PraetorError('HOST_UNSUPPORTED', `cannot install the gateway's nftables table: ${errorMessage(e)}`, { hint: 'run praetor as root on a kernel with nftables (nf_tables, nft_redirect)', cause: e });
  }
}

/** The host's trust store plus the policy's upstream CAs (PEM files). */
function upstreamTrust(upstreamCa: string | string[] | undefined): string[] {
  const files = upstreamCa === undefined ? [] : Array.isArray(upstreamCa) ? upstreamCa : [upstreamCa];
  const extra = files.map((f) => {
    try { return readFileSync(f, 'utf8'); } catch (e) {
      throw new PraetorError('BAD_POLICY', `network.upstreamCa: cannot read ${f}: ${errorMessage(e)}`, { hint: 'name a readable PEM file on the host', cause: e });
    }
  });
  let system: string[] = [];
  try { system = tls.getCACertificates('system'); } catch { system = [...tls.rootCertificates]; }
  return [...system, ...extra];
}

function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4').map((a) => a!.address);
}

/** 4 hex chars naming this gateway's links (ptg-XXXX…) and table, unused in this namespace. */
function freeGatewayId(): string {
  for (;;) {
    const id = randomBytes(2).toString('hex');
    if (!existsSync(`/sys/class/net/ptg-${id}0000`)) return id;
  }
}

function checkPhase(compiled: CompiledPolicy, phase: string): void {
  if (compiled.phases.includes(phase)) return;
  throw new PraetorError('BAD_ARGUMENT', `unknown network phase "${phase}" (this policy has: ${compiled.phases.join(', ')})`, {
    hint: phase === 'setup' ? 'add network.phases.setup to the policy, or start in the agent phase' : 'use --phase setup or --phase agent',
  });
}

/**
 * Removes what gateways of dead praetor processes left in this namespace: their nft tables,
 * their links and their slots. For `praetor gc`; returns what it removed.
 */
export async function sweepStaleGateways(): Promise<string[]> {
  const removed: string[] = [];
  for (const id of staleGateways(slotRoot())) {
    if (await deleteTable(`praetor-gw-${id}`)) removed.push(`nft table praetor-gw-${id}`);
    for (const l of safeList('/sys/class/net')) {
      if (l.startsWith(`ptg-${id}`)) { await deleteLink(l); removed.push(`link ${l}`); }
    }
  }
  return removed;
}
