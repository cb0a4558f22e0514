/**
 * The storage contract (version `deadbolt.storage.v2`; v2 added invariant 12, range windows).
 *
 * A small, atomic key/value store. Core owns every record's encoding, schema and
 * integrity check; an adapter stores opaque bytes under structured keys and promises only
 * what is written here. The conformance suite in `@deadbolt/test-kit` checks each
 * invariant below, and every adapter package runs it.
 *
 * Invariants (each is a conformance-suite case):
 *
 * 1. **Keys are arrays of strings** ({@link StorageKey}), 1 to {@link STORAGE_LIMITS}.maxKeySegments
 *    segments. Any string is a valid segment, including the empty string, `/`, `\u0000`,
 *    emoji and lone separators: adapters must not join segments into one string without an
 *    unambiguous encoding.
 * 2. **Prefix ranges are by whole segments.** `range(['a'])` returns `['a']`, `['a','x']`,
 *    but never `['ab']` or `['a\u0000']`-as-a-joined-string artefacts. `range([])` is
 *    rejected (callers must name a prefix).
 * 3. **Ordering.** `range` returns entries sorted by key, segment by segment, comparing
 *    segments by UTF-16 code units (the order IndexedDB uses for array keys); a shorter
 *    key sorts before its extensions.
 * 4. **Copies.** Values returned are fresh `Uint8Array`s that share no memory with the
 *    adapter's state or with the caller's input; mutating either never changes what is
 *    stored. Only the bytes a view covers are stored (a `subarray` stores its window, not
 *    the whole underlying buffer).
 * 5. **Atomic batches.** `batch` applies all its operations or none. If any operation is
 *    invalid (bad key, non-`Uint8Array` value, oversize value), nothing is applied and the
 *    promise rejects with a `UsageError` `INVALID_ARGUMENT`. Operations apply in order: a
 *    `put` then a `delete` of the same key leaves it absent. A backend failure rejects with
 *    a `StorageError` `STORAGE_FAILED`, and nothing is applied.
 * 6. **Deletion is real.** A deleted value is removed from the backend (not marked), so
 *    consumed key material does not linger (SECURITY.md D31). Deleting an absent key is
 *    not an error.
 * 7. **Values** up to {@link STORAGE_LIMITS}.maxValueBytes (4 MiB) are stored exactly; an
 *    empty value is a value (distinct from absent). Keys and values beyond the limits are
 *    rejected with `INVALID_ARGUMENT` (the shared checks in `validate.ts`). An adapter that
 *    wraps another and adds bytes to each value (encryption at rest adds 49) stores values
 *    up to `maxValueBytes` minus its overhead, and documents it.
 * 8. **Durability.** Once `batch` resolves, the data survives `close()` and reopening the
 *    same backend (for persistent adapters).
 * 9. **Close.** `close()` is idempotent. Every other method after `close()` rejects with a
 *    `UsageError` `CLOSED`.
 * 10. **Concurrency.** Concurrent calls are allowed; each `batch` is isolated (another
 *    caller never observes half of it).
 * 11. **Exclusive lock (optional).** A backend that can be shared (two tabs on one
 *    IndexedDB database, two processes on one SQLite file, two clients handed one memory
 *    store) is guarded by `exclusive(fn)`: `fn` runs while no other `exclusive` call on the
 *    same backend runs, through any adapter instance, in any tab or process. The result is
 *    `fn`'s, resolved or rejected, and the lock is released either way. The lock is
 *    advisory: `get`, `range` and `batch` work inside and outside `fn` as usual. It is not
 *    re-entrant (`fn` must not call `exclusive`). After `close()` it rejects with `CLOSED`.
 *    Core runs every state-changing step (a ratchet step, a prekey consumption) inside it,
 *    so two tabs or processes never fork a session (SECURITY.md D26); an adapter without it
 *    must be used by one client at a time.
 * 12. **Range windows** ({@link RangeOptions}). `after` and `before` keep only the keys
 *    under the prefix that sort strictly after, respectively before, the given key (in the
 *    order of invariant 3; the bound need not exist, nor start with the prefix); `reverse`
 *    returns them in descending order, so that with `limit` a caller reads the last entries
 *    (the newest messages of a conversation) without reading the rest; `limit` applies
 *    after the window and the direction. An invalid bound rejects with `INVALID_ARGUMENT`
 *    naming `options.after` or `options.before` (the shared {@link readRangeOptions}).
 *
 * @example
 * ```ts
 * await storage.batch([
 *   { type: 'put', key: ['session', 'bob', 'phone'], value: record },
 *   { type: 'delete', key: ['prekey', 'one-time', '17'] },
 * ]);
 * const sessions = await storage.range(['session', 'bob']);
 * ```
 *
 * @module
 */

