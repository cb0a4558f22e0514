/**
 * Vite configuration of the chat-web example.
 *
 * Workspace packages export their TypeScript sources under the `@deadbolt/source` export
 * condition (packages/core/package.json), so the app builds straight from `src/` of every
 * package, with no package build first. The browser defaults (`module`, `browser`,
 * `development|production`) stay after it: `browser` is what makes core's `#crypto-default`
 * import pick the WebCrypto provider, as browser/src/serve-bundle.ts does for esbuild.
 */
import { defineConfig, defaultClientConditions } from 'vite';

export default defineConfig({
  resolve: { conditions: ['@deadbolt/source', ...defaultClientConditions] },
  build: {
    target: 'es2022',
    // The crypto, ratchet and group code is one chunk of about 300 kB; adapters are split
    // out and loaded only when the settings name them (src/connect.ts).
    chunkSizeWarningLimit: 1024,
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
