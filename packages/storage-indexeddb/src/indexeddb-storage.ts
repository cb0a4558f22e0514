/**
 * The IndexedDB storage adapter, implementing the storage contract (`deadbolt.storage.v2`)
 * on idb 8.
 *
 * - **Keys** are IndexedDB array keys of strings, stored as they are in one object store
 *   (`schema.ts`). IndexedDB orders them exactly as the contract does (invariant 3), and a
 *   prefix `P` is the key range `[P, [...P, []])`: an extension `[...P, s, ...]` has a
 *   string where the upper bound has an array, and strings sort below arrays, while a
 *   key such as `['ab']` (for `P = ['a']`) differs within `P` itself and falls outside.
 *   So ranges go by whole segments (invariant 2) without any string joining.
 * - **Values** are stored as compact `ArrayBuffer` copies (only the bytes a view covers,
 *   invariant 4), and every read returns a fresh `Uint8Array` over IndexedDB's own clone.
 * - **A batch is one `readwrite` transaction with `durability: 'strict'`** (the browser
 *   flushes to disk before `complete`, invariant 8), so it applies entirely or not at all
 *   (invariant 5), and IndexedDB's transaction scheduling isolates it from concurrent reads
 *   (invariant 10).
 * - **Nothing but IndexedDB requests is awaited inside a transaction** (SECURITY.md D27):
 *   every argument is validated and copied *before* the transaction is created; then all
 *   requests are issued synchronously, and the only await is the transaction's own
 *   completion. A transaction commits as soon as it has no pending request when control
 *   returns to the event loop, so awaiting anything else (a lock, WebCrypto, a timer)
 *   between two requests would commit the first half of a batch on its own.
 * - **The exclusive lock** (invariant 11) is Web Locks in browsers and an in-process lock
 *   in Node (`exclusive-lock.ts`).
 * - **Connections closed underneath** (another tab deletes or upgrades the database, the
 *   user clears site data) make every later call reject with `StorageError`
 *   `STORAGE_FAILED`; the adapter never reopens by itself (`open-database.ts`).
 *
 * @module
 */
import {
  assertStorageBatch,
  assertStorageKey,
  createAsyncLock,
  InternalError,
  compareStorageKeys,
  keyHasPrefix,
  readRangeOptions,
  snapshotStorageBatch,
  snapshotStorageKey,
  STORAGE_SPECIFICATION_VERSION,
  StorageError,
  UsageError,
  type AsyncLock,
  type RangeOptions,
  type StorageAdapter,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
} from '@deadbolt/spec';
import { unwrap } from 'idb';
import { platformLocks, processLock, type WebLockManager } from './exclusive-lock.js';
import { openDatabase } from './open-database.js';
import { INDEXEDDB_SCHEMA_VERSION, STORE_NAME, type StorageDatabase } from './schema.js';
import { backendError, closedError, lostError, type LostReason } from './storage-errors.js';

/**
 * Options of {@link createIndexedDbStorage}.
 *
 * @example
 * ```ts
 * const options: IndexedDbStorageOptions = { name: 'deadbolt:alice:laptop' };
 * ```
 */
export interface IndexedDbStorageOptions {
  /**
   * The IndexedDB database name. One database per client (user and device); adapters
   * opened with the same name, in any tab of the origin, share the store and its lock.
   */
  readonly name: string;
  /**
   * The IndexedDB factory. Default `globalThis.indexedDB`. In Node pass a
   * fake-indexeddb `IDBFactory`; idb also needs the IndexedDB classes as globals there,
   * so `import 'fake-indexeddb/auto'` first.
   */
  readonly indexedDB?: IDBFactory;
  /** The Web Locks name of the exclusive lock. Default `deadbolt-storage-indexeddb:<name>`. */
  readonly lockName?: string;
  /**
   * The Web Locks manager. Default `navigator.locks` when present; `null` forces the
   * in-process fallback, which only excludes callers in this JavaScript realm.
   */
  readonly locks?: WebLockManager | null;
  /**
   * How long a schema upgrade may wait for other tabs that keep an older version open
   * before the adapter's calls reject with `StorageError` `STORAGE_BUSY`, in ms.
   * Default 10,000; 0 fails at once, `Infinity` waits as long as it takes. Only a schema
   * upgrade can be blocked, and only by a connection that does not close on
   * `versionchange` (this adapter's connections always do).
   */
  readonly blockedTimeoutMs?: number;
}

