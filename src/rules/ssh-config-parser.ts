// A small parser for OpenSSH client configuration (ssh_config(5)), the way readconf.c reads it:
// one directive a line, `Keyword args` or `Keyword=args`, keywords case-insensitive, arguments
// split on whitespace with "double" or 'single' quotes grouping and backslash escaping a quote,
// a backslash or a space; a word that starts with `#` ends the line (comment). Nothing here
// decides what the options mean; ssh-config.ts does.

export type SshConfigLine = {
  /** lower-case keyword: host, match, include, remoteforward … */
  keyword: string;
  args: string[];
  /** 1-based line number, for reports */
  line: number;
};

export type ParsedSshConfig = { lines: SshConfigLine[]; errors: string[] };

export function parseSshConfig(text: string): ParsedSshConfig {
  const lines: SshConfigLine[] = [];
  const errors: string[] = [];
  const rows = text.split(/\r?\n/);
  for (const [i, raw] of rows.entries()) {
    const s = raw.trim();
    if (s === '' || s.startsWith('#')) continue;
    const m = /^([A-Za-z][A-Za-z0-9]*)(.*)$/s.exec(s);
    if (!m) { errors.push(`line ${i + 1}: no keyword`); continue; }
    let rest = m[2] ?? '';
    // `Keyword=value`, `Keyword = value`, `Keyword value`: one `=` may separate.
    const sep = /^\s*=\s*|^\s+|^$/.exec(rest);
    if (!sep) { errors.push(`line ${i + 1}: bad separator after ${m[1]}`); continue; }
    rest = rest.slice(sep[0].length);
    const words = splitArgs(rest);
    if (words.error) errors.push(`line ${i + 1}: ${words.error}`);
    lines.push({ keyword: (m[1] ?? '').toLowerCase(), args: words.args, line: i + 1 });
  }
  return { lines, errors };
}

/** OpenSSH's argv_split with terminate-on-comment. */
export function splitArgs(s: string): { args: string[]; error?: string } {
  const args: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break;
    if (s[i] === '#') break;
    let word = '';
    let quote: string | undefined;
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (quote === undefined && (c === ' ' || c === '\t')) break;
      if (c === '\\' && i + 1 < s.length && /["'\\ ]/.test(s[i + 1]!)) { word += s[++i]; continue; }
      if (quote === undefined && (c === '"' || c === "'")) { quote = c; continue; }
      if (c === quote) { quote = undefined; continue; }
      word += c;
    }
    if (quote !== undefined) return { args, error: 'unterminated quote' };
    args.push(word);
  }
  return { args };
}

/**
 * ssh_config(5) PATTERNS: `*` and `?` wildcards, a leading `!` negates; a pattern list (Host's
 * arguments, or one comma-separated Match argument) matches when some positive pattern matches
 * and no negated one does. Case-insensitive, as host names are.
 */
export function hostMatches(patterns: readonly string[], host: string): boolean {
  const h = host.toLowerCase();
  let positive = false;
  for (const raw of patterns.flatMap((p) => p.split(','))) {
    if (raw === '') continue;
    const neg = raw.startsWith('!');
    const re = wildcard(neg ? raw.slice(1) : raw);
    if (re.test(h)) {
      if (neg) return false;
      positive = true;
    }
  }
  return positive;
}

function wildcard(p: string): RegExp {
  const body = p.toLowerCase().replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
