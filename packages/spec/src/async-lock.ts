/**
 * An in-process FIFO mutex, for adapters implementing the storage contract's exclusive
 * lock (invariant 11 of `storage.ts`) and for anything else that must run async sections
 * one at a time. Cross-process locks (Web Locks, file locks) wrap one of these so callers
 * in the same process queue in memory rather than polling the shared lock.
 *
 * @module
 */

/** Runs async sections one at a time, in call order. */
export type AsyncLock = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * Creates a FIFO mutex: each call waits for every earlier call's section to settle, then
 * runs `fn`; the result (or rejection) is `fn`'s. A rejected section releases the lock.
 *
 * @example
 * ```ts
 * const lock = createAsyncLock();
 * const [a, b] = await Promise.all([lock(async () => 1), lock(async () => 2)]); // in order
 * ```
 */
export function createAsyncLock(): AsyncLock {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn);
    // The next section waits for this one to settle, whatever its outcome.
    tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
}
