// values.schema.json's `policy` is generated from Praetor's own policy schema (src/config/policy.ts,
// the single source of truth), so a policy typo fails `helm lint` and `helm install` instead of
// crash-looping every pod at start. chart.test.ts checks it is fresh; regenerate with
//   node test/chart/policy-schema.ts --write
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PolicySchema } from '../../src/config/policy.ts';
import { CHART_DIR } from './render.ts';

export const VALUES_SCHEMA = join(CHART_DIR, 'values.schema.json');

/** The JSON schema (draft-07, what helm checks) of a policy as written by a user. */
export function policyJsonSchema(): Record<string, unknown> {
  const { $schema: _, ...s } = z.toJSONSchema(PolicySchema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...s, description: 'the guard policy every sandbox starts under (docs/policy-reference.md); checked here as Praetor checks it' };
}

if (process.argv[1] === import.meta.filename && process.argv.includes('--write')) {
  const values = JSON.parse(readFileSync(VALUES_SCHEMA, 'utf8')) as { properties: Record<string, unknown> };
  values.properties.policy = policyJsonSchema();
  writeFileSync(VALUES_SCHEMA, `${JSON.stringify(values, null, 2)}\n`);
  process.stdout.write(`wrote ${VALUES_SCHEMA}\n`);
}
