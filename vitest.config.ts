import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import LongestFirst from './test/sequencer.js';

// Every suite runs on the embedded PGlite, and again on PostgreSQL when TEST_DATABASE_URL is set.
const databases = ['pglite', ...(process.env.TEST_DATABASE_URL ? ['postgres'] : [])];

// What a reader of the README runs is the embedded demo: its examples, the HTTP error contract and
// the browser console are tested there once, not again against a second seeded demo on PostgreSQL.
const PGLITE_ONLY = ['test/readme.test.ts', 'test/error-contract.test.ts', 'test/console-browser.test.ts'];

export default defineConfig({
  // Node resolves `graphql` to its CommonJS build; Vite would pick the .mjs one for our files while
  // Pothos and Yoga load the CommonJS one, and graphql refuses to mix its two copies.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Migrates a template once per run; each test file's database is a copy of it.
    globalSetup: ['test/global-setup.ts'],
    // Test files mostly wait (on PostgreSQL, on spawned servers and CLIs, on timers): more files
    // than cores at a time keeps both cores busy. Vitest's default is one worker per core minus one.
    maxWorkers: Math.max(2, availableParallelism() * 2),
    // A worker thread starts cheaper than a child process: ≈ 15% less CPU over the run.
    pool: 'threads',
    // Files that run one after another in a worker share its modules instead of each importing the
    // gateway again (building the schema alone is ≈ 1 s of CPU): ≈ 28% less CPU on the files
    // measured. The few settings modules keep are reset before each file (test/reset-modules.ts).
    isolate: false,
    setupFiles: ['test/reset-modules.ts'],
    sequence: { sequencer: LongestFirst },
    projects: databases.map((database) => ({
      extends: true,
      test: {
        name: database,
        include: ['test/**/*.test.ts'],
        exclude: database === 'pglite' ? [] : PGLITE_ONLY,
        env: { TEST_DB: database },
      },
    })),
  },
});
