/**
 * The build every published package shares (tsup): ESM only, type declarations, source
 * maps, ES2022. A package's `tsup.config.ts` names its entries and anything it does
 * differently.
 */
import { defineConfig, type Options } from 'tsup';

export function packageBuild(options: Options = {}): ReturnType<typeof defineConfig> {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'es2022',
    ...options,
  });
}
