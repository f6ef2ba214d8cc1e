#!/usr/bin/env node
// Entry point: dispatches to one module per subcommand (loaded lazily so `praetor run` does not
// pay for the server's imports) and turns every error into a message with a fix, never a trace.
import module from 'node:module';

// Node's on-disk compile cache: a start that reuses it parses and strips nothing it saw before
// (about half of a thin `praetor run`'s own start). Root's cache under /var/cache/praetor, others'
// in their own temp dir; a cache that cannot be written only costs speed.
try {
  module.enableCompileCache?.(process.env.PRAETOR_COMPILE_CACHE ?? (process.getuid?.() === 0 ? '/var/cache/praetor/compile' : undefined));
} catch { /* no cache: slower, not wrong */ }
const { isPraetorError } = await import('../errors.ts');
const { EXIT_INTERNAL } = await import('../exit-codes.ts');

type Command = { summary: string; load: () => Promise<{ main: (argv: string[]) => Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  run: { summary: 'run a command in a new sandbox', load: () => import('./run.ts') },
  daemon: { summary: 'the resident guard that keeps `praetor run` fast (run, start, stop, status)', load: () => import('./daemon.ts') },
  ps: { summary: 'list live sandboxes', load: () => import('./ps.ts') },
  gc: { summary: 'reap sandboxes whose owner died', load: () => import('./gc.ts') },
  status: { summary: 'what works on this host and what runs degraded', load: () => import('./status.ts') },
  image: { summary: 'import, list and remove images', load: () => import('./image.ts') },
  rules: { summary: 'lint, test and list detection rules', load: () => import('./rules.ts') },
  init: { summary: 'write a commented starter policy (coding-agent, rl-rollout, offline)', load: () => import('./init.ts') },
  policy: { summary: 'check policy files (every problem with file:line and the fix)', load: () => import('./policy.ts') },
  audit: { summary: 'verify, export and prune the tamper-evident audit ledger', load: () => import('./audit.ts') },
  trace: { summary: "an episode's timeline from reward back to the packet", load: () => import('./trace.ts') },
  serve: { summary: 'the HTTP + WebSocket API (sandboxes, episodes, ROCK/GEM, MCP, model gateway)', load: () => import('./serve.ts') },
  token: { summary: 'create API tokens (tenants, admin scope)', load: () => import('./token.ts') },
  cluster: { summary: 'the cluster PKI: CA, join tokens, control certificates, node join (mutual TLS links)', load: () => import('./cluster.ts') },
  nodes: { summary: 'the cluster\'s nodes: health, capacity, sandboxes, degraded sensors', load: () => import('./nodes.ts') },
  bench: { summary: 'benchmarks (JSON results)', load: () => import('./bench.ts') },
  demo: { summary: 'a short guided demo of praetor run', load: () => import('./demo.ts') },
  arena: { summary: 'misbehaving and honest scripted agents against the guardrails, in a closed test network', load: () => import('./arena.ts') },
  start: { summary: 'first start: admin token, next steps, then the server (npm start)', load: () => import('./start.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `usage: praetor <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'praetor <command> --help' for a command's options.`;
}

export async function cliMain(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`praetor: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  return (await cmd.load()).main(rest);
}

try {
  process.exitCode = await cliMain(process.argv.slice(2));
} catch (e) {
  if (isPraetorError(e)) {
    process.stderr.write(`praetor: ${e.message}\n${e.hint ? `  fix: ${e.hint}\n` : ''}`);
    // Bad input is 2; Praetor failing (a lost guard, a bug) is not the caller's input.
    process.exitCode = e.code === 'GUARD_LOST' || e.code === 'INTERNAL' ? EXIT_INTERNAL : 2;
  } else {
    // Not a PraetorError: a bug. One line with a stable code (and the system errno, when there
    // is one) for scripts and bug reports; the stack only on request.
    const errno = (e as NodeJS.ErrnoException | undefined)?.code;
    process.stderr.write(`praetor: internal error [INTERNAL${errno ? ` ${errno}` : ''}]: ${e instanceof Error ? e.message : String(e)}\n`
      + (process.env.PRAETOR_DEBUG && e instanceof Error ? `${e.stack}\n` : '  fix: this is a bug in praetor; rerun with PRAETOR_DEBUG=1 for the stack and report it\n'));
    process.exitCode = EXIT_INTERNAL;
  }
}

// The command is done and everything it created has been torn down by its own finally blocks.
// Exit once stdout and stderr have drained instead of waiting for the event loop to empty: a
// library handle left referenced (a worker, a socket) must not keep a finished `praetor run`
// hanging in a trainer's pipeline.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
process.exit();
