/**
 * `@deadbolt/storage-sqlite`: Deadbolt's SQLite storage adapter.
 *
 * @example
 * ```ts
 * import { createSqliteStorage } from '@deadbolt/storage-sqlite';
 * const storage = createSqliteStorage({ path: 'alice.db' });
 * ```
 *
 * @module
 */
export { createSqliteStorage, SQLITE_SCHEMA_VERSION, type SqliteStorageOptions } from './sqlite-storage.js';
export { createStorageAdapter } from './adapter-module.js';
