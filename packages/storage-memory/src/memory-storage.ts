/**
 * An in-memory {@link StorageAdapter}: for tests, demos and ephemeral clients.
 *
 * Entries live in a `Map` keyed by an unambiguous encoding of the key, so `get` and each
 * `batch` operation cost O(d) on average for a key of d segments (plus the copy of the
 * value). A prefix index (every prefix of every key, by whole segments, to the entries
 * under it) lets `range` touch only its m matches, however many other entries the store
 * holds: a client calls `range` on every send (its sessions with the recipient), and a scan
 * of the whole store would grow with its history. The matches' key order is kept per
 * prefix once a `range` has sorted them (O(m log m)); an entry added or removed under the
 * prefix is put in or taken out at its place (a binary search, then a splice). A window (`after`, `before`, `limit`,
 * invariant 12) is then found by binary search, so paging back through a long history
 * costs O(log m + limit) a page.
 *
 * Every method body runs synchronously after its arguments are checked, so a `batch` can
 * never interleave with another call: batches are atomic and isolated (invariants 5 and
 * 10) without locks.
 *
 * @module
 */
import {
  assertStorageBatch,
  createAsyncLock,
  assertStorageKey,
  compareStorageKeys,
  copyBytes,
  readRangeOptions,
  snapshotStorageBatch,
  snapshotStorageKey,
  STORAGE_SPECIFICATION_VERSION,
  UsageError,
  type RangeOptions,
  type StorageAdapter,
  type StorageEntry,
  type StorageKey,
  type AsyncLock,
  type StorageOp,
} from '@deadbolt/spec';

interface StoredEntry {
  /** A frozen private copy of the key. */
  readonly key: StorageKey;
  /** A compact private copy of the value, never handed out. */
  readonly value: Uint8Array;
}

/** One backing: the entries, and the prefix index over them (see {@link encodePrefixes}). */
interface Entries {
  readonly byId: Map<string, StoredEntry>;
  /** The encoding of every prefix (1 to d segments) of every stored key → the ids under it. */
  readonly under: Map<string, Set<string>>;
  /**
   * The ids under a prefix in key order, for prefixes a `range` has read (a cache over
   * `under`, kept in step by `store` and `drop`, gone with the prefix's last entry).
   */
  readonly sorted: Map<string, string[]>;
}

function newEntries(): Entries {
  return { byId: new Map(), under: new Map(), sorted: new Map() };
}