/** The storage contract version an adapter implements. */
export const STORAGE_SPECIFICATION_VERSION = 'deadbolt.storage.v2';

/** A structured key: 1 to 8 string segments. */
export type StorageKey = readonly string[];

/** One stored entry. */
export interface StorageEntry {
  readonly key: StorageKey;
  readonly value: Uint8Array;
}

/** One operation of an atomic batch. */
export type StorageOp =
  | { readonly type: 'put'; readonly key: StorageKey; readonly value: Uint8Array }
  | { readonly type: 'delete'; readonly key: StorageKey };

/**
 * Options for {@link StorageAdapter.range} (invariant 12).
 *
 * @example
 * ```ts
 * // The 50 newest messages before the oldest one on screen, newest first:
 * const page = await storage.range(['msg', 'bob'], { before: ['msg', 'bob', oldestShown], reverse: true, limit: 50 });
 * ```
 */
export interface RangeOptions {
  /**
   * Return at most this many entries: the first ones in the order asked for (ascending
   * key order, or descending with `reverse`). A non-negative integer; `0` returns nothing
   * (unlike IndexedDB's `getAll(range, 0)`).
   */
  readonly limit?: number;
  /** Descending key order (with `limit`: the last entries under the prefix). Default `false`. */
  readonly reverse?: boolean;
  /** Only keys that sort strictly after this one. A valid key; it need not be stored. */
  readonly after?: StorageKey;
  /** Only keys that sort strictly before this one. A valid key; it need not be stored. */
  readonly before?: StorageKey;
}

/** Limits: every adapter accepts keys and values up to them and rejects anything beyond. */
export const STORAGE_LIMITS = Object.freeze({
  /** Segments in one key. */
  maxKeySegments: 8,
  /** UTF-16 code units in one segment. */
  maxSegmentLength: 512,
  /** Bytes in one value. */
  maxValueBytes: 1024 * 1024 * 4,
  /** Operations in one batch. */
  maxBatchOps: 10_000,
});

/**
 * An atomic key/value store. See the module documentation for every invariant.
 *
 * @example
 * ```ts
 * const storage: StorageAdapter = createMemoryStorage();
 * await storage.batch([{ type: 'put', key: ['a'], value: new Uint8Array([1]) }]);
 * (await storage.get(['a']))?.[0]; // 1
 * await storage.close();
 * ```
 */
export interface StorageAdapter {
  /** Which contract this adapter implements. */
  readonly specificationVersion: typeof STORAGE_SPECIFICATION_VERSION;
  /** The stored value, a fresh copy, or `undefined` if absent. */
  get(key: StorageKey): Promise<Uint8Array | undefined>;
  /** Every entry whose key starts with `prefix` (by whole segments), in key order, within the window of `options` (invariant 12). */
  range(prefix: StorageKey, options?: RangeOptions): Promise<StorageEntry[]>;
  /** Applies every operation, in order, atomically. */
  batch(ops: readonly StorageOp[]): Promise<void>;
  /** Releases the backend. Idempotent. */
  close(): Promise<void>;
  /**
   * Runs `fn` holding the backend's exclusive lock (invariant 11): no other `exclusive`
   * call on the same backend, from any instance, tab or process, runs meanwhile.
   * Optional; an adapter without it must be used by one client at a time.
   */
  exclusive?<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Compares two keys segment by segment by UTF-16 code units; a prefix sorts first.
 * Adapters may use it to order `range` results; it defines the contract's order.
 */
export function compareStorageKeys(a: StorageKey, b: StorageKey): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Whether `key` starts with `prefix`, by whole segments. */
export function keyHasPrefix(key: StorageKey, prefix: StorageKey): boolean {
  if (prefix.length > key.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/**
 * What a storage package exports so that a client can be configured by name
 * (`{ storage: { adapter: 'sqlite', options: { path } } }`) without code changes.
 */
export interface StorageAdapterModule {
  createStorageAdapter(options: Record<string, unknown>): StorageAdapter | Promise<StorageAdapter>;
}
