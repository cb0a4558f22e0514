/**
 * The database's schema and its migrations.
 *
 * One object store, `entries`, with out-of-line keys: the key of an entry is its storage
 * key as an IndexedDB *array key* of strings (`['session', 'bob', 'phone']`), the value a
 * compact `ArrayBuffer`. IndexedDB orders array keys element by element and strings by
 * UTF-16 code units, a shorter array before its extensions: exactly the storage
 * contract's order (invariant 3), so `range` needs no sorting and no key encoding.
 *
 * Versions only go up. To change the schema, append a migration to {@link MIGRATIONS} and
 * bump {@link INDEXEDDB_SCHEMA_VERSION}: opening runs every migration from the stored
 * version + 1 to the new one, in one upgrade transaction, so a database written by any
 * earlier release upgrades step by step (SECURITY.md D30), and a failing migration aborts
 * the whole upgrade, leaving the old version intact. Then run `test/fixtures/generate.ts`
 * and commit the new `schema-vN.json` next to the earlier ones: `fixtures.test.ts` loads
 * every one of them through the migrations.
 *
 * @module
 */
import type { DBSchema, IDBPDatabase } from 'idb';

/**
 * The schema version this adapter creates and reads (the IndexedDB database version).
 * A database with a higher version was written by a newer release: opening it rejects
 * with `StorageError` `CORRUPTED_RECORD` rather than misreading it.
 *
 * @example
 * ```ts
 * import { INDEXEDDB_SCHEMA_VERSION } from '@deadbolt/storage-indexeddb';
 * const request = indexedDB.open('deadbolt:alice:laptop'); // without a version: never upgrades
 * request.onsuccess = () => console.log(request.result.version <= INDEXEDDB_SCHEMA_VERSION);
 * ```
 */
export const INDEXEDDB_SCHEMA_VERSION = 1;

/** The one object store. */
export const STORE_NAME = 'entries';

/** @internal The database's shape, for idb's typed wrappers. */
export interface DeadboltStorageSchema extends DBSchema {
  entries: {
    /** The storage key itself, as an array key of 1 to 8 strings. */
    key: string[];
    /** A compact copy of the stored bytes. */
    value: ArrayBuffer;
  };
}

/** @internal The open connection's type. */
export type StorageDatabase = IDBPDatabase<DeadboltStorageSchema>;

/**
 * @internal One migration: the step from version `n - 1` to `n`, at index `n - 1` of
 * {@link MIGRATIONS}.
 *
 * It runs inside the upgrade transaction, so it may only create or delete stores and
 * indexes and issue IndexedDB requests on `tx`, never await anything (SECURITY.md D27):
 * the transaction commits as soon as it has no pending request. It gets the plain
 * IndexedDB objects, not idb's promise wrappers, so there is nothing to await (and no
 * request promise left to reject unhandled if the upgrade aborts); its return type is
 * `undefined`, not `void`, so an `async` migration (which returns a promise) does not
 * type-check.
 */
export type Migration = (db: IDBDatabase, tx: IDBTransaction) => undefined;

/** @internal Every migration, in order: `MIGRATIONS[n - 1]` upgrades version `n - 1` to `n`. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  // Version 1: the entries store, keys out of line (the storage key is the IDB key).
  (db) => {
    db.createObjectStore(STORE_NAME);
    return undefined;
  },
]);

/**
 * @internal Runs the migrations from `oldVersion + 1` up to `newVersion`, synchronously,
 * inside the upgrade transaction. A throw aborts the upgrade (the caller aborts the
 * transaction), so a database is never left half-migrated.
 */
export function upgradeSchema(
  db: IDBDatabase,
  tx: IDBTransaction,
  oldVersion: number,
  newVersion: number,
  migrations: readonly Migration[] = MIGRATIONS,
): void {
  if (newVersion > migrations.length) {
    throw new Error(`no migration to schema version ${newVersion} (known: 1-${migrations.length})`);
  }
  for (let version = oldVersion + 1; version <= newVersion; version++) {
    (migrations[version - 1] as Migration)(db, tx);
  }
}
