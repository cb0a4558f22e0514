/**
 * `@deadbolt/storage-memory`: an in-memory implementation of Deadbolt's storage contract,
 * for tests, demos and clients that keep nothing on disk.
 *
 * @example
 * ```ts
 * import { createMemoryStorage } from '@deadbolt/storage-memory';
 *
 * const storage = createMemoryStorage();
 * await storage.batch([{ type: 'put', key: ['a'], value: new Uint8Array([1]) }]);
 * ```
 *
 * @module
 */
export {
  createMemoryStorage,
  createMemoryStorageBacking,
  type MemoryStorageBacking,
  type MemoryStorageOptions,
} from './memory-storage.js';
export { createStorageAdapter } from './adapter-module.js';
