// Real `praetor serve` processes for the routed cluster tests and the cluster benchmark: nodes
// (each with its own state directory, so its cgroups, sandbox directories and ledger are its
// own) and control replicas, on loopback, port 0 (the URL is read from the serving line).
// Every process is stopped by its pid and every state directory removed by stopAll(), also
// after a kill -9 (a restarted node's gc reaps what the dead one left; a last gc runs anyway).
// Links are mutual TLS by default, set up as an operator would: one cluster CA (`cluster init`),
// a control identity per replica (issue-control, with the CA key beside it so the replica signs
// joins), and, as the Helm chart does it, one bootstrap join token for the whole node pool: every
// replica registers it (--bootstrap-token-file, a budget of joins) and every node presents it on
// its first start through a replica's join endpoint (a restarted node keeps its identity and
// renews it through --control when its address changed). `insecure: true` runs every process
// with --insecure-cluster instead.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CA_FILES, createJoinToken, generateJoinToken, initClusterCa, issueControlCertificate } from '../../src/cluster/pki.ts';
import { controlClientTlsOptions } from '../../src/cluster/pki-tls.ts';
import { tokensPath } from '../../src/server/auth.ts';

const PRAETOR = fileURLToPath(new URL('../../bin/praetor', import.meta.url));

export interface Proc { name: string; url: string; child: ChildProcess; stateDir: string; log(): string; role: 'node' | 'control' | 'other'; joinUrl?: string }

export class ClusterProcs {
  readonly procs: Proc[] = [];
  readonly dirs = new Set<string>();
  readonly tokensDir: string;
  readonly cluster: string;
  readonly insecure: boolean;
  /** the cluster CA (ca.pem, ca-key.pem), made on first use. */
  readonly caDir: string;
  /** a control identity for the test itself, to call nodes directly as a replica would. */
  readonly clientDir: string;
  /** the node pool's bootstrap join token (the chart's one Secret), and the file replicas read it from. */
  readonly bootstrapToken = generateJoinToken();
  readonly bootstrapFile: string;
  #pki: Promise<void> | undefined;
  #pool: pg.Pool | undefined;

  constructor(cluster: string, o: { insecure?: boolean } = {}) {
    this.cluster = cluster;
    this.insecure = o.insecure ?? false;
    this.tokensDir = mkdtempSync('/tmp/pt-cl-tokens-');
    this.dirs.add(this.tokensDir);
    this.caDir = `${this.tokensDir}/ca`;
    this.clientDir = `${this.tokensDir}/test-client`;
    this.bootstrapFile = `${this.tokensDir}/bootstrap-token`;
    writeFileSync(this.bootstrapFile, `${this.bootstrapToken}\n`, { mode: 0o600 });
  }

