// Shared plumbing of the detection tests: one test topology per file, `praetor run --policy
// --report` inside its host namespace (so nothing a misbehaving command does can leave the
// machine, TEST-NETWORK.md), and the assertions every case makes on the run's report.
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { EXIT_CONTAINED } from '../../src/runner/run-guarded.ts';
import { createTopology, type ExecResult, type Topology, type TopologyOptions } from '../topology/index.ts';

export const PRAETOR = new URL('../../bin/praetor', import.meta.url).pathname;
export { EXIT_CONTAINED };

export type Ev = Record<string, unknown> & { kind: string; id: string; ts: number };
export interface Report {
  sandboxId: string; exitCode: number; signal: string | null; contained: boolean; timedOut: boolean;
  durationMs: number; usage: { cpuMs: number; pidsPeak: number };
  events: Ev[]; alerts: Ev[]; containment: Ev[]; degraded: string[];
}
export interface CaseResult { r: ExecResult; rep: Report; ms: number }

export interface RunOptions {
  /** extra `praetor run` flags, e.g. ['--cpus', '0.5'] */
  flags?: string[];
  /** files to place in the workspace (bound at /workspace, the cwd) */
  files?: Record<string, string>;
  /** executable files to place in the workspace */
  exes?: Record<string, string>;
  timeoutMs?: number;
}

export interface Harness {
  t: Topology;
  dir: string;
  policy: string;
  run(name: string, argv: string[], o?: RunOptions): Promise<CaseResult>;
  close(): Promise<void>;
}

/**
 * One topology and one temp dir for a test file. `policyYaml` is the `praetor run --policy`
 * file; every case of the file runs under it.
 */
