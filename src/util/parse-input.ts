// Input validation with errors people can act on: a strict zod schema, and the first problem
// named by its field path with the fix. Shared by the server's routes and the episode service.
import type { z } from 'zod';
import { PraetorError } from '../errors.ts';

/** Validates with a strict zod schema; the error names the field and what was wrong. */
export function parseInput<S extends z.ZodType>(schema: S, data: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(data ?? (where === 'query' ? {} : undefined));
  if (r.success) return r.data;
  throw zodError(r.error, where, data);
}

export function zodError(err: z.ZodError, where: string, data?: unknown): PraetorError {
  const i = err.issues[0]!;
  const path = i.path.map(String).join('.');
  const at = path ? `${where}.${path}` : where;
  if (i.code === 'unrecognized_keys') {
    return new PraetorError('BAD_ARGUMENT', `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')} in ${at}`, { hint: 'remove it; see /openapi.json for the accepted fields' });
  }
  if ((i.code === 'invalid_type' || i.code === 'invalid_union') && valueAt(data, i.path) === undefined) {
    return new PraetorError('BAD_ARGUMENT', `${at} is required`, { hint: 'see /openapi.json for the accepted fields' });
  }
  return new PraetorError('BAD_ARGUMENT', `${at}: ${i.message}`, { hint: 'see /openapi.json for the accepted fields' });
}

function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let v: unknown = data;
  for (const k of path) { if (v === null || typeof v !== 'object') return undefined; v = (v as Record<PropertyKey, unknown>)[k]; }
  return v;
}
