import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more workers only make suites that start gateways fight for CPU.
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    // Vite resolves the gateway's `graphql` with the development condition (graphql's __dev__
    // build); graphql-ws must load the same copy, or its instanceof checks fail (two realms).
    server: { deps: { inline: ['graphql-ws'] } },
  },
});
