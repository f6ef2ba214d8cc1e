// A node's membership in a process of its own, so a test can kill -9 it: joins with the JSON
// options in argv[2], prints {"epoch","ordinal"} once joined, then heartbeats until killed.
import { NodeMembership } from '../../src/cluster/membership.ts';

const m = await NodeMembership.join(JSON.parse(process.argv[2]!));
process.stdout.write(`${JSON.stringify({ epoch: m.epoch, ordinal: m.ordinal })}\n`);
setInterval(() => {}, 1 << 30);
