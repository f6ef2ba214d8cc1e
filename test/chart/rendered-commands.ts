// The command, arguments and environment the chart gives the control and node containers, as
// the kubelet would run them: downward-API values (spec.nodeName, status.podIP) replaced by the
// given pod's, secretKeyRef values looked up, and $(VAR) references expanded the Kubernetes way.
// The multi-node test starts its processes from this, so it runs exactly what the chart renders
// (`init`: the init containers, run first and to completion; materializeMounts writes the files
// of the Secret and ConfigMap mounts where `paths` puts them).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findObject, renderChart, type ChartValues, type K8sObject } from './render.ts';

export type Role = 'control' | 'node';

/** The pod a process stands in for. */
export interface PodFacts { nodeName: string; podIP: string }

export interface RenderedMount {
  mountPath: string;
  readOnly: boolean;
  subPath?: string;
  source: { kind: 'secret' | 'configMap' | 'hostPath' | 'emptyDir'; name?: string; path?: string };
  /** for secret and configMap mounts: the files the kubelet would project (name -> content). */
  files?: Record<string, string>;
}

export interface RenderedProcess {
  command: string[];
  args: string[];
  env: Record<string, string>;
  mounts: RenderedMount[];
}

export interface RenderedCommandsOptions extends ChartValues {
  /** Secrets that exist outside the chart (the existingSecret ones): name -> key -> value. */
  secrets?: Record<string, Record<string, string>>;
  control: PodFacts;
  node: PodFacts;
  /** container path -> local path, applied to arguments (the path itself or below it), e.g. /var/lib/praetor -> a temp dir. */
  paths?: Record<string, string>;
}

type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } };
type Container = { name: string; command?: string[]; args?: string[]; env?: EnvVar[]; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[] };
type Volume = { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string; items?: { key: string; path: string }[] }; hostPath?: { path: string }; emptyDir?: object };

export function renderedCommands(o: RenderedCommandsOptions): { control: RenderedProcess & { init: RenderedProcess[] }; node: RenderedProcess & { init: RenderedProcess[] }; objects: K8sObject[] } {
  const objects = renderChart(o);
  return {
    control: processOf(objects, 'control', o.control, o),
    node: processOf(objects, 'node', o.node, o),
    objects,
  };
}

/** The process of one role from already rendered objects (render once, then one per pod). */
export function processOf(objects: K8sObject[], role: Role, pod: PodFacts, o: Pick<RenderedCommandsOptions, 'secrets' | 'paths'> = {}): RenderedProcess & { init: RenderedProcess[] } {
  const workload = role === 'control' ? findObject(objects, 'Deployment', '-control') : findObject(objects, 'DaemonSet', '-node');
  const spec = (workload as unknown as { spec: { template: { spec: { containers: Container[]; initContainers?: Container[]; volumes?: Volume[] } } } }).spec.template.spec;
  const c = spec.containers.find((x) => x.name === role);
  if (!c) throw new Error(`the ${workload.kind} has no container named ${role}`);
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  // Init containers run first, in order, each to completion (the node's copies the cluster CA).
  const init = (spec.initContainers ?? []).map((ic) => containerProcess(objects, ic, volumes, pod, o, `${role}/${ic.name}`));
  return { ...containerProcess(objects, c, volumes, pod, o, role), init };
}

