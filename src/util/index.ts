// Small helpers any layer may use: ids and clocks, IPv4/CIDR math, /proc reads, sizes, zod input
// parsing, percentiles. util imports nothing of Praetor's but errors.ts, so it sits under everything.
export { newId, nowNs } from './ids.ts';
export { isIPv4, ipv4ToInt, intToIpv4, parseCidr, cidrContains, cidrWithin, PROTECTED_RANGES, type Cidr } from './ip.ts';
export { readStartTime, pidAlive, decodeWaitStatus } from './proc.ts';
export { parseSize, formatBytes } from './size.ts';
export { parseInput, zodError } from './parse-input.ts';
export { pct } from './stats.ts';
