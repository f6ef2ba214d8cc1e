// `praetor run`: one command in a new sandbox, output streamed, exit code passed through, a JSON
// report on request. Everything the command left behind is killed when it exits.
//
// By default a thin client of the resident guard (src/daemon, started on first use): the sensors
// and rules stay warm there, so a run costs milliseconds instead of the kernel sensor's seconds.
// When no guard can be reached or started, the run happens in this process as before, and the
// report's `degraded` list says so. Only light modules are imported on the client's path.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PraetorError } from '../errors.ts';
import { EXIT_CONTAINED } from '../exit-codes.ts';
import type { RunReport } from '../runner/index.ts';
import type { SandboxSpecInput } from '../sandbox/index.ts';
import { parseSize } from '../util/index.ts';
import { parseFlags, parseNumberFlag, say, stateDir } from './common.ts';

const usage = (runtimes: readonly string[]): string => `praetor run [options] -- CMD [ARGS…]

  --cpus N            CPU quota, fractions allowed (default 1)
  --memory SIZE       memory limit, no swap (default 1g); SIZE like 64M, 1g, 512MiB
  --pids N            process limit (default 512)
  --disk SIZE         size of the writable layer (default 1g)
  --gpus N|all        grant GPUs (error when the host has none)
  --timeout SEC       kill the command after SEC seconds (exit 124)
  --runtime NAME      ${runtimes.join(' | ')} (default bwrap)
  --image NAME        image from the cache, or host (default host)
  --workspace DIR     bind DIR at /workspace, id-mapped so the agent can write it
  --cwd DIR           working directory inside the sandbox (default /workspace)
  --env K=V           extra environment (repeatable)
  --policy FILE       policy YAML (network, limits, rules); flags override it
  --phase setup|agent start in this network phase
  --state DIR         state directory (default $PRAETOR_STATE or /var/lib/praetor)
  --ledger PATH       record the run in the ledger at PATH
  --report FILE       write a JSON report of the run
  --no-detect         run without sensors and rules (benchmarks only)
  --no-guard          run in this process, not through the resident guard (also PRAETOR_NO_GUARD=1)

Exit status: the command's own; 128+N when killed by signal N (137 for memory);
124 on timeout; ${EXIT_CONTAINED} when Praetor contained the run; 2 for bad input; 70 when the
resident guard was lost mid-run (the sandbox died with it) or Praetor failed internally.`;

