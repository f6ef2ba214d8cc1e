// Carries out the actions of an alert on its sandbox and records each as a `containment` event
// with its latency from the triggering event. Order matters: freeze first (nothing runs, forks or
// sends while we decide), then kill, cut the network, destroy. Every action is verified before
// it is recorded `ok` (threat: a guardrail recorded as done that never happened): a freeze by the
// kernel's frozen state, a kill by the pidfd of each target reporting its exit, an isolate by the
// gateway having cut it (or skipped when the sandbox has only lo), a destroy by its cgroup being empty. A failed action escalates
// (freeze → kill → destroy), and every step is its own event.
import { errorMessage } from '../errors.ts';
import type { EventBus, PraetorEvent } from '../events/index.ts';
import type { AlertEvent, RuleAction } from '../rules/index.ts';
import { killConfirmed, type Sandbox } from '../sandbox/index.ts';
import { nowNs } from '../util/index.ts';
import { confirmKernelKill, resumeParent } from './kernel-kill-record.ts';
import { descendants, hasExited } from './process-tree.ts';
import { onlyLoopback, runtimePids, sandboxLinks } from './sandbox-facts.ts';

export interface ContainTarget {
  sandbox: Sandbox;
  /** Cuts the sandbox's network now (egress gateway); false when it held no network for it. */
  isolate?: () => boolean | void;
  /** Ends the episode the sandbox serves (episode API). */
  terminateEpisode?: (reason: string) => void;
  /**
   * Leave the sandbox frozen after killing: its owner is about to destroy it (a `praetor run`
   * ends when contained), and nothing else in it (the agent's parent shell) may run meanwhile.
   */
  holdFrozen?: boolean;
}

export type { Outcome, Step } from './step.ts';
import type { Step } from './step.ts';

const ORDER: RuleAction[] = ['freeze', 'kill', 'kill-tree', 'isolate', 'terminate-episode', 'destroy'];
/** rounds of "list, kill, list again" when the sandbox could not be frozen and may fork meanwhile */
const UNFROZEN_ROUNDS = 5;

