// Public API of the rule engine. Containment switches over RuleAction; the server and CLI load
// rules with loadRules and run them with createRuleEngine.
export { RuleAction, RULE_ACTIONS, Priority, Maturity } from './vocabulary.ts';
export { FIELDS, type FieldDef, type FieldType } from './fields.ts';
export { createRuleEngine, RULE_FAILURE, type RuleEngine, type RuleEngineOptions, type AlertEvent, type AlertInput } from './engine.ts';
export { loadRules, lintRuleFiles, DEFAULT_RULE_FILES, DEFAULT_RULE_TEST_DIR, type LoadResult } from './load.ts';
export { compileItems, type CompiledRule, type CompiledRuleSet } from './compile-rules.ts';
export { loadRuleText, formatDiagnostic, type Diagnostic } from './loader.ts';
export { runRuleTests, loadRuleTests, type RuleTestResult } from './rule-tests.ts';
// ssh's own config resolution, which the exec-identity sensor applies to an ssh it sees start.
export { resolveSshConfig, type EffectiveSshConfig, type SshConfigReader } from './ssh-config.ts';
export { splitArgs } from './ssh-config-parser.ts';
