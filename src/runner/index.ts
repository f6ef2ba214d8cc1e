export { runGuarded, EXIT_CONTAINED, type RunRequest, type RunReport, type FlatEvent } from './run-guarded.ts';
export { startGuard, type Guard, type GuardOptions } from './guard.ts';
export { LedgerGuard, DEFAULT_LEDGER_GRACE_MS, type LedgerGuardOptions } from './ledger-guard.ts';
export { EXIT_INTERNAL } from '../exit-codes.ts';
export { startResidentHost, type ResidentHost, type HostAttachment } from './resident-host.ts';
export { hostStatus, type Check } from './host-status.ts';
