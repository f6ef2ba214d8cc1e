export { EpisodeService, type Episode, type EpisodeCreate } from './service.ts';
export { ActionSchema, StepResultSchema, SafetySchema, ReportSchema, TOOL_SCHEMAS, type Action, type StepResult, type Safety, type Report } from './schema.ts';
export { verdictOf, recommend } from './safety.ts';
export { GemAdapter } from './gem.ts';
export type { EpisodeHost, HostedSandbox, Caller, Phase } from './host.ts';
