// Does a shell or interpreter take its program from stdin? `curl … | sh`, `base64 -d | bash`,
// `wget -O- … | python3` and a shell spawned by `find -exec /bin/sh \;` all end in a shell or
// interpreter started with no script and no inline code: whatever arrives on fd 0 is what runs.
// `sh -c 'make'`, `bash build.sh` and `python3 -m pip` name their program and are not that.
// The option tables below are the ones that take a value in each tool's own argv grammar, so
// `python3 -W ignore` is not mistaken for `python3 script.py`.

type Grammar = {
  /** options after which the program is named inline or as a module: no stdin program */
  inline: ReadonlySet<string>;
  /** options that consume the next argument (a value, not the script) */
  withArg: ReadonlySet<string>;
  /** an option that says "read the program from stdin" even with operands (bash -s) */
  stdinFlag?: string;
};

const SHELL: Grammar = { inline: new Set(['-c']), withArg: new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file']), stdinFlag: '-s' };
const PYTHON: Grammar = { inline: new Set(['-c', '-m']), withArg: new Set(['-W', '-X', '-Q', '--check-hash-based-pycs']) };
const PERL: Grammar = { inline: new Set(['-e', '-E']), withArg: new Set(['-I', '-M', '-m', '-x', '-C', '-0', '-l', '-i']) };
const RUBY: Grammar = { inline: new Set(['-e']), withArg: new Set(['-I', '-r', '-C', '-E', '-x']) };
const NODE: Grammar = { inline: new Set(['-e', '--eval', '-p', '--print']), withArg: new Set(['-r', '--require', '--import', '--loader', '-C', '--conditions', '--input-type']) };
const PHP: Grammar = { inline: new Set(['-r', '-R', '-B', '-E', '-F', '-f']), withArg: new Set(['-c', '-d', '-z']) };
const LUA: Grammar = { inline: new Set(['-e']), withArg: new Set(['-l']) };

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh', 'csh', 'tcsh', 'fish', 'rbash']);

function grammarFor(name: string): Grammar | undefined {
  if (SHELLS.has(name)) return SHELL;
  if (/^python[0-9.]*$/.test(name) || name === 'pypy' || name === 'pypy3') return PYTHON;
  if (/^perl[0-9.]*$/.test(name)) return PERL;
  if (/^ruby[0-9.]*$/.test(name) || name === 'irb') return RUBY;
  if (name === 'node' || name === 'nodejs' || name === 'bun' || name === 'deno') return NODE;
  if (/^php[0-9.]*$/.test(name)) return PHP;
  if (/^lua(jit)?[0-9.]*$/.test(name)) return LUA;
  return undefined;
}

/**
 * True when `argv` starts a shell or interpreter (named by `exeName`, or by argv[0] when the
 * executable is a busybox-style multi-call binary) whose program is read from stdin: no script
 * operand (or the operand `-`), no inline code, or the shell's `-s`.
 */
export function readsProgramFromStdin(exeName: string, argv: readonly string[]): boolean {
  const a0 = (argv[0] ?? '').slice((argv[0] ?? '').lastIndexOf('/') + 1);
  // `busybox sh` names its applet in argv[1]; a busybox symlink names it in argv[0].
  const applet = a0 === 'busybox';
  const g = grammarFor(applet ? (argv[1] ?? '') : exeName) ?? grammarFor(a0);
  if (!g) return false;
  const start = applet ? 2 : 1;
  for (let i = start; i < argv.length; i++) {
    const x = argv[i] ?? '';
    if (x === '-') return true;
    if (x === '--') return i + 1 >= argv.length || argv[i + 1] === '-';
    if (g.stdinFlag && x === g.stdinFlag) return true;
    if (g.inline.has(x)) return false;
    // clustered short options: `bash -ic`, `python3 -uc`, `perl -ne`
    if (/^-[A-Za-z]{2,}$/.test(x) && [...x.slice(1)].some((ch) => g.inline.has(`-${ch}`))) return false;
    if (g === SHELL && /^-[A-Za-z]*s[A-Za-z]*$/.test(x)) return true;
    if (g.withArg.has(x)) { i++; continue; }
    if (x.startsWith('-') || x.startsWith('+')) continue;
    return false; // a script operand
  }
  return true;
}
