// `praetor arena`: scripted agents, honest and misbehaving, run against the guardrails inside the
// test network (src/testbed); the verdicts say what was blocked, contained or delivered.
export { runArena, renderTable, ensureDir, summarise, MIRROR_ADDR, type ArenaOptions, type ArenaResult, type ArenaSummary, type ScenarioResult } from './arena.ts';
export { renderHtml } from './report-html.ts';
export { loadSuite, parseScenario, SCENARIOS_DIR, FAMILIES, type Scenario, type ResolvedScenario, type Suite, type Family } from './schema.ts';
export { judge, bytesDelivered, type Verdict, type Judged } from './verdict.ts';
