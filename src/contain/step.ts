// One containment step as recorded: what was done and whether it was checked to have happened.
// Its own file so the step's producers (contain.ts, kernel-kill-record.ts) need not import each other.
export type Outcome = 'verified' | 'failed' | 'skipped';

export interface Step {
  action: string; outcome: Outcome; error?: string; reason?: string; by?: 'user' | 'kernel';
  escalatedFrom?: string; targets?: number; atNs?: number;
}
