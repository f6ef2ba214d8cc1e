// The episode contract: what a trainer sends (create, step, reward) and what it gets back
// (observation, terminated/truncated, and the safety verdict of every step). Snake case on the
// wire, as the Python RL frameworks that call it expect.
import { z } from 'zod';
import { SandboxPath as Path } from '../sandbox/index.ts';

export const ActionSchema = z.discriminatedUnion('tool', [
  z.object({
    tool: z.literal('bash').describe('run a shell command'),
    arguments: z.object({
      command: z.string().min(1).max(1 << 20).describe('shell command line'),
      timeout_ms: z.number().int().positive().max(3600_000).optional().describe('kill after this long'),
    }).strict().describe('bash arguments'),
    tool_call_id: z.string().max(128).optional().describe('the model\'s tool call id (generated when absent)'),
    model_call_id: z.string().max(128).optional().describe('the model call that produced this action'),
  }).strict(),
  z.object({
    tool: z.literal('read_file').describe('read a text file'),
    arguments: z.object({ path: Path }).strict().describe('read_file arguments'),
    tool_call_id: z.string().max(128).optional().describe('tool call id'),
    model_call_id: z.string().max(128).optional().describe('model call id'),
  }).strict(),
  z.object({
    tool: z.literal('write_file').describe('write a text file'),
    arguments: z.object({ path: Path, content: z.string().describe('new content') }).strict().describe('write_file arguments'),
    tool_call_id: z.string().max(128).optional().describe('tool call id'),
    model_call_id: z.string().max(128).optional().describe('model call id'),
  }).strict(),
  z.object({
    tool: z.literal('edit').describe('replace one exact occurrence of text in a file'),
    arguments: z.object({
      path: Path,
      old_text: z.string().min(1).describe('exact text to replace (must occur once)'),
      new_text: z.string().describe('replacement'),
    }).strict().describe('edit arguments'),
    tool_call_id: z.string().max(128).optional().describe('tool call id'),
    model_call_id: z.string().max(128).optional().describe('model call id'),
  }).strict(),
]).describe('an agent action: one tool call');
export type Action = z.infer<typeof ActionSchema>;

export const Verdict = z.enum(['allow', 'deny', 'terminate']).describe('allow: nothing flagged; deny: a rule or the gateway refused something; terminate: the sandbox was contained');
export const SafetySchema = z.object({
  verdict: Verdict,
  rule: z.string().nullable().describe('rule (or policy rule) behind the verdict'),
  severity: z.string().nullable().describe('rule priority, lowercase (critical, warning, …)'),
  evidence_event_ids: z.array(z.string()).describe('ids of the events behind the verdict, in the ledger'),
}).strict();
export type Safety = z.infer<typeof SafetySchema>;

export const StepResultSchema = z.object({
  episode_id: z.string().describe('episode'),
  step: z.number().int().describe('step number, from 1'),
  tool_call_id: z.string().describe('tool call id'),
  observation: z.string().describe('what the agent sees: command output, file content, or the error'),
  exit_code: z.number().int().nullable().describe('exit status for bash; 0/1 for file tools'),
  terminated: z.boolean().describe('the episode ended (contained, or the sandbox is gone)'),
  truncated: z.boolean().describe('the step budget is used up'),
  safety: SafetySchema,
  info: z.record(z.string(), z.unknown()).describe('failure_mode ("safety_violation"), reason, duration_ms'),
}).strict();
export type StepResult = z.infer<typeof StepResultSchema>;

export const TrainingAction = z.enum(['keep', 'penalize', 'mask', 'drop']).describe('what Praetor recommends the trainer do with the sample');

export const ReportSchema = z.object({
  episode_id: z.string().describe('episode'),
  status: z.string().describe('running, terminated, truncated or closed'),
  end_reason: z.string().nullable().describe('why it ended'),
  steps: z.number().int().describe('steps taken'),
  flags: z.array(z.object({
    step: z.number().int().describe('step'), tool_call_id: z.string().describe('tool call'),
    verdict: Verdict, rule: z.string().nullable().describe('rule'), severity: z.string().nullable().describe('severity'),
    evidence_event_ids: z.array(z.string()).describe('evidence'),
  }).strict()).describe('every step that was not a clean allow'),
  recommended_training_action: TrainingAction,
  suggested_penalty: z.number().describe('amount to subtract from the reward when penalizing'),
  rewards: z.array(z.object({ step: z.number().int().nullable().describe('step'), value: z.number().describe('reward'), source: z.string().nullable().describe('source') }).strict()).describe('rewards reported by the trainer'),
}).strict();
export type Report = z.infer<typeof ReportSchema>;

/** OpenAI function-tool schemas of the episode tools (what create returns as `tools`). */
export const TOOL_SCHEMAS = [
  { type: 'function', function: { name: 'bash', description: 'Run a shell command in the sandbox and return its output.', parameters: { type: 'object', properties: { command: { type: 'string' }, timeout_ms: { type: 'integer' } }, required: ['command'], additionalProperties: false } } },
  { type: 'function', function: { name: 'read_file', description: 'Read a text file in the sandbox.', parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false } } },
  { type: 'function', function: { name: 'write_file', description: 'Write a text file in the sandbox (parents created).', parameters: { type: 'object', properties: { path: { type: 'string' }, content: { type: 'string' } }, required: ['path', 'content'], additionalProperties: false } } },
  { type: 'function', function: { name: 'edit', description: 'Replace one exact occurrence of old_text with new_text in a file.', parameters: { type: 'object', properties: { path: { type: 'string' }, old_text: { type: 'string' }, new_text: { type: 'string' } }, required: ['path', 'old_text', 'new_text'], additionalProperties: false } } },
] as const;