const DEFAULT_BLOCKED_TIMEOUT_MS = 10_000;
/** IndexedDB's `getAll` count is an unsigned long; beyond it, ask for everything. */
const MAX_IDB_COUNT = 0xffff_ffff;

/**
 * The one key range of a `range` call (storage invariant 12), or `undefined` when the
 * window is empty. Keys under `prefix` lie in `[P, [...P, []])` (module documentation);
 * `after` narrows the lower end only when it is `P` itself or under it (a bound below `P`
 * excludes nothing, one above every key under `P` excludes everything), and `before` the
 * upper end likewise. `IDBKeyRange.bound` throws for crossed bounds, so those are caught
 * here first.
 */
function windowKeyRange(prefix: StorageKey, after: StorageKey | undefined, before: StorageKey | undefined): IDBKeyRange | undefined {
  let lower: StorageKey = prefix;
  let lowerOpen = false;
  if (after !== undefined && compareStorageKeys(after, prefix) >= 0) {
    if (!keyHasPrefix(after, prefix)) return undefined; // after every key under the prefix
    lower = after;
    lowerOpen = true;
  }
  let upper: unknown[] = [...prefix, []];
  if (before !== undefined) {
    if (compareStorageKeys(before, prefix) <= 0) return undefined; // nothing under the prefix is below it
    if (keyHasPrefix(before, prefix)) {
      if (compareStorageKeys(before, lower) <= 0) return undefined;
      upper = [...before];
    }
  }
  return IDBKeyRange.bound([...lower], upper, lowerOpen, true);
}

function invalid(field: string, expected: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', { message: `${field}: expected ${expected}`, details: { field, expected } });
}

function corrupted(database: string, key: unknown, reason: string): StorageError<'CORRUPTED_RECORD'> {
  const name = Array.isArray(key) ? key.join('/') : `<${typeof key} key>`;
  return new StorageError('CORRUPTED_RECORD', {
    message: `IndexedDB database "${database}": stored entry ${name} is unusable: ${reason}`,
    details: { key: name, reason },
  });
}

/** A stored value, checked (SECURITY.md D29: never trust what is read back). */
function fromStored(database: string, key: unknown, value: unknown): Uint8Array {
  // IndexedDB hands out a fresh structured clone on every read: wrapping it shares no
  // memory with the store, with earlier reads or with the caller's input.
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw corrupted(database, key, `the value is a ${value === null ? 'null' : typeof value}, not an ArrayBuffer`);
}

function checkedKey(database: string, key: unknown): string[] {
  if (Array.isArray(key) && key.length >= 1 && key.every((s) => typeof s === 'string')) return key as string[];
  throw corrupted(database, key, 'the key is not an array of strings');
}

interface PreparedOp {
  readonly key: string[];
  /** A compact private copy; `undefined` for a delete. */
  readonly value: ArrayBuffer | undefined;
}

/**
 * Opens (or creates) an IndexedDB-backed storage adapter implementing the whole storage
 * contract, including the exclusive lock.
 *
 * The database opens in the background: the function returns at once, and a failure to
 * open (quota, a blocked upgrade, a newer schema) rejects the first calls. Closing
 * releases the connection; transactions already started still complete.
 *
 * @throws `UsageError` `INVALID_ARGUMENT` for a missing name or when no IndexedDB is
 *   available (in Node: `import 'fake-indexeddb/auto'`).
 *
 * @example
 * ```ts
 * import { createIndexedDbStorage } from '@deadbolt/storage-indexeddb';
 *
 * const storage = createIndexedDbStorage({ name: 'deadbolt:alice:laptop' });
 * await storage.exclusive?.(async () => {
 *   const current = await storage.get(['counter']);
 *   await storage.batch([{ type: 'put', key: ['counter'], value: Uint8Array.of((current?.[0] ?? 0) + 1) }]);
 * });
 * await storage.close();
 * ```
 */