/** The first index in `ids` (in key order) whose key is greater than `bound` (`orEqual`: not less than it). */
function searchKeys(entries: Entries, ids: readonly string[], bound: StorageKey, orEqual: boolean): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareStorageKeys((entries.byId.get(ids[mid] as string) as StoredEntry).key, bound);
    if (c > 0 || (orEqual && c === 0)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * A backing store that several memory adapters can share, one after the other, to
 * simulate closing and reopening a persistent backend. Opaque: only its size is visible.
 *
 * @example
 * ```ts
 * const backing = createMemoryStorageBacking();
 * const first = createMemoryStorage({ backing });
 * await first.batch([{ type: 'put', key: ['k'], value: new Uint8Array([1]) }]);
 * await first.close();
 * const second = createMemoryStorage({ backing });
 * await second.get(['k']); // Uint8Array [1]
 * backing.size; // 1
 * ```
 */
export interface MemoryStorageBacking {
  /** How many entries the backing holds. */
  readonly size: number;
}

/**
 * Options for {@link createMemoryStorage}.
 *
 * @example
 * ```ts
 * const options: MemoryStorageOptions = { backing: createMemoryStorageBacking() };
 * const storage = createMemoryStorage(options);
 * ```
 */
export interface MemoryStorageOptions {
  /**
   * Share one backing between instances, to simulate reopening a persistent store. The
   * backing outlives `close()`. Without it the adapter has a private backing, which
   * `close()` wipes.
   */
  readonly backing?: MemoryStorageBacking;
}

const backings = new WeakMap<MemoryStorageBacking, Entries>();
/** One exclusive lock per backing (invariant 11): every adapter over it shares the lock. */
const locks = new WeakMap<Entries, AsyncLock>();

function lockFor(entries: Entries): AsyncLock {
  let lock = locks.get(entries);
  if (lock === undefined) {
    lock = createAsyncLock();
    locks.set(entries, lock);
  }
  return lock;
}

/**
 * Creates an empty backing for {@link createMemoryStorage}'s `backing` option.
 *
 * @example
 * ```ts
 * const backing = createMemoryStorageBacking();
 * let storage = createMemoryStorage({ backing });
 * // ... write, then "restart":
 * await storage.close();
 * storage = createMemoryStorage({ backing }); // sees everything written before
 * ```
 */
export function createMemoryStorageBacking(): MemoryStorageBacking {
  const entries = newEntries();
  const backing: MemoryStorageBacking = Object.freeze({
    get size() {
      return entries.byId.size;
    },
  });
  backings.set(backing, entries);
  return backing;
}

/**
 * An injective encoding of a key as one string: each segment prefixed by its length.
 * (Joining with a separator would map `['a','b']` and `['a/b']` to the same entry.)
 */
function encodeKey(key: StorageKey): string {
  let out = '';
  for (const segment of key) out += `${segment.length}:${segment}`;
  return out;
}

/**
 * The encodings of every prefix of `key` by whole segments, from its first segment to the
 * key itself (d of them; `range` takes no empty prefix): because each segment carries its length, the encoding of a
 * prefix is exactly the encoding of the key cut after that segment, and two keys share an
 * encoded prefix only if they share that prefix of segments.
 */
function encodePrefixes(key: StorageKey): string[] {
  const out: string[] = [];
  let acc = '';
  for (const segment of key) {
    acc += `${segment.length}:${segment}`;
    out.push(acc);
  }
  return out;
}

/**
 * Creates an in-memory storage adapter implementing the whole storage contract
 * (`deadbolt.storage.v2`): values are copied in and out, `range` is ordered by
 * `compareStorageKeys`, `batch` validates every operation before applying any, and every
 * method rejects with `UsageError` `CLOSED` after `close()`.
 *
 * Deleted and overwritten values are zeroed before they are dropped, and `close()` wipes a
 * private backing, so consumed key material does not linger in the adapter's memory
 * (the JavaScript heap may still hold copies the caller made).
 *
 * @param options - `backing`: share entries with earlier instances (see
 *   {@link createMemoryStorageBacking})
 *
 * @example
 * ```ts
 * import { createMemoryStorage } from '@deadbolt/storage-memory';
 *
 * const storage = createMemoryStorage();
 * await storage.batch([
 *   { type: 'put', key: ['session', 'bob', 'phone'], value: new Uint8Array([1, 2]) },
 *   { type: 'put', key: ['session', 'bob', 'laptop'], value: new Uint8Array([3]) },
 * ]);
 * const sessions = await storage.range(['session', 'bob']); // laptop, then phone
 * await storage.close();
 * ```
 */
export function createMemoryStorage(options: MemoryStorageOptions = {}): StorageAdapter {
  const shared = options.backing;
  let entries: Entries;
  if (shared === undefined) {
    entries = newEntries();
  } else {
    const found = backings.get(shared);
    if (found === undefined) {
      throw new UsageError('INVALID_ARGUMENT', {
        message: 'options.backing: expected a backing from createMemoryStorageBacking()',
        details: { field: 'options.backing', expected: 'a backing from createMemoryStorageBacking()' },
      });
    }
    entries = found;
  }
  let closed = false;
  const lock = lockFor(entries);

  function assertOpen(): void {
    if (closed) throw new UsageError('CLOSED', { message: 'storage: used after close()', details: { what: 'storage' } });
  }

  function drop(id: string): void {
    const old = entries.byId.get(id);
    if (old === undefined) return;
    for (const prefix of encodePrefixes(old.key)) {
      const order = entries.sorted.get(prefix);
      if (order !== undefined) order.splice(searchKeys(entries, order, old.key, true), 1); // found while `old` is still in byId
      const ids = entries.under.get(prefix);
      if (ids === undefined) continue;
      ids.delete(id);
      if (ids.size === 0) {
        entries.under.delete(prefix);
        entries.sorted.delete(prefix);
      }
    }
    old.value.fill(0);
    entries.byId.delete(id);
  }

  function store(id: string, entry: StoredEntry): void {
    entries.byId.set(id, entry);
    for (const prefix of encodePrefixes(entry.key)) {
      const order = entries.sorted.get(prefix);
      if (order !== undefined) order.splice(searchKeys(entries, order, entry.key, false), 0, id);
      let ids = entries.under.get(prefix);
      if (ids === undefined) {
        ids = new Set();
        entries.under.set(prefix, ids);
      }
      ids.add(id);
    }
  }

  const adapter: StorageAdapter = {
    specificationVersion: STORAGE_SPECIFICATION_VERSION,

    async get(key: StorageKey): Promise<Uint8Array | undefined> {
      assertOpen();
      const k = snapshotStorageKey(key);
      assertStorageKey(k);
      const entry = entries.byId.get(encodeKey(k));
      return entry === undefined ? undefined : copyBytes(entry.value);
    },

    async range(prefix: StorageKey, rangeOptions?: RangeOptions): Promise<StorageEntry[]> {
      assertOpen();
      const p = snapshotStorageKey(prefix);
      assertStorageKey(p, 'prefix');
      const window = readRangeOptions(rangeOptions); // invariant 12: limit, reverse, after, before
      if (window.limit === 0) return [];
      const id = encodeKey(p);
      const under = entries.under.get(id);
      if (under === undefined) return [];
      let ids = entries.sorted.get(id);
      if (ids === undefined) {
        // Cached only for prefixes that hold entries (those in `under`), so the cache is
        // never larger than the prefix index itself: ranges over prefixes that hold
        // nothing (any id a caller asks about) leave nothing behind.
        const byKey = (a: string, b: string): number => compareStorageKeys((entries.byId.get(a) as StoredEntry).key, (entries.byId.get(b) as StoredEntry).key);
        ids = [...under].sort(byKey);
        entries.sorted.set(id, ids);
      }
      // The window's ends by binary search, then at most `limit` steps from the near end.
      const first = window.after === undefined ? 0 : searchKeys(entries, ids, window.after, false);
      const end = window.before === undefined ? ids.length : searchKeys(entries, ids, window.before, true);
      const count = Math.max(0, Math.min(end - first, window.limit));
      const out: StorageEntry[] = [];
      for (let i = 0; i < count; i++) {
        const entry = entries.byId.get(ids[window.reverse ? end - 1 - i : first + i] as string) as StoredEntry;
        out.push({ key: [...entry.key], value: copyBytes(entry.value) });
      }
      return out;
    },

    async batch(ops: readonly StorageOp[]): Promise<void> {
      assertOpen();
      const checked = snapshotStorageBatch(ops); // frozen private keys: stored as they are
      assertStorageBatch(checked); // invariant 5: every operation checked before any applies
      // Encode and copy everything first; the loop that changes the map cannot throw.
      const staged = checked.map((op) =>
        op.type === 'put'
          ? { id: encodeKey(op.key), entry: { key: op.key, value: copyBytes(op.value) } as StoredEntry }
          : { id: encodeKey(op.key), entry: undefined },
      );
      for (const { id, entry } of staged) {
        const old = entries.byId.get(id);
        if (entry !== undefined && old !== undefined) {
          // An overwrite (a session record after every message): same key, so the prefix
          // index already holds it; only the value changes, the old one wiped.
          old.value.fill(0);
          entries.byId.set(id, entry);
        } else if (entry !== undefined) {
          store(id, entry);
        } else {
          drop(id);
        }
      }
    },

    async exclusive<T>(fn: () => Promise<T>): Promise<T> {
      assertOpen();
      return lock(fn);
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (shared === undefined) {
        // A store of its own is emptied: wipe the values, then let the index go at once.
        for (const entry of entries.byId.values()) entry.value.fill(0);
        entries.byId.clear();
        entries.under.clear();
        entries.sorted.clear();
      }
    },
  };
  return Object.freeze(adapter);
}
