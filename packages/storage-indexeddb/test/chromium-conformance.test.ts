// The shared storage conformance suite in real Chromium: real IndexedDB, real Web Locks.
// One vitest test per case, registered here from the same case list the page runs; each
// runs the case in the page and reports its assertion failure (message and page stack).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { STORAGE_SPECIFICATION_VERSION } from '@deadbolt/spec';
// The same cases the page runs (see page.ts).
import { storageConformanceCases } from '@deadbolt/test-kit/storage';
import { call, openPage, startChromium, type ChromiumFixture } from './browser/chromium.js';

let chromium: ChromiumFixture;
let page: Page;

beforeAll(async () => {
  chromium = await startChromium();
  page = await openPage(chromium);
  // The page runs the cases by index: its list must be this list, case for case.
  const inPage = await call(page, 'cases');
  expect(inPage.map((c) => c.name)).toEqual(storageConformanceCases.map((c) => c.name));
});

afterAll(async () => {
  await chromium?.close();
});

describe(`storage conformance (${STORAGE_SPECIFICATION_VERSION}): indexeddb in real Chromium`, () => {
  // The factory in the page has reopen and openShared and the adapter has exclusive, so
  // every case runs: none is skipped.
  storageConformanceCases.forEach((testCase, index) => {
    it(`${testCase.invariant}. ${testCase.name}`, { timeout: 60_000 }, async () => {
      const result = await call(page, 'runCase', index);
      if (!result.ok) {
        const failure = new Error(`in Chromium: ${result.error.name}: ${result.error.message}`);
        failure.stack = `${failure.message}\n--- page stack ---\n${result.error.stack}`;
        throw failure;
      }
    });
  });
});
