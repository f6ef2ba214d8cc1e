// Per-tenant settings: quotas (sandboxes, CPU, memory), a default policy, and the idle TTL.
// Read from <state>/server/tenants.json; a tenant without an entry gets `default`. Quotas
// are checked before a sandbox is created, so one tenant cannot starve the host (threat: a
// runaway trainer creating sandboxes in a loop).
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { PolicySchema, type Policy } from './policy.ts';
import { PraetorError } from '../errors.ts';

export const TenantSettingsSchema = z.object({
  maxSandboxes: z.number().int().min(0).default(64).describe('live sandboxes at once'),
  maxCpus: z.number().positive().default(64).describe('sum of CPU quotas of live sandboxes'),
  maxMemoryBytes: z.number().int().positive().default(256 * 2 ** 30).describe('sum of memory limits of live sandboxes'),
  idleTtlSeconds: z.number().int().min(0).default(3600).describe('destroy a sandbox idle this long (0: never)'),
  policy: PolicySchema.optional().describe('default policy for sandboxes of this tenant'),
}).strict();
export type TenantSettings = z.infer<typeof TenantSettingsSchema>;

export const TenantFileSchema = z.object({
  default: TenantSettingsSchema.optional().describe('settings for tenants without their own entry'),
  tenants: z.record(z.string(), TenantSettingsSchema).default({}).describe('settings per tenant name'),
}).strict();

export function tenantsPath(stateDir: string): string {
  return `${stateDir}/server/tenants.json`;
}

export class Tenants {
  readonly #default: TenantSettings;
  readonly #tenants: Record<string, TenantSettings>;

  constructor(file: z.input<typeof TenantFileSchema> = {}) {
    const parsed = TenantFileSchema.safeParse(file);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new PraetorError('BAD_ARGUMENT', `tenant settings: ${i.path.join('.') || '(top)'}: ${i.message}`, { hint: 'fix server/tenants.json in the state directory' });
    }
    this.#default = parsed.data.default ?? TenantSettingsSchema.parse({});
    this.#tenants = parsed.data.tenants;
  }

  static load(stateDir: string): Tenants {
    const p = tenantsPath(stateDir);
    return new Tenants(existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : {});
  }

  get(tenant: string): TenantSettings { return this.#tenants[tenant] ?? this.#default; }
  defaultPolicy(tenant: string): Policy | undefined { return this.get(tenant).policy; }
}

export interface Usage { sandboxes: number; cpus: number; memoryBytes: number }

/** Throws QUOTA_EXCEEDED naming the quota when adding `want` to `used` passes a limit. */
export function checkQuota(tenant: string, s: TenantSettings, used: Usage, want: { cpus: number; memoryBytes: number }): void {
  if (used.sandboxes + 1 > s.maxSandboxes) throw quota(tenant, `${used.sandboxes} live sandboxes (limit ${s.maxSandboxes})`);
  if (used.cpus + want.cpus > s.maxCpus + 1e-9) throw quota(tenant, `CPUs: ${used.cpus} used + ${want.cpus} asked > ${s.maxCpus}`);
  if (used.memoryBytes + want.memoryBytes > s.maxMemoryBytes) throw quota(tenant, `memory: ${used.memoryBytes} used + ${want.memoryBytes} asked > ${s.maxMemoryBytes} bytes`);
}

function quota(tenant: string, what: string): PraetorError {
  return new PraetorError('QUOTA_EXCEEDED', `tenant ${tenant} is over its quota: ${what}`, { hint: 'delete sandboxes you no longer need, or ask an admin to raise the quota' });
}
