// SECURITY.md D30 in real Chromium: every committed schema fixture recreated in the
// browser's real IndexedDB, opened and migrated by the adapter, read back byte for byte,
// and its session state used with the WebCrypto provider (the same checks as
// fixtures.test.ts, from test/fixtures/schema-fixture.ts, run in the page).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { INDEXEDDB_SCHEMA_VERSION } from '../src/index.js';
import { call, openPage, startChromium, type ChromiumFixture } from './browser/chromium.js';
import { fixtureFiles, loadFixture } from './fixtures/fixture-files.js';

let chromium: ChromiumFixture;
let page: Page;
const run = Date.now().toString(36);

beforeAll(async () => {
  chromium = await startChromium();
  page = await openPage(chromium);
});
afterAll(async () => {
  await chromium?.close();
});

function ok(result: { ok: true } | { ok: false; error: { name: string; message: string; stack: string } }): void {
  if (!result.ok) throw new Error(`in Chromium: ${result.error.name}: ${result.error.message}\n--- page stack ---\n${result.error.stack}`);
}

describe('SECURITY.md D30: IndexedDB databases from every released schema version still load, in real Chromium', () => {
  it('the current schema version has its fixture', () => {
    expect(fixtureFiles).toContain(`schema-v${INDEXEDDB_SCHEMA_VERSION}.json`);
  });

  for (const file of fixtureFiles) {
    it(`${file}: recreated raw, opened (and migrated) to schema ${INDEXEDDB_SCHEMA_VERSION}, reads back exactly, its sessions decrypt`, async () => {
      ok(await call(page, 'checkFixture', loadFixture(file), `fixture-${run}-${file}`));
    });
  }

  it('a database from a newer schema is refused with CORRUPTED_RECORD (newer schema), untouched', async () => {
    ok(await call(page, 'checkNewerFixture', loadFixture(`schema-v${INDEXEDDB_SCHEMA_VERSION}.json`), `fixture-${run}-newer`));
  });
});
