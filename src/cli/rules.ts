// `praetor rules lint|test|ls`: thin over src/rules. lint and test exit 1 when something is
// wrong, so CI can gate a user's tuning file or a rule change on them.
import {
  DEFAULT_RULE_TEST_DIR, FIELDS, formatDiagnostic, lintRuleFiles, loadRuleTests, runRuleTests,
  type Diagnostic,
} from '../rules/index.ts';
import { parseFlags } from './common.ts';

const USAGE = `praetor rules <lint|test|ls> [options]

  praetor rules lint FILE…          check rule files (loaded on top of the shipped pack)
      --alone                       do not load the shipped pack first
  praetor rules test [FILE…]        run rule tests (default: the shipped rules/tests/)
      --rules FILE                  extra rule file to load (repeatable)
  praetor rules ls                  list rules with maturity and effective actions
      --rules FILE                  extra rule file to load (repeatable)
      --fields                      list the condition fields instead
      --json                        machine-readable output`;

const out = (s: string): void => { process.stdout.write(s + '\n'); };
const err = (s: string): void => { process.stderr.write(s + '\n'); };

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') { out(`usage: ${USAGE}`); return sub === undefined ? 2 : 0; }
  if (sub !== 'lint' && sub !== 'test' && sub !== 'ls') { err(`praetor rules: unknown subcommand "${sub}"\n\nusage: ${USAGE}`); return 2; }
  const { values, positionals } = parseFlags(rest, {
    alone: { type: 'boolean', default: false },
    rules: { type: 'string', multiple: true, default: [] },
    fields: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  }, USAGE, true);
  const json = values.json ?? false;
  const rules = values.rules ?? [];
  switch (sub) {
    case 'lint': return lint(positionals, values.alone ?? false, json);
    case 'test': return test(positionals, rules, json);
    case 'ls': return ls(rules, values.fields ?? false, json);
  }
}

function report(diags: readonly Diagnostic[], json: boolean): number {
  const errors = diags.filter((d) => d.severity === 'error').length;
  if (json) out(JSON.stringify({ ok: errors === 0, diagnostics: diags }, null, 2));
  else {
    for (const d of diags) err(formatDiagnostic(d));
  }
  return errors;
}

async function lint(files: string[], alone: boolean, json: boolean): Promise<number> {
  if (files.length === 0) { err('praetor rules lint: name at least one rule file\n  fix: praetor rules lint my-rules.yaml'); return 2; }
  const r = await lintRuleFiles(files, { defaults: !alone });
  const errors = report(r.diagnostics, json);
  if (!json) {
    const warnings = r.diagnostics.length - errors;
    out(errors === 0
      ? `ok: ${r.ruleset.rules.length} rules, ${r.ruleset.macros.size} macros, ${r.ruleset.lists.size} lists from ${r.files.length} file(s)${warnings ? `, ${warnings} warning(s)` : ''}`
      : `${errors} error(s), ${warnings} warning(s)`);
  }
  return errors === 0 ? 0 : 1;
}

async function test(paths: string[], ruleFiles: string[], json: boolean): Promise<number> {
  const r = await lintRuleFiles(ruleFiles);
  const diags: Diagnostic[] = [...r.diagnostics.filter((d) => d.severity === 'error')];
  const tests = await loadRuleTests(paths.length ? paths : [DEFAULT_RULE_TEST_DIR], diags);
  if (diags.length > 0) { report(diags, json); return 1; }
  const results = runRuleTests(r.ruleset, tests);
  const failed = results.filter((t) => !t.ok);
  if (json) out(JSON.stringify({ ok: failed.length === 0, passed: results.length - failed.length, failed: failed.length, results }, null, 2));
  else {
    for (const t of results) {
      out(`${t.ok ? 'ok  ' : 'FAIL'} ${t.name}${t.ok ? '' : `  (${t.pos.file}:${t.pos.line})`}`);
      for (const p of t.problems) out(`       ${p}`);
    }
    out(`\n${results.length - failed.length} passed, ${failed.length} failed`);
  }
  return failed.length === 0 ? 0 : 1;
}

async function ls(ruleFiles: string[], fields: boolean, json: boolean): Promise<number> {
  if (fields) {
    const rows = Object.entries(FIELDS).map(([name, f]) => ({ name, type: f.type, kinds: f.kinds, desc: f.desc }));
    if (json) out(JSON.stringify(rows, null, 2));
    else for (const f of rows) out(`${f.name.padEnd(24)} ${f.type.padEnd(8)} ${f.desc}`);
    return 0;
  }
  const r = await lintRuleFiles(ruleFiles);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) { report(errors, false); return 1; }
  const rows = r.ruleset.rules.map((x) => ({
    name: x.name, priority: x.priority, maturity: x.maturity, enabled: x.enabled, actions: x.actions,
    tags: x.tags, kinds: [...x.kinds], source: `${x.pos.file}:${x.pos.line}`,
  }));
  if (json) { out(JSON.stringify(rows, null, 2)); return 0; }
  for (const x of rows) {
    out(`${x.maturity.padEnd(10)} ${x.priority.padEnd(8)} ${x.enabled ? '' : '(disabled) '}${x.name}  [${x.actions.join(', ')}]`);
  }
  out(`\n${rows.length} rules, ${rows.filter((x) => x.maturity === 'stable' && x.actions.length > 1).length} stable with containment`);
  return 0;
}
