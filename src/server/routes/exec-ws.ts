// Streaming exec over WebSocket: the first text frame is the command (the same body as the
// buffered exec); the server then sends {type:"stdout"|"stderr", data} frames and a final
// {type:"exit", …}. The client may send {type:"stdin", data}, {type:"close_stdin"} and
// {type:"kill", signal}. The exit frame waits for the command's records to be durable. A client that disconnects kills its command (no orphans), and so does
// one that reads too slowly (an error frame says why).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PraetorError, errorMessage, isPraetorError } from '../../errors.ts';
import { MAX_WS_BUFFERED, parseInput, principal, type Ctx } from '../http.ts';
import { toArgv } from '../sandbox-ops.ts';
import { notRecorded } from './durable-replies.ts';
import { ExecBody, execView } from './sandboxes.ts';

const ClientFrame = z.discriminatedUnion('type', [
  z.object({ type: z.literal('stdin'), data: z.string().describe('bytes for stdin (utf8)') }).strict(),
  z.object({ type: z.literal('close_stdin') }).strict(),
  z.object({ type: z.literal('kill'), signal: z.enum(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP']).optional().describe('signal (default SIGKILL)') }).strict(),
]);

export function execWsRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { core } = ctx;
  ctx.registry.add({ method: 'GET', path: '/v1/sandboxes/:id/exec/ws', tag: 'sandboxes', summary: 'WebSocket: streaming exec (first frame: the exec body)', websocket: true, errors: [404] });
  app.get('/v1/sandboxes/:id/exec/ws', { websocket: true }, (socket, req) => {
    const fail = (e: unknown) => {
      socket.send(JSON.stringify({ type: 'error', error: isPraetorError(e) ? e.toJSON() : { code: 'INTERNAL', message: errorMessage(e) } }));
      socket.close(1008, 'error');
    };
    let entry;
    try { entry = core.sandbox(principal(req), String((req.params as { id?: string }).id ?? '')); } catch (e) { fail(e); return; }
    const sb = entry.sb;
    let handle: ReturnType<typeof sb.spawn> | undefined;
    let overflowed = false;
    // Output is not buffered without bound for a slow reader (threat: `yes` piped to a stuck
    // client growing server memory): past the limit the command is killed and the client told why.
    const output = (type: 'stdout' | 'stderr', c: Buffer) => {
      if (overflowed) return;
      if (socket.bufferedAmount > MAX_WS_BUFFERED) {
        overflowed = true;
        handle?.kill('SIGKILL');
        fail(new PraetorError('TOO_LARGE', `the command was killed: over ${MAX_WS_BUFFERED} bytes of output were waiting for this client`, { hint: 'read the stream faster, or write large output to a file and download it' }));
        return;
      }
      socket.send(JSON.stringify({ type, data: c.toString() }));
    };
    socket.on('message', (raw, isBinary) => {
      try {
        const msg = JSON.parse(isBinary ? '' : raw.toString());
        if (!handle) {
          const b = parseInput(ExecBody.extend({ stdin: z.boolean().optional().describe('keep stdin open') }).strict(), msg, 'frame');
          handle = sb.spawn(toArgv(b.command, b.shell), {
            stdin: !!b.stdin,
            ...(b.timeout_ms ? { timeoutMs: b.timeout_ms } : {}), ...(b.cwd ? { cwd: b.cwd } : {}), ...(b.env ? { env: b.env } : {}),
            onStdout: (c) => output('stdout', c),
            onStderr: (c) => output('stderr', c),
          });
          void handle.done.then(async (r) => {
            if (overflowed) return;
            // The exit frame acknowledges the command: only once its records are durable.
            try { await core.guard.flush(); } catch (e) { fail(notRecorded(e)); return; }
            socket.send(JSON.stringify({ type: 'exit', ...execView(r), stdout: undefined, stderr: undefined }));
            socket.close(1000, 'done');
          });
          return;
        }
        const f = parseInput(ClientFrame, msg, 'frame');
        if (f.type === 'stdin') handle.write(f.data);
        else if (f.type === 'close_stdin') handle.closeStdin();
        else handle.kill(f.signal ?? 'SIGKILL');
      } catch (e) {
        if (handle) handle.kill('SIGKILL');
        fail(e instanceof SyntaxError ? new Error(`malformed frame: ${e.message}`) : e);
      }
    });
    socket.on('close', () => { handle?.kill('SIGKILL'); });
  });
}
