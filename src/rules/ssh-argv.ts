// OpenSSH argv parsing, enough to tell `ssh -V` or `ssh host 'tar -cR'` from `ssh -fNR …`.
// Substring matching on the command line (Elastic's regex) fires on a remote command's own
// flags; this walks the options the way ssh's getopt does, including options after the host
// (ssh re-parses them), and stops at the remote command.

// Options that take a value, from ssh.c's getopt string.
const WITH_ARG = new Set('bceilmopBDEFIJLOPQRSwW');

export type SshArgv = {
  flags: string[]; optionKeys: string[];
  /** every -o as [lower-case key, value], in argv order (the first value of a key wins in ssh) */
  options: [string, string][];
  /** the last -F value: ssh reads only this file (none: no file at all) */
  configFile?: string;
  /** the destination as given: [user@]host or ssh://[user@]host[:port] */
  destination?: string;
  /** each forwarding flag's value, e.g. ['-R', '8022:localhost:22'] */
  forwards: [string, string][];
};

/** Flags and -o option keys in one walk (rules read both per event: parse once, see fields.ts). */
export function parseSshArgv(argv: readonly string[]): SshArgv {
  const flags: string[] = [];
  const optionKeys: string[] = [];
  const options: [string, string][] = [];
  const forwards: [string, string][] = [];
  let configFile: string | undefined;
  let destination: string | undefined;
  let host = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') break;
    if (!a.startsWith('-') || a.length < 2) {
      if (host) break; // the remote command starts here
      host = true;
      destination = a;
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const ch = a[j] ?? '';
      flags.push(`-${ch}`);
      if (!WITH_ARG.has(ch)) continue;
      const inline = a.slice(j + 1);
      const value = inline !== '' ? inline : (argv[++i] ?? '');
      if (ch === 'o') { optionKeys.push(optionKey(value)); options.push(splitOption(value)); }
      if (ch === 'F') configFile = value;
      if (ch === 'R' || ch === 'L' || ch === 'D' || ch === 'w') forwards.push([`-${ch}`, value]);
      break;
    }
  }
  return { flags, optionKeys, options, forwards, ...(configFile !== undefined ? { configFile } : {}), ...(destination !== undefined ? { destination } : {}) };
}

/** `RemoteForward=8080:h:80` or `RemoteForward 8080 h:80` → `remoteforward`. */
function optionKey(v: string): string {
  const m = /^\s*([A-Za-z]+)/.exec(v);
  return (m?.[1] ?? '').toLowerCase();
}

/** `RemoteForward=8080:h:80` → ['remoteforward', '8080:h:80']; `Tunnel yes` → ['tunnel', 'yes']. */
function splitOption(v: string): [string, string] {
  const m = /^\s*([A-Za-z]+)\s*(?:=\s*|\s+|$)(.*)$/s.exec(v);
  return m ? [(m[1] ?? '').toLowerCase(), (m[2] ?? '').trim()] : ['', v];
}

export function sshFlags(argv: readonly string[]): string[] {
  return parseSshArgv(argv).flags;
}

export function sshOptionKeys(argv: readonly string[]): string[] {
  return parseSshArgv(argv).optionKeys;
}
