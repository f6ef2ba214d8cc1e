// Veth plumbing for one sandbox: the host end stays in praetor's namespace (gateway side of a
// /30 from the link pool), the other end moves into the sandbox's namespace as eth0 with a
// default route to the gateway. IPv6 is disabled on both ends: the gateway does not carry it.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { intToIpv4, parseCidr } from '../util/index.ts';

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)); else resolve(stdout);
    });
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

/** Moves the peer into the namespace of `pid` and configures it there. */
export async function moveIntoSandbox(l: LinkAddrs, pid: number): Promise<void> {
  await run('ip', ['link', 'set', l.peerIf, 'netns', String(pid)]);
  const ns = `--net=/proc/${pid}/ns/net`;
  // One batch inside the sandbox's namespace: fewer forks, one place to fail.
  const batch = [
    `link set ${l.peerIf} name eth0`,
    `addr add ${l.sandboxIp}/${l.prefix} dev eth0`,
    'link set eth0 up',
    'link set lo up',
    `route add default via ${l.gatewayIp} dev eth0`,
  ].join('\n');
  await run('nsenter', [ns, 'sh', '-c', `echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null; printf '%s\\n' "$0" | ip -batch -`, batch]);
}

export async function deleteLink(hostIf: string): Promise<void> {
  await run('ip', ['link', 'del', hostIf]).catch(() => {});
}
