// `praetor start` (what `npm start` runs after setup): creates an admin token, prints the URL,
// the token and what to try first, then serves in the foreground. Without a terminal, or with
// CI=true, it prints the same next steps and exits 0, so automated setups never hang here.
import { createToken } from '../server/index.ts';
import { parseFlags, stateDir } from './common.ts';

const USAGE = 'praetor start [--state DIR] [--port P] [--host H]';

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, { state: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } }, USAGE);
  const state = stateDir(v.state);
  const host = v.host ?? '127.0.0.1';
  const port = v.port ?? '7070';
  const interactive = process.stdout.isTTY === true && process.env.CI !== 'true';
  const { token } = createToken(state, 'admin', { admin: true });
  const url = `http://${host}:${port}/`;
  process.stdout.write([
    '',
    'Praetor is set up.',
    '',
    `  dashboard:    ${url}  (sign in with the admin token below)`,
    `  admin token:  ${token}`,
    '',
    'Try first:',
    '  npx praetor arena --suite quick --report arena-report   # ROME-style misbehaviour vs benign agents; HTML report in arena-report/',
    `  npx praetor demo --server ${url.replace(/\/$/, '')} --token ${token}`,
    '                                      # an agent episode that turns to mining: watch the dashboard\'s Alerts',
    '  npx praetor demo                    # praetor run: an ordinary command, then a contained miner',
    '  npx praetor status                  # what this host supports, what runs degraded',
    '',
    interactive ? `Serving on ${url} — Ctrl-C stops it and destroys its sandboxes.` : `Start the server with: npx praetor serve --state ${state} --port ${port}`,
    '',
  ].join('\n'));
  if (!interactive) return 0;
  const serve = await import('./serve.ts');
  return serve.main(['--state', state, '--port', port, '--host', host]);
}
