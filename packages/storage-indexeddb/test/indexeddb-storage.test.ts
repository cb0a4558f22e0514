// Backend-specific behaviour in Node, on fake-indexeddb: the connection's life (closed
// underneath, blocked upgrades, newer schemas), migrations, stored data that cannot be
// trusted, options, and the exclusive lock's two implementations.
import 'fake-indexeddb/auto';
import { forceCloseDatabase, IDBFactory } from 'fake-indexeddb';
import { isDeadboltError, type StorageAdapter, type StorageOp } from '@deadbolt/spec';
import { describe, expect, it } from 'vitest';
import { createIndexedDbStorage, INDEXEDDB_SCHEMA_VERSION, type WebLockManager } from '../src/index.js';
import { openDatabase } from '../src/open-database.js';
import { MIGRATIONS, STORE_NAME, type Migration } from '../src/schema.js';
import { deleteOrFailIfBlocked, recordingFactory, rejectionOf, versionOf } from './support/helpers.js';

const bytes = (...v: number[]) => Uint8Array.from(v);
const put = (key: string[], value: Uint8Array): StorageOp => ({ type: 'put', key, value });
let n = 0;
const fresh = () => ({ indexedDB: new IDBFactory(), name: `db-${n++}` });

/** A test-only schema version 2: writes one marker entry. */
const v2: Migration = (_db, tx) => {
  tx.objectStore(STORE_NAME).put(bytes(2).buffer, ['migrated']);
  return undefined;
};

function openV2(factory: IDBFactory, name: string, blockedTimeoutMs: number, migrations: readonly Migration[] = [...MIGRATIONS, v2]) {
  return openDatabase({ factory, name, version: 2, migrations, blockedTimeoutMs, onLost: () => undefined });
}

/** Opens `name` raw at `version` and never closes on `versionchange`: a tab running an old build. */
function holdRaw(factory: IDBFactory, name: string, version: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = factory.open(name, version);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE_NAME);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function expectAllLost(storage: StorageAdapter, pattern: RegExp): Promise<void> {
  for (const [what, call] of [
    ['get', () => storage.get(['k'])],
    ['range', () => storage.range(['k'])],
    ['batch', () => storage.batch([put(['k'], bytes(1))])],
    ['exclusive', () => storage.exclusive!(async () => 1)],
  ] as const) {
    const error = await rejectionOf(call());
    expect(isDeadboltError(error, 'STORAGE_FAILED') && error.kind === 'storage', `${what}: ${String(error)}`).toBe(true);
    expect((error as Error).message, what).toMatch(pattern);
    expect(isDeadboltError(error) && error.details, what).toEqual({ operation: what });
  }
}

describe('the connection closed underneath', () => {
  it('deleted by another connection: the adapter closes itself so the delete is not blocked, then every call rejects with STORAGE_FAILED (never recreates an empty store)', async () => {
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    await storage.batch([put(['k'], bytes(1))]);
    await deleteOrFailIfBlocked(indexedDB, name);
    await expectAllLost(storage, /no longer open: another connection deleted or upgraded it/);
    // Nothing was recreated behind the caller's back.
    expect((await indexedDB.databases()).map((d) => d.name)).not.toContain(name);
    await storage.close();
    const afterClose = await rejectionOf(storage.get(['k']));
    expect(isDeadboltError(afterClose, 'CLOSED')).toBe(true);
  });

  it('upgraded by a newer build in another tab: not blocked, the data and the migration land, this adapter reports the loss', async () => {
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    await storage.batch([put(['kept'], bytes(7))]);
    // blockedTimeoutMs 0: a `blocked` event would fail the upgrade at once.
    const db = await openV2(indexedDB, name, 0).connection;
    expect(db.version).toBe(2);
    expect(Array.from(new Uint8Array((await db.get(STORE_NAME, ['kept'])) as ArrayBuffer))).toEqual([7]);
    expect(Array.from(new Uint8Array((await db.get(STORE_NAME, ['migrated'])) as ArrayBuffer))).toEqual([2]);
    db.close();
    await expectAllLost(storage, /another connection deleted or upgraded it/);
    await storage.close();
  });

  it('closed by the browser (the `close` event: site data cleared): every later call rejects with STORAGE_FAILED', async () => {
    const { factory, connections } = recordingFactory();
    const storage = createIndexedDbStorage({ name: 'terminated', indexedDB: factory });
    await storage.batch([put(['k'], bytes(1))]);
    expect(connections).toHaveLength(1);
    forceCloseDatabase(connections[0] as never);
    await expectAllLost(storage, /the browser closed the connection/);
    await storage.close();
  });

  it('a batch in flight when another connection deletes the database still completes (close waits for it)', async () => {
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    await storage.get(['warm-up']);
    // The batch creates its transaction within microtasks; `versionchange` arrives as a
    // later task and closes the connection, and IndexedDB lets the started transaction
    // finish before the delete proceeds.
    const batch = storage.batch([put(['in-flight'], bytes(1))]);
    const deleted = deleteOrFailIfBlocked(indexedDB, name);
    await batch;
    await deleted;
    await storage.close();
  });
});

