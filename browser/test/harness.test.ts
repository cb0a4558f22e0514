import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPage, requireChromium, serveBundle, type BundleServer } from '../src/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe('requireChromium', () => {
  it('throws a loud error with install instructions when the binary is missing', () => {
    expect(() => requireChromium('/nonexistent/chromium')).toThrow(/apt-get install -y chromium/);
  });

  it('returns the path of the installed browser', () => {
    expect(requireChromium()).toBe('/usr/bin/chromium');
  });
});

describe('serveBundle', () => {
  it('rejects with esbuild’s message when an entry does not resolve', async () => {
    await expect(serveBundle({ entries: { page: fixture('missing.ts') } })).rejects.toThrow(/esbuild failed/);
  });
});

describe('real Chromium', () => {
  let browser: Browser;
  let server: BundleServer;

  beforeAll(async () => {
    [browser, server] = await Promise.all([launchChromium(), serveBundle({ entries: { smoke: fixture('smoke-page.ts') } })]);
  });
  afterAll(async () => {
    await server?.close();
    await browser?.close();
  });

  it('serves bundled workspace code in a secure context with WebCrypto, IndexedDB and Web Locks', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    const smoke = await page.waitForFunction(() => (globalThis as { smoke?: unknown }).smoke);
    expect(await smoke.jsonValue()).toEqual({
      secureContext: true,
      subtle: true,
      indexedDB: true,
      locks: true,
      specOrder: -1,
    });
    const missing = await page.request.get(`${server.url}nope.js`);
    expect(missing.status()).toBe(404);
    await page.close();
  });

  it('gathers a loopback ICE candidate on a webrtc page', async () => {
    const page = await newPage(browser, { webrtc: true });
    await page.goto(server.url);
    await page.waitForFunction(() => (globalThis as { smoke?: unknown }).smoke);
    const candidate = await page.evaluate(() =>
      (globalThis as unknown as { gatherLoopbackCandidate: () => Promise<string> }).gatherLoopbackCandidate(),
    );
    expect(candidate).toMatch(/candidate:.* 127\.0\.0\.1 /);
    await page.close();
  });
});
