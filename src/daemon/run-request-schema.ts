// The guard's check of a run request (protocol.ts), so a malformed or foreign client is refused
// with a message instead of reaching the runner. Kept apart from protocol.ts: the thin client must
// not pay for loading zod.
import { z } from 'zod';
import type { WireRunRequest } from './protocol.ts';

export const WireRunRequestSchema = z.object({
  argv: z.array(z.string()).min(1).describe('the command and its arguments'),
  spec: z.record(z.string(), z.unknown()).describe('sandbox spec input (validated by the sandbox manager)'),
  policyFile: z.string().startsWith('/').optional().describe('absolute path of the policy YAML'),
  phase: z.enum(['setup', 'agent']).optional().describe('network phase to start in'),
  timeoutMs: z.number().nonnegative().optional().describe('kill the command after this long (0: never, over the policy)'),
  ledgerPath: z.string().startsWith('/').optional().describe('absolute path of the ledger'),
  detect: z.boolean().describe('run sensors and rules'),
  stdin: z.boolean().describe('the client forwards stdin'),
}).strict();

// The schema and the wire type must not drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const SCHEMA_MATCHES_WIRE: Same<z.infer<typeof WireRunRequestSchema>, WireRunRequest> = true;