describe('opening and schema versions', () => {
  it(`the schema version is ${INDEXEDDB_SCHEMA_VERSION}, with one migration per version`, async () => {
    expect(INDEXEDDB_SCHEMA_VERSION).toBe(1);
    expect(MIGRATIONS).toHaveLength(INDEXEDDB_SCHEMA_VERSION);
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    await storage.get(['k']);
    await storage.close();
    expect(await versionOf(indexedDB, name)).toBe(INDEXEDDB_SCHEMA_VERSION);
  });

  it('a database with a newer schema rejects every call with CORRUPTED_RECORD (newer schema) and is left untouched', async () => {
    const { indexedDB, name } = fresh();
    (await holdRaw(indexedDB, name, 5)).close();
    const storage = createIndexedDbStorage({ name, indexedDB });
    const error = await rejectionOf(storage.get(['k']));
    expect(isDeadboltError(error, 'CORRUPTED_RECORD') && error.kind, String(error)).toBe('storage');
    expect(isDeadboltError(error) && error.details).toEqual({ key: `indexeddb:${name}`, reason: 'newer schema' });
    expect(isDeadboltError(await rejectionOf(storage.batch([put(['k'], bytes(1))])), 'CORRUPTED_RECORD')).toBe(true);
    await storage.close();
    expect(await versionOf(indexedDB, name)).toBe(5);
  });

  it('a database of the same name without our store (not a Deadbolt database) is reported, not used', async () => {
    const { indexedDB, name } = fresh();
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.open(name, 1); // version 1, no store
      request.onsuccess = () => {
        request.result.close();
        resolve();
      };
      request.onerror = () => reject(request.error);
    });
    const storage = createIndexedDbStorage({ name, indexedDB });
    const error = await rejectionOf(storage.range(['k']));
    expect(isDeadboltError(error) && error.details).toEqual({ key: `indexeddb:${name}`, reason: `no ${STORE_NAME} store` });
    await storage.close();
    await deleteOrFailIfBlocked(indexedDB, name); // the connection was closed, not leaked
  });

  it('a version 1 database upgrades to a later schema through its migration, keeping every entry', async () => {
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    await storage.batch([put(['a'], bytes(1)), put(['b', 'c'], bytes(2))]);
    await storage.close();
    const db = await openV2(indexedDB, name, 0).connection;
    expect(await db.getAllKeys(STORE_NAME)).toEqual([['a'], ['b', 'c'], ['migrated']]);
    db.close();
  });

  it('a failing migration aborts the whole upgrade: STORAGE_FAILED (upgrade), the database keeps its version and data', async () => {
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    await storage.batch([put(['a'], bytes(1))]);
    await storage.close();
    const broken: Migration = (_db, tx) => {
      tx.objectStore(STORE_NAME).put(bytes(9).buffer, ['half-done']);
      throw new Error('migration bug');
    };
    const error = await rejectionOf(openV2(indexedDB, name, 0, [...MIGRATIONS, broken]).connection);
    expect(isDeadboltError(error, 'STORAGE_FAILED') && error.details).toEqual({ operation: 'upgrade' });
    expect((error as Error).cause).toMatchObject({ message: 'migration bug' });
    expect(await versionOf(indexedDB, name)).toBe(1);
    const again = createIndexedDbStorage({ name, indexedDB });
    expect((await again.range(['a'])).length).toBe(1);
    expect(await again.get(['half-done'])).toBeUndefined();
    await again.close();
  });

  it('an upgrade blocked by a tab that keeps an old version open fails with STORAGE_BUSY, and does not happen later behind the caller’s back', async () => {
    const { indexedDB, name } = fresh();
    const old = await holdRaw(indexedDB, name, 1);
    const error = await rejectionOf(openV2(indexedDB, name, 0).connection);
    expect(isDeadboltError(error, 'STORAGE_BUSY') && error.kind, String(error)).toBe('storage');
    expect(isDeadboltError(error) && error.details).toEqual({ operation: 'open', waitedMs: 0 });
    expect((error as Error).message).toMatch(/blocked: another tab or connection keeps it open/);
    old.close(); // the old tab goes away: the abandoned request proceeds, and is aborted
    // Requests on one database name run in order: this open runs after the abandoned one.
    expect(await versionOf(indexedDB, name)).toBe(1);
    await deleteOrFailIfBlocked(indexedDB, name); // and no connection was leaked
  });

  it('a blocked upgrade succeeds if the other tab closes within blockedTimeoutMs', async () => {
    const { indexedDB, name } = fresh();
    const old = await holdRaw(indexedDB, name, 1);
    const request = indexedDB.open.bind(indexedDB);
    let blocked!: () => void;
    const sawBlocked = new Promise<void>((resolve) => {
      blocked = resolve;
    });
    // Watch for `blocked` on the adapter's own request, then let the old tab close.
    const watching = new Proxy(indexedDB, {
      get(target, prop) {
        if (prop !== 'open') return Reflect.get(target, prop, target);
        return (dbName: string, version?: number) => {
          const r = request(dbName, version);
          r.addEventListener('blocked', () => blocked());
          return r;
        };
      },
    });
    const pending = openV2(watching, name, 60_000);
    await sawBlocked;
    old.close();
    const db = await pending.connection;
    expect(db.version).toBe(2);
    db.close();
  });

  it('close during a pending open: calls reject with CLOSED and the connection that opens is closed, not leaked', async () => {
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    const get = storage.get(['k']);
    await storage.close();
    expect(isDeadboltError(await rejectionOf(get), 'CLOSED')).toBe(true);
    await deleteOrFailIfBlocked(indexedDB, name);
  });
});

