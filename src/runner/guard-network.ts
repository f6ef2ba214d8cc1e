// Adapts the egress gateway (src/net) to the sandbox manager: a sandbox whose policy allows no
// destination gets only lo; any other gets a link to the gateway and a resolver. The policy in
// the sandbox's spec wins over the run's policy file.
import { policyAllowsNothing, type Policy } from '../config/index.ts';
import { PraetorError, errorMessage } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import { startGateway, sweepStaleGateways, type CatchUp, type EgressToken, type Gateway, type ModelRoute, type PrepareOptions, type SandboxNet } from '../net/index.ts';
import type { SandboxNetAttachment, SandboxNetworkProvider, SandboxSpec } from '../sandbox/index.ts';

export interface GuardNetwork extends SandboxNetworkProvider {
  /** Cuts the sandbox's link; false when the gateway holds no network for it (it has only lo). */
  isolate(sandboxId: string): boolean;
  /** See SandboxNet.containing; undefined when the sandbox has no network. */
  containing(sandboxId: string, sinceNs: number, rule: string, until: Promise<unknown>): number | undefined;
  setPhase(sandboxId: string, phase: 'setup' | 'agent'): void;
  /** See SandboxNet.track; undefined when the sandbox has no network (nothing can leave it). */
  track(sandboxId: string, tokens: readonly EgressToken[], o: { cutOpen: boolean; why: string }): number | undefined;
  close(): Promise<void>;
}

/** Values that must not leave a sandbox (canary credentials planted in it): see PrepareOptions.egressTokens. */
export type EgressTokensFor = (sandboxId: string, spec: SandboxSpec) => NonNullable<PrepareOptions['egressTokens']> | undefined;

export async function startNetwork(o: { bus: EventBus; stateDir: string; policy: Policy | undefined; phase: 'setup' | 'agent' | undefined; model?: ModelRoute; egressTokens?: EgressTokensFor; catchUp?: CatchUp }): Promise<GuardNetwork> {
  let gw: Gateway;
  try {
    await sweepStaleGateways(); // tables, links and slots of praetor processes that died
    gw = await startGateway({ bus: o.bus, stateDir: o.stateDir, ...(o.model ? { model: o.model } : {}), ...(o.catchUp ? { catchUp: o.catchUp } : {}) });
  } catch (e) {
    // Fail closed: a policy that grants network never runs without the gateway enforcing it.
    throw new PraetorError('RUNTIME_UNAVAILABLE', `the egress gateway could not start: ${errorMessage(e)}`, { hint: 'check `praetor status` (nftables, root), or remove the network allow rules', cause: e });
  }
  const nets = new Map<string, SandboxNet>();
  return {
    async prepare(sandboxId: string, spec: SandboxSpec, extra = {}): Promise<SandboxNetAttachment | undefined> {
      const policy = spec.network ?? o.policy?.network;
      if (policyAllowsNothing(policy)) return undefined;
      const phase = spec.phase ?? o.phase;
      // The sandbox's own canaries (planted by the manager) and any the caller names.
      const tokens = [...(extra.egressTokens ?? []), ...(o.egressTokens?.(sandboxId, spec) ?? [])];
      const sn = await gw.prepare(sandboxId, policy!, { ...(phase ? { phase } : {}), ...(tokens.length ? { egressTokens: tokens } : {}) });
      nets.set(sandboxId, sn);
      return {
        resolvConf: sn.resolvConf, env: sn.env, ...(sn.hosts ? { hosts: sn.hosts } : {}), ...(sn.caCertPem ? { caCertPem: sn.caCertPem } : {}),
        attach: (ns) => sn.attach(ns),
        detach: async () => { nets.delete(sandboxId); await sn.detach(); },
      };
    },
    isolate(id) { const n = nets.get(id); if (!n) return false; n.isolate(); return true; },
    containing: (id, sinceNs, rule, until) => nets.get(id)?.containing(sinceNs, rule, until),
    track: (id, tokens, t) => nets.get(id)?.track(tokens, t),
    setPhase(id, phase) {
      const sn = nets.get(id);
      if (!sn) throw new PraetorError('BAD_STATE', `sandbox ${id} has no network`, { hint: 'give it a policy with network rules' });
      sn.setPhase(phase);
    },
    close: () => gw.close(),
  };
}
