// The cluster PKI's public surface: the CA, join tokens, the join exchange, and the TLS options
// every node link is built from. Everything else in src/cluster/pki-*.ts is private to it.
export { initClusterCa, loadClusterCa, issueControlCertificate, CA_FILES, NODE_CERT_MS, CONTROL_CERT_MS, type ClusterCa } from './pki-ca.ts';
export { loadIdentity, expiryReport, identityOfDer, roleUrn, IDENTITY_FILES, type ClusterIdentity, type ClusterRole, type ExpiryReport, type PeerIdentity } from './pki-identity.ts';
export {
  createJoinToken, redeemJoinToken, registerBootstrapToken, generateJoinToken, recordNodeCert, ensureJoinTokenSchema, pruneJoinTokens,
  JOIN_TOKENS_SCHEMA, MAX_TOKEN_TTL_MS, MAX_TOKEN_JOINS, type JoinToken, type BootstrapTokenState,
} from './pki-join-tokens.ts';
export { RENEW_PATH, RenewRequestSchema, renewStatement, signRenewal, checkRenewal, type RenewRequest } from './pki-renew.ts';
export { IdentityWatcher, watchIdentity, reloadServers, type IdentityWatchOptions } from './pki-reload.ts';
export { registerJoinRoute, JOIN_PATH, JoinRequestSchema, JoinResponseSchema, type JoinRouteOptions } from './pki-join-route.ts';
export { startJoinServer, type JoinServer } from './pki-join-server.ts';
export { joinCluster, renewNodeIdentity, type JoinOptions, type JoinResult, type RenewOptions } from './pki-join-client.ts';
export {
  nodeServerTlsOptions, nodeServerTlsOptionsFor, guardControlPeers, assertControlPeer, peerOf, controlClientTlsOptions, controlClientTlsOptionsFor,
  controlServerTlsOptions, controlServerTlsOptionsFor, secureContextOptions,
  joinClientTlsOptions, explainTlsError, type NodeServerTlsOptions, type ControlClientTlsOptions,
} from './pki-tls.ts';
