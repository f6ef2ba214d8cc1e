// The test network for tests: it lives in src/testbed, because the shipped arena
// (`praetor arena`) runs its scenarios in it too; tests keep importing it from here.
export * from '../../src/testbed/index.ts';
