/**
 * Watches every transaction and request made through fake-indexeddb's classes, to check
 * SECURITY.md D27 ("the IndexedDB adapter never awaits anything but IndexedDB inside a
 * transaction") from the outside.
 *
 * What it checks is the stronger property the adapter is built on: **every request of a
 * transaction is issued in the same synchronous run as `db.transaction()`**, before the
 * first microtask after it. The probe queues a microtask when a transaction is created;
 * any `await` in the adapter (of anything: a resolved promise, a lock, WebCrypto, a timer)
 * queues its continuation after that microtask, so a request issued after an `await`
 * finds the window closed and is recorded as `late`. fake-indexeddb itself would not
 * notice most of these (it only fails requests once the transaction has committed, which
 * takes a macrotask or two), and real browsers only notice macrotask awaits: this probe
 * fails on all of them.
 *
 * It also records each transaction's mode and durability, and whether it had completed
 * when the adapter's call resolved.
 */
import { IDBDatabase as FakeDatabase, IDBObjectStore as FakeStore } from 'fake-indexeddb';

export interface TransactionRecord {
  readonly mode: IDBTransactionMode;
  readonly durability: string | undefined;
  /** Requests issued on it. */
  requests: number;
  /** Requests issued after an await (after the creation's synchronous run): D27 violations. */
  readonly late: string[];
  /** Whether `complete` fired. */
  completed: boolean;
  /** Whether `abort` fired. */
  aborted: boolean;
}

const REQUEST_METHODS = ['get', 'getAll', 'getAllKeys', 'getKey', 'count', 'openCursor', 'openKeyCursor', 'put', 'add', 'delete', 'clear'] as const;

export interface TransactionProbe {
  readonly transactions: TransactionRecord[];
  /** Every late request across all transactions. */
  late(): string[];
  restore(): void;
}

/** Installs the probe on fake-indexeddb's prototypes; call `restore()` in `finally`. */
export function probeTransactions(): TransactionProbe {
  const transactions: TransactionRecord[] = [];
  const byTx = new WeakMap<object, { record: TransactionRecord; windowOpen: boolean }>();
  const dbProto = FakeDatabase.prototype as unknown as Record<string, unknown>;
  const storeProto = FakeStore.prototype as unknown as Record<string, unknown>;
  const originalTransaction = dbProto.transaction as (this: unknown, ...args: unknown[]) => IDBTransaction;
  const originals = new Map<string, unknown>(REQUEST_METHODS.map((m) => [m, storeProto[m]]));

  dbProto.transaction = function (this: unknown, ...args: unknown[]) {
    const tx = originalTransaction.apply(this, args);
    const options = args[2] as { durability?: string } | undefined;
    const record: TransactionRecord = {
      mode: tx.mode,
      durability: options?.durability,
      requests: 0,
      late: [],
      completed: false,
      aborted: false,
    };
    const state = { record, windowOpen: true };
    byTx.set(tx, state);
    transactions.push(record);
    queueMicrotask(() => {
      state.windowOpen = false;
    });
    tx.addEventListener('complete', () => {
      record.completed = true;
    });
    tx.addEventListener('abort', () => {
      record.aborted = true;
    });
    return tx;
  };
  for (const method of REQUEST_METHODS) {
    const original = originals.get(method) as (this: IDBObjectStore, ...args: unknown[]) => unknown;
    storeProto[method] = function (this: IDBObjectStore, ...args: unknown[]) {
      const state = byTx.get(this.transaction);
      if (state !== undefined) {
        state.record.requests++;
        if (!state.windowOpen) state.record.late.push(method);
      }
      return original.apply(this, args);
    };
  }
  return {
    transactions,
    late: () => transactions.flatMap((t) => t.late),
    restore() {
      dbProto.transaction = originalTransaction;
      for (const [method, original] of originals) storeProto[method] = original;
    },
  };
}
