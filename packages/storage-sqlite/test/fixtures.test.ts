/**
 * SECURITY.md D30 for the SQLite adapter: a database file written by every released schema
 * version (committed under test/fixtures/) opens, is migrated to the current schema, and
 * reads back exactly what was written. Also: migrations run from an empty file, and a file
 * from a newer version is refused rather than misread.
 */
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { compareStorageKeys, isDeadboltError } from '@deadbolt/spec';
import { createSqliteStorage, SQLITE_SCHEMA_VERSION } from '../src/index.js';
import { FIXTURE_ENTRIES } from './fixtures/entries.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'deadbolt-sqlite-fixtures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const files = readdirSync(fixtures).filter((f) => /^schema-v\d+\.db$/.test(f)).sort();
const userVersion = (path: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

describe('SECURITY.md D30: SQLite files from every released schema version still open', () => {
  test('the current schema has its fixture', () => {
    expect(files).toContain(`schema-v${SQLITE_SCHEMA_VERSION}.db`);
  });

  for (const file of files) {
    test(`${file}: opens, migrates to schema ${SQLITE_SCHEMA_VERSION}, reads back every entry exactly`, async () => {
      const path = join(dir, file);
      copyFileSync(join(fixtures, file), path);
      const storage = createSqliteStorage({ path });
      const expected = [...FIXTURE_ENTRIES].sort((a, b) => compareStorageKeys(a.key, b.key));
      const got = [];
      for (const prefix of new Set(expected.map((e) => e.key[0] as string))) got.push(...(await storage.range([prefix])));
      got.sort((a, b) => compareStorageKeys(a.key, b.key));
      expect(got.map((e) => e.key)).toEqual(expected.map((e) => e.key));
      got.forEach((e, i) => expect(Buffer.from(e.value).equals(Buffer.from(expected[i]!.value)), JSON.stringify(e.key)).toBe(true));
      await storage.close();
      expect(userVersion(path)).toBe(SQLITE_SCHEMA_VERSION);
    });
  }

  test('an empty file (schema 0) is migrated to the current schema', async () => {
    const path = join(dir, 'empty.db');
    new Database(path).close();
    expect(userVersion(path)).toBe(0);
    const storage = createSqliteStorage({ path });
    await storage.batch([{ type: 'put', key: ['k'], value: Uint8Array.of(1) }]);
    await storage.close();
    expect(userVersion(path)).toBe(SQLITE_SCHEMA_VERSION);
  });

  test('a file from a newer schema is refused with CORRUPTED_RECORD, not misread', () => {
    const path = join(dir, 'newer.db');
    const db = new Database(path);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    let error: unknown;
    try {
      createSqliteStorage({ path });
    } catch (e) {
      error = e;
    }
    expect(isDeadboltError(error, 'CORRUPTED_RECORD')).toBe(true);
  });
});
