export { connectGuard, runThroughGuard, type GuardConnection, type ConnectResult, type ClientIo } from './guard-client.ts';
export { startGuardServer, type GuardServer } from './guard-server.ts';
export { guardPaths, residentGuard, readGuardPid, type GuardPaths, type GuardPidRecord } from './paths.ts';
export { praetorVersion, PROTOCOL, type WireRunRequest } from './protocol.ts';
