// Real `praetor serve` processes for the routed cluster tests and the cluster benchmark: nodes
// (each with its own state directory, so its cgroups, sandbox directories and ledger are its
// own) and control replicas, on loopback, port 0 (the URL is read from the serving line).
// Every process is stopped by its pid and every state directory removed by stopAll(), also
// after a kill -9 (a restarted node's gc reaps what the dead one left; a last gc runs anyway).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tokensPath } from '../../src/server/auth.ts';

const PRAETOR = fileURLToPath(new URL('../../bin/praetor', import.meta.url));

export interface Proc { name: string; url: string; child: ChildProcess; stateDir: string; log(): string }

export class ClusterProcs {
  readonly procs: Proc[] = [];
  readonly dirs = new Set<string>();
  readonly tokensDir: string;
  readonly cluster: string;

  constructor(cluster: string) {
    this.cluster = cluster;
    this.tokensDir = mkdtempSync('/tmp/pt-cl-tokens-');
    this.dirs.add(this.tokensDir);
  }

  /** A state directory holding the shared token store (as a mounted Secret would). */
  stateDir(prefix: string): string {
    const d = mkdtempSync(`/tmp/pt-cl-${prefix}-`);
    this.dirs.add(d);
    mkdirSync(`${d}/server`, { recursive: true, mode: 0o700 });
    try { copyFileSync(tokensPath(this.tokensDir), tokensPath(d)); } catch { /* no tokens yet */ }
    return d;
  }

  async start(name: string, args: string[], stateDir: string, env: Record<string, string> = {}): Promise<Proc> {
    const child = spawn(PRAETOR, ['serve', '--port', '0', '--state', stateDir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
    child.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s:\n${out}`)), 60_000);
      const check = () => {
        const m = /serving on (http:\/\/[^\s]+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`${name} exited (${code ?? sig}) while starting:\n${out}`)); });
    });
    const p: Proc = { name, url, child, stateDir, log: () => out };
    this.procs.push(p);
    return p;
  }

  node(name: string, extra: string[] = [], stateDir = this.stateDir(name)): Promise<Proc> {
    return this.start(name, ['--role', 'node', '--node-id', name, '--cluster', this.cluster, '--capacity', '16', ...extra], stateDir);
  }

  control(name: string): Promise<Proc> {
    return this.start(name, ['--role', 'control', '--cluster', this.cluster], this.stateDir(name));
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
    // What a kill -9'd node left (sandbox processes, cgroups, mounts): its state's own gc.
    for (const d of this.dirs) {
      spawnSync(PRAETOR, ['gc', '--state', d], { stdio: 'ignore', timeout: 60_000 });
      rmSync(d, { recursive: true, force: true });
    }
  }
}
