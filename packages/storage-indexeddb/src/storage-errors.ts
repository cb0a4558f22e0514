/**
 * The errors this adapter rejects with, all from `@deadbolt/spec` (no new codes):
 *
 * | situation | error |
 * |---|---|
 * | a method after `close()` | `UsageError` `CLOSED` |
 * | the browser refused to store more (`QuotaExceededError`) | `StorageError` `STORAGE_FAILED`, message says quota; {@link isQuotaExceeded} |
 * | the connection was closed underneath: database deleted or upgraded elsewhere (`versionchange`), or closed by the browser (`close` event: site data cleared, disk failure) | `StorageError` `STORAGE_FAILED`, message says which and to open a new adapter |
 * | the schema upgrade stayed blocked by another tab's open connection | `StorageError` `STORAGE_BUSY` |
 * | the database holds a newer schema than this adapter, or not this adapter's store | `StorageError` `CORRUPTED_RECORD` |
 * | any other IndexedDB failure | `StorageError` `STORAGE_FAILED` with the `DOMException` as `cause` |
 *
 * Messages name the database and the operation, never keys' contents or values.
 *
 * @module
 */
import { isDeadboltError, StorageError, UsageError } from '@deadbolt/spec';

/** @internal Why the connection went away under the adapter. */
export type LostReason = 'versionchange' | 'terminated';

/** @internal After `close()`. */
export function closedError(): UsageError<'CLOSED'> {
  return new UsageError('CLOSED', { message: 'storage is closed', details: { what: 'storage' } });
}

/** @internal The connection was closed underneath; `operation` is the call that found out. */
export function lostError(database: string, reason: LostReason, operation: string): StorageError<'STORAGE_FAILED'> {
  const why =
    reason === 'versionchange'
      ? 'another connection deleted or upgraded it (another tab, or a newer version of the app)'
      : 'the browser closed the connection (site data cleared, or a storage failure)';
  return new StorageError('STORAGE_FAILED', {
    message: `IndexedDB database "${database}" is no longer open: ${why}. Create a new adapter; this one will not reopen it by itself, so that a deleted store is never silently recreated empty`,
    details: { operation },
  });
}

function domName(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && typeof (e as { name?: unknown }).name === 'string'
    ? (e as { name: string }).name
    : undefined;
}

/** @internal Translates an IndexedDB failure (usually a `DOMException`) into a `StorageError`. */
export function backendError(database: string, operation: string, cause: unknown): StorageError<'STORAGE_FAILED'> {
  if (domName(cause) === 'QuotaExceededError') {
    return new StorageError('STORAGE_FAILED', {
      message: `IndexedDB quota exceeded in database "${database}" (${operation}): the browser refused to store more for this origin, and nothing of this ${operation} was applied. Free space, or ask for persistent storage (navigator.storage.persist())`,
      details: { operation },
      cause,
    });
  }
  const name = domName(cause);
  return new StorageError('STORAGE_FAILED', {
    message: `IndexedDB ${operation} failed in database "${database}"${name === undefined ? '' : ` (${name})`}`,
    details: { operation },
    cause,
  });
}

/**
 * Whether `e` is this adapter's report of a full quota: a `StorageError`
 * `STORAGE_FAILED` caused by IndexedDB's `QuotaExceededError`. The batch was not applied;
 * the application may free space (or ask for `navigator.storage.persist()`) and retry.
 *
 * @example
 * ```ts
 * try {
 *   await storage.batch(ops);
 * } catch (e) {
 *   if (isQuotaExceeded(e)) showStorageFullBanner();
 *   throw e;
 * }
 * ```
 */
export function isQuotaExceeded(e: unknown): boolean {
  return isDeadboltError(e, 'STORAGE_FAILED') && domName(e.cause) === 'QuotaExceededError';
}
