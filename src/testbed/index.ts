// The reusable test network: a `host` namespace (where Praetor under test runs) whose only way
// out is one veth to an `inet` namespace holding the fake internet — web, TLS, a Stratum pool,
// a real sshd, a JSON-RPC chain node, a DNS server for `*.test`, and "internal" targets. Even a
// broken gateway can then only reach these fakes, and they record what reached them
// (see /work/shared/TEST-NETWORK.md). Everything is torn down by `teardown()`, on process exit
// and on SIGINT/SIGTERM. In src/ because the shipped arena (`praetor arena`) runs in it; the
// tests use it through test/topology, which re-exports this file.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DNS_RECORDS, HOST_IP, INET_IP, SERVERS, SERVER_NAMES, UNUSED_IP, type ServerName } from './addresses.ts';
import { readJsonLines, readSshdLog } from './logs.ts';
import { makeSsh, makeTlsCert, paths, type Material } from './material.ts';
import { nodeBinary } from './node.ts';
import { createNamespaces, destroyNamespaces, destroyNamespacesSync, names, run, type ExecOptions, type ExecResult, type Names } from './netns.ts';
import type { LogEntry } from './servers/log.ts';

export { DNS_RECORDS, HOST_IP, INET_IP, SERVERS, SERVER_NAMES, UNUSED_IP, type ServerName } from './addresses.ts';
export { MARKERS } from './servers/http.ts';
export type { LogEntry } from './servers/log.ts';
export type { ExecOptions, ExecResult } from './netns.ts';
export { nodeBinary } from './node.ts';

export interface TopologyOptions {
  /** Which fake servers to start; default all of SERVER_NAMES. Fewer start faster (ssh costs most). */
  servers?: string[];
  /** Extra A records for the test DNS (`name.test` → an address the topology holds). */
  records?: Record<string, string>;
  /** Keep the run's temp dir (logs, keys) after teardown; also with PT_KEEP_LOGS=1. */
  keepFiles?: boolean;
  /**
   * CIDRs inet routes back through host, for sandbox subnets that Praetor routes without NAT
   * (e.g. '10.200.0.0/16'). Default none: inet knows only the host<->inet link.
   */
  routesViaHost?: string[];
  /** Fake servers exit by themselves after this long; default 2 h. */
  maxLifetimeMs?: number;
}

