import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'mock-registry/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core CI machines: integration suites start real registries and skopeo; keep parallelism modest.
    maxWorkers: 2,
  },
});