  /** The CA and the test's own control identity (once). */
  pki(): Promise<void> {
    return this.#pki ??= (async () => {
      await initClusterCa(this.caDir);
      await issueControlCertificate({ caDir: this.caDir, name: 'test-client', outDir: this.clientDir });
    })();
  }

  /** A one-time join token (bound to the node id unless `unbound`). */
  async joinToken(nodeId: string, ttlMs = 600_000, o: { unbound?: boolean } = {}): Promise<string> {
    this.#pool ??= new pg.Pool({ connectionString: this.cluster, max: 1 });
    return (await createJoinToken(this.#pool, ttlMs, o.unbound ? {} : { nodeId })).token;
  }

  /** A control replica's identity directory with the CA key beside it (it signs joins). */
  async controlIdentity(name: string, stateDir: string): Promise<string> {
    await this.pki();
    const dir = `${stateDir}/cluster-tls`;
    await issueControlCertificate({ caDir: this.caDir, name, outDir: dir, hosts: ['127.0.0.1'] });
    copyFileSync(`${this.caDir}/${CA_FILES.key}`, `${dir}/${CA_FILES.key}`);
    return dir;
  }

  /** The join endpoint of a live replica. */
  joinUrl(): string {
    const c = this.procs.find((p) => p.role === 'control' && p.joinUrl && p.child.exitCode === null && p.child.signalCode === null);
    if (!c) throw new Error('no control replica with a join endpoint is running: start one before the nodes');
    return c.joinUrl!;
  }

  /** Arguments for a node's link: --insecure-cluster, or a replica to join (first start, the pool's token) or renew through. */
  async nodeLinkArgs(_name: string, stateDir: string): Promise<string[]> {
    if (this.insecure) return ['--insecure-cluster'];
    await this.pki();
    const through = ['--control', this.joinUrl(), '--ca', `${this.caDir}/${CA_FILES.cert}`];
    if (existsSync(`${stateDir}/cluster/cert.pem`)) return through;
    return ['--join-token', this.bootstrapToken, ...through];
  }

  /**
   * One HTTPS call straight to a node, as a control replica makes it (the test's control
   * certificate, the node id checked); `tls` overrides the client's TLS options.
   */
  async callNode(p: Proc | string, nodeId: string, method: string, path: string, body?: unknown, o: { headers?: Record<string, string>; tls?: Record<string, unknown> } = {}): Promise<{ status: number; text: string; json: any }> {
    await this.pki();
    const base = new URL(typeof p === 'string' ? p : p.url);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request({
        hostname: base.hostname, port: base.port, method, path, agent: false, timeout: 60_000,
        ...(o.tls ?? controlClientTlsOptions(this.clientDir, nodeId)),
        headers: { ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}), ...(o.headers ?? {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown;
          try { json = JSON.parse(text); } catch { json = undefined; }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** A state directory holding the shared token store (as a mounted Secret would). */
  stateDir(prefix: string): string {
    const d = mkdtempSync(`/tmp/pt-cl-${prefix}-`);
    this.dirs.add(d);
    mkdirSync(`${d}/server`, { recursive: true, mode: 0o700 });
    try { copyFileSync(tokensPath(this.tokensDir), tokensPath(d)); } catch { /* no tokens yet */ }
    return d;
  }

  async start(name: string, args: string[], stateDir: string, env: Record<string, string> = {}, role: Proc['role'] = 'other'): Promise<Proc> {
    const child = spawn(PRAETOR, ['serve', '--port', '0', '--state', stateDir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
    child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s:\n${out}`)), 60_000);
      const check = () => {
        const m = /serving on (https?:\/\/[^\s]+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`${name} exited (${code ?? sig}) while starting:\n${out}`)); });
    });
    const joinUrl = /join endpoint on (https:\/\/[^\s]+)/.exec(out)?.[1];
    const p: Proc = { name, url, child, stateDir, log: () => out, role, ...(joinUrl ? { joinUrl } : {}) };
    this.procs.push(p);
    return p;
  }

  /** A node; `cluster` overrides the database URL (a cuttable link). */
  async node(name: string, extra: string[] = [], stateDir = this.stateDir(name), cluster = this.cluster): Promise<Proc> {
    return this.start(name, ['--role', 'node', '--node-id', name, '--cluster', cluster, '--capacity', '16', ...await this.nodeLinkArgs(name, stateDir), ...extra], stateDir, {}, 'node');
  }

  async control(name: string): Promise<Proc> {
    const stateDir = this.stateDir(name);
    const link = this.insecure ? ['--insecure-cluster']
      : ['--cluster-tls', await this.controlIdentity(name, stateDir), '--join-port', '0', '--bootstrap-token-file', this.bootstrapFile, '--bootstrap-joins', '16', '--bootstrap-ttl', '1h'];
    return this.start(name, ['--role', 'control', '--cluster', this.cluster, ...link], stateDir, {}, 'control');
  }

  kill9(p: Proc): Promise<void> {
    const gone = new Promise<void>((r) => { if (p.child.exitCode !== null || p.child.signalCode !== null) r(); else p.child.once('exit', () => r()); });
    p.child.kill('SIGKILL');
    return gone;
  }

  async stop(p: Proc): Promise<void> {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.child.once('exit', () => r()));
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.stop(p)));
    await this.#pool?.end().catch(() => undefined);
    // What a kill -9'd node left (sandbox processes, cgroups, mounts): its state's own gc.
    for (const d of this.dirs) {
      spawnSync(PRAETOR, ['gc', '--state', d], { stdio: 'ignore', timeout: 60_000 });
      rmSync(d, { recursive: true, force: true });
    }
  }
}
