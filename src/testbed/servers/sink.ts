// An attacker's listener ("C2" / `nc -lvp 4444`): a reverse shell that got out would connect
// here. It logs every byte received and sends one harmless probe command, so a test that
// wrongly let a shell through sees the shell's answer (PRAETOR-SHELL-42) arrive in the log.
import { createServer, type Server } from 'node:net';
import { listen } from './http.ts';
import { counter, head, trackConnection, type Logger } from './log.ts';

export const SHELL_PROBE = 'echo PRAETOR-SHELL-$((6*7))\n';

export async function startSink(log: Logger, ip: string, ports: readonly number[]): Promise<Server[]> {
  const next = counter();
  const servers: Server[] = [];
  for (const port of ports) {
    const server = createServer((socket) => {
      const conn = trackConnection(log, socket, next);
      socket.on('error', () => {});
      // Bounded: an idle connection is dropped after 60 s.
      socket.setTimeout(60_000, () => socket.destroy());
      socket.on('data', (chunk: Buffer) => log('data', { conn, port, bytes: chunk.length, text: head(chunk), hex: chunk.subarray(0, 64).toString('hex') }));
      socket.write(SHELL_PROBE);
    });
    await listen(server, ip, port);
    servers.push(server);
  }
  return servers;
}