function containerProcess(objects: K8sObject[], c: Container, volumes: Map<string, Volume>, pod: PodFacts, o: Pick<RenderedCommandsOptions, 'secrets' | 'paths'>, what: string): RenderedProcess {
  const secret = (name: string, key: string): string => {
    const v = o.secrets?.[name]?.[key] ?? renderedData(objects, 'Secret', name)?.[key];
    // The kubelet refuses to start the container (CreateContainerConfigError) in this case.
    if (v === undefined) throw new Error(`${what}: Secret ${name} has no key ${key}: pass it in secrets, or let the chart create it`);
    return v;
  };
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    let v: string;
    if (e.value !== undefined) v = expand(e.value, env);
    else if (e.valueFrom?.fieldRef) v = fieldValue(e.valueFrom.fieldRef.fieldPath, pod);
    else if (e.valueFrom?.secretKeyRef) v = secret(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else if (e.valueFrom?.configMapKeyRef) {
      const cm = renderedData(objects, 'ConfigMap', e.valueFrom.configMapKeyRef.name)?.[e.valueFrom.configMapKeyRef.key];
      if (cm === undefined) throw new Error(`${what}: ConfigMap ${e.valueFrom.configMapKeyRef.name} has no key ${e.valueFrom.configMapKeyRef.key}`);
      v = cm;
    } else throw new Error(`${what}: env ${e.name} has a source this helper does not know`);
    env[e.name] = v;
  }
  const mapPath = (a: string): string => mappedPath(o.paths ?? {}, a) ?? a;
  const mounts = (c.volumeMounts ?? []).map((m): RenderedMount => {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`${what}: volumeMount ${m.name} names no volume`);
    const base = { mountPath: m.mountPath, readOnly: m.readOnly ?? false, ...(m.subPath ? { subPath: m.subPath } : {}) };
    if (v.secret) {
      const data = o.secrets?.[v.secret.secretName] ?? renderedData(objects, 'Secret', v.secret.secretName) ?? {};
      return { ...base, source: { kind: 'secret', name: v.secret.secretName }, files: project(data, v.secret.items) };
    }
    if (v.configMap) return { ...base, source: { kind: 'configMap', name: v.configMap.name }, files: project(renderedData(objects, 'ConfigMap', v.configMap.name) ?? {}, v.configMap.items) };
    if (v.hostPath) return { ...base, source: { kind: 'hostPath', path: v.hostPath.path } };
    return { ...base, source: { kind: 'emptyDir' } };
  });
  // The kubelet expands $(VAR) in command and args alike; paths are mapped in both.
  return {
    command: (c.command ?? []).map((a) => mapPath(expand(a, env))),
    args: (c.args ?? []).map((a) => mapPath(expand(a, env))),
    env,
    mounts,
  };
}

/**
 * Writes the files of the secret and configMap mounts where `paths` maps their mount paths
 * (a subPath mount writes that one file), so a local process finds them where the chart puts them.
 */
export function materializeMounts(p: RenderedProcess, paths: Record<string, string>): void {
  for (const m of p.mounts) {
    if (!m.files) continue;
    const target = mappedPath(paths, m.mountPath);
    if (!target) continue;
    if (m.subPath !== undefined) {
      const content = m.files[m.subPath];
      if (content === undefined) throw new Error(`mount ${m.mountPath}: no file ${m.subPath} in ${m.source.kind} ${m.source.name}`);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content, { mode: 0o600 });
      continue;
    }
    mkdirSync(target, { recursive: true });
    for (const [name, content] of Object.entries(m.files)) writeFileSync(join(target, name), content, { mode: 0o600 });
  }
}

/** `p` under the first mapping that covers it (the path itself or below it), else undefined. */
function mappedPath(paths: Record<string, string>, p: string): string | undefined {
  for (const [from, to] of Object.entries(paths)) {
    if (p === from) return to;
    if (p.startsWith(`${from}/`)) return to + p.slice(from.length);
  }
  return undefined;
}

function fieldValue(path: string, pod: PodFacts): string {
  if (path === 'spec.nodeName') return pod.nodeName;
  if (path === 'status.podIP') return pod.podIP;
  throw new Error(`the chart uses the downward-API field ${path}, which this helper does not substitute yet`);
}

/** A Secret's or ConfigMap's data as the kubelet would hand it out (base64 `data` decoded). */
function renderedData(objects: K8sObject[], kind: 'Secret' | 'ConfigMap', name: string): Record<string, string> | undefined {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name) as { data?: Record<string, string>; stringData?: Record<string, string> } | undefined;
  if (!o) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.data ?? {})) out[k] = kind === 'Secret' ? Buffer.from(v, 'base64').toString('utf8') : v;
  for (const [k, v] of Object.entries(o.stringData ?? {})) out[k] = v;
  return out;
}

function project(data: Record<string, string>, items: { key: string; path: string }[] | undefined): Record<string, string> {
  if (!items) return { ...data };
  const out: Record<string, string> = {};
  for (const i of items) if (data[i.key] !== undefined) out[i.path] = data[i.key]!;
  return out;
}

/** Kubernetes' $(VAR) expansion: defined variables are replaced, $$ escapes, anything else stays. */
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? env[name]! : m;
  });
}
