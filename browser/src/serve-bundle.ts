/**
 * Bundling workspace TypeScript for a page and serving it on loopback.
 *
 * Pages are served from `http://127.0.0.1:<port>/`, which browsers treat as a secure
 * context: WebCrypto (`crypto.subtle`), Web Locks and IndexedDB are all available there,
 * unlike on `about:blank` or `file://`.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { build, formatMessages, type BuildFailure } from 'esbuild';

/** Options for {@link serveBundle}. */
export interface ServeBundleOptions {
  /**
   * Scripts to bundle: output name -> TypeScript (or JavaScript) entry file. Entry `name`
   * is served at `<url>name.js`. Relative paths resolve against the current directory;
   * prefer absolute ones (`fileURLToPath(new URL('./page.ts', import.meta.url))`).
   */
  readonly entries: Readonly<Record<string, string>>;
  /**
   * The page served at `<url>`. Default: an empty page that loads every entry as a
   * module script (`<script type="module" src="/name.js">`), in `entries` order.
   */
  readonly html?: string;
  /**
   * esbuild aliases: replace a bare import by a package or file (for example point
   * `vitest` at a page-side shim so shared test cases run in the page).
   */
  readonly alias?: Readonly<Record<string, string>>;
  /** esbuild `define` substitutions; `process.env.NODE_ENV` is defined as `"test"`. */
  readonly define?: Readonly<Record<string, string>>;
}

/** A running bundle server: close it in `afterAll`. */
export interface BundleServer {
  /** The page's URL, `http://127.0.0.1:<port>/`; entry `name` is at `${url}name.js`. */
  readonly url: string;
  /** Stops the server and drops open connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Bundles `entries` with esbuild (ESM, platform `browser`, export conditions
 * `@deadbolt/source` then `browser`, so workspace packages are taken from their `src/` and
 * need no build) and serves them with an HTML page on `127.0.0.1` on a free port.
 *
 * Bundling errors reject with esbuild's formatted messages.
 *
 * @example
 * ```ts
 * const server = await serveBundle({
 *   entries: { page: fileURLToPath(new URL('./fixtures/page.ts', import.meta.url)) },
 * });
 * await page.goto(server.url); // runs page.js
 * await server.close();
 * ```
 */
export async function serveBundle(options: ServeBundleOptions): Promise<BundleServer> {
  const names = Object.keys(options.entries);
  if (names.length === 0) throw new Error('serveBundle: `entries` is empty');
  for (const name of names) {
    // Names become URL paths and output file names: keep them plain.
    if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`serveBundle: entry name ${JSON.stringify(name)} must match [A-Za-z0-9_-]+`);
  }
  // write: false keeps the output in memory; esbuild still needs an outdir to name files.
  const outdir = join(tmpdir(), 'deadbolt-browser-harness');
  let outputFiles;
  try {
    const result = await build({
      entryPoints: Object.fromEntries(names.map((n) => [n, resolve(options.entries[n] as string)])),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      conditions: ['@deadbolt/source', 'browser'],
      write: false,
      outdir,
      sourcemap: 'inline',
      logLevel: 'silent',
      alias: { ...options.alias },
      define: { 'process.env.NODE_ENV': '"test"', ...options.define },
    });
    outputFiles = result.outputFiles;
  } catch (e) {
    const failure = e as BuildFailure;
    if (!Array.isArray(failure.errors)) throw e;
    const text = await formatMessages(failure.errors, { kind: 'error', color: false });
    throw new Error(`serveBundle: esbuild failed:\n${text.join('\n')}`, { cause: e });
  }
  const scripts = new Map<string, Uint8Array>();
  for (const file of outputFiles) scripts.set(`/${basename(file.path)}`, file.contents);
  const html =
    options.html ??
    `<!doctype html><html><head><meta charset="utf-8"><title>deadbolt test page</title>${names
      .map((n) => `<script type="module" src="/${n}.js"></script>`)
      .join('')}</head><body></body></html>`;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const script = scripts.get(path);
    const headers = { 'cache-control': 'no-store' };
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' }).end(html);
    } else if (script !== undefined) {
      res.writeHead(200, { ...headers, 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    } else if (path === '/favicon.ico') {
      // Browsers ask for it unprompted; a 404 would print a console error in every test.
      res.writeHead(204, headers).end();
    } else {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      (closing ??= new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      })),
  };
}
