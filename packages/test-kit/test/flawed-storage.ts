/**
 * A small reference storage adapter for the test-kit's own tests, with switches that
 * reproduce the mistakes naive adapters make. With no flaws it must pass the whole suite;
 * with each flaw, the cases written for that mistake must fail.
 */
import {
  assertStorageBatch,
  assertStorageKey,
  assertStorageValue,
  compareStorageKeys,
  keyHasPrefix,
  readRangeOptions,
  STORAGE_SPECIFICATION_VERSION,
  UsageError,
  createAsyncLock,
  type AsyncLock,
  type CheckedRangeOptions,
  type StorageAdapter,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
} from '@deadbolt/spec';

export interface Flaws {
  /** Keys joined with '/', prefixes matched as strings. */
  joinKeys?: boolean;
  /** Stores the caller's array itself. */
  noCopyIn?: boolean;
  /** Returns the stored array itself. */
  noCopyOut?: boolean;
  /** Stores the whole underlying buffer of a view. */
  wholeBuffer?: boolean;
  /** Returns Node Buffers (a Uint8Array subclass). */
  returnsBuffer?: boolean;
  /** Validates and applies each operation in turn. */
  applyAsValidated?: boolean;
  /** Validates types but ignores unknown operation types. */
  ignoreUnknownOps?: boolean;
  /** Sorts by code points (as UTF-8 byte order does). */
  codePointOrder?: boolean;
  /** Does not sort at all (insertion order). */
  unsorted?: boolean;
  /** `limit: 0` returns everything (as IndexedDB's getAll count 0 does). */
  limitZeroMeansAll?: boolean;
  /** Accepts `range([])`. */
  acceptEmptyPrefix?: boolean;
  /** Applies deletes before puts. */
  deletesFirst?: boolean;
  /** Treats an empty value as a delete. */
  emptyIsAbsent?: boolean;
  /** Does not check for close. */
  ignoreClose?: boolean;
  /** Throws synchronously (not a rejected promise) after close. */
  throwSyncAfterClose?: boolean;
  /** Second close rejects. */
  closeTwiceFails?: boolean;
  /** Yields to the event loop between operations of a batch. */
  yieldBetweenOps?: boolean;
  /** Read-modify-write of the whole store across an await (loses concurrent writes). */
  lostUpdates?: boolean;
  /** Reopen starts empty. */
  forgetOnReopen?: boolean;
  /** Truncates values to 1 MiB - 1 (a too-small column). */
  truncateLarge?: boolean;
  /** Detaches the caller's buffer (transfers it). */
  transferInput?: boolean;
  /** `exclusive` just runs `fn`: no lock at all. */
  noLock?: boolean;
  /** `exclusive` locks per adapter instance, not per backend (another tab is not excluded). */
  lockPerInstance?: boolean;
  /** `exclusive` runs `fn` after close. */
  lockIgnoresClose?: boolean;
  /** Ignores `reverse`, `after` and `before` (a v1 adapter). */
  ignoresWindow?: boolean;
  /** Takes the first `limit` entries, then reverses them. */
  limitBeforeReverse?: boolean;
  /** `after` and `before` include the bound itself. */
  inclusiveBounds?: boolean;
  /** Accepts any `reverse`, `after` and `before` without checking them. */
  uncheckedWindow?: boolean;
}

type Store = Map<string, { key: StorageKey; value: Uint8Array }>;

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function codePointCompare(a: StorageKey, b: StorageKey): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = Array.from(a[i] as string, (c) => c.codePointAt(0) as number);
    const y = Array.from(b[i] as string, (c) => c.codePointAt(0) as number);
    const m = Math.min(x.length, y.length);
    for (let j = 0; j < m; j++) if (x[j] !== y[j]) return (x[j] as number) - (y[j] as number);
    if (x.length !== y.length) return x.length - y.length;
  }
  return a.length - b.length;
}

const storeLocks = new WeakMap<Store, AsyncLock>();

