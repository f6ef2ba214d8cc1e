// Fields the Kubernetes API does not define. kubernetes-models' JSON-schema validation accepts
// any extra key (the OpenAPI schemas do not forbid them), while the API server drops or refuses
// unknown fields: a misplaced `appArmorProfile` or a misspelt `readOnly` would pass validation
// and silently do nothing. So walk each rendered object along the package's own TypeScript
// declarations (one type per Kubernetes schema) and report every key they do not declare.
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { K8sObject } from './render.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Paths (Kind/name:.spec.x.y) of keys that no Kubernetes type declares. */
export function unknownFields(objects: K8sObject[]): string[] {
  const kinds = [...new Set(objects.map((o) => `${o.apiVersion}/${o.kind}`))];
  const virtual = `${ROOT}test/chart/__k8s-types__.ts`;
  const text = kinds.map((k, i) => `import type { I${k.split('/').pop()} as T${i} } from 'kubernetes-models/${k}';\nexport type K${i} = T${i};`).join('\n');
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => name === virtual ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === virtual || fileExists(name);
  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(virtual)!;
  const typeOf = new Map<string, ts.Type>();
  for (const st of sf.statements) {
    if (ts.isTypeAliasDeclaration(st)) typeOf.set(kinds[Number(st.name.text.slice(1))]!, checker.getTypeAtLocation(st.name));
  }
  const bad: string[] = [];
  for (const o of objects) {
    const t = typeOf.get(`${o.apiVersion}/${o.kind}`);
    if (!t || checker.getPropertiesOfType(t).length === 0) { bad.push(`${o.kind}/${o.metadata.name}: kubernetes-models has no type for ${o.apiVersion} ${o.kind}`); continue; }
    walk(checker, sf, o, t, `${o.kind}/${o.metadata.name}:`, bad);
  }
  return bad;
}

function walk(checker: ts.TypeChecker, at: ts.Node, value: unknown, type: ts.Type, path: string, bad: string[]): void {
  if (value === null || typeof value !== 'object') return;
  let t = checker.getNonNullableType(type);
  // A union such as IntOrString: keep the object-shaped members.
  if (t.isUnion()) {
    const objs = t.types.filter((m) => (m.flags & ts.TypeFlags.Object) !== 0);
    if (objs.length !== 1) return;
    t = objs[0]!;
  }
  if (Array.isArray(value)) {
    const el = t.getNumberIndexType();
    if (el) value.forEach((v, i) => walk(checker, at, v, el, `${path}[${i}]`, bad));
    return;
  }
  const index = t.getStringIndexType();
  for (const [k, v] of Object.entries(value)) {
    const prop = t.getProperty(k);
    if (prop) walk(checker, at, v, checker.getTypeOfSymbolAtLocation(prop, at), `${path}.${k}`, bad);
    else if (index) walk(checker, at, v, index, `${path}.${k}`, bad);
    else bad.push(`${path}.${k}`);
  }
}