describe('stored data is checked, never trusted (SECURITY.md D29)', () => {
  it('a value that is not an ArrayBuffer, or a key that is not an array of strings, is CORRUPTED_RECORD', async () => {
    const { indexedDB, name } = fresh();
    const storage = createIndexedDbStorage({ name, indexedDB });
    await storage.batch([put(['ok'], bytes(1))]);
    // Another script of the origin writes into the store directly.
    const db = await openDatabase({ factory: indexedDB, name, version: 1, blockedTimeoutMs: 0, onLost: () => undefined }).connection;
    await db.put(STORE_NAME, 'not bytes' as unknown as ArrayBuffer, ['bad', 'value']);
    await db.put(STORE_NAME, new Uint8Array([1]) as unknown as ArrayBuffer, ['bad', 'view']);
    await db.put(STORE_NAME, new ArrayBuffer(1), [['nested'] as unknown as string]);
    db.close();
    const value = await rejectionOf(storage.get(['bad', 'value']));
    expect(isDeadboltError(value, 'CORRUPTED_RECORD') && value.details).toEqual({ key: 'bad/value', reason: 'the value is a string, not an ArrayBuffer' });
    expect(isDeadboltError(await rejectionOf(storage.get(['bad', 'view'])), 'CORRUPTED_RECORD')).toBe(true);
    expect(isDeadboltError(await rejectionOf(storage.range(['bad'])), 'CORRUPTED_RECORD')).toBe(true);
    // The foreign key sorts after every string key: it spoils only ranges that reach it.
    expect(isDeadboltError(await rejectionOf(storage.range([['nested'] as unknown as string])), 'INVALID_ARGUMENT')).toBe(true);
    expect((await storage.range(['ok'])).length).toBe(1);
    await storage.close();
  });
});

describe('options', () => {
  it('rejects a missing name, no IndexedDB, a bad lockName or blockedTimeoutMs synchronously with INVALID_ARGUMENT', () => {
    const cases: Array<[unknown, string]> = [
      [undefined, 'options'],
      [{}, 'options.name'],
      [{ name: '' }, 'options.name'],
      [{ name: 'x', indexedDB: {} }, 'options.indexedDB'],
      [{ name: 'x', indexedDB: new IDBFactory(), lockName: '' }, 'options.lockName'],
      [{ name: 'x', indexedDB: new IDBFactory(), blockedTimeoutMs: -1 }, 'options.blockedTimeoutMs'],
      [{ name: 'x', indexedDB: new IDBFactory(), blockedTimeoutMs: Number.NaN }, 'options.blockedTimeoutMs'],
    ];
    for (const [options, field] of cases) {
      let error: unknown;
      try {
        createIndexedDbStorage(options as never);
      } catch (e) {
        error = e;
      }
      expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field, JSON.stringify(options)).toBe(field);
    }
  });

  it('rejects a limit that is not a non-negative integer', async () => {
    const storage = createIndexedDbStorage(fresh());
    for (const limit of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
      expect(isDeadboltError(await rejectionOf(storage.range(['a'], { limit })), 'INVALID_ARGUMENT'), String(limit)).toBe(true);
    }
    expect(isDeadboltError(await rejectionOf(storage.range(['a'], null as never)), 'INVALID_ARGUMENT')).toBe(true);
    await storage.close();
  });

  it('exclusive rejects a non-function with INVALID_ARGUMENT', async () => {
    const storage = createIndexedDbStorage(fresh());
    expect(isDeadboltError(await rejectionOf(storage.exclusive!(42 as never)), 'INVALID_ARGUMENT')).toBe(true);
    await storage.close();
  });
});