export function createFlawedStorage(flaws: Flaws = {}, store: Store = new Map()): StorageAdapter {
  let closed = false;
  if (!storeLocks.has(store)) storeLocks.set(store, createAsyncLock());
  const lock = flaws.lockPerInstance ? createAsyncLock() : (storeLocks.get(store) as AsyncLock);
  const id = (key: StorageKey) => (flaws.joinKeys ? key.join('/') : JSON.stringify(key));
  const copyIn = (v: Uint8Array): Uint8Array => {
    if (flaws.noCopyIn) return v;
    if (flaws.wholeBuffer) return new Uint8Array(v.buffer.slice(0));
    if (flaws.transferInput) return new Uint8Array(structuredClone(v.buffer, { transfer: [v.buffer] })).subarray(v.byteOffset, v.byteOffset + v.byteLength).slice();
    if (flaws.truncateLarge) return v.slice(0, 1024 * 1024 - 1);
    return v.slice();
  };
  const copyOut = (v: Uint8Array): Uint8Array => {
    if (flaws.noCopyOut) return v;
    if (flaws.returnsBuffer) return Buffer.from(v);
    return v.slice();
  };
  const checkOpen = () => {
    if (closed && !flaws.ignoreClose) throw new UsageError('CLOSED', { details: { what: 'storage' } });
  };
  const apply = (op: StorageOp) => {
    if (op.type === 'put') {
      if (flaws.emptyIsAbsent && op.value.length === 0) store.delete(id(op.key));
      else store.set(id(op.key), { key: [...op.key], value: copyIn(op.value) });
    } else if (op.type === 'delete') {
      store.delete(id(op.key));
    }
  };
  return {
    specificationVersion: STORAGE_SPECIFICATION_VERSION,
    async get(key) {
      checkOpen();
      assertStorageKey(key);
      const entry = store.get(id(key));
      return entry && copyOut(entry.value);
    },
    range(prefix, options) {
      if (flaws.throwSyncAfterClose) checkOpen();
      return (async () => {
        checkOpen();
        if (!(flaws.acceptEmptyPrefix && Array.isArray(prefix) && prefix.length === 0)) assertStorageKey(prefix, 'prefix');
        const joined = prefix.join('/');
        const matches = [...store.values()].filter((e) =>
          flaws.joinKeys ? e.key.join('/').startsWith(joined) : keyHasPrefix(e.key, prefix),
        );
        const compare = flaws.codePointOrder ? codePointCompare : compareStorageKeys;
        if (!flaws.unsorted) matches.sort((a, b) => compare(a.key, b.key));
        const window = flaws.uncheckedWindow ? ((options ?? {}) as CheckedRangeOptions) : readRangeOptions(options);
        const inside = (key: StorageKey): boolean => {
          if (flaws.ignoresWindow) return true;
          const edge = flaws.inclusiveBounds ? 0 : 1;
          return (window.after === undefined || compare(key, window.after) >= edge) && (window.before === undefined || compare(window.before, key) >= edge);
        };
        const windowed = matches.filter((e) => inside(e.key));
        const reverse = window.reverse === true && !flaws.ignoresWindow;
        if (reverse && !flaws.limitBeforeReverse) windowed.reverse();
        const limit = options?.limit;
        const limited = limit === undefined || (limit === 0 && flaws.limitZeroMeansAll) ? windowed : windowed.slice(0, limit);
        if (reverse && flaws.limitBeforeReverse) limited.reverse();
        return limited.map((e): StorageEntry => ({ key: [...e.key], value: copyOut(e.value) }));
      })();
    },
    async batch(ops) {
      checkOpen();
      if (flaws.lostUpdates) {
        assertStorageBatch(ops);
        // Read the whole store, await (as a file or a remote blob would), write it back.
        const snapshot = new Map(store);
        await tick();
        store.clear();
        for (const [k, v] of snapshot) store.set(k, v);
        for (const op of ops) apply(op);
        return;
      }
      if (flaws.applyAsValidated) {
        if (!Array.isArray(ops)) throw new UsageError('INVALID_ARGUMENT', { details: { field: 'ops', expected: 'array' } });
        for (const op of ops as unknown[]) {
          const o = op as StorageOp;
          assertStorageKey(o?.key);
          if (o.type === 'put') assertStorageValue(o.value);
          apply(o);
        }
        return;
      }
      if (flaws.ignoreUnknownOps) {
        if (!Array.isArray(ops)) throw new UsageError('INVALID_ARGUMENT', { details: { field: 'ops', expected: 'array' } });
        for (const op of ops as StorageOp[]) {
          if (op?.type === 'put' || op?.type === 'delete') {
            assertStorageKey(op.key);
            if (op.type === 'put') assertStorageValue(op.value);
          }
        }
      } else {
        assertStorageBatch(ops);
      }
      const ordered = flaws.deletesFirst ? [...ops].sort((a, b) => (a.type === b.type ? 0 : a.type === 'delete' ? -1 : 1)) : ops;
      for (const op of ordered) {
        apply(op);
        if (flaws.yieldBetweenOps) await tick();
      }
    },
    async exclusive<T>(fn: () => Promise<T>): Promise<T> {
      if (!flaws.lockIgnoresClose) checkOpen();
      return flaws.noLock ? fn() : lock(fn);
    },
    async close() {
      if (closed && flaws.closeTwiceFails) throw new Error('already closed');
      closed = true;
    },
  };
}

/** A conformance factory over {@link createFlawedStorage}, with reopen over the same store. */
export function flawedFactory(flaws: Flaws = {}) {
  const stores = new WeakMap<StorageAdapter, Store>();
  const open = (store: Store) => {
    const storage = createFlawedStorage(flaws, store);
    stores.set(storage, store);
    return storage;
  };
  return {
    async create() {
      return open(new Map());
    },
    async openShared(first: StorageAdapter) {
      return open(stores.get(first) as Store);
    },
    async reopen(previous: StorageAdapter) {
      await previous.close();
      return open(flaws.forgetOnReopen ? new Map() : (stores.get(previous) as Store));
    },
  };
}
