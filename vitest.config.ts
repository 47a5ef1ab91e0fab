import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addons and child processes: isolate test files in processes.
    pool: 'forks',
    // A rejection nobody handles fails the run even when every test passed
    // (test/meta/unhandled-rejection.test.ts checks it): never turn this on.
    dangerouslyIgnoreUnhandledErrors: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
