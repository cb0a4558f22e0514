/**
 * The configuration entry point (`StorageAdapterModule`): `{ adapter: 'sqlite', options: { path } }`.
 *
 * @module
 */
import type { StorageAdapter } from '@deadbolt/spec';
import { createSqliteStorage, type SqliteStorageOptions } from './sqlite-storage.js';

/**
 * Creates the adapter from a configuration object.
 *
 * @example
 * ```ts
 * const client = await createClient({ userId, deviceId, storage: { adapter: 'sqlite', options: { path: 'alice.db' } }, transport });
 * ```
 */
export function createStorageAdapter(options: Record<string, unknown>): StorageAdapter {
  return createSqliteStorage(options as unknown as SqliteStorageOptions);
}
