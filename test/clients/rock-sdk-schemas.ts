// What ROCK's SDKs require of each response, transcribed as facts (field names, types,
// nullability) from the TypeScript SDK's zod schemas (rock/ts-sdk/src/types/responses.ts) and
// the Python SDK's pydantic models (rock/actions/sandbox/response.py), in snake_case as on the
// wire (the TypeScript SDK converts to camelCase after the HTTP call). Where the two differ, the
// stricter one is kept: the TypeScript SDK rejects null for optional strings.
import { z } from 'zod';

export interface Exchange {
  method: string;
  path: string;
  contentType: string;
  body: unknown;
  status: number;
  response: unknown;
}

const str = z.string();
const optStr = z.string().optional(); // undefined or a string; null is rejected
const nullStr = z.string().nullable().optional();

const Envelope = z.object({
  status: z.enum(['Success', 'Failed']),
  message: z.string().nullable().optional(),
  error: z.string().nullable().optional(),
  result: z.unknown(),
});

// ROCK's codes (rock/_codes.py): a Failed result that carries one must carry a known one, or
// the SDKs' raise_for_code falls through to a generic exception.
const FailedResult = z.object({ code: z.union([z.literal(2000), z.literal(4000), z.literal(5000), z.literal(6000)]) }).passthrough().nullable().optional();

const StateTransition = z.object({ from_state: str, to_state: str, event: str, timestamp: str });
const SandboxStatus = z.object({
  sandbox_id: optStr, status: z.record(z.string(), z.unknown()).optional(), port_mapping: z.record(z.string(), z.unknown()).optional(),
  host_name: optStr, host_ip: optStr, is_alive: z.boolean().optional(), image: optStr,
  user_id: optStr, experiment_id: optStr, namespace: optStr, cpus: z.number().optional(), memory: optStr,
  disk: nullStr, state: z.enum(['pending', 'running', 'stopped', 'archiving', 'archived', 'deleted']).nullable().optional(),
  start_time: nullStr, stop_time: nullStr, create_time: nullStr, state_history: z.array(StateTransition).optional(),
});
const Start = z.object({ sandbox_id: str, host_name: nullStr, host_ip: nullStr });
const Command = z.object({ stdout: z.string().optional(), stderr: z.string().optional(), exit_code: z.number().optional() });
const Observation = z.object({ output: z.string().optional(), exit_code: z.number().optional(), failure_reason: z.string().optional(), expect_string: z.string().optional() });
const CreateSession = z.object({ output: z.string().optional(), session_type: z.literal('bash').optional() });
const CloseSession = z.object({ session_type: z.literal('bash').optional() }).nullable();
const WriteFile = z.object({ success: z.boolean().optional(), message: z.string().optional() });
const ReadFile = z.object({ content: z.string().optional() });
const Upload = z.object({ success: z.boolean().optional(), message: z.string().optional(), file_name: z.string().optional() });
const IsAlive = z.object({ is_alive: z.boolean(), message: z.string().optional() });
const CommitStatus = z.object({
  sandbox_id: str, image_tag: str, phase: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED']), started_at: str,
  completed_at: nullStr, exit_code: z.number().nullable().optional(), failed_stage: nullStr, error_code: nullStr, error_message: nullStr,
});

const BY_ROUTE: Array<[RegExp, z.ZodType]> = [
  [/\/(start|start_async|restart|sandboxes\/[^/]+\/restart)$/, Start],
  [/\/get_status$/, SandboxStatus],
  [/\/is_alive$/, IsAlive],
  [/\/execute$/, Command],
  [/\/run_in_session$/, Observation],
  [/\/create_session$/, CreateSession],
  [/\/close_session$/, CloseSession],
  [/\/write_file$/, WriteFile],
  [/\/read_file$/, ReadFile],
  [/\/upload$/, Upload],
  [/\/commit(\/[^/]+)?$/, CommitStatus],
  [/\/(stop|delete)$/, z.string()],
];

/** Problems with one response, as the SDKs would see them; empty when it passes. */
export function checkRockResponse(x: Exchange): string[] {
  if (x.status !== 200) return x.status === 401 || x.status === 429 ? [] : [`HTTP ${x.status}: the SDKs raise on any non-2xx before reading ROCK's envelope`];
  const env = Envelope.safeParse(x.response);
  if (!env.success) return [`not ROCK's envelope: ${env.error.issues[0]?.message}`];
  if (env.data.status === 'Failed') {
    const r = FailedResult.safeParse(env.data.result);
    return r.success ? [] : [`Failed result: ${r.error.issues[0]?.message}`];
  }
  const route = x.path.split('?')[0]!;
  const schema = BY_ROUTE.find(([re]) => re.test(route))?.[1];
  if (!schema) return [];
  const r = schema.safeParse(env.data.result);
  return r.success ? [] : r.error.issues.map((i) => `result.${i.path.join('.')}: ${i.message}`);
}
