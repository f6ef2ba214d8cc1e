// The CLI is the top layer: its public surface is the `praetor` binary (bin/praetor → main.ts,
// one lazily loaded module per command), not an import. Nothing in src/ imports src/cli
// (test/architecture/import-graph.test.ts pins that), so this file exports nothing.
export {};
