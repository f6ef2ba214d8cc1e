// `praetor serve`: the HTTP + WebSocket API in the foreground until SIGINT/SIGTERM, then every
// sandbox it created is destroyed and the ledger flushed.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, hostname, totalmem } from 'node:os';
import { PraetorError, errorMessage } from '../errors.ts';
import { startServer } from '../server/index.ts';
import { parseSize } from '../util/index.ts';
import { parseDuration } from './cluster.ts';
import { parseFlags, parseNumberFlag, say, stateDir } from './common.ts';

const USAGE = `praetor serve [--role all|node|control] [--cluster-tls DIR | --insecure-cluster] [--host H] [--port P] [--state DIR] [--db URL] [--body-limit SIZE]

  --role R            all (default): this machine alone, no database. node: run sandboxes for a
                      cluster. control: a stateless API replica that places and routes to nodes
  --cluster URL       the cluster's PostgreSQL (default $PRAETOR_CLUSTER; node and control only)
  --node-id ID        this node's name in the cluster (default $PRAETOR_NODE_ID, else the host name)
  --advertise URL     base URL control replicas reach this node on (default $PRAETOR_ADVERTISE,
                      else the address it listens on)
  --capacity N        most sandboxes at once on this node (default $PRAETOR_CAPACITY, else 64);
                      CPUs and memory offered are the host's

  Cluster links (control <-> node) are mutual TLS; see "Cluster links" in docs/operations.md:
  --cluster-tls DIR   node: its identity (cert.pem, key.pem, ca.pem; written by a join; default
                      $PRAETOR_CLUSTER_TLS, else STATE/cluster). control: its control identity
                      (\`praetor cluster issue-control\`); with ca-key.pem beside it the replica
                      also signs joining nodes' certificates on --join-port
  --join-token T      node: a join token (default $PRAETOR_JOIN_TOKEN; one-time, or the node
                      pool's bootstrap token), used only while DIR holds no usable identity: the
                      node joins, then serves mutual TLS
  --control URL       node: a control replica's join endpoint, https://HOST:JOIN_PORT
                      (default $PRAETOR_CONTROL). Also where a node with a kept identity renews
                      it, with no token, when its address changed or it nears its expiry
  --ca FILE           node: the cluster CA bundle to trust for the join (default DIR/ca.pem)
  --join-port P       control: port of the join endpoint (default $PRAETOR_JOIN_PORT, else 7443)
  --bootstrap-token-file F  control: a node pool's bootstrap join token (default
                      $PRAETOR_BOOTSTRAP_TOKEN_FILE), registered on first sight with a budget
                      of --bootstrap-joins joins (default $PRAETOR_BOOTSTRAP_JOINS) that ends
                      after --bootstrap-ttl (default $PRAETOR_BOOTSTRAP_TTL, else 24h); fixed
                      once registered, so rotate the token to admit more nodes
  Certificates are watched: rotated files in --cluster-tls DIR are used by new connections
  without a restart; files that are not a valid identity are refused (logged), the old one stays.
  --insecure-cluster  plain HTTP between control and nodes, no certificates. A RISK: anyone who
                      reaches a node's port can call it with a tenant's token and read the link.
                      Trusted test benches only; every node and replica must pass it

  --host H            listen address (default 127.0.0.1)
  --port P            port (default 7070; 0 picks a free one)
  --state DIR         state directory (default $PRAETOR_STATE or /var/lib/praetor)
  --db PATH|URL       ledger: SQLite path or postgres:// URL (default the state directory's)
  --body-limit SIZE   largest request body (default 16m)
  --policy FILE       guard policy for every sandbox (tenants' defaults sit under it)
  --model-upstream URL  OpenAI-compatible upstream for /v1/chat/completions
  --image-alias NAME=IMAGE  answer requests for image NAME with IMAGE (an imported image or
                      host); repeatable. E.g. --image-alias python:3.11=host for ROCK's SDK
  --no-detect         no sensors and rules (benchmarks only)
  --e2b-port P        also serve the E2B-compatible API (control plane + envd) on port P
                      (set E2B_API_URL and E2B_SANDBOX_URL to http://HOST:P, E2B_API_KEY to a token)
  --e2b-template T=I  map E2B template T to Praetor image I (repeatable; base=host by default)
  --e2b-keepalive S   longest gap, in seconds, between keepalives on E2B command streams

Create tokens with: praetor token create --tenant NAME [--admin]`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, {
    'e2b-port': { type: 'string' }, 'e2b-template': { type: 'string', multiple: true }, 'e2b-keepalive': { type: 'string' },
    host: { type: 'string' }, port: { type: 'string' }, state: { type: 'string' }, db: { type: 'string' },
    'body-limit': { type: 'string' }, policy: { type: 'string' }, 'model-upstream': { type: 'string' }, 'no-detect': { type: 'boolean' },
    'image-alias': { type: 'string', multiple: true },
    role: { type: 'string' }, cluster: { type: 'string' }, 'node-id': { type: 'string' }, advertise: { type: 'string' }, capacity: { type: 'string' },
    'cluster-tls': { type: 'string' }, 'insecure-cluster': { type: 'boolean' }, 'join-token': { type: 'string' }, control: { type: 'string' }, ca: { type: 'string' }, 'join-port': { type: 'string' },
    'bootstrap-token-file': { type: 'string' }, 'bootstrap-joins': { type: 'string' }, 'bootstrap-ttl': { type: 'string' },
  }, USAGE);
  const cluster = clusterFlags(v);
  const imageAliases = parseImageAliases(v['image-alias'] ?? []);
  const port = parseNumberFlag('port', v.port, { int: true, min: 0 }) ?? 7070;
  if (port > 65535) throw new PraetorError('BAD_ARGUMENT', `--port ${port} is not a port`, { hint: 'use 1-65535, or 0 for any free port' });
  const e2bPort = parseNumberFlag('e2b-port', v['e2b-port'], { int: true, min: 0 });
  if (e2bPort !== undefined && e2bPort > 65535) throw new PraetorError('BAD_ARGUMENT', `--e2b-port ${e2bPort} is not a port`, { hint: 'use 1-65535, or 0 for any free port' });
  const templates: Record<string, string> = {};
  for (const t of v['e2b-template'] ?? []) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(t);
    if (!m) throw new PraetorError('BAD_ARGUMENT', `--e2b-template ${t} is not TEMPLATE=IMAGE`, { hint: 'for example --e2b-template base=debian' });
    templates[m[1]!] = m[2]!;
  }
  const keepalive = parseNumberFlag('e2b-keepalive', v['e2b-keepalive'], { min: 0.1 });
  if (e2bPort === undefined && (keepalive !== undefined || Object.keys(templates).length > 0)) throw new PraetorError('BAD_ARGUMENT', '--e2b-template and --e2b-keepalive need --e2b-port', { hint: 'add --e2b-port PORT' });
  const state = stateDir(v.state);
  if (v.policy && !existsSync(v.policy)) throw new PraetorError('BAD_POLICY', `no policy file ${v.policy}`, { hint: 'pass an existing YAML file' });
  const upstream = v['model-upstream'] ?? process.env.PRAETOR_MODEL_UPSTREAM;
  if (cluster.role === 'control') {
    // A control replica runs no sandbox: settings for sandboxes belong on the nodes.
    const misplaced = (['db', 'policy', 'model-upstream', 'image-alias', 'no-detect', 'e2b-port', 'e2b-template', 'e2b-keepalive'] as const).filter((k) => v[k] !== undefined);
    if (misplaced.length) throw new PraetorError('BAD_ARGUMENT', `--${misplaced.join(', --')} configure sandboxes, and a control replica runs none`, { hint: 'give them to the nodes (`praetor serve --role node`)' });
    const { startControl } = await import('../cluster/index.ts');
    if (cluster.link.mode === 'insecure') say(INSECURE_WARNING);
    const ctl = await startControl({
      cluster: cluster.url, stateDir: state, host: v.host ?? '127.0.0.1', port, ...(v['body-limit'] ? { bodyLimit: parseSize(v['body-limit'], '--body-limit') } : {}), log: say,
      link: cluster.link, join: { port: cluster.joinPort }, bootstrap: cluster.bootstrap,
    });
    if (ctl.joinUrl) process.stdout.write(`praetor: join endpoint on ${ctl.joinUrl} (nodes: --control ${ctl.joinUrl})\n`);
    process.stdout.write(`praetor: control replica serving on ${ctl.url} (cluster ${redact(cluster.url)}, ${ctl.directory.live.length} nodes up, node links ${cluster.link.mode === 'mtls' ? 'mutual TLS' : 'PLAIN HTTP (--insecure-cluster)'})\n`);
    await untilSignal();
    await ctl.close();
    return 0;
  }
  const serveOptions = {
    host: v.host ?? '127.0.0.1', port, stateDir: state, db: v.db,
    ...(e2bPort !== undefined ? { e2b: { port: e2bPort, templates, ...(keepalive !== undefined ? { keepaliveMs: keepalive * 1000 } : {}) } } : {}),
    ...(v['body-limit'] ? { bodyLimit: parseSize(v['body-limit'], '--body-limit') } : {}),
    ...(v.policy ? { policyFile: v.policy } : {}),
    ...(upstream ? { model: { upstream, ...(process.env.PRAETOR_MODEL_API_KEY ? { apiKey: process.env.PRAETOR_MODEL_API_KEY } : {}) } } : {}),
    detect: !v['no-detect'],
    imageAliases,
    log: say,
  };
  let server;
  if (cluster.role === 'node') {
    // The link's security is settled (joined, if need be) before anything starts: a node
    // without an identity fails closed here.
    const { nodeLinkSecurity } = await import('../cluster/index.ts');
    const link = await nodeLinkSecurity({ ...cluster.link, nodeId: cluster.nodeId, dir: cluster.link.dir ?? join(state, 'cluster'), advertise: cluster.advertise, host: serveOptions.host, port, log: say });
    server = await (await import('../cluster/index.ts')).startNode({ ...serveOptions, cluster: cluster.url, nodeId: cluster.nodeId, advertise: cluster.advertise, capacity: cluster.capacity, link });
  } else server = await startServer(serveOptions);
  const tokens = server.core.tokens.count;
  process.stdout.write(`praetor: serving on ${server.url} (state ${state}, ledger ${server.core.ledger?.location ?? 'off'})\n`);
  if (server.e2b) process.stdout.write(`praetor: E2B API on ${server.e2b.url} (E2B_API_URL and E2B_SANDBOX_URL)\n`);
  if (tokens === 0) say(`no tokens yet: create one with \`praetor token create --tenant NAME --state ${state}\``);
  for (const d of server.core.guard.degraded()) say(`degraded: ${d}`);
  await untilSignal();
  await server.close();
  return 0;
}