export async function contain(bus: EventBus, t: ContainTarget, alert: AlertEvent, trigger: PraetorEvent): Promise<void> {
  const acts = ORDER.filter((a) => alert.actions.includes(a));
  if (acts.length === 0) return;
  const sb = t.sandbox;
  const record = (s: Step): void => {
    bus.publish({
      kind: 'containment', sandboxId: sb.id, action: s.action, alertId: alert.id, rule: alert.rule,
      ok: s.outcome === 'verified', outcome: s.outcome, by: s.by ?? 'user',
      // The kernel's kill program runs before the program that stamps the exec, so its time can
      // precede the trigger's by microseconds: the kill takes effect at the exec's return, ≥ 0.
      latencyMs: Math.max(0, Math.round(((s.atNs ?? nowNs()) - trigger.ts) / 1e4) / 100),
      ...(s.error ? { error: s.error } : {}), ...(s.reason ? { reason: s.reason } : {}),
      ...(s.escalatedFrom ? { escalatedFrom: s.escalatedFrom } : {}), ...(s.targets !== undefined ? { targets: s.targets } : {}),
      ...(trigger.pid !== undefined ? { pid: trigger.pid } : {}),
      ...(trigger.episodeId ? { episodeId: trigger.episodeId } : {}),
      ...(trigger.step !== undefined ? { step: trigger.step } : {}),
      ...(trigger.toolCallId ? { toolCallId: trigger.toolCallId } : {}),
    });
  };
  if (sb.state === 'destroyed') return;
  // The kernel may already have killed the process at exec (a kernel_kill rule): recorded on its
  // own, `by: kernel`, so reports keep it apart from what user space did after.
  let kernelKilled = false;
  if (trigger.kind === 'process.exec' && trigger.kernelKill) {
    const step = await confirmKernelKill(sb, trigger);
    kernelKilled = step.outcome === 'verified';
    if (trigger.kernelKill.rule === alert.rule) record(step);
    // The rule's own kill (or another rule's, fired by the same exec) is then verified done: the
    // process never ran an instruction, so it has no tree. Recorded `by: user` with no targets,
    // beside the kernel's record, so each side's latency stays its own.
    if (kernelKilled && (acts.includes('kill') || acts.includes('kill-tree'))) {
      record({ action: acts.includes('kill-tree') ? 'kill-tree' : 'kill', outcome: 'verified', targets: 0, reason: `the kernel killed it at exec (${trigger.kernelKill.rule})` });
    }
  }
  if (kernelKilled && !t.holdFrozen && trigger.kind === 'process.exec') await resumeParent(sb, trigger.ppid);
  if (acts.includes('destroy')) { await destroy(t, alert, record); return; }

  const wantFreeze = acts.includes('freeze') || !!t.holdFrozen;
  // A process the kernel killed at exec ran nothing and has no children: no tree to walk (and
  // its absence must not read as "trigger gone, kill every agent process").
  const needsWalk = !kernelKilled && (acts.includes('kill') || acts.includes('kill-tree'));
  let frozen = false;
  let escalate: string | undefined;
  if (wantFreeze || needsWalk) {
    try {
      await sb.cgroup.freeze(true);
      frozen = true;
      if (acts.includes('freeze')) record({ action: 'freeze', outcome: 'verified', reason: 'the kernel reports every task frozen' });
    } catch (e) {
      if (acts.includes('freeze')) { record({ action: 'freeze', outcome: 'failed', error: errorMessage(e) }); escalate = 'freeze'; }
    }
  }
  // freeze → kill: a sandbox that could not be stopped loses every agent process instead.
  if (needsWalk || escalate) {
    const action = needsWalk ? (acts.includes('kill-tree') ? 'kill-tree' : 'kill') : 'kill-tree';
    const step = await killStep(sb, action, needsWalk ? trigger.pid : undefined, frozen, wantFreeze);
    record(escalate && !needsWalk ? { ...step, escalatedFrom: escalate } : step);
    escalate = step.outcome === 'failed' ? action : undefined;
  }
  if (frozen && !wantFreeze) await sb.cgroup.freeze(false).catch(() => { /* destroyed meanwhile */ });
  if (acts.includes('isolate')) {
    const step = await isolateStep(sb, t);
    record(step);
    if (step.outcome === 'failed') escalate ??= 'isolate';
  }
  if (acts.includes('terminate-episode')) {
    if (!t.terminateEpisode) record({ action: 'terminate-episode', outcome: 'skipped', reason: 'the sandbox serves no episode' });
    else {
      try { t.terminateEpisode(`contained by ${alert.rule}`); record({ action: 'terminate-episode', outcome: 'verified', reason: 'the episode service ended the episode' }); } catch (e) { record({ action: 'terminate-episode', outcome: 'failed', error: errorMessage(e) }); }
    }
  }
  // kill → destroy: what could not be verified is ended as a whole.
  if (escalate) await destroy(t, alert, record, escalate);
}

async function killStep(sb: Sandbox, action: 'kill' | 'kill-tree', pid: number | undefined, frozen: boolean, holdFrozen: boolean): Promise<Step> {
  // A v1-frozen task cannot die: thaw after the signals, and freeze again if it is to be held.
  const v1 = frozen && sb.cgroup.freezer() === 'v1';
  let targets = 0;
  try {
    for (let round = 0; round < (frozen ? 1 : UNFROZEN_ROUNDS); round++) {
      const members = sb.cgroup.pids();
      const runtime = runtimePids(sb);
      const agent = members.filter((p) => !runtime.has(p));
      // A zombie (exited, not yet reaped) counts as gone: it runs nothing, and its children
      // were re-parented away from it.
      const gone = pid !== undefined && (!members.includes(pid) || hasExited(pid));
      // Without a pid (a gateway verdict, a resource window), or when the trigger already exited
      // and left its children running as orphans (a fork bomb's first shell), the tree is every
      // agent process: the sandbox itself stays for its owner to inspect or destroy.
      const whole = pid === undefined || (gone && action === 'kill-tree');
      const tree = whole ? agent : gone ? [] : action === 'kill' ? [pid] : descendants(pid, members).filter((p) => !runtime.has(p));
      if (tree.length === 0) {
        if (round > 0) break;
        return { action, outcome: 'verified', targets: 0, reason: gone ? 'the process was already gone' : 'no agent process was running' };
      }
      targets += tree.length;
      const r = await killConfirmed(tree, sb.cgroup.rel, {
        beforeWait: v1 ? () => sb.cgroup.freeze(false) : undefined,
      });
      if (v1 && holdFrozen) await sb.cgroup.freeze(true);
      if (r.survivors.length > 0 || r.errors.length > 0) {
        return { action, outcome: 'failed', targets, error: `${r.survivors.length} of ${tree.length} processes not confirmed gone: ${r.errors.slice(0, 3).join('; ')}` };
      }
      if (frozen || !whole) break; // frozen: nothing forked meanwhile; a subtree's orphans are checked by the next kill
    }
    if (!frozen && pid === undefined && sb.cgroup.pids().some((p) => !runtimePids(sb).has(p))) {
      return { action, outcome: 'failed', targets, error: 'agent processes kept appearing while the sandbox could not be frozen' };
    }
    return { action, outcome: 'verified', targets, reason: `${targets} process${targets === 1 ? '' : 'es'} confirmed gone through pidfds` };
  } catch (e) {
    // The sandbox ended meanwhile (its run destroyed it as the command exited): a cgroup
    // directory is removed only once it holds no task, so its absence proves every process gone.
    if (sb.cgroup.gone()) return { action, outcome: 'verified', targets, reason: 'the sandbox\'s cgroup was removed: no process of it remains' };
    return { action, outcome: 'failed', targets, error: errorMessage(e) };
  }
}

