import { defineConfig } from 'vitest/config';

/** Files that use the run's shared DynamoDB Local; only a run that includes one of them starts it. */
const NEEDS_DYNAMODB = ['test/integration/**/*.test.ts', 'test/local/dynamodb-local.test.ts', 'test/bench/scale-simulation.test.ts'];

export default defineConfig({
  test: {
    // Hang detectors only, generous for a loaded 2-core machine: no test asserts on them.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // CI also writes a JSON report, from which .ci/run prints a plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.local/vitest-report.json' }]] : ['default'],
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'standalone', include: ['test/**/*.test.ts'], exclude: NEEDS_DYNAMODB, globalSetup: ['test/support/build-assets.ts'] } },
      { extends: true, test: { name: 'dynamodb', include: NEEDS_DYNAMODB, globalSetup: ['test/support/global-setup.ts'] } },
    ],
  },
});
