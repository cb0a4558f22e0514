/**
 * Node side of the Chromium tests: one browser and one bundle server per test file, and
 * pages that are ready when returned (their `deadboltPage` API is installed).
 */
import { fileURLToPath } from 'node:url';
import { launchChromium, newPage, serveBundle, type BundleServer } from '@deadbolt/browser-harness';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DeadboltPage } from './page.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export interface ChromiumFixture {
  readonly browser: Browser;
  readonly server: BundleServer;
  close(): Promise<void>;
}

/** Launches Chromium and serves `page.ts` (with `vitest` aliased to the in-page expect). */
export async function startChromium(): Promise<ChromiumFixture> {
  const [browser, server] = await Promise.all([
    launchChromium(),
    serveBundle({ entries: { page: here('./page.ts') }, alias: { vitest: here('./vitest-in-page.ts') } }),
  ]);
  return {
    browser,
    server,
    async close() {
      await server.close();
      await browser.close();
    },
  };
}

/**
 * A page with the bundle loaded: in a new context, or in `context` to share its origin's
 * IndexedDB and Web Locks with the context's other pages.
 */
export async function openPage(fixture: ChromiumFixture, context?: BrowserContext): Promise<Page> {
  const page = context === undefined ? await newPage(fixture.browser) : await context.newPage();
  await loadBundle(fixture, page);
  return page;
}

/** Navigates `page` to the bundle and waits until its `deadboltPage` API is installed. */
export async function loadBundle(fixture: ChromiumFixture, page: Page): Promise<void> {
  await page.goto(fixture.server.url);
  await page.waitForFunction(() => (globalThis as { deadboltPage?: unknown }).deadboltPage !== undefined);
}

/** Calls `deadboltPage[method](...args)` in the page. */
export async function call<K extends keyof DeadboltPage>(
  page: Page,
  method: K,
  ...args: DeadboltPage[K] extends (...a: infer A) => unknown ? A : never
): Promise<Awaited<DeadboltPage[K] extends (...a: never[]) => infer R ? R : never>> {
  return page.evaluate(
    ([m, a]) => {
      const api = (globalThis as unknown as { deadboltPage: Record<string, (...x: unknown[]) => unknown> }).deadboltPage;
      return api[m as string]!(...(a as unknown[]));
    },
    [method, args] as const,
  ) as never;
}
