// `praetor policy check FILE…`: every problem in a policy file, as file:line:col, the problem,
// and how to fix it. Exits 1 when any file has a problem, so CI can gate policy changes.
import { readFileSync } from 'node:fs';
import { checkPolicyText, policyAllowsNothing } from '../config/index.ts';
import { parseFlags } from './common.ts';

const USAGE = `praetor policy check FILE… [--json]

  Validates policy files (unknown keys, bad domains/CIDRs/ports, protocol names) and prints
  each problem with its file:line and the fix.`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') { process.stdout.write(`usage: ${USAGE}\n`); return sub === undefined ? 2 : 0; }
  if (sub !== 'check') { process.stderr.write(`praetor policy: unknown subcommand "${sub}"\nusage: ${USAGE}\n`); return 2; }
  const { values, positionals } = parseFlags(rest, { json: { type: 'boolean', default: false } }, USAGE, true);
  if (positionals.length === 0) { process.stderr.write(`praetor policy check: name a file\nusage: ${USAGE}\n`); return 2; }
  let bad = 0; const report: unknown[] = [];
  for (const file of positionals) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (e) {
      bad++; report.push({ file, problems: [{ message: `cannot read: ${(e as Error).message}` }] });
      if (!values.json) process.stderr.write(`${file}: cannot read: ${(e as Error).message}\n  fix: pass an existing YAML file\n`);
      continue;
    }
    const { policy, problems } = checkPolicyText(text, file);
    report.push({ file, problems, ...(policy ? { allowsNothing: policyAllowsNothing(policy) } : {}) });
    if (problems.length > 0) bad++;
    if (values.json) continue;
    for (const p of problems) process.stdout.write(`${p.file}:${p.line}:${p.col}: ${p.message}\n  fix: ${p.fix}\n`);
    if (policy && problems.length === 0) {
      const n = policy.network;
      process.stdout.write(`${file}: ok (${n ? `${n.allow.length} allow, ${n.deny.length} deny rule(s)${n.phases?.setup ? ', setup phase' : ''}${n.modelGateway ? ', model only through the model gateway' : ''}` : 'no network section'}${policyAllowsNothing(policy) ? '; no destination allowed: sandboxes get only lo' : ''})\n`);
    }
  }
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return bad > 0 ? 1 : 0;
}
