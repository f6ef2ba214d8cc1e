// `praetor init --profile NAME [--out FILE] [--force]`: a commented starter policy. The profiles
// are data (policies/*.yaml) so a reviewer reads exactly what a user gets; each is checked by
// the same schema as `praetor policy check` before it is written, so a starter never fails it.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkPolicyText } from '../config/index.ts';
import { PraetorError } from '../errors.ts';
import { parseFlags, say } from './common.ts';

export const PROFILE_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));

/** Profile names, from the files that hold them. */
export function profiles(): string[] {
  return readdirSync(PROFILE_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
}

export function profileText(name: string): string {
  if (!profiles().includes(name)) {
    throw new PraetorError('BAD_ARGUMENT', `no profile "${name}"`, { hint: `use one of: ${profiles().join(', ')}` });
  }
  return readFileSync(`${PROFILE_DIR}${name}.yaml`, 'utf8');
}

const USAGE = `praetor init --profile coding-agent|rl-rollout|offline [--out FILE] [--force]

  --profile NAME   coding-agent: package registries and GitHub over HTTPS, nothing else
                   rl-rollout:   package installs in a setup phase, then no network for the agent
                   offline:      no network at all (loopback only)
  --out FILE       write the policy to FILE (default: print it)
  --force          overwrite FILE if it exists

Then: praetor policy check FILE; praetor run --policy FILE -- CMD`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, { profile: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } }, USAGE);
  if (!v.profile) throw new PraetorError('BAD_ARGUMENT', '--profile is required', { hint: `use one of: ${profiles().join(', ')}` });
  const text = profileText(v.profile);
  const { problems } = checkPolicyText(text, `${v.profile}.yaml`);
  // A shipped profile that fails the schema is a bug in Praetor, not in the user's input.
  if (problems.length > 0) throw new PraetorError('INTERNAL', `profile ${v.profile} does not pass the policy schema: ${problems[0]!.message}`, { hint: 'report this; meanwhile start from another profile' });
  if (!v.out) { process.stdout.write(text); return 0; }
  if (existsSync(v.out) && !v.force) throw new PraetorError('BAD_ARGUMENT', `${v.out} already exists`, { hint: 'pass --force to overwrite it, or choose another --out' });
  writeFileSync(v.out, text, { flag: v.force ? 'w' : 'wx' });
  say(`wrote ${v.out} (profile ${v.profile}); check it with \`praetor policy check ${v.out}\``);
  return 0;
}
