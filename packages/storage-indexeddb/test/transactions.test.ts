// SECURITY.md D27 and the shape of every transaction the adapter makes, observed from
// outside through fake-indexeddb's classes (support/transaction-probe.ts).
import 'fake-indexeddb/auto';
import { IDBFactory, IDBObjectStore as FakeStore } from 'fake-indexeddb';
import { isDeadboltError, type StorageOp } from '@deadbolt/spec';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createIndexedDbStorage, isQuotaExceeded } from '../src/index.js';
import { openDatabase } from '../src/open-database.js';
import { STORE_NAME } from '../src/schema.js';
import { rejectionOf } from './support/helpers.js';
import { probeTransactions, type TransactionProbe } from './support/transaction-probe.js';

const bytes = (...v: number[]) => Uint8Array.from(v);
const put = (key: string[], value: Uint8Array): StorageOp => ({ type: 'put', key, value });

let probe: TransactionProbe;
let indexedDB: IDBFactory;
let n = 0;
beforeEach(() => {
  indexedDB = new IDBFactory();
  probe = probeTransactions();
});
afterEach(() => probe.restore());

/** The transactions recorded while `run` ran. */
async function recorded(run: () => Promise<unknown>) {
  const before = probe.transactions.length;
  await run();
  return probe.transactions.slice(before);
}

describe('SECURITY.md D27: nothing but IndexedDB is awaited inside a transaction', () => {
  it('every request of every transaction is issued in the synchronous run that created it, for every method, alone and concurrently', async () => {
    const storage = createIndexedDbStorage({ name: `d27-${n++}`, indexedDB });
    const many = Array.from({ length: 2000 }, (_, i) => put(['many', String(i).padStart(4, '0')], bytes(i & 0xff)));
    await storage.batch(many);
    await Promise.all([
      storage.get(['many', '0001']),
      storage.range(['many']),
      storage.range(['many'], { limit: 3 }),
      storage.batch([put(['x'], bytes(1)), { type: 'delete', key: ['many', '0002'] }]),
      storage.exclusive!(async () => {
        const current = (await storage.get(['counter']))?.[0] ?? 0;
        await storage.batch([put(['counter'], bytes(current + 1))]);
      }),
      ...Array.from({ length: 20 }, (_, i) => storage.batch([put(['c', String(i)], bytes(i))])),
    ]);
    await storage.close();
    // The probe saw the adapter's work (so it is wired to the classes the adapter uses) ...
    expect(probe.transactions.length).toBeGreaterThanOrEqual(27);
    expect(probe.transactions.reduce((sum, t) => sum + t.requests, 0)).toBeGreaterThan(2000);
    // ... and not one request came after an await.
    expect(probe.late()).toEqual([]);
  });

  it('control: the probe flags a batch that awaits even an already-resolved promise between two requests', async () => {
    const db = await openDatabase({ factory: indexedDB, name: `control-${n++}`, version: 1, blockedTimeoutMs: 0, onLost: () => undefined }).connection;
    const tx = db.transaction(STORE_NAME, 'readwrite', { durability: 'strict' });
    void tx.store.put(new ArrayBuffer(1), ['a']);
    await Promise.resolve(); // the bug: any await between requests
    void tx.store.put(new ArrayBuffer(1), ['b']);
    await tx.done;
    db.close();
    expect(probe.late()).toEqual(['put']);
  });

  it('control: the probe flags a batch that awaits WebCrypto between two requests (what a MAC inside a transaction would do)', async () => {
    const db = await openDatabase({ factory: indexedDB, name: `control-${n++}`, version: 1, blockedTimeoutMs: 0, onLost: () => undefined }).connection;
    const tx = db.transaction(STORE_NAME, 'readwrite', { durability: 'strict' });
    tx.done.catch(() => undefined);
    const store = tx.store;
    void store.put(new ArrayBuffer(1), ['a']);
    await crypto.subtle.digest('SHA-256', new Uint8Array(8));
    try {
      // Depending on timing the transaction may already have committed, and this throws
      // TransactionInactiveError: half a batch landed. The probe flags it either way.
      void store.put(new ArrayBuffer(1), ['b']).catch(() => undefined);
    } catch {
      // committed already
    }
    db.close();
    expect(probe.late()).toEqual(['put']);
  });
});

