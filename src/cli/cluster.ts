// `praetor cluster …`: the cluster's PKI. init makes the CA, token create a join token (one-time,
// or a node pool's bootstrap token with --joins), token generate a bootstrap token for the
// chart's Secret, issue-control a control replica's certificate, join trades a token for a node
// certificate, renew trades a node's current certificate for a new one, show reports an
// identity and when it expires. See "Cluster links" in
// docs/operations.md.
import { readFileSync } from 'node:fs';
import { PraetorError, errorMessage } from '../errors.ts';
import { parseFlags, parseNumberFlag } from './common.ts';

const USAGE = `praetor cluster <init|token create|token generate|issue-control|join|renew|show> [options]

  praetor cluster init --dir DIR
      a new cluster CA in DIR: ca.pem (give it to every node) and ca-key.pem (0600; only
      control replicas mount it). Refuses to overwrite an existing CA.
  praetor cluster token create --cluster URL [--ttl 1h] [--node ID | --joins N] [--json]
      a join token (printed once; only its hash is stored): one-time, or with --joins N a
      node pool's bootstrap token, N joins by distinct new nodes
  praetor cluster token generate
      a new token for the chart's join token Secret, made here without a database; control
      replicas register it (--bootstrap-token-file) with the chart's budget of joins
  praetor cluster issue-control --dir CA_DIR --name NAME --out DIR [--host H]... [--days N]
      a control replica's key and certificate (cert.pem, key.pem 0600, ca.pem) in DIR
  praetor cluster join --control URL --node-id ID --advertise URL --dir DIR [--ca FILE]
                       [--token TOKEN | --token-file FILE]
      joins this node: makes its key, has a control replica sign it, writes DIR/{cert,key,ca}.pem
  praetor cluster renew --control URL --advertise URL --dir DIR [--ca FILE]
      renews the node identity in DIR (no token: its current key proves it), for a new address
  praetor cluster show --dir DIR [--json]
      the identity in DIR (role, id) and when its certificate expires

  --dir DIR          the CA directory (init, issue-control) or an identity directory (join, show)
  --cluster URL      the cluster's PostgreSQL (default $PRAETOR_CLUSTER)
  --ttl DURATION     how long the join token stays usable: 30m, 1h, 2d (default 1h, at most 7d)
  --node ID          bind the token to one node id (only that node can redeem it)
  --joins N          how many distinct nodes may join with the token (default 1)
  --json             one JSON object
  --name NAME        the control replica's name (its certificate's urn:praetor:control:NAME)
  --out DIR          where the control identity is written
  --host H           a DNS name or IP address nodes reach this replica by (repeatable)
  --days N           certificate lifetime in days (default 90)
  --control URL      a control replica's cluster port, https://HOST:PORT
  --node-id ID       this node's id
  --advertise URL    https://HOST:PORT where control replicas reach this node
  --ca FILE          the cluster CA bundle the operator gave this node (default DIR/ca.pem)
  --token TOKEN      the join token (or --token-file FILE, or $PRAETOR_JOIN_TOKEN)
  --token-file FILE  read the join token from FILE`;

const FLAGS = {
  dir: { type: 'string' }, cluster: { type: 'string' }, ttl: { type: 'string' }, node: { type: 'string' }, joins: { type: 'string' }, json: { type: 'boolean' },
  name: { type: 'string' }, out: { type: 'string' }, host: { type: 'string', multiple: true }, days: { type: 'string' },
  control: { type: 'string' }, 'node-id': { type: 'string' }, advertise: { type: 'string' }, ca: { type: 'string' },
  token: { type: 'string' }, 'token-file': { type: 'string' },
} as const;

const need = (v: string | undefined, flag: string, example: string): string => {
  if (!v) throw new PraetorError('BAD_ARGUMENT', `--${flag} is required`, { hint: `for example --${flag} ${example}` });
  return v;
};

