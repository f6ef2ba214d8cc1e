import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSshArgv } from './ssh-argv.ts';
import { destinationHost, resolveSshConfig, type SshConfigReader } from './ssh-config.ts';
import { hostMatches, parseSshConfig, splitArgs } from './ssh-config-parser.ts';

/** A sandbox's files as a map; globs over its keys (only `*` in the last component is needed here). */
function fsReader(files: Record<string, string | { reason: string }>): SshConfigReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    read(path) {
      reads.push(path);
      const f = files[path];
      if (f === undefined) return { ok: false, reason: 'no such file', missing: true };
      return typeof f === 'string' ? { ok: true, text: f } : { ok: false, reason: f.reason };
    },
    glob(pattern) {
      const re = new RegExp(`^${pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.')}$`);
      return Object.keys(files).filter((k) => re.test(k)).sort();
    },
  };
}

const HOME = '/home/agent';
const resolve = (argv: string[], files: Record<string, string | { reason: string }>, cwd = '/workspace') => {
  const reader = fsReader(files);
  return { ...resolveSshConfig({ argv, reader, homes: [HOME], cwd }), reads: reader.reads };
};

test('parser: keyword forms, quotes, escapes, comments', () => {
  const p = parseSshConfig([
    '# comment', '', 'Host c2 !bad "quoted name"', '  RemoteForward=8022 localhost:22',
    'ProxyCommand = nc %h %p # trailing comment', '\tLocalCommand "echo a b" \\"x\\ y', 'User "unterminated',
  ].join('\n'));
  assert.deepEqual(p.lines.map((l) => [l.keyword, l.args]), [
    ['host', ['c2', '!bad', 'quoted name']],
    ['remoteforward', ['8022', 'localhost:22']],
    ['proxycommand', ['nc', '%h', '%p']],
    ['localcommand', ['echo a b', '"x y']],
    ['user', []],
  ]);
  assert.equal(p.lines[1]?.line, 4);
  assert.match(p.errors[0] ?? '', /line 7: unterminated quote/);
  assert.deepEqual(splitArgs("a 'b c' d"), { args: ['a', 'b c', 'd'] });
});

test('Host patterns: wildcards, negation, comma lists, case', () => {
  assert.ok(hostMatches(['*.example.test'], 'git.EXAMPLE.test'));
  assert.ok(hostMatches(['c?'], 'c2'));
  assert.ok(!hostMatches(['c?'], 'c22'));
  assert.ok(!hostMatches(['* !c2'.split(' ')].flat(), 'c2'), 'a negated match wins');
  assert.ok(hostMatches(['a,b', 'c'], 'b'));
  assert.ok(!hostMatches(['!c2'], 'other'), 'only negations never match');
});

test('destination forms', () => {
  assert.equal(destinationHost('root@c2'), 'c2');
  assert.equal(destinationHost('ssh://u@h.test:2222'), 'h.test');
  assert.equal(destinationHost('ssh://[::1]:22'), '::1');
  assert.equal(destinationHost('a@b@c'), 'c');
  const a = parseSshArgv(['ssh', '-F', '/tmp/c', '-oTunnel=yes', '-R', '1:h:1', 'root@c2', 'ls', '-F', 'x']);
  assert.equal(a.configFile, '/tmp/c', 'the remote command\'s -F is not ssh\'s');
  assert.equal(a.destination, 'root@c2');
  assert.deepEqual(a.options, [['tunnel', 'yes']]);
  assert.deepEqual(a.forwards, [['-R', '1:h:1']]);
});

test('RemoteForward in a -F file in /tmp, for the matching Host only', () => {
  const files = { '/tmp/c': 'Host c2\n  HostName 203.0.113.30\n  RemoteForward 8022 localhost:22\nHost other\n  DynamicForward 1080\n' };
  const r = resolve(['ssh', '-F', '/tmp/c', '-N', 'root@c2'], files);
  assert.deepEqual(r.opts, ['hostname', 'remoteforward']);
  assert.deepEqual(r.files, ['/tmp/c']);
  assert.deepEqual(r.reads, ['/tmp/c'], 'with -F, neither ~/.ssh/config nor /etc/ssh/ssh_config is read');
  assert.equal(r.host, 'c2');
  assert.deepEqual(resolve(['ssh', '-F', '/tmp/c', 'elsewhere'], files).opts, [], 'no block matches another host');
});

test('a relative -F is relative to the cwd; -F none reads nothing', () => {
  const r = resolve(['ssh', '-F', 'cfg', 'h'], { '/workspace/cfg': 'LocalForward 1 h:1\n' });
  assert.deepEqual(r.opts, ['localforward']);
  const n = resolve(['ssh', '-F', 'none', 'h'], { [`${HOME}/.ssh/config`]: 'RemoteForward 1 h:1\n' });
  assert.deepEqual([n.opts, n.reads], [[], []]);
});

