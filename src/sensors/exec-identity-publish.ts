import type { EventBus, EventInput, EventOf, PraetorEvent } from '../events/index.ts';
import type { ExecIdentity, ExecIdentityResult } from './exec-identity.ts';
import { gitSshConfigOf, sshConfigOf } from './exec-identity-ssh.ts';

// Publishes a process.exec with its executable identity and, for an ssh client, its effective
// configuration; and a process.identity when the identity completes later (a big binary hashed
// off the alert path, or a tool recognised by markers). Both backends of the kernel sensor use
// this, so the two cannot disagree about what `proc.tool` means.

type ExecInput = Omit<EventOf<'process.exec'>, 'id' | 'ts' | 'kind'> & { ts?: number };

/** Tools whose options come from ssh_config files too. */
const SSH_TOOLS = new Set(['ssh']);

export function publishExec(bus: EventBus, identity: ExecIdentity | undefined, input: ExecInput): PraetorEvent {
  if (!identity) return bus.publish({ kind: 'process.exec', ...input });
  const id = identity.identify(input.pid ?? 0, input.ppid, input.path, input.argv);
  const fields = { ...input, ...identityFields(id), ...sshFields(id.tool, input) };
  const e = bus.publish({ kind: 'process.exec', ...fields });
  if (id.later) {
    id.later.then((l) => {
      if (!l) return;
      const late: EventInput = {
        kind: 'process.identity', ...fields, ts: undefined, sha256: l.sha256, tool: l.tool,
        ...(l.toolBy ? { toolBy: l.toolBy } : {}), identity: fields.identity === 'path' ? 'path' : 'exe',
        ...(fields.sshConfigOpts === undefined ? sshFields(l.tool, input) : {}), execId: e.id,
      };
      bus.publish(late);
    }).catch((err: unknown) => {
      bus.publish({ kind: 'sensor.degraded', sandboxId: input.sandboxId, sensor: 'exec-identity', reason: `identity of pid ${input.pid} (${input.path}) failed: ${String(err)}` });
    });
  }
  return e;
}

/** Forgets a pid's tool when it exits. */
export function noteExit(identity: ExecIdentity | undefined, pid: number | undefined): void {
  if (identity && pid !== undefined) identity.forget(pid);
}

function identityFields(id: ExecIdentityResult): Partial<ExecInput> {
  const f: Partial<ExecInput> = { identity: id.identity };
  if (id.sha256 !== undefined) f.sha256 = id.sha256;
  if (id.tool !== undefined) f.tool = id.tool;
  if (id.toolBy !== undefined) f.toolBy = id.toolBy;
  if (id.parentTool !== undefined) f.parentTool = id.parentTool;
  return f;
}

function sshFields(tool: string | null | undefined, input: ExecInput): Partial<ExecInput> {
  if (input.pid === undefined) return {};
  if (tool === 'git') {
    const g = gitSshConfigOf(input.pid);
    if (!g) return {};
    return { sshConfigOpts: g.opts, sshConfigFiles: g.files, ...(g.unresolved.length ? { sshConfigUnresolved: g.unresolved } : {}) };
  }
  if (!tool || !SSH_TOOLS.has(tool)) return {};
  const c = sshConfigOf(input.pid, input.ppid, input.argv);
  if (!c) return { sshConfigUnresolved: ['process and parent gone before their root could be read'] };
  const f: Partial<ExecInput> = { sshConfigOpts: c.opts, sshConfigFiles: c.files };
  if (c.unresolved.length) f.sshConfigUnresolved = c.unresolved;
  return f;
}
