import { defineConfig } from 'tsup';

export default defineConfig({
  // The three `#crypto-default` targets (package.json "imports") are entries of their own,
  // and `#crypto-default` stays an import in dist/index.js: the consumer's runtime or
  // bundler picks the platform's provider by condition (node, browser, otherwise noble).
  entry: ['src/index.ts', 'src/crypto/default-node.ts', 'src/crypto/default-web.ts', 'src/crypto/default-noble.ts'],
  external: ['#crypto-default'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
});
