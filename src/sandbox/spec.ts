import { z } from 'zod';
import { NetworkPolicySchema } from '../config/index.ts';
import { RUNTIME_NAMES } from './runtimes/types.ts';

// What a sandbox is made of. The CLI, the server and the pool all build one of these, so the
// checks live here once.
export const SandboxSpecSchema = z.object({
  image: z.string().min(1).default('host').describe('image name from the image cache, or `host` for the host userland read-only'),
  runtime: z.enum(RUNTIME_NAMES as [string, ...string[]]).default('bwrap').describe('isolation runtime: bwrap (fast), crun (OCI), runsc (gVisor, strong)'),
  cpus: z.number().positive().max(1024).default(1).describe('CPU quota in CPUs; fractions allowed'),
  memoryBytes: z.number().int().positive().default(1 << 30).describe('memory limit, no swap'),
  pids: z.number().int().min(8).max(1 << 22).default(512).describe('maximum processes and threads'),
  diskBytes: z.number().int().positive().default(1 << 30).describe('size of the writable layer (/tmp, home, workspace, image overlay)'),
  gpus: z.union([z.number().int().min(0), z.literal('all')]).default(0).describe('GPUs granted: a count or `all`'),
  workspace: z.string().optional().describe('host directory bind-mounted at /workspace (id-mapped to the agent)'),
  env: z.record(z.string(), z.string()).default({}).describe('extra environment for every command'),
  cwd: z.string().default('/workspace').describe('default working directory'),
  uid: z.number().int().min(1).max(65533).default(1000).describe('agent uid inside the sandbox (never 0)'),
  hostname: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$/).optional().describe('hostname; defaults to the sandbox id'),
  labels: z.record(z.string(), z.string()).default({}).describe('free-form labels (tenant, episode, …)'),
  network: NetworkPolicySchema.optional().describe('egress policy (the policy file\'s network section); none means only lo'),
  canaries: z.boolean().default(true).describe('plant canary credentials (a fake SSH key, AWS credentials, .netrc, a secret variable) where an agent would hunt; any read alerts'),
  phase: z.enum(['setup', 'agent']).optional().describe('network phase to start in; default setup when the policy has one'),
}).strict();

export type SandboxSpec = z.infer<typeof SandboxSpecSchema>;
export type SandboxSpecInput = z.input<typeof SandboxSpecSchema>;