describe('transactions', () => {
  it('a batch is exactly one readwrite transaction with durability strict, committed before batch resolves', async () => {
    const storage = createIndexedDbStorage({ name: `tx-${n++}`, indexedDB });
    await storage.get(['warm-up']); // the open is not part of what is counted
    const txs = await recorded(() =>
      storage.batch([put(['a'], bytes(1)), put(['b'], bytes(2)), { type: 'delete', key: ['a'] }, put(['c'], bytes(3))]),
    );
    expect(txs.map(({ mode, durability, requests, completed }) => ({ mode, durability, requests, completed }))).toEqual([
      { mode: 'readwrite', durability: 'strict', requests: 4, completed: true },
    ]);
    await storage.close();
  });

  it('get is one read-only request; range one read-only transaction of two requests (keys and values from one snapshot); limit 0 reads nothing', async () => {
    const storage = createIndexedDbStorage({ name: `tx-${n++}`, indexedDB });
    await storage.batch([put(['r', '1'], bytes(1)), put(['r', '2'], bytes(2))]);
    const summary = (txs: Awaited<ReturnType<typeof recorded>>) => txs.map((t) => `${t.mode}:${t.requests}`);
    expect(summary(await recorded(() => storage.get(['r', '1'])))).toEqual(['readonly:1']);
    expect(summary(await recorded(() => storage.range(['r'])))).toEqual(['readonly:2']);
    expect(summary(await recorded(() => storage.range(['r'], { limit: 0 })))).toEqual([]);
    expect(summary(await recorded(() => storage.batch([])))).toEqual([]);
    await storage.close();
  });

  it('a request that throws synchronously part-way aborts the whole batch: the requests already issued are rolled back', async () => {
    const storage = createIndexedDbStorage({ name: `tx-${n++}`, indexedDB });
    await storage.batch([put(['keep'], bytes(1))]);
    const proto = FakeStore.prototype as unknown as { put: (...a: unknown[]) => unknown };
    const original = proto.put;
    let calls = 0;
    // A put that cannot be cloned, as the third operation (validation makes this
    // impossible with real inputs; the rollback must not rely on that).
    proto.put = function (this: unknown, ...args: unknown[]) {
      if (++calls === 3) throw new DOMException('cannot clone', 'DataCloneError');
      return original.apply(this, args);
    };
    let error: unknown;
    try {
      error = await rejectionOf(storage.batch([put(['keep'], bytes(9)), put(['new1'], bytes(2)), put(['new2'], bytes(3)), put(['new3'], bytes(4))]));
    } finally {
      proto.put = original;
    }
    const batchTx = probe.transactions.at(-1);
    expect(batchTx?.requests, 'requests issued before the throw').toBe(2);
    expect(isDeadboltError(error, 'STORAGE_FAILED'), String(error)).toBe(true);
    expect((error as Error).cause).toMatchObject({ name: 'DataCloneError' });
    expect(Array.from((await storage.get(['keep'])) ?? [])).toEqual([1]);
    expect(await storage.get(['new1'])).toBeUndefined();
    expect(batchTx?.aborted).toBe(true);
    await storage.close();
  });

  it('quota exceeded at commit (the transaction aborts with QuotaExceededError): a typed StorageError, nothing applied', async () => {
    const storage = createIndexedDbStorage({ name: `tx-${n++}`, indexedDB });
    await storage.batch([put(['q', 'keep'], bytes(1))]);
    const proto = FakeStore.prototype as unknown as { put: (...a: unknown[]) => unknown };
    const original = proto.put;
    // How browsers report a full quota: the requests succeed, then the transaction
    // aborts with a QuotaExceededError. fake-indexeddb has no quota; its internal
    // `_abort(name)` is exactly that abort (it sets `transaction.error`).
    proto.put = function (this: IDBObjectStore, ...args: unknown[]) {
      const request = original.apply(this, args);
      if ((args[0] as ArrayBuffer).byteLength > 1024) {
        const tx = this.transaction as unknown as { _abort(name: string): void };
        queueMicrotask(() => tx._abort('QuotaExceededError'));
      }
      return request;
    };
    let error: unknown;
    try {
      error = await rejectionOf(storage.batch([put(['q', 'a'], bytes(1)), put(['q', 'big'], new Uint8Array(4096)), put(['q', 'z'], bytes(3))]));
    } finally {
      proto.put = original;
    }
    expect(isDeadboltError(error, 'STORAGE_FAILED'), String(error)).toBe(true);
    expect(isQuotaExceeded(error)).toBe(true);
    expect((error as Error).message).toMatch(/quota exceeded.*nothing of this batch was applied/);
    expect(isDeadboltError(error) && error.details).toEqual({ operation: 'batch' });
    expect((await storage.range(['q'])).map((e) => e.key)).toEqual([['q', 'keep']]);
    // Other failures are not reported as quota.
    expect(isQuotaExceeded(new Error('x'))).toBe(false);
    await storage.close();
  });
});