export async function main(argv: string[]): Promise<number> {
  // From its file, not sandbox/index.ts: the thin client must not load the sandbox manager.
  const { RUNTIME_NAMES } = await import('../sandbox/runtimes/types.ts');
  const { values: v, positionals } = parseFlags(argv, {
    cpus: { type: 'string' }, memory: { type: 'string' }, pids: { type: 'string' }, disk: { type: 'string' },
    gpus: { type: 'string' }, timeout: { type: 'string' }, runtime: { type: 'string' }, image: { type: 'string' },
    workspace: { type: 'string' }, cwd: { type: 'string' }, env: { type: 'string', multiple: true },
    policy: { type: 'string' }, phase: { type: 'string' }, state: { type: 'string' }, ledger: { type: 'string' },
    report: { type: 'string' }, 'no-detect': { type: 'boolean' }, 'no-guard': { type: 'boolean' },
  }, usage(RUNTIME_NAMES), true);
  if (positionals.length === 0) {
    throw new PraetorError('MISSING_COMMAND', 'no command given', { hint: 'put the command after --, e.g. praetor run -- python3 train.py' });
  }
  if (v.runtime !== undefined && !RUNTIME_NAMES.includes(v.runtime as never)) {
    throw new PraetorError('UNKNOWN_RUNTIME', `unknown runtime "${v.runtime}"`, { hint: `choose one of ${RUNTIME_NAMES.join(', ')}` });
  }
  if (v.phase !== undefined && v.phase !== 'setup' && v.phase !== 'agent') {
    throw new PraetorError('BAD_ARGUMENT', `--phase ${v.phase} is not a phase`, { hint: 'use --phase setup or --phase agent' });
  }
  const env: Record<string, string> = {};
  for (const kv of v.env ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new PraetorError('BAD_ARGUMENT', `--env ${kv} is not KEY=VALUE`, { hint: 'write --env NAME=value' });
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  let gpus: number | 'all' | undefined;
  if (v.gpus !== undefined) gpus = v.gpus === 'all' ? 'all' : parseNumberFlag('gpus', v.gpus, { int: true, min: 0 });
  const timeoutSec = parseNumberFlag('timeout', v.timeout, { min: 0 });

  const spec: SandboxSpecInput = {
    ...(v.cpus !== undefined ? { cpus: parseNumberFlag('cpus', v.cpus, { min: 0.01 })! } : {}),
    ...(v.memory !== undefined ? { memoryBytes: parseSize(v.memory, '--memory') } : {}),
    ...(v.pids !== undefined ? { pids: parseNumberFlag('pids', v.pids, { int: true, min: 8 })! } : {}),
    ...(v.disk !== undefined ? { diskBytes: parseSize(v.disk, '--disk') } : {}),
    ...(gpus !== undefined ? { gpus } : {}),
    ...(v.runtime !== undefined ? { runtime: v.runtime } : {}),
    ...(v.image !== undefined ? { image: v.image } : {}),
    // Absolute: the guard resolves nothing against this shell's working directory.
    ...(v.workspace !== undefined ? { workspace: resolve(v.workspace) } : {}),
    ...(v.cwd !== undefined ? { cwd: v.cwd } : {}),
    env,
  };
  const wire = {
    argv: positionals, spec: spec as Record<string, unknown>, detect: !v['no-detect'], stdin: true,
    ...(v.policy !== undefined ? { policyFile: resolve(v.policy) } : {}),
    ...(v.phase !== undefined ? { phase: v.phase as 'setup' | 'agent' } : {}),
    ...(timeoutSec !== undefined ? { timeoutMs: timeoutSec * 1000 } : {}),
    ...(v.ledger !== undefined ? { ledgerPath: resolve(v.ledger) } : {}),
  };
  const state = stateDir(v.state);
  const io = { stdout: (c: Buffer) => process.stdout.write(c), stderr: (c: Buffer) => process.stderr.write(c), log: say, stdin: process.stdin };

  let report: RunReport | undefined;
  const degradedHere: string[] = [];
  if (!v['no-guard'] && process.env.PRAETOR_NO_GUARD !== '1') {
    const { connectGuard, runThroughGuard } = await import('../daemon/guard-client.ts');
    const c = await connectGuard(state, { start: true });
    if (c.ok) {
      const run = runThroughGuard(c.conn, wire, io);
      const onSignal = (sig: NodeJS.Signals) => { say(`${sig}: destroying the sandbox`); run.signal(sig as 'SIGINT' | 'SIGTERM'); };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try { report = await run.report as RunReport; } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        c.conn.close();
      }
    } else {
      say(`no resident guard (${c.reason}); running in this process, detection starts slower`);
      degradedHere.push(`guard: no resident guard (${c.reason}); ran in-process`);
    }
  }
  if (!report) report = await runInProcess(state, wire, io);
  report.degraded.push(...degradedHere);
  if (v.report) writeFileSync(v.report, JSON.stringify(report, null, 1) + '\n');
  for (const d of report.degraded) say(`degraded: ${d}`);
  if (report.contained) say(`contained: ${report.alerts.map((a) => a.rule).join(', ')}`);
  if (report.timedOut) say(`timed out after ${(report.durationMs / 1000).toFixed(1)} s`);
  if (report.oomKilled) say('killed: out of memory (raise --memory)');
  return report.exitCode;
}

/** Today's in-process run: this process starts the sensors, the rules and the sandbox itself. */
async function runInProcess(state: string, w: { argv: string[]; spec: Record<string, unknown>; detect: boolean; policyFile?: string; phase?: 'setup' | 'agent'; timeoutMs?: number; ledgerPath?: string }, io: { stdout: (c: Buffer) => void; stderr: (c: Buffer) => void; log: (m: string) => void; stdin: NodeJS.ReadableStream }): Promise<RunReport> {
  const { runGuarded } = await import('../runner/index.ts');
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => { say(`${sig}: destroying the sandbox`); ac.abort(sig); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runGuarded({
      argv: w.argv, stateDir: state, spec: w.spec as SandboxSpecInput, detect: w.detect,
      ...(w.policyFile ? { policyFile: w.policyFile } : {}), ...(w.phase ? { phase: w.phase } : {}),
      ...(w.timeoutMs !== undefined ? { timeoutMs: w.timeoutMs } : {}), ...(w.ledgerPath ? { ledgerPath: w.ledgerPath } : {}),
      ...io, signal: ac.signal,
      // The report is what the caller waits for; bpftrace detaching its probes (~3 s) is not.
      quickStop: true,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
