// Per-run secrets and configs in the run's temp dir: the TLS server's self-signed certificate,
// sshd's host key, the client key tests log in with, and an sshd_config that allows every kind
// of forwarding — so if a gateway ever let `ssh -R` through, the tunnel would really open and
// the test would see it in sshd's log.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SERVERS } from './addresses.ts';
import { run } from './netns.ts';

export interface Material {
  tlsKey: string;
  tlsCert: string;
  sshHostKey: string;
  sshClientKey: string;
  sshKnownHosts: string;
  sshdConfig: string;
  sshdLog: string;
}

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${cmd} failed (${r.code}): ${r.stderr.trim()}`);
}

export function paths(dir: string): Material {
  return {
    tlsKey: join(dir, 'tls-key.pem'), tlsCert: join(dir, 'tls-cert.pem'),
    sshHostKey: join(dir, 'ssh_host_ed25519_key'), sshClientKey: join(dir, 'id_ed25519'),
    sshKnownHosts: join(dir, 'known_hosts'), sshdConfig: join(dir, 'sshd_config'), sshdLog: join(dir, 'sshd.log'),
  };
}

export async function makeTlsCert(m: Material): Promise<void> {
  const san = ['DNS:tls.example.test', 'DNS:*.example.test', 'DNS:example.test', `IP:${SERVERS.tls.ip}`, `IP:${SERVERS.stratum.ip}`].join(',');
  await must('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-keyout', m.tlsKey, '-out', m.tlsCert, '-subj', `/CN=${SERVERS.tls.name}/O=Praetor test`, '-addext', `subjectAltName=${san}`,
  ]);
}

export async function makeSsh(m: Material, dir: string): Promise<void> {
  await Promise.all([
    must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'praetor-test-host', '-f', m.sshHostKey]),
    must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'praetor-test-client', '-f', m.sshClientKey]),
  ]);
  const [hostPub, clientPub] = await Promise.all([readFile(`${m.sshHostKey}.pub`, 'utf8'), readFile(`${m.sshClientKey}.pub`, 'utf8')]);
  const hostKey = hostPub.trim().split(/\s+/).slice(0, 2).join(' ');
  await writeFile(m.sshKnownHosts, `${SERVERS.ssh.ip},${SERVERS.ssh.name},tunnel.example.test ${hostKey}\n`);
  await writeFile(join(dir, 'authorized_keys'), clientPub, { mode: 0o600 });
  await writeFile(m.sshdConfig, [
    `ListenAddress ${SERVERS.ssh.ip}:${SERVERS.ssh.port}`,
    `HostKey ${m.sshHostKey}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'UseDNS no',
    // The reverse-tunnel threat, fully enabled: what arrives here is what the gateway let through.
    'AllowTcpForwarding yes',
    'AllowStreamLocalForwarding yes',
    'GatewayPorts yes',
    'PermitTunnel yes',
    'PermitOpen any',
    'PermitListen any',
    'X11Forwarding no',
    'PrintMotd no',
    'MaxStartups 100:30:200',
    'MaxSessions 50',
    // DEBUG1, not VERBOSE: only debug level records tcpip-forward (ssh -R) and direct-tcpip (-L, -W).
    'LogLevel DEBUG1',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n'));
  // sshd insists on its privilege-separation directory; it is the Debian default path.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
}
