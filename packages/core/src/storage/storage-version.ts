/**
 * The storage contract version check, shared by `createClient` and `createEncryptedStorage`.
 *
 * @module
 */
import { STORAGE_SPECIFICATION_VERSION, UsageError, type StorageAdapter } from '@deadbolt/spec';

/**
 * Refuses an adapter of another contract version: a `deadbolt.storage.v1` adapter would
 * ignore the range windows of v2 (invariant 12) and hand history the wrong page, silently.
 * A wrapper must check what it wraps, or it would pass an old adapter off as current.
 */
export function checkedStorage(storage: StorageAdapter): StorageAdapter {
  const version: unknown = (storage as Partial<StorageAdapter> | null)?.specificationVersion;
  if (version !== STORAGE_SPECIFICATION_VERSION) {
    throw new UsageError('INVALID_ARGUMENT', {
      message: `storage: the adapter implements ${typeof version === 'string' ? version : 'no storage contract'}; this client needs ${STORAGE_SPECIFICATION_VERSION}`,
      details: { field: 'storage', expected: `a ${STORAGE_SPECIFICATION_VERSION} adapter` },
    });
  }
  return storage;
}
