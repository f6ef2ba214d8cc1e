// The gateway's nftables table, in praetor's own network namespace. Sandbox links are veths
// named `ptg-<gw><slot>`; everything arriving on them is either redirected to the gateway
// (TCP → transparent proxy, UDP/TCP 53 → resolver) or dropped and counted. The kernel never
// forwards a sandbox packet: the forward hook drops it, so nothing leaves except through the
// gateway's own sockets (the ROME agent's direct reverse-SSH and pool connections).
import { execFile } from 'node:child_process';

export interface NftPlan { table: string; ifPrefix: string; tcpPort: number; dnsPort: number }

/** The whole table as one atomic `nft -f` script. */
export function renderTable(p: NftPlan): string {
  const ifs = `"${p.ifPrefix}*"`;
  return `table inet ${p.table} {
  # anti-spoofing: a sandbox may only use its own link's address (sandboxes are told apart by it)
  set links4 { type ifname . ipv4_addr; }
  # attempts: everything dropped, counted per (sandbox, destination, protocol[, port]); polled
  set att4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic,timeout; timeout 1h; size 65536; counter; }
  set att4p { type ipv4_addr . ipv4_addr . inet_proto; flags dynamic,timeout; timeout 1h; size 65536; counter; }
  chain guard {
    # raw priority, before conntrack and routing: with forwarding off, a packet for elsewhere
    # would be dropped by routing unseen, so every non-gateway packet is counted here
    type filter hook prerouting priority raw; policy accept;
    iifname ${ifs} jump sbguard
  }
  chain sbguard {
    meta nfproto != ipv4 jump record
    iifname . ip saddr != @links4 jump record
    meta l4proto tcp return
    udp dport 53 return
    jump record
  }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname ${ifs} jump sbpre
  }
  chain sbpre {
    meta nfproto != ipv4 return
    iifname . ip saddr != @links4 return
    udp dport 53 redirect to :${p.dnsPort}
    meta l4proto tcp redirect to :${p.tcpPort}
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname ${ifs} jump sbin
    # the gateway's ports serve sandbox links only, never another interface
    iifname != ${ifs} tcp dport ${p.tcpPort} drop
    iifname != ${ifs} udp dport ${p.dnsPort} drop
  }
  chain sbin {
    meta nfproto != ipv4 jump record
    iifname . ip saddr != @links4 jump record
    ct status dnat tcp dport ${p.tcpPort} accept
    ct status dnat udp dport ${p.dnsPort} accept
    jump record
  }
  chain forwarding {
    type filter hook forward priority filter; policy accept;
    iifname ${ifs} jump record
    oifname ${ifs} drop
  }
  chain out {
    type filter hook output priority filter; policy accept;
    # only replies of the gateway's own sockets go to a sandbox (no ICMP errors, no probes)
    oifname ${ifs} ct state established,related accept
    oifname ${ifs} tcp sport { ${p.tcpPort}, 53 } accept
    oifname ${ifs} udp sport { ${p.dnsPort}, 53 } accept
    oifname ${ifs} drop
  }
  chain record {
    meta nfproto ipv4 meta l4proto { tcp, udp } add @att4 { ip saddr . ip daddr . meta l4proto . th dport } drop
    meta nfproto ipv4 add @att4p { ip saddr . ip daddr . meta l4proto } drop
    drop
  }
}
`;
}

export function nft(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('nft', args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`nft ${args.join(' ')}: ${stderr.trim() || err.message}`)); else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export async function applyTable(p: NftPlan): Promise<void> {
  await nft(['-f', '-'], renderTable(p));
}

/** Deletes the table; false when there was none. */
export async function deleteTable(table: string): Promise<boolean> {
  return nft(['delete', 'table', 'inet', table]).then(() => true, () => false);
}

export async function addLink(table: string, ifname: string, ip: string): Promise<void> {
  await nft(['add', 'element', 'inet', table, 'links4', `{ "${ifname}" . ${ip} }`]);
}
export async function removeLink(table: string, ifname: string, ip: string): Promise<void> {
  await nft(['delete', 'element', 'inet', table, 'links4', `{ "${ifname}" . ${ip} }`]).catch(() => {});
}

export interface AttemptCount { src: string; dst: string; proto: number; dport?: number; packets: number; bytes: number }

/**
 * Reads the attempt sets (one `nft -j list table`) into flat counts; null when the table could
 * not be read, so a failed read is not mistaken for an empty table (every count reset).
 */
export async function readAttempts(table: string): Promise<AttemptCount[] | null> {
  const out: AttemptCount[] = [];
  let json: { nftables?: Array<{ set?: { name?: string; elem?: unknown[] } }> };
  try { json = JSON.parse(await nft(['-j', 'list', 'table', 'inet', table])); } catch { return null; }
  for (const item of json.nftables ?? []) {
    if (item.set?.name !== 'att4' && item.set?.name !== 'att4p') continue;
    for (const e of item.set.elem ?? []) out.push(...parseElem(e));
  }
  return out;
}

function parseElem(e: unknown): AttemptCount[] {
  const el = (e as { elem?: { val?: unknown; counter?: { packets: number; bytes: number } } }).elem;
  const val = el?.val as { concat?: unknown[] } | undefined;
  const parts = val?.concat;
  if (!Array.isArray(parts) || !el?.counter) return [];
  const [src, dst, proto, dport] = parts;
  const protoNum = typeof proto === 'number' ? proto : ({ tcp: 6, udp: 17, icmp: 1, icmpv6: 58 } as Record<string, number>)[String(proto)] ?? -1;
  return [{ src: String(src), dst: String(dst), proto: protoNum, ...(dport !== undefined ? { dport: Number(dport) } : {}), packets: el.counter.packets, bytes: el.counter.bytes }];
}

/**
 * New drops since the last read, and the counts to compare the next read against (rebuilt from
 * this read, so elements the table dropped are forgotten). An element expires after the set's
 * 1 h timeout and comes back with its counter restarted: fewer packets than last time means all
 * of them are new. Threat: comparing against the old count would silence a sandbox's attempts
 * until the new counter passed it.
 */
export function attemptDeltas(last: ReadonlyMap<string, number>, attempts: AttemptCount[]): { next: Map<string, number>; fresh: Array<{ attempt: AttemptCount; delta: number }> } {
  const next = new Map<string, number>();
  const fresh: Array<{ attempt: AttemptCount; delta: number }> = [];
  for (const a of attempts) {
    const key = `${a.src}|${a.dst}|${a.proto}|${a.dport ?? ''}`;
    const before = last.get(key) ?? 0;
    next.set(key, a.packets);
    const delta = a.packets >= before ? a.packets - before : a.packets;
    if (delta > 0) fresh.push({ attempt: a, delta });
  }
  return { next, fresh };
}