/**
 * A Web Locks manager for Node tests: FIFO per name, like the real one, and a log of
 * every request, so the adapter's use of it can be checked.
 */
function fakeWebLocks() {
  const log: Array<{ name: string; mode: string; hasSignal: boolean }> = [];
  const tails = new Map<string, Promise<unknown>>();
  let outstanding = 0;
  let maxOutstanding = 0;
  const locks: WebLockManager = {
    request(name, options, callback) {
      log.push({ name, mode: options.mode, hasSignal: options.signal !== undefined });
      outstanding++;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      const previous = tails.get(name) ?? Promise.resolve();
      const aborted = new Promise<never>((_, reject) => {
        options.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
      const result = Promise.race([previous.then(() => undefined, () => undefined), aborted]).then(() =>
        callback({ name, mode: options.mode }),
      );
      tails.set(
        name,
        result.then(
          () => undefined,
          () => undefined,
        ),
      );
      return result.finally(() => {
        outstanding--;
      });
    },
  };
  return { locks, log, maxOutstanding: () => maxOutstanding };
}

describe('the exclusive lock', () => {
  it('uses Web Locks when present: an exclusive lock named after the database, one request outstanding per instance, callers in FIFO order', async () => {
    const web = fakeWebLocks();
    const storage = createIndexedDbStorage({ ...fresh(), name: 'alice', locks: web.locks });
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        storage.exclusive!(async () => {
          order.push(i);
        }),
      ),
    );
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(web.log).toHaveLength(5);
    expect(web.log.every((r) => r.name === 'deadbolt-storage-indexeddb:alice' && r.mode === 'exclusive' && r.hasSignal)).toBe(true);
    expect(web.maxOutstanding()).toBe(1);
    const custom = createIndexedDbStorage({ ...fresh(), lockName: 'app:lock', locks: web.locks });
    await custom.exclusive!(async () => undefined);
    expect(web.log.at(-1)?.name).toBe('app:lock');
    await storage.close();
    await custom.close();
  });

  it('close aborts a request still waiting for Web Locks: it rejects with CLOSED and fn never runs', async () => {
    const web = fakeWebLocks();
    const backend = fresh();
    const holder = createIndexedDbStorage({ ...backend, locks: web.locks });
    const waiter = createIndexedDbStorage({ ...backend, locks: web.locks });
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const held = holder.exclusive!(async () => {
      entered();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await inside;
    let ran = false;
    const waiting = waiter.exclusive!(async () => {
      ran = true;
    });
    await Promise.resolve(); // let it reach the lock manager
    await waiter.close();
    expect(isDeadboltError(await rejectionOf(waiting), 'CLOSED')).toBe(true);
    release();
    await held;
    expect(ran).toBe(false);
    await holder.close();
  });

  it('the Node fallback serialises every adapter of this process over one database, and only that database', async () => {
    const backend = fresh();
    const a = createIndexedDbStorage({ ...backend, locks: null });
    const b = createIndexedDbStorage({ ...backend, locks: null });
    const other = createIndexedDbStorage({ ...backend, name: `${backend.name}-other`, locks: null });
    const events: string[] = [];
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const first = a.exclusive!(async () => {
      events.push('a in');
      entered();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      events.push('a out');
    });
    await inside;
    const second = b.exclusive!(async () => {
      events.push('b in');
    });
    // Another database's lock is free while `a` holds this one (it would deadlock here if not).
    await other.exclusive!(async () => {
      events.push('other');
    });
    release();
    await Promise.all([first, second]);
    expect(events).toEqual(['a in', 'other', 'a out', 'b in']);
    await Promise.all([a.close(), b.close(), other.close()]);
  });
});
