// The generated references must match the code: regenerate into a temp dir and compare with
// the committed docs/, then check that every CLI flag, policy key, rule field and API route is
// in them (a renderer that drops a row would otherwise go unnoticed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectCli, collectOpenApi, collectPolicy, generateDocs, writeDocs } from '../../scripts/gen-docs.ts';
import { DEFAULT_RULE_FILES, FIELDS, lintRuleFiles } from '../../src/rules/index.ts';

const DOCS = new URL('../../docs/', import.meta.url).pathname;
const doc = (name: string) => readFileSync(join(DOCS, name), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'praetor-docs-fresh-'));
const files = await generateDocs();
writeDocs(files, tmp);

test('committed references equal a fresh generation', { timeout: 120_000 }, () => {
  try {
    for (const name of Object.keys(files)) {
      const fresh = readFileSync(join(tmp, name), 'utf8');
      let committed = '';
      try { committed = doc(name); } catch { /* missing counts as stale */ }
      assert.ok(committed === fresh, `docs/${name} is stale: run \`node scripts/gen-docs.ts\` and commit docs/`);
    }
  } finally { rmSync(tmp, { recursive: true, force: true }); }
});

test('every CLI command and flag is in docs/cli-reference.md, including flags a usage text forgot', () => {
  const text = doc('cli-reference.md');
  for (const c of collectCli()) {
    assert.ok(text.includes(`## praetor ${c.name}`), `command ${c.name}`);
    for (const f of c.flags) assert.ok(text.includes(`\`${f}\``), `praetor ${c.name} ${f}`);
  }
  // Flags as parsed (parseFlags/parseArgs option tables in src/cli), not as the usage claims.
  const cliDir = new URL('../../src/cli/', import.meta.url).pathname;
  const missing: string[] = [];
  for (const f of readdirSync(cliDir).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const src = readFileSync(join(cliDir, f), 'utf8');
    for (const m of src.matchAll(/['"]?([a-z][a-z0-9-]*)['"]?: \{ type: '(?:string|boolean)'/g)) {
      if (m[1] === 'help') continue;
      if (!text.includes(`--${m[1]}`)) missing.push(`${f}: --${m[1]}`);
    }
  }
  assert.deepEqual(missing, [], 'flags parsed by a command but absent from every --help text');
});

test('every policy key is in docs/policy-reference.md', () => {
  const text = doc('policy-reference.md');
  const rows = collectPolicy();
  assert.ok(rows.length > 10);
  for (const r of rows) assert.ok(text.includes(`\`${r.path}\``), r.path);
});

test('every rule field, rule, list and macro is in docs/rule-reference.md; its example tuning file lints', async () => {
  const text = doc('rule-reference.md');
  for (const f of Object.keys(FIELDS)) assert.ok(text.includes(`\`${f}\``), f);
  const { ruleset } = await lintRuleFiles([]);
  for (const r of ruleset.rules) assert.ok(text.includes(`### ${r.name}`), r.name);
  for (const n of [...ruleset.lists.keys(), ...ruleset.macros.keys()]) assert.ok(text.includes(`\`${n}\``), n);
  assert.equal(DEFAULT_RULE_FILES.length, 3);
  const example = /```yaml\n# my-tuning.yaml\n([\s\S]*?)```/.exec(text)?.[1];
  assert.ok(example, 'the tuning example is there');
  const dir = mkdtempSync(join(tmpdir(), 'praetor-rule-example-'));
  try {
    writeFileSync(join(dir, 'my-tuning.yaml'), example);
    const r = await lintRuleFiles([join(dir, 'my-tuning.yaml')]);
    assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('every API route of the served OpenAPI document is in docs/api-reference.md', async () => {
  const text = doc('api-reference.md');
  const openapi = await collectOpenApi();
  let n = 0;
  for (const [path, ops] of Object.entries(openapi.paths as Record<string, object>)) {
    for (const method of Object.keys(ops)) { n++; assert.ok(text.includes(`### ${method.toUpperCase()} ${path}\n`), `${method} ${path}`); }
  }
  assert.ok(n > 40, `${n} routes`);
});
