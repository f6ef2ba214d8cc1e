// The egress gateway's public surface. Everything else in src/net is private to it.
export { startGateway, sweepStaleGateways, PROXY_PORT, DEFAULT_LINK_POOL, MODEL_HOST, noModelGateway, type Gateway, type GatewayOptions, type ModelRoute, type PrepareOptions, type SandboxNet, SANDBOX_CA_BUNDLE } from './gateway.ts';
export { tokenHash, type EgressToken } from './token-scanner.ts';
export { type NetnsRef } from './link.ts';
export { type CatchUp } from './catch-up-stream.ts';
export { secretFingerprints, type SecretFingerprints } from './secret-fingerprints.ts';
export {
  NetworkPolicySchema, PolicySchema, parsePolicyFile, parsePolicyText, checkPolicyText, policyAllowsNothing,
  type NetworkPolicy, type Policy, type PolicyProblem,
} from '../config/index.ts';
export { compilePolicy, protectedRanges, type CompiledPolicy, type PhaseMatcher, type Decision } from './policy-matcher.ts';
export { classify, SNIFFERS, type Sniffer, type SniffResult } from './protocols/index.ts';
