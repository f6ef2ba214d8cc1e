// The Node binary child processes (fake servers, harnesses, benchmark clients, the CLI under
// test) run with: the repo's pinned one (devDependency `node`) when installed, else this one.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));

export function nodeBinary(): string {
  return existsSync(REPO_NODE) ? REPO_NODE : process.execPath;
}
