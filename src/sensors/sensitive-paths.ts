// Which file opens count as credential access. The ROME agent needed keys to open its reverse
// SSH tunnel; an agent looking for cloud, cluster or wallet credentials is the same threat one
// step earlier (Falco "Read ssh information", "Find AWS Credentials", "Read sensitive file").
// The matcher runs in Node on paths the kernel sensor let through; the kernel side only drops
// the obviously boring prefixes below, because the sandbox's HOME is not known in the kernel.

/** Prefixes the kernel filter drops before printing: system libraries, devices, sysfs. Each is
 * at most 8 bytes, because the bpftrace script compares an 8-byte read of the path (stack). */
export const BORING_OPEN_PREFIXES: readonly string[] = [
  '/usr/', '/lib/', '/lib64/', '/lib32/', '/bin/', '/sbin/', '/sys/', '/dev/', '/etc/ld.', '/run/',
];

/**
 * Persistence locations under a boring prefix (threat: LD_PRELOAD hijack through
 * /etc/ld.so.preload, a systemd unit under /usr/lib): a write whose path starts with one of these
 * is reported all the same. The kernel compares their first 16 bytes (two 8-byte words), so the
 * match there may be wider; PERSISTENCE below decides.
 */
export const BORING_WRITE_EXCEPTIONS: readonly string[] = ['/etc/ld.so.preload', '/usr/lib/systemd/system/', '/lib/systemd/system/'];

const SENSITIVE: readonly RegExp[] = [
  /(^|\/)\.ssh\/[^/]+$/, // private keys, authorized_keys, config with ProxyCommand
  /^\/etc\/ssh\/ssh_host_[^/]*key$/,
  /(^|\/)\.aws\/(credentials|config)$/,
  /(^|\/)\.kube\/config$/,
  /(^|\/)\.config\/gcloud\//,
  /(^|\/)\.azure\//,
  /(^|\/)\.docker\/config\.json$/,
  /(^|\/)\.netrc$/,
  /(^|\/)\.git-credentials$/,
  /(^|\/)\.npmrc$/,
  /(^|\/)\.pypirc$/,
  /(^|\/)\.gnupg\//,
  /(^|\/)\.env(\.[^/]+)?$/,
  /^\/etc\/(shadow|gshadow|shadow-|gshadow-)$/,
  /^\/etc\/sudoers(\.d\/.*)?$/,
  // a thread's copy (/proc/<pid>/task/<tid>/environ) is the same secret by another path
  /^\/proc\/[^/]+\/(task\/[^/]+\/)?environ$/,
  // wallets: Bitcoin Core, Ethereum keystores, Electrum, Solana CLI, Monero
  /(^|\/)wallet\.dat$/,
  /(^|\/)\.ethereum\/keystore\//,
  /(^|\/)keystore\/UTC--[^/]+$/,
  /(^|\/)\.electrum\/wallets\//,
  /(^|\/)\.config\/solana\/id\.json$/,
  /(^|\/)\.bitmonero\/[^/]*\.keys$/,
  /(^|\/)[^/]+\.wallet$/,
  /(^|\/)id_(rsa|dsa|ecdsa|ed25519)(_sk)?$/, // a key copied out of ~/.ssh keeps its name
  // Shell and REPL histories hold passwords typed on command lines (`mysql -p…`, `export
  // TOKEN=…`): Sigma "Print History File Contents", Elastic's history-file rules.
  /(^|\/)\.[A-Za-z0-9_]*history$/, // .bash_history, .zsh_history, .python_history, .psql_history, .zhistory
  /(^|\/)\.(histfile|lesshst)$/,
  /(^|\/)\.local\/share\/fish\/fish_history$/,
  // Database and tool logins the cloud-CLI list above misses.
  /(^|\/)\.(pgpass|my\.cnf|mylogin\.cnf|vault-token)$/,
  /(^|\/)\.terraform\.d\/credentials\.tfrc\.json$/,
  /(^|\/)\.config\/(gh\/hosts\.yml|hub)$/,
  // Keyrings and password stores: GNOME keyring files, pass(1), legacy GnuPG secret rings.
  /(^|\/)\.local\/share\/keyrings\//,
  /(^|\/)\.password-store\//,
  /(^|\/)secring\.gpg$/,
  // Browser credential stores (saved logins, cookies, the key that decrypts them).
  /(^|\/)\.mozilla\/firefox\/[^/]+\/(logins\.json|key[34]\.db|cookies\.sqlite)$/,
  /(^|\/)\.config\/(google-chrome|chromium|BraveSoftware\/Brave-Browser|microsoft-edge)\/([^/]+\/)?(Login Data|Cookies|Web Data|Local State)$/,
];

/** True when the (ideally absolute) path names a credential or secret store. */
export function isSensitivePath(path: string): boolean {
  return SENSITIVE.some((re) => re.test(path));
}

// Where code is planted to run later (persistence, T1053/T1543/T1546): the paths the shipped
// persistence rules judge. Without them here the sensor dropped every such write before the
// rules saw it, so `echo … >> ~/.bashrc` raised nothing. The kernel-side prefix filter
// (BORING_OPEN_PREFIXES) drops writes under /usr/, /lib/ and /etc/ld. except those listed in
// BORING_WRITE_EXCEPTIONS: a write to /lib/systemd/system is seen, one to /usr/lib/cron is not.
const PERSISTENCE: readonly RegExp[] = [
  /(^|\/)\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin)$/,
  /(^|\/)\.config\/fish\/config\.fish$/,
  /^\/etc\/(profile(\.d\/.*)?|bash\.bashrc|environment|ld\.so\.preload|rc\.local|anacrontab)$/,
  /^\/etc\/zsh\//,
  /^\/etc\/cron/,
  /^\/var\/spool\/cron\//,
  /^\/(etc|usr\/lib)\/systemd\/system\//,
  /^\/etc\/init\.d\//,
  /(^|\/)\.config\/(systemd\/user|autostart)\//,
];

/** True when the path is where code is planted to run later (shell profiles, cron, services). */
export function isPersistencePath(path: string): boolean {
  return PERSISTENCE.some((re) => re.test(path));
}

/**
 * What the kernel sensor reports: any open of a credential store, and writes (or a rename,
 * link or symlink onto) a persistence location. Reading ~/.bashrc is every shell's start.
 */
export function isWatchedPath(path: string, write: boolean): boolean {
  return isSensitivePath(path) || (write && isPersistencePath(path));
}

/**
 * Absolute path for matching: relative opens are resolved against the opener's cwd when known,
 * and `.` and `..` are folded lexically (`/usr/../home/a/.aws/credentials` is that file; the
 * kernel's own resolution, symlinks included, is the file identity: secret-identities.ts).
 */
export function resolveOpenPath(path: string, cwd: string | undefined): string {
  if (!path.startsWith('/') && cwd === undefined) return path;
  const joined = path.startsWith('/') ? path : `${cwd!.replace(/\/$/, '')}/${path}`;
  if (!/(^|\/)\.\.?(\/|$)/.test(joined)) return joined;
  const out: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop(); else out.push(part);
  }
  return `/${out.join('/')}`;
}
