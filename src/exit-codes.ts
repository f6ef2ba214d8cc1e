// Exit statuses of `praetor run` beyond the command's own (documented in the README). In a file
// of their own at src/ (shared by cli, daemon and runner, like errors.ts) so the thin client
// names them without loading the runner.

/** Praetor contained the run. */
export const EXIT_CONTAINED = 125;
/** The resident guard was lost mid-run or Praetor failed internally (sysexits EX_SOFTWARE). */
export const EXIT_INTERNAL = 70;