/** 90s, 30m, 1h, 2d, 1500ms → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new PraetorError('BAD_ARGUMENT', `--${flag} ${text} is not a duration`, { hint: `write a number and a unit: 30m, 1h, 2d` });
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']!;
}

export async function main(argv: string[]): Promise<number> {
  const { values: v, positionals: pos } = parseFlags(argv, FLAGS, USAGE, true);
  const sub = pos.join(' ');
  const out = (human: string, json: unknown) => process.stdout.write(v.json ? `${JSON.stringify(json)}\n` : `${human}\n`);
  switch (sub) {
    case 'init': {
      const { initClusterCa } = await import('../cluster/pki-ca.ts');
      const dir = need(v.dir, 'dir', './cluster-ca');
      const r = await initClusterCa(dir);
      // The cluster ledger's signing key lives with the CA: both belong to control replicas only.
      const { createClusterLedgerKey } = await import('../audit/index.ts');
      const lk = createClusterLedgerKey(dir);
      process.stderr.write(`praetor: cluster CA created in ${dir} (sha256 ${r.fingerprint256})\n`
        + `  ca.pem      give to every node (it is how a node knows it talks to this cluster)\n`
        + `  ca-key.pem  keep secret: mount only into control replicas (e.g. a Kubernetes Secret)\n`
        + `  ${lk.keyFile.split('/').pop()!.padEnd(11)} signs the cluster ledger chain: control replicas only\n`
        + `  ${lk.pubkeyFile.split('/').pop()!.padEnd(11)} for auditors: praetor audit verify --cluster URL --pubkey FILE\n`
        + `  next: praetor cluster issue-control --dir ${dir} --name control-0 --out DIR\n`);
      out(r.certPath, { ...r, ledgerKey: lk });
      return 0;
    }
    case 'token create': {
      const url = v.cluster ?? process.env.PRAETOR_CLUSTER;
      if (!url) throw new PraetorError('BAD_ARGUMENT', 'which cluster?', { hint: 'pass --cluster postgres://… or set PRAETOR_CLUSTER' });
      const ttl = parseDuration(v.ttl ?? '1h', 'ttl');
      const { default: pg } = await import('pg');
      const { createJoinToken } = await import('../cluster/pki-join-tokens.ts');
      const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
      pool.on('error', () => undefined);
      try {
        const t = await createJoinToken(pool, ttl, { nodeId: v.node, maxJoins: parseNumberFlag('joins', v.joins, { int: true, min: 1 }) }).catch((e: unknown) => {
          if (e instanceof PraetorError) throw e;
          throw new PraetorError('LEDGER_UNAVAILABLE', `cannot reach the cluster database: ${errorMessage(e)}`, { hint: 'check --cluster URL and that PostgreSQL is reachable', cause: e });
        });
        if (!v.json) process.stderr.write(`praetor: join token${t.forNode ? ` for node ${t.forNode}` : ''}, usable ${t.maxJoins === 1 ? 'once' : `for ${t.maxJoins} joins by distinct new nodes`} until ${t.expiresAt.toISOString()}; it is shown once, pass it to the node now\n`);
        out(t.token, { token: t.token, expiresAt: t.expiresAt.toISOString(), node: t.forNode ?? null, joins: t.maxJoins });
        return 0;
      } finally { await pool.end(); }
    }
    case 'token generate': {
      const { generateJoinToken } = await import('../cluster/pki-join-tokens.ts');
      const token = generateJoinToken();
      if (!v.json) process.stderr.write('praetor: a bootstrap join token; put it in the join token Secret (key token) and set joinToken.maxJoins: control replicas register it on start\n');
      out(token, { token });
      return 0;
    }
    case 'renew': {
      const { renewNodeIdentity } = await import('../cluster/pki-join-client.ts');
      const r = await renewNodeIdentity({
        controlUrl: need(v.control, 'control', 'https://praetor-control:7443'), advertise: need(v.advertise, 'advertise', 'https://10.0.0.5:7070'),
        dir: need(v.dir, 'dir', '/var/lib/praetor/cluster'), caFile: v.ca,
      });
      process.stderr.write(`praetor: node ${r.nodeId} renewed; certificate ${r.certPath} valid until ${r.notAfter.toISOString()}\n`);
      out(r.certPath, { nodeId: r.nodeId, certPath: r.certPath, notAfter: r.notAfter.toISOString() });
      return 0;
    }
    case 'issue-control': {
      const { issueControlCertificate } = await import('../cluster/pki-ca.ts');
      const days = parseNumberFlag('days', v.days, { min: 0.001 });
      const r = await issueControlCertificate({
        caDir: need(v.dir, 'dir', './cluster-ca'), name: need(v.name, 'name', 'control-0'), outDir: need(v.out, 'out', './control-0'),
        hosts: v.host, validityMs: days === undefined ? undefined : days * 86_400_000,
      });
      process.stderr.write(`praetor: control certificate ${v.name} in ${v.out}, valid until ${r.notAfter.toISOString()}\n`);
      out(r.certPath, { certPath: r.certPath, notAfter: r.notAfter.toISOString() });
      return 0;
    }
    case 'join': {
      const { joinCluster } = await import('../cluster/pki-join-client.ts');
      let token = v.token ?? process.env.PRAETOR_JOIN_TOKEN;
      if (v['token-file']) {
        try { token = readFileSync(v['token-file'], 'utf8').trim(); } catch (e) {
          throw new PraetorError('BAD_ARGUMENT', `cannot read --token-file ${v['token-file']}: ${errorMessage(e)}`, { hint: 'pass the file that holds the join token', cause: e });
        }
      }
      const r = await joinCluster({
        controlUrl: need(v.control, 'control', 'https://praetor-control:7443'), token: need(token, 'token', 'pjt_… (or --token-file FILE)'),
        nodeId: need(v['node-id'], 'node-id', 'node-1'), advertise: need(v.advertise, 'advertise', 'https://10.0.0.5:7443'),
        dir: need(v.dir, 'dir', '/var/lib/praetor/cluster'), caFile: v.ca,
      });
      process.stderr.write(`praetor: node ${r.nodeId} joined; certificate ${r.certPath} valid until ${r.notAfter.toISOString()}\n`);
      out(r.certPath, { nodeId: r.nodeId, certPath: r.certPath, notAfter: r.notAfter.toISOString() });
      return 0;
    }
    case 'show': {
      const { loadIdentity, expiryReport, identityOfDer } = await import('../cluster/pki-identity.ts');
      const dir = need(v.dir, 'dir', '/var/lib/praetor/cluster');
      const { X509Certificate } = await import('node:crypto');
      // The role is read from the certificate first, so show works on either kind of directory.
      let role: 'node' | 'control' = 'node';
      try { role = identityOfDer(new X509Certificate(readFileSync(`${dir}/cert.pem`)).raw)?.role ?? 'node'; } catch { /* loadIdentity says why */ }
      const id = loadIdentity(dir, role, { skipDates: true }); // every check but the dates: those are the report
      const r = expiryReport(id);
      out(`${r.role} ${r.id}: ${r.message}`, { ...r, fingerprint256: id.fingerprint256 });
      return r.expired ? 1 : 0;
    }
    default:
      throw new PraetorError('BAD_ARGUMENT', `unknown cluster command "${sub}"`, { hint: `usage: ${USAGE.split('\n')[0]}` });
  }
}
