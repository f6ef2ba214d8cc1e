export { startE2bServer, type E2bOptions, type E2bServer } from './server.ts';
export { narrowNetwork, type E2bNetworkRequest } from './network.ts';
export { ENVD_VERSION } from './control-plane.ts';
export { Process } from './gen/process/process_pb.js';
export { Filesystem } from './gen/filesystem/filesystem_pb.js';
export { e2bErrorBody, notSupported, statusOf } from './errors.ts';
