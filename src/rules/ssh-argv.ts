// OpenSSH argv parsing, enough to tell `ssh -V` or `ssh host 'tar -cR'` from `ssh -fNR …`.
// Substring matching on the command line (Elastic's regex) fires on a remote command's own
// flags; this walks the options the way ssh's getopt does, including options after the host
// (ssh re-parses them), and stops at the remote command.

// Options that take a value, from ssh.c's getopt string.
const WITH_ARG = new Set('bceilmopBDEFIJLOPQRSwW');

export type SshArgv = { flags: string[]; optionKeys: string[] };

/** Flags and -o option keys in one walk (rules read both per event: parse once, see fields.ts). */
export function parseSshArgv(argv: readonly string[]): SshArgv {
  const flags: string[] = [];
  const optionKeys: string[] = [];
  let host = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') break;
    if (!a.startsWith('-') || a.length < 2) {
      if (host) break; // the remote command starts here
      host = true;
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const ch = a[j] ?? '';
      flags.push(`-${ch}`);
      if (!WITH_ARG.has(ch)) continue;
      const inline = a.slice(j + 1);
      const value = inline !== '' ? inline : (argv[++i] ?? '');
      if (ch === 'o') optionKeys.push(optionKey(value));
      break;
    }
  }
  return { flags, optionKeys };
}

/** `RemoteForward=8080:h:80` or `RemoteForward 8080 h:80` → `remoteforward`. */
function optionKey(v: string): string {
  const m = /^\s*([A-Za-z]+)/.exec(v);
  return (m?.[1] ?? '').toLowerCase();
}

export function sshFlags(argv: readonly string[]): string[] {
  return parseSshArgv(argv).flags;
}

export function sshOptionKeys(argv: readonly string[]): string[] {
  return parseSshArgv(argv).optionKeys;
}