function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (sig: string) => { say(`${sig}: shutting down`); resolve(); };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

const INSECURE_WARNING = 'WARNING: --insecure-cluster: this control replica calls nodes over plain HTTP, without certificates; the link (commands, files, tenants\' tokens) is readable and nodes cannot tell a replica from anyone else. Use it on a trusted test bench only (see "Cluster links" in docs/operations.md)';

type ClusterFlags =
  | { role: 'all' }
  | { role: 'control'; url: string; link: { mode: 'mtls'; dir: string } | { mode: 'insecure' }; joinPort: number; bootstrap: { token: string; maxJoins: number; ttlMs: number } | undefined }
  | {
    role: 'node'; url: string; nodeId: string; advertise: string | undefined; capacity: { cpus: number; memoryBytes: number; maxSandboxes: number };
    link: { insecure: boolean; dir: string | undefined; join: { token: string; controlUrl: string; caFile: string | undefined } | undefined; renew: { controlUrl: string; caFile: string | undefined } | undefined };
  };

type LinkFlags = {
  'cluster-tls'?: string | undefined; 'insecure-cluster'?: boolean | undefined; 'join-token'?: string | undefined; control?: string | undefined; ca?: string | undefined; 'join-port'?: string | undefined;
  'bootstrap-token-file'?: string | undefined; 'bootstrap-joins'?: string | undefined; 'bootstrap-ttl'?: string | undefined;
};
const BOOTSTRAP_FLAGS = ['bootstrap-token-file', 'bootstrap-joins', 'bootstrap-ttl'] as const;

