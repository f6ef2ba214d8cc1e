// charts/praetor without a Kubernetes API server: `helm lint` and `helm template` (the real helm
// binary from the pinned npm package), every rendered object validated against the Kubernetes
// schemas (kubernetes-models), a few of the API server's own validation rules the schemas do not
// carry, and the properties the chart promises: control replicas >= 2, a PDB and a Service on the
// control pods, a NetworkPolicy that admits only control pods to node pods, the node's exact
// capability set (each with its reason), secrets referenced and never inlined, bad values refused
// with a message naming the key.
import assert from 'node:assert/strict';
import { globSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { checkPolicyText } from '../../src/config/policy.ts';
import { lintRuleFiles } from '../../src/rules/index.ts';
import { CHART_DIR, findObject, helm, renderChart as renderOnce, type ChartValues, type K8sObject } from './render.ts';
import { materializeMounts, processOf, renderedCommands } from './rendered-commands.ts';
import { unknownFields } from './unknown-fields.ts';
import { policyJsonSchema, VALUES_SCHEMA } from './policy-schema.ts';

// One helm run per set of values (the machine's CPUs are shared); tests only read the objects.
const renders = new Map<string, K8sObject[]>();
function renderChart(v: ChartValues = {}): K8sObject[] {
  const key = JSON.stringify(v);
  if (!renders.has(key)) renders.set(key, renderOnce(v));
  return renders.get(key)!;
}

const EXISTING_PG = join(CHART_DIR, 'ci/existing-postgres-values.yaml');
const INLINE = join(CHART_DIR, 'ci/inline-secrets-values.yaml');
const CASES: [string, ChartValues][] = [['default values', {}], ['existing PostgreSQL', { valuesFiles: [EXISTING_PG] }], ['inline secrets', { valuesFiles: [INLINE] }]];

/** The node's capabilities, each justified in node-daemonset.yaml and the README. Adding one is a reviewed change here. */
const NODE_CAPABILITIES = ['SYS_ADMIN', 'NET_ADMIN', 'BPF', 'PERFMON', 'SYS_RESOURCE', 'SYS_PTRACE', 'KILL', 'SETUID', 'SETGID', 'SETPCAP', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER'];

type Labels = Record<string, string>;
type SecurityContext = { privileged?: boolean; allowPrivilegeEscalation?: boolean; runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
type Container = { name: string; ports?: { name?: string; containerPort: number }[]; securityContext?: SecurityContext; env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]; volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] };
type PodSpec = { containers: Container[]; volumes?: { name: string; hostPath?: { path: string }; secret?: { secretName: string } }[]; hostNetwork?: boolean; hostPID?: boolean; hostIPC?: boolean };
type Workload = K8sObject & { spec: { replicas?: number; selector: { matchLabels: Labels }; template: { metadata: { labels: Labels }; spec: PodSpec } } };

const workload = (objs: K8sObject[], kind: 'Deployment' | 'DaemonSet') => findObject(objs, kind, kind === 'Deployment' ? '-control' : '-node') as Workload;
const matches = (selector: Labels, labels: Labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);

async function validateAgainstKubernetesSchema(o: K8sObject): Promise<void> {
  // kubernetes-models lays its classes out as <apiVersion>/<Kind> (the core group is plain v1).
  const mod = await import(`kubernetes-models/${o.apiVersion}/${o.kind}`) as Record<string, new (d: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  assert.ok(Model, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
  try { new Model(o).validate(); } catch (e) { assert.fail(`${o.kind}/${o.metadata.name} does not validate: ${(e as Error).message}`); }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Rules the API server enforces that a JSON schema cannot express; the ones this chart could break. */
function apiServerRules(o: K8sObject): string[] {
  const bad: string[] = [];
  if (!DNS_SUBDOMAIN.test(o.metadata.name)) bad.push(`name ${o.metadata.name} is not a DNS subdomain`);
  for (const [k, v] of Object.entries(o.metadata.labels ?? {})) if (v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) bad.push(`label ${k}=${v} is not a label value`);
  if (o.kind !== 'Deployment' && o.kind !== 'DaemonSet') return bad;
  const w = o as Workload;
  if (!matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels)) bad.push('selector does not match the pod template labels');
  const spec = w.spec.template.spec;
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  for (const c of spec.containers) {
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation === false && (sc.privileged || sc.capabilities?.add?.includes('SYS_ADMIN'))) bad.push(`${c.name}: allowPrivilegeEscalation false with SYS_ADMIN or privileged`);
    for (const p of c.ports ?? []) if (p.name && (p.name.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name))) bad.push(`${c.name}: port name ${p.name}`);
    for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) bad.push(`${c.name}: mount ${m.name} names no volume`);
    const names = (c.env ?? []).map((e) => e.name);
    if (new Set(names).size !== names.length) bad.push(`${c.name}: duplicate env names`);
  }
  for (const v of spec.volumes ?? []) if (v.hostPath && !v.hostPath.path.startsWith('/')) bad.push(`hostPath ${v.hostPath.path} is not absolute`);
  return bad;
}