test('Include: globs, relative to ~/.ssh, only where its block is active, nested', () => {
  const files = {
    [`${HOME}/.ssh/config`]: 'Host *\n  Include conf.d/*.conf\nHost never\n  Include secret\n',
    [`${HOME}/.ssh/conf.d/10-a.conf`]: 'User git\n',
    [`${HOME}/.ssh/conf.d/20-b.conf`]: 'Host c2\n  Include ~/.ssh/deeper\n',
    [`${HOME}/.ssh/deeper`]: 'RemoteForward 8022 localhost:22\n',
    [`${HOME}/.ssh/secret`]: 'DynamicForward 1080\n',
    '/etc/ssh/ssh_config': 'Include /etc/ssh/ssh_config.d/*.conf\nHost *\n  SendEnv LANG\n',
    '/etc/ssh/ssh_config.d/x.conf': 'GatewayPorts yes\n',
  };
  const r = resolve(['ssh', '-N', 'c2'], files);
  assert.deepEqual(r.opts, ['gatewayports', 'remoteforward', 'sendenv', 'user']);
  assert.ok(!r.reads.includes(`${HOME}/.ssh/secret`), 'an Include in an inactive Host block is not read');
  assert.deepEqual(r.files, [`${HOME}/.ssh/config`, `${HOME}/.ssh/conf.d/10-a.conf`, `${HOME}/.ssh/conf.d/20-b.conf`, `${HOME}/.ssh/deeper`, '/etc/ssh/ssh_config', '/etc/ssh/ssh_config.d/x.conf']);
  // Host lines inside an included file end at its end: the including block is active again.
  const after = resolve(['ssh', 'h'], { [`${HOME}/.ssh/config`]: 'Include inc\nRemoteForward 1 h:1\n', [`${HOME}/.ssh/inc`]: 'Host nomatch\n' });
  assert.deepEqual(after.opts, ['remoteforward']);
});

test('Match blocks count whatever their criteria; Match exec is reported', () => {
  const r = resolve(['ssh', 'h'], { [`${HOME}/.ssh/config`]: 'Match host nothing-like-h\n  ProxyCommand nc x 22\nMatch exec "true"\n  User u\n' });
  assert.deepEqual(r.opts, ['match-exec', 'proxycommand', 'user']);
});

test('first value wins: argv beats files, and disabling values do nothing', () => {
  const cfg = { [`${HOME}/.ssh/config`]: 'ProxyCommand nc x 22\nTunnel yes\nLocalCommand id\nGatewayPorts no\n' };
  assert.deepEqual(resolve(['ssh', '-o', 'ProxyCommand=none', '-oTunnel=no', 'h'], cfg).opts, [], 'argv disabled both; LocalCommand needs PermitLocalCommand');
  assert.deepEqual(resolve(['ssh', 'h'], cfg).opts, ['localcommand', 'proxycommand', 'tunnel'].filter((k) => k !== 'localcommand'));
  assert.deepEqual(resolve(['ssh', '-oPermitLocalCommand=yes', 'h'], cfg).opts, ['localcommand', 'proxycommand', 'tunnel']);
  const viaFile = resolve(['ssh', 'h'], { [`${HOME}/.ssh/config`]: 'PermitLocalCommand yes\nLocalCommand id\n' });
  assert.deepEqual(viaFile.opts, ['localcommand', 'permitlocalcommand']);
});

test('fail closed: what cannot be read is reported, a missing default file is not', () => {
  const r = resolve(['ssh', '-F', '/tmp/fifo', 'h'], { '/tmp/fifo': { reason: 'not a regular file' } });
  assert.deepEqual(r.unresolved, ['/tmp/fifo: not a regular file']);
  assert.deepEqual(resolve(['ssh', 'h'], {}).unresolved, []);
  assert.deepEqual(resolve(['ssh', '-F', '/tmp/nope', 'h'], {}).unresolved, ['/tmp/nope: no such file']);
  const loop = resolve(['ssh', 'h'], { [`${HOME}/.ssh/config`]: 'Include config\n' });
  assert.match(loop.unresolved.join('\n'), /nested deeper than 16/);
});

test('plain git config: nothing a rule looks for', () => {
  const r = resolve(['ssh', '-o', 'SendEnv=GIT_PROTOCOL', 'git@git.example.test', "git-upload-pack 'r.git'"], {
    [`${HOME}/.ssh/config`]: 'Host git.example.test\n  HostName 198.51.100.7\n  User git\n  IdentityFile ~/.ssh/id_ed25519\n  Port 22\n',
  });
  assert.deepEqual(r.opts, ['hostname', 'identityfile', 'port', 'user']);
});

test('GIT_SSH_COMMAND (destination unknown): every Host block counts, and the command\'s own flags and -o too', () => {
  const files = { '/workspace/c': 'Host anything\n  ProxyCommand nc x 22\n' };
  const reader = fsReader(files);
  const r = resolveSshConfig({ argv: ['ssh', '-F', '/workspace/c', '-R', '1:h:1', '-o', 'IdentityFile=/workspace/id'], reader, homes: [HOME], cwd: '/', anyHost: true });
  assert.deepEqual(r.opts, ['identityfile', 'proxycommand', 'remoteforward']);
  const plain = resolveSshConfig({ argv: ['ssh', '-o', 'StrictHostKeyChecking=yes'], reader: fsReader({}), homes: [HOME], cwd: '/', anyHost: true });
  assert.deepEqual(plain.opts, ['stricthostkeychecking']);
});
