// Veth plumbing for one sandbox: the host end stays in praetor's namespace (gateway side of a
// /30 from the link pool), the other end moves into the sandbox's namespace as eth0 with a
// default route to the gateway. IPv6 is disabled on both ends: the gateway does not carry it.
import { spawn } from 'node:child_process';
import { fstatSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { PraetorError } from '../errors.ts';
import { intToIpv4, parseCidr } from '../util/index.ts';

/** Runs `cmd`; with `fd`, that file is the child's fd 3 (so `/proc/self/fd/3` names it there). */
function run(cmd: string, args: string[], fd?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ...(fd === undefined ? [] : [fd])] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 4096) stderr += d; });
    child.once('error', (e) => reject(new Error(`${cmd} ${args.join(' ')}: ${e.message}`)));
    child.once('close', (code, sig) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || `exit ${code ?? sig}`}`))));
  });
}

export interface LinkAddrs { hostIf: string; peerIf: string; gatewayIp: string; sandboxIp: string; prefix: 30 }

/** The slot-th /30 of the pool: .1 is the gateway end, .2 the sandbox end. */
export function slotAddresses(pool: string, slot: number): { gatewayIp: string; sandboxIp: string } {
  const c = parseCidr(pool);
  const size = 2 ** (32 - c.prefix) / 4;
  if (slot < 0 || slot >= size) throw new Error(`link pool ${pool} has no slot ${slot}`);
  const base = c.base + slot * 4;
  return { gatewayIp: intToIpv4(base + 1), sandboxIp: intToIpv4(base + 2) };
}

/**
 * The sandbox link's MTU. Every TCP connection on it ends at the gateway (which opens its own
 * upstream), so nothing larger leaves the host: the large MTU only makes the sandbox's hop carry
 * fewer, larger segments and ACKs, which is kernel CPU that relayed (intercepted) flows pay per
 * packet on a busy host.
 */
export const LINK_MTU = 65520;

/** Creates the veth pair with the host end addressed and up (not yet moved). */
export async function createLink(l: LinkAddrs): Promise<void> {
  await run('ip', ['link', 'add', l.hostIf, 'mtu', String(LINK_MTU), 'type', 'veth', 'peer', 'name', l.peerIf, 'mtu', String(LINK_MTU)]);
  await writeFile(`/proc/sys/net/ipv6/conf/${l.hostIf}/disable_ipv6`, '1').catch(() => {});
  await run('ip', ['addr', 'add', `${l.gatewayIp}/${l.prefix}`, 'dev', l.hostIf]);
  await run('ip', ['link', 'set', l.hostIf, 'up']);
}

/**
 * A sandbox's network namespace as an open file (`/proc/PID/ns/net`), with the pid it was
 * opened from (kept for attributing connections to processes, never for reaching the namespace).
 * Threat: a pid names a process only until it exits and the kernel hands the number to another;
 * moving the veth and setting the default route "into pid N" could then configure the host's
 * namespace or another sandbox's. The open file names the namespace for as long as it is held.
 */
export interface NetnsRef { pid: number; fd: number }

/** Fails closed unless `fd` is a network namespace other than the one praetor runs in. */
export function checkSandboxNetns(fd: number): void {
  let ino: bigint;
  try { ino = fstatSync(fd, { bigint: true }).ino; } catch (e) {
    throw new PraetorError('SANDBOX_FAILED', `the sandbox's network namespace file is not open: ${(e as Error).message}`, { hint: 'report this as a bug' });
  }
  if (ino === statSync('/proc/self/ns/net', { bigint: true }).ino) {
    throw new PraetorError('SANDBOX_FAILED', 'refusing to configure a sandbox link in the gateway\'s own network namespace', { hint: 'the sandbox process was not in a namespace of its own; report this as a bug' });
  }
}

/** Moves the peer into the namespace `ns.fd` names and configures it there. */
export async function moveIntoSandbox(l: LinkAddrs, ns: NetnsRef): Promise<void> {
  checkSandboxNetns(ns.fd);
  // iproute2 opens a netns argument that is a path (IFLA_NET_NS_FD), and nsenter enters one.
  await run('ip', ['link', 'set', l.peerIf, 'netns', '/proc/self/fd/3'], ns.fd);
  // One batch inside the sandbox's namespace: fewer forks, one place to fail.
  const batch = [
    `link set ${l.peerIf} name eth0`,
    `addr add ${l.sandboxIp}/${l.prefix} dev eth0`,
    'link set eth0 up',
    'link set lo up',
    `route add default via ${l.gatewayIp} dev eth0`,
  ].join('\n');
  await run('nsenter', ['--net=/proc/self/fd/3', 'sh', '-c', `echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null; printf '%s\\n' "$0" | ip -batch -`, batch], ns.fd);
}

export async function deleteLink(hostIf: string): Promise<void> {
  await run('ip', ['link', 'del', hostIf]).catch(() => {});
}
