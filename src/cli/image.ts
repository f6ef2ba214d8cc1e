// `praetor image import|ls|rm`: the content-addressed image cache sandboxes start from.
import { PraetorError } from '../errors.ts';
import { ImageStore } from '../sandbox/index.ts';
import { formatBytes } from '../util/index.ts';
import { parseFlags, say, stateDir, table } from './common.ts';
import { createProgress } from './progress.ts';

const USAGE = `praetor image import PATH [--name NAME] | ls [--json] | rm NAME   [--state DIR]

  PATH: an OCI image layout directory, an OCI archive, \`docker save\` output, or a rootfs tarball`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') { process.stdout.write(`usage: ${USAGE}\n`); return 0; }
  const { values: v, positionals } = parseFlags(rest, { name: { type: 'string' }, json: { type: 'boolean' }, state: { type: 'string' } }, USAGE, true);
  const store = new ImageStore(`${stateDir(v.state)}/images`);
  switch (sub) {
    case 'import': {
      const [path] = positionals;
      if (!path || positionals.length > 1) throw new PraetorError('BAD_ARGUMENT', 'image import needs exactly one PATH', { hint: 'praetor image import ./image.tar --name myimage' });
      const started = Date.now();
      // ImageStore.import has no per-layer hook yet: the line shows what runs and for how long.
      const bar = createProgress({ label: `importing ${path}` });
      const e = await store.import(path, v.name).catch((err: unknown) => { bar.done(`import of ${path} failed`); throw err; });
      bar.done(`imported ${e.name} (${e.digest.slice(0, 19)}…, ${formatBytes(e.sizeBytes)}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return 0;
    }
    case 'ls': {
      const list = store.list();
      if (v.json) process.stdout.write(JSON.stringify(list) + '\n');
      else process.stdout.write(table([['NAME', 'DIGEST', 'FORMAT', 'SIZE', 'IMPORTED'], ...list.map((i) => [i.name, i.digest.slice(0, 19), i.format, formatBytes(i.sizeBytes), i.importedAt])]) + '\n');
      return 0;
    }
    case 'rm': {
      const [name] = positionals;
      if (!name) throw new PraetorError('BAD_ARGUMENT', 'image rm needs a NAME', { hint: 'see praetor image ls' });
      store.remove(name);
      say(`removed ${name}`);
      return 0;
    }
    default:
      throw new PraetorError('BAD_ARGUMENT', sub ? `unknown image command "${sub}"` : 'image needs a subcommand', { hint: `usage: ${USAGE.split('\n')[0]}` });
  }
}