/** The control replica's bootstrap token: the file's content (a mounted Secret), its budget and life. */
function bootstrapFlags(v: LinkFlags): { token: string; maxJoins: number; ttlMs: number } | undefined {
  const file = v['bootstrap-token-file'] ?? process.env.PRAETOR_BOOTSTRAP_TOKEN_FILE;
  const joins = v['bootstrap-joins'] ?? process.env.PRAETOR_BOOTSTRAP_JOINS;
  const ttl = v['bootstrap-ttl'] ?? process.env.PRAETOR_BOOTSTRAP_TTL;
  if (!file) {
    if (v['bootstrap-joins'] !== undefined || v['bootstrap-ttl'] !== undefined) throw new PraetorError('BAD_ARGUMENT', '--bootstrap-joins and --bootstrap-ttl need --bootstrap-token-file', { hint: 'add --bootstrap-token-file FILE (the file holding the node pool\'s join token)' });
    return undefined;
  }
  let token: string;
  try { token = readFileSync(file, 'utf8').trim(); } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `cannot read --bootstrap-token-file ${file}: ${errorMessage(e)}`, { hint: 'mount the join token Secret there (the chart does), or pass the file that holds the token', cause: e });
  }
  const maxJoins = parseNumberFlag('bootstrap-joins', joins, { int: true, min: 1 });
  if (maxJoins === undefined) throw new PraetorError('BAD_ARGUMENT', '--bootstrap-token-file needs --bootstrap-joins N, how many nodes may join with it', { hint: 'pass the node pool size, e.g. --bootstrap-joins 8 (or set PRAETOR_BOOTSTRAP_JOINS)' });
  return { token, maxJoins, ttlMs: parseDuration(ttl ?? '24h', 'bootstrap-ttl') };
}