export async function openHarness(policyYaml: string, topo: TopologyOptions = {}): Promise<Harness> {
  const dir = mkdtempSync('/tmp/pt-test-detect-');
  let t: Topology;
  try {
    t = await createTopology(topo);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const policy = `${dir}/policy.yaml`;
  writeFileSync(policy, policyYaml);
  return {
    t, dir, policy,
    async run(name, argv, o = {}) {
      const ws = `${dir}/ws-${name}`;
      mkdirSync(ws, { recursive: true });
      for (const [f, body] of Object.entries(o.files ?? {})) writeFileSync(`${ws}/${f}`, body);
      for (const [f, body] of Object.entries(o.exes ?? {})) { writeFileSync(`${ws}/${f}`, body); chmodSync(`${ws}/${f}`, 0o755); }
      const report = `${dir}/${name}.json`;
      const t0 = performance.now();
      const r = await t.execInHost(PRAETOR, ['run', '--state', `${dir}/state`, '--policy', policy, '--workspace', ws,
        '--report', report, ...(o.flags ?? []), '--', ...argv], { timeoutMs: o.timeoutMs ?? 60_000 });
      const ms = performance.now() - t0;
      let rep: Report;
      try { rep = JSON.parse(readFileSync(report, 'utf8')) as Report; } catch (e) {
        throw new Error(`${name}: no report (exit ${r.code}, timedOut ${r.timedOut}): ${r.stderr.slice(-2000)}`, { cause: e });
      }
      return { r, rep, ms };
    },
    async close() {
      // `praetor run` started a resident guard in the host namespace: stop it before the namespace goes.
      try { await t.execInHost(PRAETOR, ['daemon', 'stop', '--state', `${dir}/state`], { timeoutMs: 60_000 }); } catch { /* teardown kills it */ }
      try { await t.teardown(); } finally { rmSync(dir, { recursive: true, force: true }); }
    },
  };
}

/** Copies a file into a case's workspace before the run (e.g. the topology's ssh key). */
export function copyInto(h: Harness, name: string, from: string, as: string, mode = 0o600): void {
  const ws = `${h.dir}/ws-${name}`;
  mkdirSync(ws, { recursive: true });
  cpSync(from, `${ws}/${as}`);
  chmodSync(`${ws}/${as}`, mode);
}

function summary(rep: Report): string {
  const ev = rep.events.filter((e) => e.kind !== 'resource.sample')
    .map((e) => `${e.kind} ${e.comm ?? ''} ${Array.isArray(e.argv) ? (e.argv as string[]).join(' ').slice(0, 160) : ''}${e.dstIp ? ` ${e.dstIp}:${e.dstPort}` : ''}${e.protocol ? ` ${e.protocol}` : ''}${e.decision ? ` ${e.decision}` : ''}`);
  return `exit ${rep.exitCode} contained ${rep.contained} degraded ${JSON.stringify(rep.degraded)}\nalerts: ${JSON.stringify(rep.alerts.map((a) => a.rule))}\ncontainment: ${JSON.stringify(rep.containment)}\nevents:\n  ${ev.slice(0, 60).join('\n  ')}`;
}

/**
 * The contract of a malicious case: exit 125, contained, `rule` among the alerts, each alert's
 * evidence present in the report's events, and a successful containment entry with a latency
 * for that rule's alert. Returns the matching alert.
 */
export function assertContained(c: CaseResult, rule: string | RegExp): Ev {
  const { r, rep } = c;
  const why = `${summary(rep)}\nstderr: ${r.stderr.slice(-1500)}`;
  assert.equal(r.code, EXIT_CONTAINED, `praetor run exits ${EXIT_CONTAINED} when it contained the run\n${why}`);
  assert.equal(rep.exitCode, EXIT_CONTAINED, why);
  assert.equal(rep.contained, true, why);
  assert.deepEqual(rep.degraded, [], `the kernel sensor ran in full: ${why}`);
  const match = (name: unknown) => typeof rule === 'string' ? name === rule : rule.test(String(name));
  const alert = rep.alerts.find((a) => match(a.rule));
  assert.ok(alert, `alert ${rule} raised\n${why}`);
  const ids = new Set(rep.events.map((e) => e.id));
  for (const a of rep.alerts) {
    const ev = a.evidence as string[];
    assert.ok(Array.isArray(ev) && ev.length > 0, `alert ${a.rule} names its evidence`);
    for (const id of ev) assert.ok(ids.has(id), `evidence ${id} of ${a.rule} is in the report's events`);
  }
  const conts = rep.containment.filter((x) => x.alertId === alert.id && x.action !== 'alert');
  assert.ok(conts.length > 0, `containment recorded for ${alert.rule}\n${why}`);
  assert.ok(conts.some((x) => x.ok === true), `some containment action succeeded\n${why}`);
  for (const x of conts) {
    // A kill aimed at a process that already exited (nc rejecting -e) is not a failure to
    // contain, nor is an action that does not apply here, recorded as skipped with its reason
    // (terminate-episode outside an episode, isolate of a sandbox with only lo); anything else
    // that failed is.
    if (x.ok !== true && !(x.outcome === 'skipped' && typeof x.reason === 'string')) assert.match(String(x.error), /already gone/, `containment ${x.action} succeeded: ${JSON.stringify(x)}`);
    assert.equal(typeof x.latencyMs, 'number', `containment ${x.action} has a latency`);
    assert.ok((x.latencyMs as number) >= 0, JSON.stringify(x));
  }
  return alert;
}

/** The contract of a benign look-alike: exit 0, no alert, no containment, sensor not degraded. */
export function assertClean(c: CaseResult): void {
  const { r, rep } = c;
  const why = `${summary(rep)}\nstdout: ${r.stdout.slice(-800)}\nstderr: ${r.stderr.slice(-1500)}`;
  assert.equal(r.code, 0, why);
  assert.equal(rep.exitCode, 0, why);
  assert.deepEqual(rep.alerts.map((a) => a.rule), [], why);
  assert.deepEqual(rep.containment, [], why);
  assert.equal(rep.contained, false, why);
  assert.deepEqual(rep.degraded, [], why);
}

export { summary };
