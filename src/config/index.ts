// The policy file's schema and parsers: the single source of truth for policies (docs/policy-
// reference.md is generated from it). config sits under net, sandbox, runner and server.
export {
  NetRuleSchema, SecretSchema, PROTOCOL_GATES, NetworkPolicySchema, SandboxPolicySchema, RulesPolicySchema, SECTIONS,
  PolicySchema, EMPTY_NETWORK_POLICY, policyAllowsNothing, checkPolicyText, parsePolicyFile, parsePolicyText,
  type BrokeredSecretConfig, type NetRule, type ProtocolGate, type NetworkPolicy, type Policy, type PolicyProblem,
} from './policy.ts';
// Per-tenant settings (quotas, default policy, idle TTL): checked by the server and, across a
// cluster, by the control server's placement.
export { Tenants, checkQuota, tenantsPath, TenantSettingsSchema, TenantFileSchema, type TenantSettings, type Usage } from './tenants.ts';
