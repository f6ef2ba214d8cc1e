// `praetor token create --tenant NAME [--admin] [--state DIR]`: prints a new API token on its
// last line. Only its SHA-256 is stored; the token itself is shown this once.
import { PraetorError } from '../errors.ts';
import { parseFlags, stateDir } from './common.ts';

const USAGE = `praetor token create --tenant NAME [--admin] [--state DIR]

  --tenant NAME   tenant the token acts for (its sandboxes and episodes only)
  --admin         admin scope: sees and manages every tenant
  --state DIR     state directory (default $PRAETOR_STATE or /var/lib/praetor)`;

export async function main(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(argv, { tenant: { type: 'string' }, admin: { type: 'boolean' }, state: { type: 'string' } }, USAGE, true);
  if (positionals[0] !== 'create' || positionals.length !== 1) throw new PraetorError('BAD_ARGUMENT', `unknown token command "${positionals.join(' ')}"`, { hint: `usage: ${USAGE.split('\n')[0]}` });
  if (!v.tenant) throw new PraetorError('BAD_ARGUMENT', '--tenant is required', { hint: 'for example --tenant team-a' });
  // From its file, not server/index.ts: writing a token needs no HTTP server (fastify, routes).
  const { createToken } = await import('../server/auth.ts');
  const { token, record } = createToken(stateDir(v.state), v.tenant, { admin: !!v.admin });
  process.stderr.write(`praetor: created token ${record.id} for tenant ${record.tenant}${v.admin ? ' (admin)' : ''}; it is shown once, store it now\n`);
  process.stdout.write(`${token}\n`);
  return 0;
}
