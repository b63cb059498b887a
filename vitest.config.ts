import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  // Node resolves `graphql` to its CommonJS build (graphql 16 has no "exports" map); Vite would
  // pick the ESM build for our code while CommonJS dependencies load the other, and graphql refuses
  // schemas "from another module or realm". One copy everywhere, as at run time.
  resolve: { alias: { graphql: require.resolve('graphql') } },
  test: {
    include: ['test/**/*.test.ts'],
    // The CLI compiled once for the suites that start it as a process (test/support/global-build.ts).
    globalSetup: ['test/support/global-build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
