// Run by link.test.ts inside a network namespace of its own (`ip netns exec`): moves a veth end
// into a sandbox namespace by an open file of it, as the gateway does, and prints what happened.
import { spawn, execFileSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { createLink, deleteLink, moveIntoSandbox } from '../../src/net/link.ts';

const mode = process.argv[2];
const l = { hostIf: 'ptl-h', peerIf: 'ptl-p', gatewayIp: '10.203.0.1', sandboxIp: '10.203.0.2', prefix: 30 as const };
const out: Record<string, unknown> = {};
await createLink(l);
try {
  if (mode === 'exited') {
    // The namespace's only process has exited (and its pid is free for reuse) before the move.
    const child = spawn('unshare', ['-n', 'sleep', '1000'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
    const fd = openSync(`/proc/${child.pid}/ns/net`, 'r');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await moveIntoSandbox(l, { pid: child.pid!, fd });
    out.inside = execFileSync('nsenter', [`--net=/proc/${process.pid}/fd/${fd}`, 'ip', '-o', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' });
    out.route = execFileSync('nsenter', [`--net=/proc/${process.pid}/fd/${fd}`, 'ip', 'route', 'show', 'default'], { encoding: 'utf8' });
  } else {
    try { await moveIntoSandbox(l, { pid: process.pid, fd: openSync('/proc/self/ns/net', 'r') }); out.moved = true; } catch (e) { out.error = (e as Error).message; out.code = (e as { code?: string }).code; }
  }
  out.here = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  out.hereRoute = execFileSync('ip', ['route', 'show', 'default'], { encoding: 'utf8' });
} finally {
  await deleteLink(l.hostIf);
  await deleteLink(l.peerIf);
}
process.stdout.write(JSON.stringify(out));
