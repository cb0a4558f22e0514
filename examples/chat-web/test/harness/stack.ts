/**
 * What the end-to-end test and the screenshot script run against: the app built with
 * Vite (production build) and served statically on 127.0.0.1, a real relay in-process
 * (memory store) that allows that origin, and Debian's Chromium through
 * `@deadbolt/browser-harness` (which fails loudly when Chromium is missing).
 *
 * No vitest here: scripts/screenshots.ts uses it too.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { build } from 'vite';
import { launchChromium } from '@deadbolt/browser-harness';
import { createMemoryRelayStore, createRelay, silentRelayLogger, type Relay } from '@deadbolt/relay';

/** examples/chat-web/. */
export const APP_DIR = fileURLToPath(new URL('../..', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/** Builds the app (`vite build`, the package's own vite.config.ts) into `outDir`. */
export async function buildApp(outDir: string): Promise<void> {
  await build({ root: APP_DIR, configFile: join(APP_DIR, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}

/** Serves `dir` on `http://127.0.0.1:<free port>/` (a secure context: WebCrypto works). Unknown paths get index.html. */
export async function serveStatic(dir: string): Promise<{ readonly url: string; readonly origin: string; close(): Promise<void> }> {
  const root = resolve(dir);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
      let file = normalize(join(root, path));
      if (file !== root && !file.startsWith(root + sep)) {
        res.writeHead(403).end();
        return;
      }
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile()) file = join(root, 'index.html');
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      createReadStream(file).pipe(res);
    })();
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/`,
    origin,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

export interface Stack {
  readonly browser: Browser;
  /** The app: `http://127.0.0.1:<port>/`. */
  readonly appUrl: string;
  readonly relay: Relay;
  close(): Promise<void>;
}

/**
 * Builds and serves the app, starts a relay (memory store, loopback, a free port) that
 * allows the app's origin, and launches Chromium.
 *
 * The relay runs with its default limits except directory reads: every client start reads
 * the user's own directory entry (a bundle fetch: 6, then one per 10 minutes for each
 * pair of users), and switching transport restarts the client, so a run that signs up,
 * reloads and switches three times would otherwise wait 10 minutes.
 */
export async function startStack(): Promise<Stack> {
  const outDir = await mkdtemp(join(tmpdir(), 'chat-web-dist-'));
  const [browser] = await Promise.all([launchChromium(), buildApp(outDir)]);
  const server = await serveStatic(outDir);
  const relay = await createRelay({
    store: createMemoryRelayStore(),
    host: '127.0.0.1',
    port: 0,
    allowedOrigins: [server.origin],
    logger: silentRelayLogger,
    // The relay's default limits, but for messages per pair of users: one test has a Node
    // client write 105 messages in a row. (The app reloads and switches transports, each a
    // client start, within the default directory limits: relay-protocol.md FETCH_BUNDLES skip.)
    limits: { messages: { burst: 1000, refill: 1000, intervalMs: 1000 } },
  });
  return {
    browser,
    appUrl: server.url,
    relay,
    async close() {
      await browser.close().catch(() => undefined);
      await relay.close().catch(() => undefined);
      await server.close();
      await rm(outDir, { recursive: true, force: true });
    },
  };
}