for (const [name, v] of CASES) {
  test(`helm lint passes (${name})`, () => {
    const r = helm('lint', v);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test(`helm template renders objects that validate against the Kubernetes schemas (${name})`, async () => {
    const objs = renderChart(v);
    const kinds = objs.map((o) => o.kind).sort();
    for (const k of ['ConfigMap', 'DaemonSet', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service']) assert.ok(kinds.includes(k), `no ${k} rendered`);
    for (const o of objs) {
      await validateAgainstKubernetesSchema(o);
      assert.deepEqual(apiServerRules(o), [], `${o.kind}/${o.metadata.name}`);
    }
    // The schemas accept unknown keys; the API server would drop them: a misplaced field is a bug.
    assert.deepEqual(unknownFields(objs), []);
  });

  test(`control: >= 2 replicas, a Service and a PDB on exactly the control pods (${name})`, () => {
    const objs = renderChart(v);
    const control = workload(objs, 'Deployment');
    const node = workload(objs, 'DaemonSet');
    assert.ok((control.spec.replicas ?? 1) >= 2, `control replicas ${control.spec.replicas}`);
    const controlLabels = control.spec.template.metadata.labels;
    const nodeLabels = node.spec.template.metadata.labels;
    const pdb = findObject(objs, 'PodDisruptionBudget', '-control') as K8sObject & { spec: { minAvailable: number; selector: { matchLabels: Labels } } };
    assert.ok(matches(pdb.spec.selector.matchLabels, controlLabels), 'the PDB does not select the control pods');
    assert.ok(!matches(pdb.spec.selector.matchLabels, nodeLabels), 'the PDB also selects node pods');
    assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < control.spec.replicas!, `minAvailable ${pdb.spec.minAvailable} of ${control.spec.replicas}`);
    type Svc = K8sObject & { spec: { type: string; selector: Labels; ports: { targetPort: string }[] } };
    const svc = objs.find((o) => o.kind === 'Service' && !o.metadata.name.endsWith('-join')) as Svc;
    assert.ok(matches(svc.spec.selector, controlLabels) && !matches(svc.spec.selector, nodeLabels), 'the Service must select control pods only');
    assert.deepEqual(svc.spec.ports.map((p) => p.targetPort), ['api'], 'the trainer-facing Service exposes the API only (no join endpoint)');
    // The join endpoint: control pods only, inside the cluster only.
    const join = findObject(objs, 'Service', '-join') as Svc;
    assert.ok(matches(join.spec.selector, controlLabels) && !matches(join.spec.selector, nodeLabels), 'the join Service must select control pods only');
    assert.equal(join.spec.type, 'ClusterIP');
    assert.deepEqual(join.spec.ports.map((p) => p.targetPort), ['join']);
    const c = control.spec.template.spec.containers[0]!;
    assert.deepEqual(c.securityContext?.capabilities, { drop: ['ALL'] }, 'the control role gets no capability');
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(control.spec.template.spec.hostNetwork ?? false, false);
  });

  test(`the NetworkPolicy admits only control pods to node pods, on the link port (${name})`, () => {
    const objs = renderChart(v);
    const controlLabels = workload(objs, 'Deployment').spec.template.metadata.labels;
    const node = workload(objs, 'DaemonSet');
    const nodeLabels = node.spec.template.metadata.labels;
    const policies = objs.filter((o) => o.kind === 'NetworkPolicy') as (K8sObject & { spec: { podSelector: { matchLabels: Labels }; policyTypes: string[]; ingress: { from: Record<string, unknown>[]; ports: { protocol: string; port: number }[] }[] } })[];
    const np = policies.find((p) => matches(p.spec.podSelector.matchLabels, nodeLabels));
    assert.ok(np, 'no NetworkPolicy selects the node pods');
    assert.ok(!matches(np.spec.podSelector.matchLabels, controlLabels), 'the node policy must not select control pods');
    assert.ok(np.spec.policyTypes.includes('Ingress'));
    assert.equal(np.spec.ingress.length, 1, 'exactly one ingress rule');
    const rule = np.spec.ingress[0]!;
    assert.equal(rule.from.length, 1, 'exactly one peer');
    const peer = rule.from[0] as { podSelector?: { matchLabels: Labels }; namespaceSelector?: unknown; ipBlock?: unknown };
    assert.deepEqual(Object.keys(peer), ['podSelector'], 'the peer is a pod selector in this namespace only (no namespaceSelector, no ipBlock)');
    assert.ok(matches(peer.podSelector!.matchLabels, controlLabels), 'the peer does not match the control pods');
    assert.ok(!matches(peer.podSelector!.matchLabels, nodeLabels), 'the peer also admits node pods');
    // The link and the node's E2B API (both mutual TLS, control certificates only), nothing else.
    const ports = node.spec.template.spec.containers[0]!.ports!;
    const linkPort = ports.find((p) => p.name === 'link')!.containerPort;
    const e2bPort = ports.find((p) => p.name === 'e2b')?.containerPort;
    assert.ok(e2bPort, 'the node serves E2B for the control replicas to route to');
    assert.deepEqual(rule.ports, [{ protocol: 'TCP', port: linkPort }, { protocol: 'TCP', port: e2bPort }]);
    // A NetworkPolicy does not apply to host-network pods: the node must stay on the pod network.
    assert.equal(node.spec.template.spec.hostNetwork ?? false, false);
  });

  test(`the node DaemonSet has each listed capability and no more (${name})`, () => {
    const node = workload(renderChart(v), 'DaemonSet');
    const spec = node.spec.template.spec;
    const sc = spec.containers[0]!.securityContext!;
    assert.equal(sc.privileged ?? false, false, 'the node must not be privileged');
    assert.deepEqual(sc.capabilities?.drop, ['ALL']);
    assert.deepEqual([...(sc.capabilities?.add ?? [])].sort(), [...NODE_CAPABILITIES].sort());
    assert.equal(spec.hostIPC ?? false, false);
    const hostPaths = (spec.volumes ?? []).filter((x) => x.hostPath).map((x) => x.hostPath!.path).sort();
    assert.deepEqual(hostPaths, ['/sys/fs/cgroup', '/sys/kernel/tracing', '/var/lib/praetor', '/var/lib/praetor/tls']);
    const tracefs = spec.containers[0]!.volumeMounts!.find((m) => m.mountPath === '/sys/kernel/tracing')!;
    assert.equal(tracefs.readOnly, true);
  });

  test(`secrets are referenced, never inlined into a pod (${name})`, () => {
    const objs = renderChart(v);
    for (const w of [workload(objs, 'Deployment'), workload(objs, 'DaemonSet')]) {
      const c = w.spec.template.spec.containers[0]!;
      for (const e of c.env ?? []) assert.equal(e.value, undefined, `${w.kind} env ${e.name} carries a literal value`);
      const db = c.env!.find((e) => e.name === 'PRAETOR_CLUSTER')!;
      assert.ok(db.valueFrom?.secretKeyRef, `${w.kind}: the database URL must come from a Secret`);
      const text = JSON.stringify(w);
      assert.doesNotMatch(text, /postgres(ql)?:\/\/|BEGIN [A-Z ]*PRIVATE KEY|BEGIN CERTIFICATE|pjt_/, `${w.kind} inlines a secret`);
    }
  });
}

test('existing PostgreSQL values: the URL comes from the named Secret and key, tokens are mounted', () => {
  const objs = renderChart({ valuesFiles: [EXISTING_PG] });
  assert.equal(objs.filter((o) => o.kind === 'Secret').length, 0, 'with existing secrets the chart creates none');
  const control = workload(objs, 'Deployment');
  const c = control.spec.template.spec.containers[0]!;
  assert.deepEqual(c.env!.find((e) => e.name === 'PRAETOR_CLUSTER')!.valueFrom!.secretKeyRef, { name: 'rollouts-db', key: 'DATABASE_URL' });
  assert.equal(control.spec.replicas, 3);
  assert.ok(c.volumeMounts!.some((m) => m.mountPath === '/var/lib/praetor/server/tokens.json' && m.readOnly));
  const node = workload(objs, 'DaemonSet');
  const join = node.spec.template.spec.containers[0]!.env!.find((e) => e.name === 'PRAETOR_JOIN_TOKEN')!;
  assert.deepEqual(join.valueFrom!.secretKeyRef, { name: 'rollouts-praetor-join', key: 'join-token' });
});

test('inline values: the chart creates the Secrets the pods reference, with the given content', () => {
  const objs = renderChart({ valuesFiles: [INLINE] });
  const secrets = new Map(objs.filter((o) => o.kind === 'Secret').map((o) => [o.metadata.name, o as K8sObject & { stringData: Record<string, string> }]));
  for (const w of [workload(objs, 'Deployment'), workload(objs, 'DaemonSet')]) {
    const spec = w.spec.template.spec;
    for (const e of spec.containers[0]!.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) assert.ok(secrets.get(ref.name)?.stringData[ref.key], `${w.kind} ${e.name}: Secret ${ref.name} key ${ref.key} is not rendered`);
    }
    for (const vol of spec.volumes ?? []) if (vol.secret) assert.ok(secrets.has(vol.secret.secretName), `${w.kind}: Secret ${vol.secret.secretName} is not rendered`);
  }
  assert.match(secrets.get('praetor-database')!.stringData.url!, /^postgres:\/\/praetor:s3cret-password@/);
  assert.deepEqual(Object.keys(secrets.get('praetor-control-tls')!.stringData).sort(), ['ca-key.pem', 'ca.pem', 'cert.pem', 'key.pem']);
});

test('the policy ConfigMap holds a policy Praetor accepts, with the rule tuning files in rules.files', async () => {
  const objs = renderChart({ valuesFiles: [EXISTING_PG] });
  const cm = findObject(objs, 'ConfigMap', '-policy') as K8sObject & { data: Record<string, string> };
  const { policy, problems } = checkPolicyText(cm.data['policy.yaml']!, 'policy.yaml');
  assert.deepEqual(problems, []);
  assert.deepEqual(policy!.rules?.files, ['/etc/praetor/policy/mirrors.yaml']);
  const node = workload(objs, 'DaemonSet');
  assert.ok(node.spec.template.spec.containers[0]!.volumeMounts!.some((m) => m.mountPath === '/etc/praetor/policy'));
  // The tuning file itself passes Praetor's rule linter on top of the shipped pack.
  const dir = mkdtempSync(join(tmpdir(), 'praetor-chart-'));
  try {
    writeFileSync(join(dir, 'mirrors.yaml'), cm.data['mirrors.yaml']!);
    const r = await lintRuleFiles([join(dir, 'mirrors.yaml')]);
    assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  } finally { rmSync(dir, { recursive: true, force: true }); }
  // The default policy too.
  assert.deepEqual(checkPolicyText((findObject(renderChart(), 'ConfigMap', '-policy') as K8sObject & { data: Record<string, string> }).data['policy.yaml']!).problems, []);
});

test('the values schema checks the policy with Praetor\'s own policy schema, and every starter profile passes it', () => {
  const values = JSON.parse(readFileSync(VALUES_SCHEMA, 'utf8')) as { properties: { policy: unknown } };
  assert.deepEqual(values.properties.policy, policyJsonSchema(), 'values.schema.json is stale: run node test/chart/policy-schema.ts --write');
  const profiles = globSync(fileURLToPath(new URL('../../policies/*.yaml', import.meta.url)));
  assert.ok(profiles.length >= 3);
  for (const f of profiles) {
    // helm checks the patterns with Go's regexp: a JavaScript-only regex would fail here.
    const r = helm('template', { values: { policy: parseYaml(readFileSync(f, 'utf8')) as Record<string, unknown> } });
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
  }
});

test('the unknown-field check finds a misplaced or misspelt key (so its silence above means something)', () => {
  const objs = renderChart();
  const ds = structuredClone(workload(objs, 'DaemonSet')) as Workload & { spec: { template: { spec: Record<string, unknown> } } };
  const c = ds.spec.template.spec.containers[0] as unknown as { securityContext: Record<string, unknown>; volumeMounts: Record<string, unknown>[] };
  c.securityContext.capabilites = c.securityContext.capabilities;
  c.volumeMounts[0]!.readonly = true;
  ds.spec.template.spec.apparmorProfile = { type: 'Unconfined' };
  assert.deepEqual(unknownFields([ds]).sort(), [
    'DaemonSet/praetor-node:.spec.template.spec.apparmorProfile',
    'DaemonSet/praetor-node:.spec.template.spec.containers[0].securityContext.capabilites',
    'DaemonSet/praetor-node:.spec.template.spec.containers[0].volumeMounts[0].readonly',
  ]);
  // A Kubernetes object in the chart but not in kubernetes-models is reported, not skipped.
  assert.match(unknownFields([{ apiVersion: 'example.test/v1', kind: 'Widget', metadata: { name: 'w' } }]).join(), /no type for example\.test\/v1 Widget/);
});

const BAD: [string, Record<string, unknown>, RegExp][] = [
  // name, values, what both helm lint and helm template say (the schema runs before any template)
  ['one control replica', { control: { replicas: 1 } }, /control\.replicas: Must be greater than or equal to 2/],
  ['no database', { postgres: { existingSecret: '', url: '' } }, /postgres: a database: existingSecret \(a Secret holding the postgres:\/\/ URL\) or url is required/],
  ['two database sources', { postgres: { existingSecret: 'db', url: 'postgres://a@b.test/c' } }, /postgres: only one of existingSecret and url/],
  ['a database URL that is not PostgreSQL', { postgres: { existingSecret: '', url: 'mysql://a@b.test/c' } }, /postgres\.url: Does not match pattern/],
  ['no control TLS', { tls: { control: { existingSecret: '' } } }, /tls\.control: the control TLS from `praetor cluster init`/],
  ['no join token', { joinToken: { existingSecret: '', value: '' } }, /joinToken: a join token for the nodes' first join/],
  ['a malformed inline join token', { joinToken: { existingSecret: '', value: 'pjt_too-short' } }, /joinToken\.value: Does not match pattern/],
  ['a join token life that is not a duration', { joinToken: { ttl: 'a day' } }, /joinToken\.ttl: Does not match pattern/],
  ['an empty node pool', { node: { poolSize: 0 } }, /node\.poolSize: Must be greater than or equal to 1/],
  ['nodes on every host', { node: { nodeSelector: null } }, /node: nodeSelector is required/],
  ['a misspelt key', { control: { replica: 3 } }, /control: Additional property replica is not allowed/],
  ['a policy typo', { policy: { network: { alow: [] } } }, /policy\.network: Additional property alow is not allowed/],
  ['a policy value Praetor refuses', { policy: { sandbox: { runtime: 'docker' } } }, /policy\.sandbox\.runtime/],
  ['a rule tuning file that would replace the policy', { ruleTuning: { 'policy.yaml': 'x' } }, /ruleTuning: Must not validate the schema/],
];

for (const [name, values, says] of BAD) {
  test(`bad values are refused with a message naming the key: ${name}`, () => {
    const lint = helm('lint', { values });
    assert.notEqual(lint.code, 0, `helm lint accepted ${name}`);
    assert.match(lint.stdout + lint.stderr, says);
    const tpl = helm('template', { values });
    assert.notEqual(tpl.code, 0, `helm template accepted ${name}`);
    assert.match(tpl.stderr, says);
  });
}

test('bad values the schema cannot see fail at template time with the fix', () => {
  const pdb = helm('template', { values: { control: { podDisruptionBudget: { minAvailable: 2 } } } });
  assert.notEqual(pdb.code, 0);
  assert.match(pdb.stderr, /minAvailable \(2\) must be below control\.replicas \(2\)/);
  const only = helm('template', { values: { tls: { control: { existingSecret: '', files: { 'ca.pem': '-----BEGIN CERTIFICATE-----\n' } } } } });
  assert.notEqual(only.code, 0);
  assert.match(only.stderr, /tls\.control\.files: cert\.pem is missing/);
});

test('rendered-commands: the processes the chart runs, with downward-API values and secrets substituted', () => {
  const r = renderedCommands({
    valuesFiles: [EXISTING_PG],
    secrets: { 'rollouts-db': { DATABASE_URL: 'postgres://praetor@127.0.0.1:5432/praetor' }, 'rollouts-praetor-join': { 'join-token': 'join-secret' }, 'rollouts-praetor-control-tls': { 'ca.pem': 'CA' }, 'rollouts-praetor-node-tls': { 'ca.pem': 'CA' } },
    control: { nodeName: 'host-a', podIP: '10.77.0.2' },
    node: { nodeName: 'host-c', podIP: '10.77.0.5' },
    paths: { '/var/lib/praetor': '/tmp/node-c/state' },
  });
  assert.deepEqual(r.control.command, ['praetor']);
  assert.deepEqual(r.control.args, ['serve', '--role', 'control', '--cluster-tls', '/etc/praetor/tls', '--join-port', '7443', '--bootstrap-token-file', '/etc/praetor/join/token', '--bootstrap-joins', '40', '--bootstrap-ttl', '24h', '--policy', '/etc/praetor/policy/policy.yaml', '--host', '0.0.0.0', '--port', '7070', '--state', '/tmp/node-c/state']);
  assert.deepEqual(r.node.args, ['serve', '--role', 'node', '--node-id', 'host-c', '--advertise', 'https://10.77.0.5:7070', '--capacity', '64', '--cluster-tls', '/etc/praetor/tls', '--control', 'https://praetor-join.sandboxes.svc:7443', '--policy', '/etc/praetor/policy/policy.yaml', '--host', '0.0.0.0', '--port', '7070', '--e2b-port', '7071', '--state', '/tmp/node-c/state']);
  assert.deepEqual(r.node.env, { PRAETOR_CLUSTER: 'postgres://praetor@127.0.0.1:5432/praetor', PRAETOR_NODE_ID: 'host-c', POD_IP: '10.77.0.5', PRAETOR_JOIN_TOKEN: 'join-secret' });
  assert.deepEqual(r.control.env, { PRAETOR_CLUSTER: 'postgres://praetor@127.0.0.1:5432/praetor' });
  // The database URL (it carries the password) reaches the process through its environment
  // only: arguments are readable host-wide (/proc/PID/cmdline).
  for (const p of [r.control, r.node]) assert.ok(!p.args.join(' ').includes('postgres://'), 'the database URL is in argv');
  // The node's init container puts the operator's CA bundle next to the identity the join writes.
  assert.deepEqual(r.node.init.map((i) => i.command), [['cp', '/etc/praetor/cluster-ca/ca.pem', '/etc/praetor/tls/ca.pem']]);
  assert.deepEqual(r.node.init[0]!.mounts.find((m) => m.mountPath === '/etc/praetor/cluster-ca')!.files, { 'ca.pem': 'CA' });
  assert.deepEqual(r.control.init, []);
  // Another pod of the same DaemonSet, from the same render.
  const other = processOf(r.objects, 'node', { nodeName: 'host-d', podIP: '10.77.0.6' }, { secrets: { 'rollouts-db': { DATABASE_URL: 'x' }, 'rollouts-praetor-join': { 'join-token': 'y' } } });
  assert.ok(other.args.includes('https://10.77.0.6:7070') && other.args.includes('host-d'));
  const policy = r.node.mounts.find((m) => m.mountPath === '/etc/praetor/policy')!;
  assert.ok(policy.files?.['policy.yaml']?.includes('mirrors.yaml'));
  assert.throws(() => processOf(r.objects, 'node', { nodeName: 'n', podIP: '1' }), /Secret rollouts-db has no key DATABASE_URL/);
  // The files of the Secret and ConfigMap mounts land where the test's paths put them.
  const dir = mkdtempSync(join(tmpdir(), 'praetor-chart-'));
  try {
    const paths = { '/etc/praetor/policy': join(dir, 'policy'), '/etc/praetor/cluster-ca': join(dir, 'ca'), '/var/lib/praetor': join(dir, 'state') };
    materializeMounts(r.node, paths);
    materializeMounts(r.node.init[0]!, paths);
    assert.match(readFileSync(join(dir, 'policy/policy.yaml'), 'utf8'), /mirrors\.yaml/);
    assert.match(readFileSync(join(dir, 'policy/mirrors.yaml'), 'utf8'), /allowed_private_networks/);
    assert.equal(readFileSync(join(dir, 'ca/ca.pem'), 'utf8'), 'CA');
    const control = processOf(r.objects, 'control', { nodeName: 'a', podIP: '1' }, { secrets: { 'rollouts-db': { DATABASE_URL: 'x' }, 'rollouts-praetor-tokens': { 'tokens.json': '{"version":1,"tokens":[]}' }, 'rollouts-praetor-control-tls': { 'ca.pem': 'CA' }, 'rollouts-praetor-join': { 'join-token': 'join-secret' } } });
    materializeMounts(control, { ...paths, '/etc/praetor/join': join(dir, 'join') });
    assert.equal(readFileSync(join(dir, 'state/server/tokens.json'), 'utf8'), '{"version":1,"tokens":[]}');
    // The control replica reads the very token the nodes present (one Secret, one key).
    assert.equal(readFileSync(join(dir, 'join/token'), 'utf8'), 'join-secret');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

for (const [name, v] of CASES) {
  test(`one bootstrap join token for the node pool: every node pod presents it, control replicas register it with node.poolSize joins (${name})`, () => {
    const objs = renderChart(v);
    const values = { poolSize: name === 'existing PostgreSQL' ? 40 : 3 };
    const node = workload(objs, 'DaemonSet');
    const control = workload(objs, 'Deployment');
    const nodeRef = node.spec.template.spec.containers[0]!.env!.find((e) => e.name === 'PRAETOR_JOIN_TOKEN')!.valueFrom!.secretKeyRef!;
    const c = control.spec.template.spec.containers[0]! as Container & { args: string[] };
    const arg = (flag: string) => c.args[c.args.indexOf(flag) + 1];
    assert.equal(arg('--bootstrap-token-file'), '/etc/praetor/join/token');
    assert.equal(arg('--bootstrap-joins'), String(values.poolSize), 'the budget of joins is the pool size');
    assert.equal(arg('--bootstrap-ttl'), '24h');
    const mount = c.volumeMounts!.find((m) => m.mountPath === '/etc/praetor/join')!;
    assert.equal(mount.readOnly, true);
    const vol = (control.spec.template.spec.volumes ?? []).find((x) => x.name === mount.name) as unknown as { secret: { secretName: string; items: { key: string; path: string }[] } };
    assert.deepEqual([vol.secret.secretName, vol.secret.items], [nodeRef.name, [{ key: nodeRef.key, path: 'token' }]], 'the control replicas read the Secret and key the nodes present');
    // The node keeps --control so it can renew its identity (a new pod IP) with no token.
    const nargs = (node.spec.template.spec.containers[0] as Container & { args: string[] }).args;
    assert.ok(nargs.includes('--control'));
  });
}

test('the README says what each node privilege is for', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('## Run on Kubernetes'));
  assert.ok(readme.includes('## Run on Kubernetes'), 'README has no "Run on Kubernetes" section');
  for (const cap of NODE_CAPABILITIES) assert.match(section, new RegExp(`\\b${cap}\\b`), `README does not explain ${cap}`);
  // The node pool's join token, renewal on a new address, and certificate rotation are explained.
  for (const words of [/bootstrap join token/, /poolSize/, /token generate/, /renews?\s+(its|the)\s+certificate/, /rotat/, /E2B/]) assert.match(section, words, `README's "Run on Kubernetes" does not cover ${words}`);
  // And the DaemonSet gives each added capability a reason right above it.
  const tpl = readFileSync(join(CHART_DIR, 'templates/node-daemonset.yaml'), 'utf8').split('\n');
  for (const cap of NODE_CAPABILITIES) {
    const i = tpl.findIndex((l) => l.trim() === `- ${cap}`);
    assert.ok(i > 0, `${cap} is not in the template`);
    let j = i - 1;
    while (j > 0 && /^\s*- [A-Z_]+$/.test(tpl[j]!)) j--;
    assert.match(tpl[j]!, /^\s*#/, `${cap} has no comment giving its reason`);
  }
});
