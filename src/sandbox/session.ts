// A long-lived shell in a sandbox (ROCK's create_session / run_in_session): state such as the
// working directory and exported variables carries from one command to the next. Each command
// is followed by a marker carrying its exit status; the marker holds a random nonce so a
// command cannot fake the end of its own output.
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { PraetorError } from '../errors.ts';
import type { ExecHandle, Sandbox } from './sandbox.ts';

export interface SessionResult { output: string; exitCode: number; timedOut: boolean }

export class Session {
  readonly name: string;
  readonly #h: ExecHandle;
  #buf = '';
  /** how far #buf has been searched for the end marker, so each chunk is scanned once. */
  #scanned = 0;
  #waiter: (() => void) | undefined;
  #busy = false;
  #ended = false;

  constructor(sb: Sandbox, name: string, opts: { env?: Record<string, string>; cwd?: string } = {}) {
    this.name = name;
    // One decoder per stream: a UTF-8 character split across two pipe reads must not turn into
    // two U+FFFD (chunk.toString() decodes each chunk on its own).
    const outDec = new StringDecoder('utf8');
    const errDec = new StringDecoder('utf8');
    this.#h = sb.spawn(['/bin/bash', '--noprofile', '--norc'], {
      stdin: true, ...opts,
      onStdout: (c) => { this.#buf += outDec.write(c); this.#waiter?.(); },
      onStderr: (c) => { this.#buf += errDec.write(c); this.#waiter?.(); },
    });
    this.#h.write('exec 2>&1\n');
    void this.#h.done.then(() => { this.#buf += outDec.end() + errDec.end(); this.#ended = true; this.#waiter?.(); });
  }

  get ended(): boolean { return this.#ended; }

  async run(command: string, timeoutMs = 300_000): Promise<SessionResult> {
    if (this.#ended) throw new PraetorError('BAD_STATE', `session ${this.name} has ended`, { hint: 'create a new session' });
    if (this.#busy) throw new PraetorError('CONFLICT', `session ${this.name} is running another command`, { hint: 'wait for it, or use another session' });
    this.#busy = true;
    const nonce = randomBytes(8).toString('hex');
    const marker = new RegExp(`\\n?__PRAETOR_${nonce}_(\\d+)__\\n`, 'g');
    // The longest marker (newline, nonce, a status of up to 10 digits): a marker completed by the
    // newest chunk starts at most this far before the already-searched end, so re-scanning the
    // whole buffer on every chunk (quadratic on a chatty command) is never needed.
    const markerMax = `\n__PRAETOR_${nonce}_${'9'.repeat(10)}__\n`.length;
    this.#buf = '';
    this.#scanned = 0;
    this.#h.write(`${command}\nprintf '\\n__PRAETOR_${nonce}_%d__\\n' "$?"\n`);
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        marker.lastIndex = Math.max(0, this.#scanned - markerMax);
        const m = marker.exec(this.#buf);
        this.#scanned = this.#buf.length;
        if (m) return { output: this.#buf.slice(0, m.index), exitCode: Number(m[1]), timedOut: false };
        if (this.#ended) return { output: this.#buf, exitCode: 137, timedOut: false };
        const left = deadline - Date.now();
        if (left <= 0) {
          this.#h.kill('SIGINT');
          return { output: this.#buf, exitCode: 124, timedOut: true };
        }
        await new Promise<void>((r) => { const t = setTimeout(r, left); this.#waiter = () => { clearTimeout(t); r(); }; });
      }
    } finally {
      this.#busy = false;
      this.#waiter = undefined;
    }
  }

  close(): void { this.#h.kill('SIGKILL'); }
}
