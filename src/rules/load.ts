import { realpath } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PraetorError } from '../errors.ts';
import { compileItems, type CompiledRuleSet } from './compile-rules.ts';
import { formatDiagnostic, loadRuleFile, type Diagnostic, type LoadedItem } from './loader.ts';

// Entry points that read files: the shipped pack first, then the user's files on top (so they
// can append to the shipped allow-lists), compiled once.

/** The shipped pack, in load order: allow-lists (empty, for users to extend), then the rules. */
export const DEFAULT_RULE_FILES: readonly string[] = [
  fileURLToPath(new URL('../../rules/praetor-allowlists.yaml', import.meta.url)),
  fileURLToPath(new URL('../../rules/praetor-rules.yaml', import.meta.url)),
  // staging, shell escapes, credential access, canaries: uses the lists and macros above
  fileURLToPath(new URL('../../rules/praetor-rules-credentials.yaml', import.meta.url)),
];
export const DEFAULT_RULE_TEST_DIR = fileURLToPath(new URL('../../rules/tests/', import.meta.url));

export type LoadResult = { ruleset: CompiledRuleSet; diagnostics: Diagnostic[]; files: string[] };

/** Loads and compiles; never throws for rule problems (see diagnostics). */
export async function lintRuleFiles(files: readonly string[], opts: { defaults?: boolean } = {}): Promise<LoadResult> {
  const order: string[] = [];
  const seen = new Set<string>();
  for (const f of [...(opts.defaults === false ? [] : DEFAULT_RULE_FILES), ...files]) {
    const real = await realpath(f).catch(() => f);
    if (seen.has(real)) continue;
    seen.add(real);
    order.push(f);
  }
  const diagnostics: Diagnostic[] = [];
  const items: LoadedItem[] = [];
  for (const f of order) items.push(...(await loadRuleFile(f, diagnostics)));
  const ruleset = compileItems(items, diagnostics);
  return { ruleset, diagnostics, files: order };
}

/** Loads and compiles; throws BAD_RULE listing every error with file:line. */
export async function loadRules(files: readonly string[] = [], opts: { defaults?: boolean } = {}): Promise<CompiledRuleSet> {
  const r = await lintRuleFiles(files, opts);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    throw new PraetorError('BAD_RULE', `${errors.length} error(s) in rule files:\n${errors.map(formatDiagnostic).join('\n')}`, {
      hint: `run 'praetor rules lint ${files.join(' ')}' and fix the lines it names`,
    });
  }
  return r.ruleset;
}
