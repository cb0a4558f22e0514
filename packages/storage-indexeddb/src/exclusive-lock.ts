/**
 * The exclusive lock (storage contract invariant 11, SECURITY.md D26).
 *
 * - **Browsers**: Web Locks, `navigator.locks.request(lockName, { mode: 'exclusive' })`.
 *   Web Locks are per origin, so the lock excludes every tab, window and worker of the
 *   origin that opens the same database, and the browser releases it when a holder's tab
 *   closes or crashes: a dead holder never wedges the store. Each adapter instance first
 *   queues its own callers in memory (FIFO), so it has at most one request outstanding.
 * - **Node** (no Web Locks on Node 20): an in-process FIFO lock per IndexedDB factory and
 *   lock name. It excludes every adapter of this process over the same database, and
 *   nothing outside it. That is enough for fake-indexeddb, whose databases live in one
 *   process's memory; an IndexedDB shared between processes would need a real cross-process
 *   lock, which this fallback does not provide.
 *
 * @module
 */
import { createAsyncLock, type AsyncLock } from '@deadbolt/spec';

/**
 * The part of the Web Locks `LockManager` the adapter uses (`navigator.locks`).
 *
 * @example
 * ```ts
 * const locks: WebLockManager = navigator.locks;
 * ```
 */
export interface WebLockManager {
  request<T>(
    name: string,
    options: { mode: 'exclusive'; signal?: AbortSignal },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>;
}

/** @internal The platform's Web Locks, if any (browsers and workers; not Node 20). */
export function platformLocks(): WebLockManager | undefined {
  const locks = (globalThis as { navigator?: { locks?: WebLockManager } }).navigator?.locks;
  return typeof locks?.request === 'function' ? locks : undefined;
}

/**
 * In-process locks for the Node fallback, per factory (two fake-indexeddb factories are
 * two separate worlds) and lock name. Weakly held per factory; the inner map keeps one
 * small closure per lock name ever used with that factory.
 */
const processLocks = new WeakMap<object, Map<string, AsyncLock>>();

/** @internal The fallback lock shared by every adapter of this process over `factory` and `lockName`. */
export function processLock(factory: object, lockName: string): AsyncLock {
  let byName = processLocks.get(factory);
  if (byName === undefined) {
    byName = new Map();
    processLocks.set(factory, byName);
  }
  let lock = byName.get(lockName);
  if (lock === undefined) {
    lock = createAsyncLock();
    byName.set(lockName, lock);
  }
  return lock;
}