async function isolateStep(sb: Sandbox, t: ContainTarget): Promise<Step> {
  let members: number[];
  try { members = sb.cgroup.pids(); } catch (e) {
    // The sandbox was destroyed meanwhile (its run ended as the verdict came): no process is
    // left to send anything; the gateway still cuts whatever flows it held for it.
    if (!sb.cgroup.gone()) return { action: 'isolate', outcome: 'failed', error: errorMessage(e) };
    try { t.isolate?.(); } catch { /* its network went with it */ }
    return { action: 'isolate', outcome: 'verified', reason: 'the sandbox\'s cgroup was removed: no process of it remains to send' };
  }
  const links = sandboxLinks(members);
  if (links && onlyLoopback(links)) return { action: 'isolate', outcome: 'skipped', reason: 'the sandbox has only lo: there is no network to cut' };
  if (!t.isolate) return { action: 'isolate', outcome: 'failed', error: `the sandbox has links (${links?.join(', ') ?? 'unknown'}) and no egress gateway to cut them` };
  try {
    const had = t.isolate();
    if (had === false) {
      return links === undefined
        ? { action: 'isolate', outcome: 'skipped', reason: 'the gateway holds no network for this sandbox' }
        : { action: 'isolate', outcome: 'failed', error: `the sandbox has links (${links.join(', ')}) the gateway does not hold` };
    }
  } catch (e) { return { action: 'isolate', outcome: 'failed', error: errorMessage(e) }; }
  // The gateway is the sandbox's only way out (its link routes only there, nftables drops the
  // rest); isolate sets its deny-all flag and cuts every live flow before it returns.
  return { action: 'isolate', outcome: 'verified', reason: 'the gateway cut every flow and refuses new ones' };
}

async function destroy(t: ContainTarget, alert: AlertEvent, record: (s: Step) => void, escalatedFrom?: string): Promise<void> {
  const sb = t.sandbox;
  const esc = escalatedFrom ? { escalatedFrom } : {};
  let killed = false;
  try { await sb.cgroup.kill(); killed = true; record({ action: 'destroy', outcome: 'verified', reason: 'the cgroup is empty', ...esc }); } catch { /* checked again after destroy */ }
  if (t.isolate) try { t.isolate(); } catch { /* destroyed anyway */ }
  try { t.terminateEpisode?.(`contained by ${alert.rule}`); } catch { /* the sandbox goes regardless */ }
  await sb.destroy(`contained: ${alert.rule}`);
  if (killed) return;
  let empty = false;
  let error = 'processes remained after the cgroup kill';
  try { empty = sb.cgroup.empty(); } catch (e) { error = errorMessage(e); }
  record(empty ? { action: 'destroy', outcome: 'verified', reason: 'the cgroup is gone', ...esc } : { action: 'destroy', outcome: 'failed', error, ...esc });
}
