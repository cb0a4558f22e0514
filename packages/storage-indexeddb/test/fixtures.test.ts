/**
 * SECURITY.md D30 for the IndexedDB adapter, on fake-indexeddb: every committed
 * `test/fixtures/schema-vN.json` (the raw contents of a database written by the release
 * with schema version N, see `fixtures/generate.ts`) is recreated with plain IndexedDB
 * calls, opened with the current adapter (migrations run), reads back byte for byte, and
 * the session state in it still decrypts the messages that were in flight. A database from
 * a newer schema is refused, not misread. The same checks run in real Chromium
 * (`chromium-fixtures.test.ts`).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, test } from 'vitest';
import { createIndexedDbStorage, INDEXEDDB_SCHEMA_VERSION } from '../src/index.js';
import {
  dumpDatabase,
  expectedEntries,
  expectEntriesReadBack,
  expectFixtureLoads,
  expectNewerSchemaRefused,
  restoreDatabase,
  type FixtureBackend,
} from './fixtures/schema-fixture.js';
import { fixtureFiles as files, loadFixture as load } from './fixtures/fixture-files.js';

let n = 0;
/** A fresh, empty IndexedDB world and a database name in it. */
function backend(): FixtureBackend {
  const factory = new IDBFactory();
  const name = `fixture-${n++}`;
  return { factory, name, open: () => createIndexedDbStorage({ name, indexedDB: factory }) };
}

describe('SECURITY.md D30: IndexedDB databases from every released schema version still load', () => {
  test('the current schema version has its fixture', () => {
    expect(files).toContain(`schema-v${INDEXEDDB_SCHEMA_VERSION}.json`);
  });

  for (const file of files) {
    test(`${file}: recreated raw, opened (and migrated) to schema ${INDEXEDDB_SCHEMA_VERSION}, reads back exactly, its sessions decrypt`, async () => {
      const fixture = load(file);
      expect(`schema-v${fixture.database.version}.json`, 'the file is named after its version').toBe(file);
      await expectFixtureLoads(fixture, backend(), INDEXEDDB_SCHEMA_VERSION);
    });
  }

  test('the raw recreation is exact: dumping the recreated database gives the fixture back', async () => {
    for (const file of files) {
      const fixture = load(file);
      const b = backend();
      await restoreDatabase(b.factory, b.name, fixture.database);
      expect(await dumpDatabase(b.factory, b.name), file).toEqual(fixture.database);
    }
  });

  test('a database from a newer schema (the current fixture, one version up) is refused with CORRUPTED_RECORD (newer schema), untouched', async () => {
    const fixture = load(`schema-v${INDEXEDDB_SCHEMA_VERSION}.json`);
    await expectNewerSchemaRefused(fixture, backend(), INDEXEDDB_SCHEMA_VERSION);
  });

  test('control: a database one byte away from the fixture fails the read-back check', async () => {
    const fixture = load(`schema-v${INDEXEDDB_SCHEMA_VERSION}.json`);
    const expected = expectedEntries(fixture);
    const target = expected.findIndex((e) => e.key[0] === 'session');
    expect(target).toBeGreaterThanOrEqual(0);
    const flipped = (hex: string) => `${hex.slice(0, -2)}${(Number.parseInt(hex.slice(-2), 16) ^ 1).toString(16).padStart(2, '0')}`;
    const altered = {
      ...fixture.database,
      stores: fixture.database.stores.map((s) =>
        s.name !== 'entries' ? s : { ...s, entries: s.entries.map((e, i) => (i === target ? { ...e, value: flipped(e.value) } : e)) },
      ),
    };
    const b = backend();
    await restoreDatabase(b.factory, b.name, altered);
    const storage = b.open();
    try {
      await expect(expectEntriesReadBack(storage, expected)).rejects.toThrow(/get \["session"/);
    } finally {
      await storage.close();
    }
  });
});
