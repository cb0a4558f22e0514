import { defineConfig } from 'vitest/config';

// '@deadbolt/source' makes workspace packages resolve to their src/, so tests need no build.
export default defineConfig({
  resolve: { conditions: ['@deadbolt/source'] },
  ssr: { resolve: { conditions: ['@deadbolt/source'], externalConditions: ['@deadbolt/source'] } },
  test: { include: ['test/**/*.test.ts'] },
});
