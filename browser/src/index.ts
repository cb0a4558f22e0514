/**
 * `@deadbolt/browser-harness` (private): runs workspace code in Debian's real Chromium from
 * vitest tests in Node.
 *
 * - {@link launchChromium}: `/usr/bin/chromium` with the flags from TOOLCHAIN.md.
 * - {@link newPage}: a page in a fresh context (`{ webrtc: true }` grants what loopback
 *   WebRTC needs).
 * - {@link serveBundle}: esbuild-bundles TypeScript entries and serves them on
 *   `http://127.0.0.1:<port>/` (a secure context).
 * - {@link requireChromium}: throws a loud, actionable error when Chromium is missing.
 *
 * @example
 * ```ts
 * import { launchChromium, newPage, serveBundle } from '@deadbolt/browser-harness';
 *
 * const browser = await launchChromium();
 * const server = await serveBundle({ entries: { page: '/abs/path/page.ts' } });
 * const page = await newPage(browser);
 * await page.goto(server.url);
 * await page.waitForFunction(() => (globalThis as { ready?: boolean }).ready === true);
 * await server.close();
 * await browser.close();
 * ```
 *
 * @module
 */
export {
  CHROMIUM_FLAGS,
  CHROMIUM_PATH,
  launchChromium,
  newPage,
  requireChromium,
  type LaunchChromiumOptions,
  type NewPageOptions,
} from './chromium.js';
export { serveBundle, type BundleServer, type ServeBundleOptions } from './serve-bundle.js';
