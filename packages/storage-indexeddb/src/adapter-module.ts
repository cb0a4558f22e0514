/**
 * The configuration entry point (`StorageAdapterModule`):
 * `{ adapter: 'indexeddb', options: { name: 'deadbolt:alice:laptop' } }`.
 *
 * @module
 */
import type { StorageAdapter } from '@deadbolt/spec';
import { createIndexedDbStorage, type IndexedDbStorageOptions } from './indexeddb-storage.js';

/**
 * Creates the adapter from a configuration object: `name` (required), and optionally
 * `lockName` and `blockedTimeoutMs`, as in {@link createIndexedDbStorage}.
 *
 * @example
 * ```ts
 * const client = await createClient({
 *   userId: 'alice',
 *   deviceId: 'laptop',
 *   storage: { adapter: 'indexeddb', options: { name: 'deadbolt:alice:laptop' } },
 *   transport,
 * });
 * ```
 */
export function createStorageAdapter(options: Record<string, unknown>): StorageAdapter {
  return createIndexedDbStorage(options as unknown as IndexedDbStorageOptions);
}
