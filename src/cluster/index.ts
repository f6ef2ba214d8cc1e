// A cluster: the control server (membership, placement, routing, fencing on PostgreSQL), the
// node role beside `praetor serve`, and the PKI that gives every link mutual TLS.
export { startControl, type ControlOptions, type ControlServer } from './control-server.ts';
export { nodeLinkSecurity } from './node-link-security.ts';
export { startNode, type NodeRoleOptions, type NodeServer } from './node-role.ts';
export { ClusterControl, type Placement, type LostNode } from './control.ts';
export { initClusterCa, issueControlCertificate, loadClusterCa } from './pki-ca.ts';
export { createJoinToken } from './pki-join-tokens.ts';
export { joinCluster, renewNodeIdentity, type JoinOptions, type JoinResult } from './pki-join-client.ts';
export { loadIdentity, expiryReport, identityOfDer, type ClusterIdentity, type ClusterRole, type PeerIdentity } from './pki-identity.ts';
