import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

const globalSetup = 'test/support/global-setup.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: existsSync(globalSetup) ? [globalSetup] : [],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // CI also writes a JSON report, from which .ci/run prints a plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.local/vitest-report.json' }]] : ['default'],
    pool: 'forks',
    maxWorkers: 2,
  },
});
