import { defineConfig, type ViteUserConfig } from 'vitest/config';

/**
 * The vitest configuration every workspace package uses (each package's own
 * vitest.config.ts re-exports it, so `vitest run` works from any package folder).
 *
 * - '@deadbolt/source' makes workspace packages resolve to their src/: tests need no build.
 * - The JSON report feeds scripts/test-summary.mjs, the workspace total CI reads.
 */
export function deadboltVitestConfig(overrides: { testTimeout?: number } = {}): ViteUserConfig {
  return defineConfig({
    resolve: { conditions: ['@deadbolt/source'] },
    ssr: { resolve: { conditions: ['@deadbolt/source'], externalConditions: ['@deadbolt/source'] } },
    test: {
      include: ['test/**/*.test.ts'],
      reporters: ['default', 'json'],
      outputFile: { json: 'test-results/vitest.json' },
      // Tests wait on events, not sleeps: the ceiling only matters on a slow or busy
      // machine (CI runs on 2 cores), where vitest's 5 s default would make them flaky.
      testTimeout: 30_000,
      ...overrides,
    },
  });
}
