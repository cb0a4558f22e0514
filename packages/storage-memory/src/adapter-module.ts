/**
 * The configuration entry point (`StorageAdapterModule`): lets a client name this adapter
 * as `{ adapter: 'memory' }` instead of constructing it in code.
 *
 * @module
 */
import type { StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from './memory-storage.js';

/**
 * Creates a memory storage adapter from a configuration object. It takes no options: a
 * memory store starts empty and is gone when the process ends.
 *
 * @example
 * ```ts
 * const client = await createClient({ userId: 'a', deviceId: 'b', storage: { adapter: 'memory' }, transport });
 * ```
 */
export function createStorageAdapter(_options: Record<string, unknown> = {}): StorageAdapter {
  return createMemoryStorage();
}
