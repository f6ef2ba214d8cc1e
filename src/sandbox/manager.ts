// Creates, tracks and reaps sandboxes. Creation is a pipeline of steps each of which registers
// its undo before the next starts, so a failure at any point leaves nothing behind; a record in
// the state directory names the owning process, so sandboxes of a praetor that died are reaped
// by the next start or `praetor gc`.
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { PraetorError, errorMessage } from '../errors.ts';
import { EventBus } from '../events/index.ts';
import { newId } from '../util/index.ts';
import { canaryLedgerRecords, plantCanaries, type EgressToken, type PlantedCanaries } from './canaries.ts';
import { Cgroup } from './cgroup.ts';
import { etcContent, hostEtcTemplate, writeCaBundle, writeEtc } from './etc-files.ts';
import { createSandboxDir, gcSandboxes, removeEmptyGroup, type GcResult } from './gc.ts';
import { identityOf, inCgroup, type ProcessIdentity } from './pidfd.ts';
import { HostInfo, probeHost } from './host.ts';
import { ImageStore } from './images.ts';
import { InitChannel } from './init-channel.ts';
import { idmapMount } from './idmap.ts';
import { runtimeFor } from './runtimes/index.ts';
import type { DeviceNode, LaunchPlan, Runtime, RuntimeName } from './runtimes/types.ts';
import { Sandbox } from './sandbox.ts';
import { SandboxSpecSchema, type SandboxSpec, type SandboxSpecInput } from './spec.ts';
import { mount, umount, MS_NODEV, MS_NOSUID } from './syscalls.ts';
import { z } from 'zod';

/** The network side of a sandbox, provided by the egress gateway (src/net). */
export interface SandboxNetworkProvider {
  /** `egressTokens`: secret values (canaries) the gateway must never let leave this sandbox. */
  prepare(sandboxId: string, spec: SandboxSpec, extra?: { egressTokens?: readonly EgressToken[] }): Promise<SandboxNetAttachment | undefined>;
}
export interface SandboxNetAttachment {
  resolvConf: string;
  env: Record<string, string>;
  hosts?: string;
  /** The gateway's TLS interception CA (PEM): appended to the sandbox's trust bundle. */
  caCertPem?: string;
  /**
   * Moves the sandbox's end of the link into `netns.fd`, an open `/proc/PID/ns/net` of a process
   * of the sandbox (checked after the open): never a bare pid, which may be recycled.
   */
  attach(netns: { pid: number; fd: number }): Promise<void>;
  detach(): Promise<void>;
}

export interface ManagerOptions {
  stateDir: string;
  bus?: EventBus;
  network?: SandboxNetworkProvider;
  /** reap sandboxes of dead praetor processes on open (default true). */
  gcOnOpen?: boolean;
}

const AGENT_USER = 'agent';
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const READY_TIMEOUT_MS = 30_000;

export class SandboxManager {
  readonly stateDir: string;
  readonly bus: EventBus;
  readonly host: HostInfo;
  readonly images: ImageStore;
  readonly #network: SandboxNetworkProvider | undefined;
  readonly #live = new Map<string, Sandbox>();
  #etcTemplate: Promise<string> | undefined;
  lastGc: GcResult | undefined;

  private constructor(opts: ManagerOptions, host: HostInfo) {
    this.stateDir = opts.stateDir;
    this.bus = opts.bus ?? new EventBus();
    this.host = host;
    this.images = new ImageStore(`${opts.stateDir}/images`);
    this.#network = opts.network;
  }

  static async open(opts: ManagerOptions): Promise<SandboxManager> {
    const host = probeHost(opts.stateDir);
    mkdirSync(`${opts.stateDir}/sandboxes`, { recursive: true, mode: 0o700 });
    const m = new SandboxManager(opts, host);
    if (opts.gcOnOpen !== false) m.lastGc = await gcSandboxes(opts.stateDir, host);
    return m;
  }

