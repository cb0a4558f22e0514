/**
 * Real Chromium for a test file (Debian's, through `@deadbolt/browser-harness`): one
 * browser and one served bundle of a page (`test/browser/*.ts`) for the whole file, pages
 * with WebRTC allowed on loopback, a relay that accepts the pages' origin, and calls into
 * the API the page puts on `globalThis`. Everything a test opens is closed after it, last
 * opened first. Page calls wait on the page's own events, never on sleeps.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { launchChromium, newPage, serveBundle, type BundleServer } from '@deadbolt/browser-harness';
import type { Browser, Page } from 'playwright-core';
import { startRelay, type TestRelay } from './stack.js';

/** What a page's API must offer besides: its device sends, returning the message id. */
export interface PageApi {
  send(to: string, body: string): Promise<string>;
}

/** Arguments and result of a page API method. */
type Args<F> = F extends (...args: infer A) => unknown ? A : never;
type Result<F> = F extends (...args: never[]) => infer R ? Awaited<R> : never;

export interface ChromiumPages<Api> {
  /** Runs `close` after the current test (last registered first); its failure is ignored. */
  cleanup(close: () => Promise<void> | void): void;
  /** A relay on loopback that accepts WebSocket connections from the pages' origin. */
  relay(): Promise<TestRelay>;
  /** A page with the bundle loaded and its API in place. */
  page(): Promise<Page>;
  /** Calls `globalThis[global][method](...args)` in the page. */
  call<K extends keyof Api & string>(p: Page, method: K, ...args: Args<Api[K]>): Promise<Result<Api[K]>>;
  /** Sends each body from the page's device to `to`, one after the other; returns the ids. */
  sendAll(p: Page, to: string, bodies: string[]): Promise<string[]>;
}

/**
 * Registers the file's hooks (launch and serve before all, close after all, the cleanup
 * after each) and returns what its tests use. `entry` is the page's module; `global` the
 * name it puts its API under.
 */
export function useChromiumPages<Api extends PageApi>(entry: URL, global: string): ChromiumPages<Api> {
  let browser: Browser;
  let server: BundleServer;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    [browser, server] = await Promise.all([launchChromium(), serveBundle({ entries: { page: fileURLToPath(entry) } })]);
  });
  afterAll(async () => {
    await server?.close();
    await browser?.close();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  });

  const evaluate = (p: Page, method: string, args: unknown[]): Promise<unknown> =>
    p.evaluate(([g, m, a]) => (globalThis as unknown as Record<string, Record<string, (...x: unknown[]) => unknown>>)[g]![m]!(...a), [global, method, args] as const);

  return {
    cleanup: (close) => void cleanups.push(close),
    async relay() {
      const r = await startRelay({ allowedOrigins: [new URL(server.url).origin] });
      cleanups.push(() => r.close());
      return r;
    },
    async page() {
      const p = await newPage(browser, { webrtc: true });
      cleanups.push(() => p.close());
      await p.goto(server.url);
      await p.waitForFunction((name) => (globalThis as Record<string, unknown>)[name] !== undefined, global);
      return p;
    },
    call: (p, method, ...args) => evaluate(p, method, args) as never,
    async sendAll(p, to, bodies) {
      const ids: string[] = [];
      for (const b of bodies) ids.push((await evaluate(p, 'send', [to, b])) as string);
      return ids;
    },
  };
}
