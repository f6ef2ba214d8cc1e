// Host side of the praetor-init protocol (native/praetor-init.c): frames over the init's
// stdin/stdout pipes. Only the praetor process that created a sandbox holds these pipes, so
// nothing inside the sandbox can inject commands or forge their output.
import type { Readable, Writable } from 'node:stream';
import { PraetorError } from '../errors.ts';

const T_EXEC = 1, T_STDIN = 2, T_SIGNAL = 3;
const R_READY = 10, R_STARTED = 11, R_STDOUT = 12, R_STDERR = 13, R_EXIT = 14, R_ERROR = 15, R_STATE = 17;
const F_STDIN = 1, F_SESSION = 2;
/** praetor-init's MAX_FRAME: a larger frame makes it exit. */
const MAX_FRAME = 16 << 20;

export interface ExecRequest {
  argv: string[];
  env: string[];          // KEY=VALUE
  cwd: string;
  uid: number;
  gid: number;
  stdin: boolean;          // keep stdin open for writes
  /** a session shell's framing: the command reads this blob on fd 4 (a memfd) and writes on
   * fd 5 what arrives as onState. */
  control?: Buffer | string;
}

export interface ExecHandlers {
  onStarted(pid: number): void;
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
  /** what a session exec wrote on its state pipe (fd 5). */
  onState?(chunk: Buffer): void;
  /** raw wait status, or an error message when the command could not start */
  onExit(status: number | null, error?: string): void;
}

export class InitChannel {
  readonly #in: Writable;
  readonly #handlers = new Map<number, ExecHandlers>();
  #buf: Buffer = Buffer.alloc(0);
  #nextId = 1;
  #closed = false;
  #ready: Promise<void>;
  #readyResolve!: () => void;
  #readyReject!: (e: Error) => void;

  constructor(stdin: Writable, stdout: Readable) {
    this.#in = stdin;
    this.#ready = new Promise((res, rej) => { this.#readyResolve = res; this.#readyReject = rej; });
    this.#ready.catch(() => {});
    stdout.on('data', (d: Buffer) => this.#onData(d));
    stdout.on('close', () => this.#onClose());
    stdin.on('error', () => this.#onClose());
  }

  get ready(): Promise<void> { return this.#ready; }
  get closed(): boolean { return this.#closed; }

  exec(req: ExecRequest, h: ExecHandlers): number {
    if (this.#closed) throw new PraetorError('BAD_STATE', 'the sandbox has ended', { hint: 'create a new sandbox' });
    const id = this.#nextId++;
    const strings = [req.cwd, ...req.argv, ...req.env].map((s) => {
      if (s.includes('\0')) throw new PraetorError('BAD_ARGUMENT', 'command, cwd and env may not contain NUL bytes', { hint: 'remove the NUL byte' });
      return s + '\0';
    }).join('');
    const control = req.control === undefined ? undefined : Buffer.from(req.control);
    const head = Buffer.alloc(control ? 24 : 20);
    head.writeUInt32LE(req.uid, 0); head.writeUInt32LE(req.gid, 4); head.writeUInt32LE((req.stdin ? F_STDIN : 0) | (control ? F_SESSION : 0), 8);
    head.writeUInt32LE(req.argv.length, 12); head.writeUInt32LE(req.env.length, 16);
    if (control) head.writeUInt32LE(control.length, 20);
    const payload = Buffer.concat([head, Buffer.from(strings), ...(control ? [control] : [])]);
    if (payload.length > MAX_FRAME) throw new PraetorError('BAD_ARGUMENT', `the command is ${payload.length} bytes, more than the ${MAX_FRAME} one request may carry`, { hint: 'send large data as stdin or write it to a file' });
    this.#handlers.set(id, h);
    this.#send(T_EXEC, id, payload);
    return id;
  }

  write(id: number, data: Buffer | string): void {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < b.length; off += 1 << 20) this.#send(T_STDIN, id, b.subarray(off, off + (1 << 20)));
  }

  closeStdin(id: number): void { this.#send(T_STDIN, id, Buffer.alloc(0)); }


  signal(id: number, signo: number): void {
    const p = Buffer.alloc(4); p.writeUInt32LE(signo);
    this.#send(T_SIGNAL, id, p);
  }

  #send(type: number, id: number, payload: Buffer): void {
    if (this.#closed) return;
    const h = Buffer.alloc(9);
    h.writeUInt32LE(payload.length, 0); h.writeUInt8(type, 4); h.writeUInt32LE(id, 5);
    this.#in.write(payload.length > 0 ? Buffer.concat([h, payload]) : h);
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    let off = 0;
    while (this.#buf.length - off >= 9) {
      const len = this.#buf.readUInt32LE(off);
      if (this.#buf.length - off < 9 + len) break;
      const type = this.#buf.readUInt8(off + 4);
      const id = this.#buf.readUInt32LE(off + 5);
      const p = this.#buf.subarray(off + 9, off + 9 + len);
      off += 9 + len;
      this.#dispatch(type, id, p);
    }
    this.#buf = off === this.#buf.length ? Buffer.alloc(0) : this.#buf.subarray(off);
  }

  #dispatch(type: number, id: number, p: Buffer): void {
    if (type === R_READY) { this.#readyResolve(); return; }
    const h = this.#handlers.get(id);
    if (!h) return;
    switch (type) {
      case R_STARTED: h.onStarted(p.readUInt32LE(0)); break;
      case R_STDOUT: h.onStdout(Buffer.from(p)); break;
      case R_STDERR: h.onStderr(Buffer.from(p)); break;
      case R_STATE: h.onState?.(Buffer.from(p)); break;
      case R_EXIT: this.#handlers.delete(id); h.onExit(p.readInt32LE(0)); break;
      case R_ERROR: this.#handlers.delete(id); h.onExit(null, p.toString()); break;
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#readyReject(new PraetorError('SANDBOX_FAILED', 'the sandbox init exited before it was ready', { hint: 'run with PRAETOR_DEBUG=1 to see the runtime\'s output' }));
    for (const [id, h] of this.#handlers) { this.#handlers.delete(id); h.onExit(null, 'sandbox ended'); }
  }
}

/** Decodes a raw wait status into exit code or signal number (shared with the eBPF sensor). */
export { decodeWaitStatus } from '../util/index.ts';