  get live(): Sandbox[] { return [...this.#live.values()]; }
  get(id: string): Sandbox | undefined { return this.#live.get(id); }

  /** Checks a spec against this host without creating anything (cheap; call before slow setup). */
  validate(input: SandboxSpecInput = {}): { spec: SandboxSpec; runtime: Runtime; devices: DeviceNode[]; lower: string | undefined } {
    const parsed = SandboxSpecSchema.safeParse(input);
    if (!parsed.success) throw specError(parsed.error);
    const spec = parsed.data;
    const runtime = runtimeFor(spec.runtime as RuntimeName);
    const why = runtime.unavailableReason(this.host.cgroups);
    if (why) throw new PraetorError('RUNTIME_UNAVAILABLE', `runtime ${spec.runtime} is not available: ${why}`, { hint: 'install it, or choose another with --runtime' });
    // Stat each node once here; the cgroup and the runtime (bwrap binds, OCI config) share them.
    const devices = gpuDevices(spec.gpus).map(deviceNode);
    const lower = spec.image === 'host' ? undefined : this.images.rootfs(spec.image);
    return { spec, runtime, devices, lower };
  }

  /** `opts.id`: an id chosen elsewhere (a cluster node takes the one the control plane reserved). */
  async create(input: SandboxSpecInput = {}, opts: { id?: string } = {}): Promise<Sandbox> {
    const { spec, runtime, devices, lower } = this.validate(input);
    // The id names a directory and a cgroup: only the shape newId makes, never a path.
    if (opts.id !== undefined && !/^sb-[a-z0-9-]{1,40}$/.test(opts.id)) throw new PraetorError('BAD_ARGUMENT', `sandbox id "${opts.id.slice(0, 80)}" is not sb-[a-z0-9-]`, { hint: 'let the manager choose the id' });
    if (opts.id !== undefined && this.#live.has(opts.id)) throw new PraetorError('CONFLICT', `sandbox ${opts.id} already exists`, { hint: 'reserve a new id' });

    const id = opts.id ?? newId('sb');
    const dir = `${this.stateDir}/sandboxes/${id}`;
    const cgroup = new Cgroup(this.host.cgroups, `${this.host.cgroupGroup}/${id}`);
    const undo: Array<() => void | Promise<void>> = [];
    const release = async () => {
      for (const u of undo.splice(0).reverse()) {
        try { await u(); } catch (e) { process.emitWarning(`cleanup of ${id}: ${errorMessage(e)}`); }
      }
    };
    try {
      createSandboxDir(this.stateDir, id, { cgroup: cgroup.rel, spec });
      undo.push(() => rmSync(dir, { recursive: true, force: true }));

      // The writable layer: one size-limited tmpfs holding /etc, /tmp, home and workspace (and
      // the image overlay's upper layer), so --disk bounds everything the agent can write.
      const rw = `${dir}/rw`;
      mkdirSync(rw);
      mount('tmpfs', rw, 'tmpfs', MS_NOSUID | MS_NODEV, `size=${spec.diskBytes},mode=755`);
      undo.push(() => { umount(rw); });
      const home = `/home/${AGENT_USER}`;
      let root: LaunchPlan['root'] = { kind: 'host' };
      let homeHost = `${rw}/home`;
      let workspaceHost = `${rw}/workspace`;
      if (lower) {
        mkdirSync(`${rw}/upper`); mkdirSync(`${rw}/work`);
        const rootDir = `${dir}/root`;
        mkdirSync(rootDir);
        mount('overlay', rootDir, 'overlay', MS_NOSUID, `lowerdir=${lower},upperdir=${rw}/upper,workdir=${rw}/work`);
        undo.push(() => { umount(rootDir); });
        root = { kind: 'dir', path: rootDir };
        homeHost = `${rootDir}${home}`;
        workspaceHost = `${rootDir}/workspace`;
        mkdirSync(`${rootDir}/tmp`, { recursive: true });
        chmodSync(`${rootDir}/tmp`, 0o1777);
      } else {
        mkdirSync(`${rw}/tmp`);
        chmodSync(`${rw}/tmp`, 0o1777); // mkdir's mode is cut by the umask
      }
      mkdirSync(homeHost, { recursive: true, mode: 0o750 });
      chownSync(homeHost, spec.uid, spec.uid);
      mkdirSync(workspaceHost, { recursive: true, mode: 0o755 });
      chownSync(workspaceHost, spec.uid, spec.uid);
      if (spec.workspace) {
        const ws = `${dir}/ws`;
        mkdirSync(ws);
        idmapMount(this.host.launcher, spec.workspace, ws, spec.uid);
        undo.push(() => { umount(ws); });
        workspaceHost = ws;
      }

      // Canaries before the network: the gateway gets their values with the sandbox's config.
      const hostname = spec.hostname ?? id;
      const canaries: PlantedCanaries = spec.canaries
        ? plantCanaries({ homeHost, home, uid: spec.uid, envTaken: new Set(Object.keys(spec.env)), comment: `${AGENT_USER}@${hostname}` })
        : { records: [], env: {}, egressTokens: [] };
      const net = this.#network
        ? await this.#network.prepare(id, spec, canaries.egressTokens.length > 0 ? { egressTokens: canaries.egressTokens } : {})
        : undefined;
      if (net) undo.push(() => net.detach());
      if (net && spec.runtime !== 'bwrap') {
        // gVisor runs its own network stack (started with --network=none) and crun's netns is
        // created after ours: neither would route through the gateway. Refuse, never bypass.
        throw new PraetorError('RUNTIME_UNAVAILABLE', `network policies are enforced for the bwrap runtime only; ${spec.runtime} sandboxes have no network`, { hint: 'use --runtime bwrap with a network policy, or drop the network rules' });
      }
      writeEtc(`${rw}/etc`, etcContent({ uid: spec.uid, gid: spec.uid, user: AGENT_USER, home, hostname }, net?.resolvConf, net?.hosts));
      // Built once per manager; a failed build is retried by the next create.
      const etcTemplate = lower ? undefined : await (this.#etcTemplate ??= hostEtcTemplate(this.stateDir).catch((e: unknown) => { this.#etcTemplate = undefined; throw e; }));
      // TLS inspection: the sandbox trusts its root's CAs plus the gateway's CA (never its key).
      const caBundle = net?.caCertPem ? writeCaBundle(`${rw}/etc`, root.kind === 'dir' ? root.path : '', net.caCertPem) : undefined;

      cgroup.create({ cpus: spec.cpus, memoryBytes: spec.memoryBytes, pids: spec.pids, devices: devices.map((d) => `${d.major}:${d.minor}`) });
      undo.push(() => cgroup.remove());

      const plan: LaunchPlan = {
        id, root, rwDir: rw, etcTemplate, workspace: workspaceHost, home, initPath: this.host.initPath,
        hostname, shmBytes: Math.min(spec.diskBytes, spec.memoryBytes), devices,
        cgroupProcs: cgroup.procsFiles(), cgroupRel: cgroup.rel, runtimeDir: `${dir}/runtime`,
        launcherPath: this.host.launcher, ...(caBundle ? { caBundle } : {}),
      };
      const proc = runtime.spawn(plan);
      undo.push(() => runtime.cleanup(plan));
      undo.push(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } });
      const stderr: Buffer[] = [];
      proc.stderr?.on('data', (d: Buffer) => { if (stderr.length < 64) stderr.push(d); if (process.env.PRAETOR_DEBUG) process.stderr.write(d); });
      proc.on('error', () => { /* reported through the channel closing */ });
      const channel = new InitChannel(proc.stdin!, proc.stdout!);
      await withTimeout(channel.ready, READY_TIMEOUT_MS).catch((e: unknown) => {
        const detail = Buffer.concat(stderr).toString().trim();
        throw new PraetorError('SANDBOX_FAILED', `sandbox ${id} did not start with ${spec.runtime}${detail ? `: ${detail}` : ''}`, {
          hint: 'run `praetor status` to see what this host supports', cause: e,
        });
      });
      if (net) {
        const ns = openSandboxNetns(cgroup.pids(), cgroup.rel);
        try { await net.attach(ns); } finally { closeSync(ns.fd); }
      }
      // Every process in the cgroup now is the runtime's own (bwrap, its pid-1, .praetor-init, the
      // launcher, runsc's sentry and gofer): no command has run yet. Containment spares exactly
      // these, by pid and start time, never by name: an agent can call itself `bwrap`.
      const runtimeProcesses = cgroup.pids().map(identityOf).filter((p): p is ProcessIdentity => p !== undefined);

      const baseEnv: Record<string, string> = {
        PATH: BASE_PATH, HOME: home, USER: AGENT_USER, LOGNAME: AGENT_USER, SHELL: '/bin/bash',
        LANG: 'C.UTF-8', TERM: 'xterm-256color', HOSTNAME: hostname, PRAETOR_SANDBOX_ID: id,
        ...canaries.env,
        ...(net?.env ?? {}),
      };
      const limits = { cpus: spec.cpus, memoryBytes: spec.memoryBytes, pids: spec.pids, diskBytes: spec.diskBytes, gpus: spec.gpus === 'all' ? devices.length : spec.gpus };
      const sb = new Sandbox({
        id, spec, proc, channel, cgroup, bus: this.bus, baseEnv, createdAt: Date.now(), limits,
        release, canaries: canaries.records, runtimeProcesses,
      });
      sb.onEnded(() => this.#live.delete(id));
      this.#live.set(id, sb);
      this.bus.publish({ kind: 'sandbox.created', sandboxId: id, image: spec.image, runtime: spec.runtime, ...limits,
        ...(canaries.records.length > 0 ? { canaries: canaryLedgerRecords(canaries.records) } : {}) });
      return sb;
    } catch (e) {
      await release();
      throw e;
    }
  }

  /** Destroys every sandbox this manager created. */
  async close(): Promise<void> {
    await Promise.all(this.live.map((s) => s.destroy('manager closed')));
    removeEmptyGroup(this.host);
  }

  gc(): Promise<GcResult> { return gcSandboxes(this.stateDir, this.host); }
}

function specError(err: z.ZodError): PraetorError {
  const i = err.issues[0]!;
  const key = i.path.join('.') || '(spec)';
  const what = i.code === 'unrecognized_keys' ? `unknown setting "${i.keys.join('", "')}"` : `${key}: ${i.message}`;
  return new PraetorError('BAD_ARGUMENT', `invalid sandbox spec: ${what}`, { hint: 'see `praetor run --help` for the accepted settings' });
}

function gpuDevices(gpus: SandboxSpec['gpus']): string[] {
  if (gpus === 0) return [];
  const found = HostInfo.gpuDevices();
  const cards = found.filter((d) => /^\/dev\/nvidia\d+$/.test(d));
  if (cards.length === 0) throw new PraetorError('NO_GPU', `--gpus ${gpus} asked for GPUs but this host has none (no /dev/nvidia[0-9]*)`, { hint: 'drop --gpus, or run on a host with NVIDIA GPUs and drivers' });
  const n = gpus === 'all' ? cards.length : gpus;
  if (n > cards.length) throw new PraetorError('NO_GPU', `--gpus ${n} asked for more GPUs than the ${cards.length} this host has`, { hint: `ask for at most ${cards.length}` });
  const control = found.filter((d) => !/^\/dev\/nvidia\d+$/.test(d));
  return [...cards.slice(0, n), ...control];
}

/** A device node with its real major:minor (Linux dev_t encoding, as glibc's major()/minor()). */
function deviceNode(path: string): DeviceNode {
  const rdev = statSync(path).rdev;
  return { path, major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
}

/**
 * Opens the sandbox's network namespace, which any process of it other than the host-side
 * launcher holds: the first one in a namespace other than praetor's. The process is checked to
 * still be in the sandbox's cgroup after the open: had it exited and its pid gone to a process
 * elsewhere, the file opened would be that one's. (The gateway refuses praetor's own namespace.)
 */
function openSandboxNetns(pids: number[], cgroupRel: string): { pid: number; fd: number } {
  const mine = HostInfo.netnsOf(process.pid);
  for (const p of pids) {
    if (HostInfo.netnsOf(p) === mine) continue;
    let fd: number;
    try { fd = openSync(`/proc/${p}/ns/net`, 'r'); } catch { continue; }
    if (inCgroup(p, cgroupRel)) return { pid: p, fd };
    closeSync(fd);
  }
  throw new PraetorError('SANDBOX_FAILED', 'could not find the sandbox\'s network namespace', { hint: 'report this as a bug' });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms); })]).finally(() => clearTimeout(t));
}