export interface Topology {
  runId: string;
  hostNs: string;
  inetNs: string;
  hostIp: string;
  inetIp: string;
  servers: typeof SERVERS;
  /** The servers actually started. */
  started: ServerName[];
  /** The run's temp dir: logs (`<server>.jsonl`, `sshd.log`), keys, configs. */
  dir: string;
  /** TLS server's self-signed certificate (PEM), to pass as a CA: `curl --cacert`, `ca:`. */
  tlsCertPath: string;
  /** ssh client material for logging in to the fake sshd as root. */
  ssh: { keyPath: string; knownHostsPath: string; user: string; args: string[] };
  /** Milliseconds createTopology took. */
  startupMs: number;
  /** What reached a server so far (connections, bytes, requests, queries, sshd lines). */
  log(server: string): Promise<LogEntry[]>;
  /** Polls log(server) until `match` holds for some entry; bounded by timeoutMs (default 5 s). */
  waitForLog(server: string, match: (e: LogEntry) => boolean, timeoutMs?: number): Promise<LogEntry>;
  execInHost(cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  execInInet(cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Spawns in the host namespace; killed by teardown (SIGTERM, then SIGKILL) if still running. */
  spawnInHost(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /**
   * Spawns in the inet namespace, beside the fake servers (an extra fake service); it dies with
   * this process and is killed by teardown with everything else in the namespace.
   */
  spawnInInet(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Kills every process in both namespaces, deletes them and their files. Idempotent. */
  teardown(): Promise<void>;
}

const SERVERS_DIR = fileURLToPath(new URL('./servers/', import.meta.url));
// Node's compile cache halves the fake servers' start (type stripping + compiling ≈ 170 ms of
// 330 ms); it lives under node_modules (ignored by git), not in the run's dir, so it persists.
const COMPILE_CACHE = fileURLToPath(new URL('../../node_modules/.cache/praetor-topology', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `ip netns exec <ns> setpriv --pdeathsig KILL cmd…`: the process dies with its parent. */
function inNs(ns: string, cmd: string, args: string[]): string[] {
  return ['netns', 'exec', ns, 'setpriv', '--pdeathsig', 'KILL', cmd, ...args];
}

function checkOptions(opts: TopologyOptions): ServerName[] {
  const wanted = opts.servers ?? SERVER_NAMES;
  for (const s of wanted) {
    if (!(SERVER_NAMES as string[]).includes(s)) throw new Error(`unknown fake server "${s}"; known: ${SERVER_NAMES.join(', ')}`);
  }
  for (const [name, ip] of Object.entries(opts.records ?? {})) {
    if (!/\.test$/.test(name)) throw new Error(`DNS record "${name}" must end in .test (no real names, TEST-NETWORK.md rule 3)`);
    if (!/^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+$|^10\.99\.0\.\d+$|^169\.254\.169\.254$/.test(ip)) {
      throw new Error(`DNS record "${name}" → ${ip}: use a TEST-NET address or an internal target of the topology`);
    }
  }
  for (const cidr of opts.routesViaHost ?? []) {
    if (!/^(\d{1,3}\.){3}\d{1,3}\/([1-9]|[12]\d|3[0-2])$/.test(cidr)) throw new Error(`routesViaHost "${cidr}": want an IPv4 CIDR with a prefix of 1..32 (never a default route)`);
  }
  return wanted as ServerName[];
}

/**
 * Removes topologies whose creating process died without tearing down (SIGKILL, OOM): their
 * run dir records the owner pid. Topologies of live processes and namespaces this module did
 * not create are left alone. Returns the run ids removed.
 */
export async function sweepStaleTopologies(): Promise<string[]> {
  const swept: string[] = [];
  const ids = new Set<string>();
  for (const ns of await readdir('/run/netns').catch(() => [] as string[])) {
    const m = /^pt-([0-9a-f]{6})-(host|inet)$/.exec(ns);
    if (m) ids.add(m[1]!);
  }
  const dirs = ids.size > 0 ? await readdir(tmpdir()).catch(() => [] as string[]) : [];
  for (const id of ids) {
    for (const d of dirs.filter((x) => x.startsWith(`pt-${id}-`))) {
      const owner = Number(await readFile(join(tmpdir(), d, 'owner.pid'), 'utf8').catch(() => ''));
      if (!Number.isInteger(owner) || owner <= 0 || pidAlive(owner)) continue;
      await destroyNamespaces(names(id));
      await rm(join(tmpdir(), d), { recursive: true, force: true });
      swept.push(id);
    }
  }
  return swept;
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

async function freshNames(): Promise<Names> {
  for (let i = 0; i < 5; i++) {
    const n = names(randomBytes(3).toString('hex'));
    if (!existsSync(`/run/netns/${n.hostNs}`) && !existsSync(`/run/netns/${n.inetNs}`)) return n;
  }
  throw new Error('could not pick an unused run id in 5 tries');
}

/**
 * Resolves once the child's stdout matches `ready`; rejects when it matches `fail`, when the
 * child exits first, or at the deadline. Its stderr (the first 8 KiB) goes into the errors.
 */
export function waitForOutput(child: ChildProcess, o: { ready: RegExp; fail?: RegExp; timeoutMs: number; what: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => done(new Error(`${o.what} not ready after ${o.timeoutMs} ms: ${out.trim()} ${err.trim()}`.trim())), o.timeoutMs);
    const done = (e?: Error) => {
      clearTimeout(timer);
      // Still flowing without a listener: later output is drained, never blocks the child.
      child.stdout?.removeAllListeners('data');
      child.removeListener('exit', onExit);
      if (e) reject(e); else resolve();
    };
    const onExit = (code: number | null) => done(new Error(`${o.what} exited (${code}): ${out.trim()} ${err.trim()}`.trim()));
    child.stderr?.on('data', (d: Buffer) => { if (err.length < 8192) err += d.toString(); });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (o.ready.test(out)) done();
      else if (o.fail?.test(out)) done(new Error(`${o.what} failed: ${out.trim()} ${err.trim()}`.trim()));
    });
    child.once('exit', onExit);
  });
}

/** Resolves on the server process's READY line; rejects on ERROR, exit or deadline. */
function waitReady(child: ChildProcess, timeoutMs: number): Promise<void> {
  return waitForOutput(child, { ready: /READY\n/, fail: /ERROR/, timeoutMs, what: 'fake servers' });
}

/** Appends each stderr line of child (sshd ends them in CRLF) to path as `<epoch ms> <line>`, stamped when it arrives. */
function stampLinesTo(child: ChildProcess, path: string): void {
  let partial = '';
  let partialTs = 0;
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    const now = Date.now();
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    // A line cut across chunks keeps the time its first part arrived.
    let out = '';
    for (const line of lines) { out += `${partialTs || now} ${line.replace(/\r$/, '')}\n`; partialTs = 0; }
    if (partial && !partialTs) partialTs = now;
    if (out) {
      // Synchronous, so log() and waitSshd see a line as soon as it is stamped; after teardown
      // removed the dir a late line has nowhere to go and is dropped.
      try { appendFileSync(path, out); } catch { /* run dir gone */ }
    }
  });
}

async function waitSshd(child: ChildProcess, logPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Bounded: 20 ms polls until the deadline; "Server listening" means the socket is bound.
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const text = await readFile(logPath, 'utf8').catch(() => '');
    if (text.includes('Server listening on')) return;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sshd exited (${child.exitCode ?? child.signalCode}): ${text.trim()}`);
    await sleep(20);
  }
  throw new Error(`sshd not listening after ${timeoutMs} ms`);
}

export async function createTopology(opts: TopologyOptions = {}): Promise<Topology> {
  const t0 = performance.now();
  const wanted = checkOptions(opts);
  await sweepStaleTopologies();
  const n = await freshNames();
  const dir = await mkdtemp(join(tmpdir(), `pt-${n.runId}-`));
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  const m: Material = paths(dir);
  const keepFiles = opts.keepFiles ?? process.env.PT_KEEP_LOGS === '1';
  const hostChildren = new Set<ChildProcess>();
  const serverChildren: ChildProcess[] = [];

  const onExit = () => {
    try { destroyNamespacesSync(n); } catch { /* best effort at exit */ }
    if (!keepFiles) rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    onExit();
    process.off('exit', onExit);
    process.off(sig, onSignal);
    // Someone else (node:test) handles the signal too: let them exit; else die of it as before.
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let tornDown: Promise<void> | undefined;
  const teardown = (): Promise<void> => (tornDown ??= (async () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Praetor under test gets a chance to clean up its own resources before the hard kill.
    for (const c of hostChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    for (let i = 0; i < 50 && [...hostChildren].some((c) => c.exitCode === null && c.signalCode === null); i++) await sleep(20);
    for (const c of serverChildren) c.stdin?.destroy();
    const problems = await destroyNamespaces(n);
    if (!keepFiles) await rm(dir, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`topology ${n.runId} teardown: ${problems.join('; ')}`);
  })());

  try {
    const records = { ...DNS_RECORDS, ...Object.fromEntries(Object.entries(opts.records ?? {}).map(([k, v]) => [k.toLowerCase(), v])) };
    const config = join(dir, 'servers.json');
    const nodeServers = wanted.filter((s) => s !== 'ssh');
    await Promise.all([
      createNamespaces(n, opts.routesViaHost),
      wanted.includes('tls') ? makeTlsCert(m) : undefined,
      wanted.includes('ssh') ? makeSsh(m, dir) : undefined,
      mkdir(n.resolvDir, { recursive: true }).then(() => writeFile(join(n.resolvDir, 'resolv.conf'),
        // Only the test DNS, one quick try: a name never reaches the machine's resolver.
        `nameserver ${SERVERS.dns.ip}\noptions timeout:1 attempts:1\n`)),
      writeFile(config, JSON.stringify({ dir, servers: nodeServers, tlsKey: m.tlsKey, tlsCert: m.tlsCert, records, maxLifetimeMs: opts.maxLifetimeMs ?? 2 * 3600_000 })),
    ]);
    const waits: Promise<void>[] = [];
    if (nodeServers.length > 0) {
      const child = spawn('ip', inNs(n.inetNs, nodeBinary(), [join(SERVERS_DIR, 'main.ts'), config]), {
        stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_COMPILE_CACHE: COMPILE_CACHE },
      });
      serverChildren.push(child);
      waits.push(waitReady(child, 10_000));
    }
    if (wanted.includes('ssh')) {
      // -e: sshd (and its per-connection children) log to stderr, which has no timestamps of its
      // own; each line is stamped as it arrives, so an entry carries the time it was written.
      const child = spawn('ip', inNs(n.inetNs, '/usr/sbin/sshd', ['-D', '-e', '-f', m.sshdConfig]), { stdio: ['pipe', 'ignore', 'pipe'] });
      stampLinesTo(child, m.sshdLog);
      serverChildren.push(child);
      waits.push(waitSshd(child, m.sshdLog, 10_000));
    }
    await Promise.all(waits);
  } catch (err) {
    await teardown().catch(() => {});
    throw err;
  }

  const exec = (ns: string) => (cmd: string, args: string[], o?: ExecOptions) => run('ip', inNs(ns, cmd, args), o);
  const log = async (server: string): Promise<LogEntry[]> => {
    if (!(SERVER_NAMES as string[]).includes(server)) throw new Error(`no fake server "${server}"; known: ${SERVER_NAMES.join(', ')}`);
    return server === 'ssh' ? readSshdLog(m.sshdLog) : readJsonLines(join(dir, `${server}.jsonl`));
  };
  return {
    runId: n.runId, hostNs: n.hostNs, inetNs: n.inetNs, hostIp: HOST_IP, inetIp: INET_IP,
    servers: SERVERS, started: wanted, dir, tlsCertPath: m.tlsCert,
    ssh: {
      keyPath: m.sshClientKey, knownHostsPath: m.sshKnownHosts, user: SERVERS.ssh.user,
      args: ['-F', 'none', '-i', m.sshClientKey, '-o', `UserKnownHostsFile=${m.sshKnownHosts}`, '-o', 'StrictHostKeyChecking=yes',
        '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=2', '-l', SERVERS.ssh.user],
    },
    startupMs: Math.round(performance.now() - t0),
    log,
    async waitForLog(server, match, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (let i = 0; i < 10_000; i++) {
        const hit = (await log(server)).find(match);
        if (hit) return hit;
        if (Date.now() >= deadline) break;
        await sleep(25);
      }
      throw new Error(`no matching ${server} log entry within ${timeoutMs} ms`);
    },
    execInHost: exec(n.hostNs),
    execInInet: exec(n.inetNs),
    spawnInHost(cmd, args, o = {}) {
      if (tornDown) throw new Error(`topology ${n.runId} is torn down`);
      const child = spawn('ip', inNs(n.hostNs, cmd, args), o);
      hostChildren.add(child);
      child.once('exit', () => hostChildren.delete(child));
      return child;
    },
    spawnInInet(cmd, args, o = {}) {
      if (tornDown) throw new Error(`topology ${n.runId} is torn down`);
      return spawn('ip', inNs(n.inetNs, cmd, args), o);
    },
    teardown,
  };
}

/** Runs fn with a fresh topology and always tears it down, also when fn throws. */
export async function withTopology<T>(fn: (t: Topology) => Promise<T>, opts?: TopologyOptions): Promise<T> {
  const t = await createTopology(opts);
  try { return await fn(t); } finally { await t.teardown(); }
}
