/**
 * `@deadbolt/storage-indexeddb`: Deadbolt's IndexedDB storage adapter, for browsers (and
 * Node with fake-indexeddb, for tests).
 *
 * @example
 * ```ts
 * import { createIndexedDbStorage } from '@deadbolt/storage-indexeddb';
 * const storage = createIndexedDbStorage({ name: 'deadbolt:alice:laptop' });
 * ```
 *
 * @module
 */
export { createIndexedDbStorage, type IndexedDbStorageOptions } from './indexeddb-storage.js';
export { createStorageAdapter } from './adapter-module.js';
export { INDEXEDDB_SCHEMA_VERSION } from './schema.js';
export { isQuotaExceeded } from './storage-errors.js';
export type { WebLockManager } from './exclusive-lock.js';