/** --role and the cluster flags, each also from its environment variable (the Helm chart sets either). */
function clusterFlags(v: LinkFlags & { role?: string | undefined; cluster?: string | undefined; 'node-id'?: string | undefined; advertise?: string | undefined; capacity?: string | undefined }): ClusterFlags {
  const role = v.role ?? process.env.PRAETOR_ROLE ?? 'all';
  if (role !== 'all' && role !== 'node' && role !== 'control') throw new PraetorError('BAD_ARGUMENT', `--role ${role} is not a role`, { hint: 'use all (one machine), node or control' });
  const url = v.cluster ?? process.env.PRAETOR_CLUSTER;
  if (role === 'all') {
    if (v.cluster !== undefined) throw new PraetorError('BAD_ARGUMENT', '--cluster is for --role node or --role control; --role all runs this machine alone, without a database', { hint: 'add --role node or --role control, or drop --cluster' });
    for (const k of ['node-id', 'advertise', 'capacity', 'join-token', 'control', 'ca'] as const) if (v[k] !== undefined) throw new PraetorError('BAD_ARGUMENT', `--${k} is for --role node`, { hint: 'add --role node --cluster URL, or drop it' });
    for (const k of ['cluster-tls', 'insecure-cluster', 'join-port'] as const) if (v[k] !== undefined) throw new PraetorError('BAD_ARGUMENT', `--${k} is for --role node or --role control`, { hint: 'drop it: --role all has no cluster links' });
    for (const k of BOOTSTRAP_FLAGS) if (v[k] !== undefined) throw new PraetorError('BAD_ARGUMENT', `--${k} is for --role control`, { hint: 'drop it: --role all has no cluster links' });
    return { role };
  }
  if (!url) throw new PraetorError('BAD_ARGUMENT', `--role ${role} needs the cluster's database`, { hint: 'pass --cluster postgres://USER@HOST/DB or set PRAETOR_CLUSTER' });
  if (!/^postgres(ql)?:\/\//.test(url)) throw new PraetorError('BAD_ARGUMENT', `--cluster ${redact(url)} is not a postgres:// URL`, { hint: 'pass --cluster postgres://USER@HOST/DB' });
  const tlsDir = v['cluster-tls'] ?? process.env.PRAETOR_CLUSTER_TLS;
  const insecure = v['insecure-cluster'] === true;
  if (insecure && v['cluster-tls'] !== undefined) throw new PraetorError('BAD_ARGUMENT', '--cluster-tls and --insecure-cluster contradict each other', { hint: 'drop --insecure-cluster (recommended), or drop --cluster-tls' });
  if (role === 'control') {
    for (const k of ['node-id', 'advertise', 'capacity', 'join-token', 'control', 'ca'] as const) if (v[k] !== undefined) throw new PraetorError('BAD_ARGUMENT', `--${k} is for --role node`, { hint: 'drop it from the control replica' });
    const joinPort = parseNumberFlag('join-port', v['join-port'] ?? process.env.PRAETOR_JOIN_PORT, { int: true, min: 0 }) ?? 7443;
    if (joinPort > 65535) throw new PraetorError('BAD_ARGUMENT', `--join-port ${joinPort} is not a port`, { hint: 'use 1-65535, or 0 for any free port' });
    const bootstrap = bootstrapFlags(v);
    if (insecure) {
      if (bootstrap) throw new PraetorError('BAD_ARGUMENT', '--bootstrap-token-file and --insecure-cluster contradict each other: a join gives a node a certificate for mutual TLS', { hint: 'drop --insecure-cluster (recommended), or drop --bootstrap-token-file' });
      return { role, url, link: { mode: 'insecure' }, joinPort, bootstrap: undefined };
    }
    if (!tlsDir) {
      throw new PraetorError('CERT_INVALID', 'a control replica calls nodes over mutual TLS only, and no control identity was given', {
        hint: 'run `praetor cluster init --dir CA_DIR` once, then `praetor cluster issue-control --dir CA_DIR --name NAME --out DIR` and pass --cluster-tls DIR (copy CA_DIR/ca-key.pem into DIR for this replica to sign nodes\' joins); only on a trusted test bench, pass --insecure-cluster to every replica and node',
      });
    }
    return { role, url, link: { mode: 'mtls', dir: tlsDir }, joinPort, bootstrap };
  }
  if (v['join-port'] !== undefined) throw new PraetorError('BAD_ARGUMENT', '--join-port is for --role control', { hint: 'a node joins with --control URL' });
  for (const k of BOOTSTRAP_FLAGS) if (v[k] !== undefined) throw new PraetorError('BAD_ARGUMENT', `--${k} is for --role control`, { hint: 'a node presents the token with --join-token (or $PRAETOR_JOIN_TOKEN)' });
  const token = v['join-token'] ?? process.env.PRAETOR_JOIN_TOKEN;
  const controlUrl = v.control ?? process.env.PRAETOR_CONTROL;
  if (v['join-token'] !== undefined && !controlUrl) throw new PraetorError('BAD_ARGUMENT', '--join-token needs --control, the control replica to join through', { hint: 'add --control https://CONTROL:JOIN_PORT (the replica prints its join endpoint when it starts)' });
  if (v.ca !== undefined && !controlUrl) throw new PraetorError('BAD_ARGUMENT', '--ca is the CA bundle for a join or a renewal through a control replica, and no --control was given', { hint: 'add --control https://CONTROL:JOIN_PORT, or drop --ca' });
  const joinWith = token && controlUrl ? { token, controlUrl, caFile: v.ca } : undefined;
  // A token in the environment (the chart's Secret) with --insecure-cluster on the command line: the flag wins, the token is ignored.
  const link = { insecure, dir: tlsDir, join: insecure && v['join-token'] === undefined ? undefined : joinWith, renew: controlUrl && !insecure ? { controlUrl, caFile: v.ca } : undefined };
  const nodeId = v['node-id'] ?? process.env.PRAETOR_NODE_ID ?? hostNodeId();
  const advertise = v.advertise ?? process.env.PRAETOR_ADVERTISE;
  if (advertise !== undefined) {
    let u: URL | undefined;
    try { u = new URL(advertise); } catch { u = undefined; }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/') throw new PraetorError('BAD_ARGUMENT', `--advertise ${advertise} is not a base URL`, { hint: 'pass http(s)://HOST:PORT, the address control replicas reach this node on' });
  }
  const raw = v.capacity ?? process.env.PRAETOR_CAPACITY;
  const maxSandboxes = parseNumberFlag('capacity', raw, { int: true, min: 1 }) ?? 64;
  return { role, url, nodeId, advertise: advertise?.replace(/\/$/, ''), capacity: { cpus: availableParallelism(), memoryBytes: totalmem(), maxSandboxes }, link };
}

/** The host name as a node id: lowercase, letters, digits and dashes, at most 63. */
function hostNodeId(): string {
  return hostname().toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '') || 'node';
}

function parseImageAliases(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(p);
    if (!m) throw new PraetorError('BAD_ARGUMENT', `--image-alias ${p} is not NAME=IMAGE`, { hint: 'e.g. --image-alias python:3.11=host' });
    out[m[1]!] = m[2]!;
  }
  return out;
}
