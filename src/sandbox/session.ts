// A shell session in a sandbox (ROCK's create_session / run_in_session): the working directory,
// variables, functions, aliases and shell options carry from one command to the next.
//
// Why one shell process per command, framed out of band (issue 17 §4): the session used to be one
// long-lived bash fed through its stdin, with an end marker printed after each command. A command
// that read stdin (`cat`, `read`, a REPL) swallowed the marker and hung until the timeout, and a
// command could read the marker's nonce and print a forged exit status (reward hacking: "tests
// passed"). Now each command is its own exec through praetor-init:
//   - its stdin is empty (EOF at once) unless the caller sends input;
//   - its exit status is the wait status praetor-init reports, which nothing in the sandbox can
//     write, and its output is its stdout/stderr, with no marker to forge;
//   - the shell state travels in a memfd at fd 4 (sent with the exec request, rewritten by the
//     shell as it exits, read back by praetor-init; see native/praetor-init.c), outside the
//     command's stdin/stdout. The state is the agent's own: it can already shape
//     later commands of its session with functions and aliases (as in any shell session), so the
//     state is not a boundary; the exit status and the output of each command are.
import { StringDecoder } from 'node:string_decoder';
import { PraetorError } from '../errors.ts';
import type { ExecHandle, Sandbox } from './sandbox.ts';

export interface SessionResult { output: string; exitCode: number; timedOut: boolean }
export interface SessionRunOptions { /** bytes for the command's stdin; without it stdin is empty. */ input?: string | Buffer }

/** A state dump larger than this is dropped (the previous state is kept): host memory is finite. */
const MAX_STATE_BYTES = 4 << 20;
// A dump is taken only whole: it starts and ends with these lines. The memfd still holds the
// control blob (which starts `__praetor_cmd=`) when the shell died before its dump.
const STATE_BEGIN = '#praetor-session-state v1';
const STATE_END = '#praetor-session-state-end';

/** Variables that belong to the shell process, not to the session; restoring them fails or lies. */
const SHELL_OWN = 'BASH*|EUID|UID|PPID|SHELLOPTS|FUNCNAME|GROUPS|RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|PIPESTATUS|EPOCHREALTIME|EPOCHSECONDS|DIRSTACK|COMP_*|PWD|SHLVL|OPTIND|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|_|__praetor_*';

// Every variable name without a fork ("${!A@}" lists the names starting with A, one word each,
// whatever IFS is): a subshell per command (compgen | while) cost ~20 ms.
const ALL_NAMES = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_'].map((c) => `"\${!${c}@}"`).join(' ');

// The fixed program each command runs under (argv, not data): load the state and the command from
// fd 4, arm the dump of the state into fd 4 on exit (also when the command calls `exit`), run
// the command.
// `builtin` keeps a session-defined function named `source` or `trap` from replacing the framing.
// The options (`set -e`, `set -u`) are restored last, so that they never stop the restore itself:
// a state that cannot be loaded would otherwise fail every later command of the session.
const WRAPPER = [
  'exec 2>&1',
  'builtin source /proc/self/fd/4',
  `builtin trap '__praetor_rc=$?; {
  builtin printf "%s\\n" "${STATE_BEGIN}"
  builtin printf "builtin cd -- %q 2>/dev/null || :\\n" "$PWD"
  builtin shopt -p; builtin alias -p; builtin declare -f; builtin umask -p
  for __praetor_v in ${ALL_NAMES}; do
    case $__praetor_v in ${SHELL_OWN}) ;; *) builtin declare -p "$__praetor_v" ;; esac
  done
  builtin set +o
  builtin printf "%s\\n" "${STATE_END}"
} >/proc/self/fd/4 2>/dev/null; exit $__praetor_rc' EXIT`,
  // 4>&-: the command's processes do not inherit the memfd (bash restores it for the trap).
  'builtin eval "$__praetor_cmd" 4>&-',
].join('\n');

// Before a saved state is loaded, drop the exported variables the exec's environment brought, so
// a variable the session unset stays unset.
const RESET_ENV = `for __praetor_v in ${ALL_NAMES}; do case $__praetor_v in ${SHELL_OWN}) ;; *) [[ \${!__praetor_v@a} == *x* ]] && builtin unset -v "$__praetor_v" ;; esac; done\n`;

/** bash $'…' quoting: only the backslash and the single quote need escaping there. */
function ansiQuote(s: string): string {
  return `$'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export class Session {
  readonly name: string;
  readonly #sb: Sandbox;
  readonly #env: Record<string, string> | undefined;
  readonly #cwd: string | undefined;
  /** the shell state after the last command that completed its dump; '' before the first. */
  #state = '';
  #current: ExecHandle | undefined;
  #closed = false;

  constructor(sb: Sandbox, name: string, opts: { env?: Record<string, string>; cwd?: string } = {}) {
    this.#sb = sb;
    this.name = name;
    this.#env = opts.env;
    this.#cwd = opts.cwd;
  }

  get ended(): boolean { return this.#closed || this.#sb.state === 'destroyed'; }

  async run(command: string, timeoutMs = 300_000, opts: SessionRunOptions = {}): Promise<SessionResult> {
    if (this.ended) throw new PraetorError('BAD_STATE', `session ${this.name} has ended`, { hint: 'create a new session' });
    if (this.#current) throw new PraetorError('CONFLICT', `session ${this.name} is running another command`, { hint: 'wait for it, or use another session' });
    if (command.includes('\0')) throw new PraetorError('BAD_ARGUMENT', 'a session command may not contain NUL bytes', { hint: 'remove the NUL byte (send binary data as input instead)' });
    const control = `__praetor_cmd=${ansiQuote(command)}\n${this.#state ? RESET_ENV + this.#state : ''}`;
    // One decoder for the merged stream: a UTF-8 character split across two pipe reads must not
    // turn into two U+FFFD.
    const dec = new StringDecoder('utf8');
    let output = '';
    const state: Buffer[] = [];
    let stateBytes = 0;
    const h = this.#sb.spawn(['/bin/bash', '--noprofile', '--norc', '-c', WRAPPER, 'bash'], {
      stdin: opts.input !== undefined, timeoutMs, collect: false,
      ...(this.#env ? { env: this.#env } : {}), ...(this.#cwd ? { cwd: this.#cwd } : {}),
      onStdout: (c) => { output += dec.write(c); },
      onStderr: (c) => { output += dec.write(c); },
      session: { control, onState: (c) => { stateBytes += c.length; if (stateBytes <= MAX_STATE_BYTES) state.push(c); } },
    });
    this.#current = h;
    try {
      if (opts.input !== undefined) { h.write(opts.input); h.closeStdin(); }
      const r = await h.done;
      output += dec.end();
      const dump = Buffer.concat(state).toString();
      // Only a complete dump replaces the state: a command killed mid-dump keeps the previous one.
      if (stateBytes <= MAX_STATE_BYTES && dump.startsWith(`${STATE_BEGIN}\n`) && dump.endsWith(`${STATE_END}\n`)) this.#state = dump;
      if (r.error && this.ended) return { output, exitCode: 137, timedOut: false };
      return { output, exitCode: r.code, timedOut: r.timedOut };
    } finally {
      this.#current = undefined;
    }
  }

  close(): void {
    this.#closed = true;
    this.#current?.kill('SIGKILL');
  }
}