export function createIndexedDbStorage(options: IndexedDbStorageOptions): StorageAdapter {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object');
  const { name } = options;
  if (typeof name !== 'string' || name.length === 0) throw invalid('options.name', 'a non-empty database name');
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (typeof factory?.open !== 'function') {
    throw invalid('options.indexedDB', "an IDBFactory (no global indexedDB here: in Node, import 'fake-indexeddb/auto')");
  }
  if (typeof (globalThis as { IDBKeyRange?: unknown }).IDBKeyRange !== 'function') {
    // idb and `range` use the IndexedDB classes as globals.
    throw invalid('options.indexedDB', "the IndexedDB globals (IDBKeyRange...): in Node, import 'fake-indexeddb/auto'");
  }
  const lockName = options.lockName ?? `deadbolt-storage-indexeddb:${name}`;
  if (typeof lockName !== 'string' || lockName.length === 0) throw invalid('options.lockName', 'a non-empty string');
  const blockedTimeoutMs = options.blockedTimeoutMs ?? DEFAULT_BLOCKED_TIMEOUT_MS;
  if (typeof blockedTimeoutMs !== 'number' || !(blockedTimeoutMs >= 0)) {
    throw invalid('options.blockedTimeoutMs', 'a non-negative number of milliseconds');
  }
  const webLocks = options.locks === null ? undefined : (options.locks ?? platformLocks());
  // Web Locks: this instance's callers queue in memory first, one request outstanding at
  // a time. Fallback: one in-process lock shared by every adapter over this database.
  const queue: AsyncLock = webLocks !== undefined ? createAsyncLock() : processLock(factory, lockName);
  // Aborts this instance's waiting Web Locks request when it is closed.
  const abortOnClose = new AbortController();

  let closed = false;
  let closing: Promise<void> | undefined;
  let lost: LostReason | undefined;

  const pending = openDatabase({
    factory,
    name,
    version: INDEXEDDB_SCHEMA_VERSION,
    blockedTimeoutMs,
    onLost: (reason) => {
      lost ??= reason;
    },
  });
  // Open failures are reported to the calls that need the connection; none may be
  // reported as an unhandled rejection when no call comes.
  pending.connection.catch(() => undefined);

  /** Throws unless the adapter can serve `operation`: `CLOSED` wins over a lost connection. */
  const ensureUsable = (operation: string): void => {
    if (closed) throw closedError();
    if (lost !== undefined) throw lostError(name, lost, operation);
  };

  const connection = async (operation: string): Promise<StorageDatabase> => {
    const db = await pending.connection;
    // Checked after the await and before the caller's synchronous `db.transaction()`:
    // nothing can close the adapter in between.
    ensureUsable(operation);
    return db;
  };

  const failure = (operation: string, cause: unknown): StorageError | UsageError => {
    if (closed) return closedError();
    if (lost !== undefined) return lostError(name, lost, operation);
    return backendError(name, operation, cause);
  };

  const readTransaction = (db: StorageDatabase, operation: string) => {
    try {
      return db.transaction(STORE_NAME, 'readonly');
    } catch (cause) {
      throw failure(operation, cause); // InvalidStateError: the connection is closing
    }
  };

  return {
    specificationVersion: STORAGE_SPECIFICATION_VERSION,

    async get(key: StorageKey): Promise<Uint8Array | undefined> {
      const k = snapshotStorageKey(key);
      ensureUsable('get');
      assertStorageKey(k);
      const db = await connection('get');
      const tx = readTransaction(db, 'get');
      let stored: unknown;
      try {
        // Awaiting `done` too handles its rejection (idb creates it for every transaction).
        [stored] = await Promise.all([tx.store.get(k as string[]), tx.done]);
      } catch (cause) {
        throw failure('get', cause);
      }
      return stored === undefined ? undefined : fromStored(name, k, stored);
    },

    async range(prefix: StorageKey, rangeOptions?: RangeOptions): Promise<StorageEntry[]> {
      const p = snapshotStorageKey(prefix);
      ensureUsable('range');
      assertStorageKey(p, 'prefix');
      const window = readRangeOptions(rangeOptions); // invariant 12
      const db = await connection('range');
      if (window.limit === 0) return []; // IndexedDB reads a count of 0 as "no limit"
      const bounds = windowKeyRange(p, window.after, window.before);
      if (bounds === undefined) return [];
      const count = window.limit > MAX_IDB_COUNT ? undefined : window.limit;
      const tx = readTransaction(db, 'range');
      let keys: unknown[];
      let values: unknown[];
      try {
        if (window.reverse) {
          // getAll has no direction: a 'prev' cursor reads the last entries first, and
          // stops after `limit` (only cursor requests are awaited inside the transaction).
          keys = [];
          values = [];
          for (let cursor = await tx.store.openCursor(bounds, 'prev'); cursor !== null && keys.length < window.limit; cursor = await cursor.continue()) {
            keys.push(cursor.key);
            values.push(cursor.value);
          }
          await tx.done;
        } else {
          // Two requests of one read-only transaction see one snapshot: no batch can land
          // between them, so keys and values pair up index by index.
          [keys, values] = await Promise.all([tx.store.getAllKeys(bounds, count), tx.store.getAll(bounds, count), tx.done]);
        }
      } catch (cause) {
        throw failure('range', cause);
      }
      if (keys.length !== values.length) {
        throw new InternalError(`IndexedDB range returned ${keys.length} keys and ${values.length} values`);
      }
      return keys.map((key, i) => ({ key: checkedKey(name, key), value: fromStored(name, key, values[i]) }));
    },

    async batch(ops: readonly StorageOp[]): Promise<void> {
      const snapshot = snapshotStorageBatch(ops);
      ensureUsable('batch');
      assertStorageBatch(snapshot); // every operation is checked before any is applied
      // Copied before the transaction exists (D27): `slice` is a compact copy of exactly
      // the bytes the view covers, and the caller's array is neither kept nor detached.
      const prepared: PreparedOp[] = snapshot.map((op) => ({
        key: Array.from(op.key),
        value: op.type === 'put' ? op.value.slice().buffer : undefined,
      }));
      const db = await connection('batch');
      if (prepared.length === 0) return;

      // ---- D27: from here on, nothing but IndexedDB until the transaction settles ----
      let tx;
      try {
        tx = db.transaction(STORE_NAME, 'readwrite', { durability: 'strict' });
      } catch (cause) {
        throw failure('batch', cause);
      }
      // Raw requests, not idb's promise per request: no 10,000 promises for a big batch,
      // and no rejection per request to handle. A failing request's error event aborts
      // the transaction (its default action); `done` then rejects with the transaction's
      // error, which for a full disk is the `QuotaExceededError`.
      const store = unwrap(tx.store);
      try {
        for (const op of prepared) {
          if (op.value === undefined) store.delete(op.key);
          else store.put(op.value, op.key);
        }
      } catch (cause) {
        // A synchronous throw part-way (DataError, DataCloneError; validation should make
        // them impossible). The requests already issued would otherwise commit on their
        // own, half a batch: abort them.
        tx.done.catch(() => undefined);
        try {
          tx.abort();
        } catch {
          // Already aborted or finished: nothing to roll back.
        }
        throw failure('batch', cause);
      }
      try {
        await tx.done;
      } catch (cause) {
        throw failure('batch', cause);
      }
    },

    async exclusive<T>(fn: () => Promise<T>): Promise<T> {
      ensureUsable('exclusive');
      if (typeof fn !== 'function') throw invalid('fn', 'a function returning a promise');
      return queue(async () => {
        ensureUsable('exclusive'); // closed while queued: do not run fn
        if (webLocks === undefined) return fn();
        let entered = false;
        try {
          return await webLocks.request(lockName, { mode: 'exclusive', signal: abortOnClose.signal }, async () => {
            entered = true;
            ensureUsable('exclusive'); // closed while waiting for another tab
            return fn();
          });
        } catch (e) {
          if (entered) throw e; // fn's own rejection, passed through untouched
          if (closed) throw closedError(); // our waiting request was aborted by close()
          throw backendError(name, 'exclusive', e);
        }
      });
    },

    close(): Promise<void> {
      if (closing === undefined) {
        closed = true;
        abortOnClose.abort();
        // An open still in progress (or blocked) is abandoned: calls waiting for it
        // reject with CLOSED, and a connection that opens later is closed at once.
        pending.abandon(closedError());
        closing = pending.connection.then(
          (db) => db.close(),
          () => undefined,
        );
      }
      return closing;
    },
  };
}
