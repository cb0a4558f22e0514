/**
 * The SQLite storage adapter (better-sqlite3), implementing the storage contract
 * (`deadbolt.storage.v2`). One table of BLOB keys in an order-preserving encoding
 * (`key-encoding.ts`) and BLOB values, its schema built by `MIGRATIONS`; WAL journaling; a
 * busy timeout so two processes sharing the file wait for each other instead of failing;
 * every batch one `BEGIN
 * IMMEDIATE` transaction, so it applies entirely or not at all and two processes'
 * batches are serialised.
 *
 * better-sqlite3 is synchronous: each call runs to completion on the calling thread, so
 * no other work interleaves inside a transaction.
 *
 * The exclusive lock (storage contract invariant 11, SECURITY.md D26) is a `BEGIN
 * EXCLUSIVE` transaction held on a separate, empty SQLite file beside the database
 * (`<path>-lock`, like SQLite's own `-wal` and `-shm`). It cannot be a transaction on the
 * database itself: that would block the batches run inside the lock. SQLite's file locks
 * work between processes and between connections of one process, and the operating system
 * drops them when a process dies, so a killed holder never leaves the store locked. The
 * lock connection never waits inside SQLite (a busy timeout would block the event loop):
 * a busy lock is retried on a timer, with a short capped backoff, up to `lockTimeoutMs`.
 * Callers in one process queue in memory first, so only one of them polls the file.
 *
 * @module
 */
import Database from 'better-sqlite3';
import {
  createAsyncLock,
  STORAGE_SPECIFICATION_VERSION,
  StorageError,
  UsageError,
  assertStorageBatch,
  assertStorageKey,
  readRangeOptions,
  type RangeOptions,
  type StorageAdapter,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
} from '@deadbolt/spec';
import { decodeKey, encodeKey, windowBounds } from './key-encoding.js';

/** Options of {@link createSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The database file (created if absent). `':memory:'` for a private in-memory database. */
  readonly path: string;
  /** How long to wait for another process's lock, in ms. Default 5,000. */
  readonly busyTimeoutMs?: number;
  /**
   * How long `exclusive` waits for another process or connection holding the store's lock
   * before rejecting with `StorageError` `STORAGE_BUSY`, in ms. Default 30,000.
   */
  readonly lockTimeoutMs?: number;
}

/**
 * `PRAGMA journal_mode = WAL`, retried while another connection holds the file. Two
 * processes opening one new file at once both ask for the switch; SQLite answers one of
 * them SQLITE_BUSY at once, without waiting in the busy handler (it would deadlock), so
 * the switch is tried again after a short pause, up to the busy timeout. Opening is
 * synchronous like every better-sqlite3 call, so the pause blocks (it is rare and short).
 */
function switchToWal(db: Database.Database, busyTimeoutMs: number): void {
  const started = Date.now();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() - started >= busyTimeoutMs) throw e;
      Atomics.wait(pause, 0, 0, 5);
    }
  }
}

/** Backoff between attempts at a busy lock file: 1 ms doubling to 16 ms. */
const LOCK_RETRY_MIN_MS = 1;
const LOCK_RETRY_MAX_MS = 16;

/**
 * Schema migrations, in order: entry `i` takes a database from `user_version` i to i + 1.
 * A released schema is never edited; a change is a new entry, and a fixture written by
 * each released version (`test/fixtures/`) must still open (SECURITY.md D30).
 */
const MIGRATIONS: readonly ((db: Database.Database) => void)[] = [
  // 0 -> 1: one table of order-preserving encoded keys (key-encoding.ts) and values.
  (db) => db.exec('CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID'),
  // 1 -> 2: a rowid table. WITHOUT ROWID keeps each row inside its key's b-tree, where a row
  // above about a twentieth of a page (a 1 KiB message in history) spills into overflow
  // pages: about 4,600 bytes of file per 1,200-byte message. A rowid table packs values in
  // its own b-tree and the PRIMARY KEY index holds the keys: about 1,450 (bench:storage).
  // `secure_delete` overwrites the old table's pages as it is dropped (SECURITY.md D31).
  (db) =>
    db.exec(`
      CREATE TABLE kv_v2 (k BLOB PRIMARY KEY, v BLOB NOT NULL);
      INSERT INTO kv_v2 (k, v) SELECT k, v FROM kv;
      DROP TABLE kv;
      ALTER TABLE kv_v2 RENAME TO kv;
    `),
];

/** The schema version this adapter writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

function plain(value: Uint8Array): Uint8Array {
  // better-sqlite3 returns Buffers, often views into a shared pool: copy into a plain array.
  return new Uint8Array(value);
}

/**
 * Opens (or creates) a SQLite-backed storage adapter.
 *
 * @example
 * ```ts
 * const storage = createSqliteStorage({ path: 'alice.db' });
 * const client = await createClient({ userId: 'alice', deviceId: 'laptop', storage, transport });
 * ```
 */
export function createSqliteStorage(options: SqliteStorageOptions): StorageAdapter {
  if (typeof options?.path !== 'string' || options.path.length === 0) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'path is required', details: { field: 'path', expected: 'a file path' } });
  }
  let db: Database.Database;
  try {
    db = new Database(options.path);
    const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    switchToWal(db, busyTimeoutMs);
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SQLITE_SCHEMA_VERSION) {
      db.close();
      throw new StorageError('CORRUPTED_RECORD', { message: `database schema ${version} is newer than this adapter`, details: { key: 'user_version', reason: 'newer schema' } });
    }
    if (version < SQLITE_SCHEMA_VERSION) {
      // All pending migrations in one transaction: a crash leaves the old schema intact.
      // The version is read again inside it: another process may have migrated meanwhile.
      db.transaction(() => {
        const from = db.pragma('user_version', { simple: true }) as number;
        for (let v = from; v < SQLITE_SCHEMA_VERSION; v++) (MIGRATIONS[v] as (db: Database.Database) => void)(db);
        db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
      }).immediate();
    }
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw new StorageError('STORAGE_FAILED', { message: 'cannot open the SQLite database', details: { operation: 'open' }, cause });
  }
  const getStmt = db.prepare<[Uint8Array], { v: Uint8Array }>('SELECT v FROM kv WHERE k = ?');
  const rangeStmt = db.prepare<[Uint8Array, Uint8Array, number], { k: Uint8Array; v: Uint8Array }>('SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k LIMIT ?');
  const rangeDescStmt = db.prepare<[Uint8Array, Uint8Array, number], { k: Uint8Array; v: Uint8Array }>('SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k DESC LIMIT ?');
  const putStmt = db.prepare<[Uint8Array, Uint8Array]>('INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v');
  const deleteStmt = db.prepare<[Uint8Array]>('DELETE FROM kv WHERE k = ?');
  const apply = db.transaction((ops: readonly { key: Uint8Array; value: Uint8Array | undefined }[]) => {
    for (const op of ops) {
      if (op.value === undefined) deleteStmt.run(op.key);
      else putStmt.run(op.key, op.value);
    }
  });
  let closed = false;

  // Invariant 11: in-process FIFO first, then the cross-process lock file (module docs).
  const inProcess = createAsyncLock();
  const lockTimeoutMs = Math.max(0, Math.floor(options.lockTimeoutMs ?? 30_000));
  let lockDb: Database.Database | undefined;
  const lockFile = (): Database.Database | undefined => {
    if (options.path === ':memory:' || options.path.startsWith('file::memory:')) return undefined; // private: nobody to exclude
    if (lockDb === undefined) {
      lockDb = new Database(`${options.path}-lock`);
      lockDb.pragma('busy_timeout = 0');
    }
    return lockDb;
  };
  const acquireFile = async (file: Database.Database): Promise<void> => {
    const started = Date.now();
    for (let delay = LOCK_RETRY_MIN_MS; ; delay = Math.min(delay * 2, LOCK_RETRY_MAX_MS)) {
      try {
        file.exec('BEGIN EXCLUSIVE');
        return;
      } catch (e) {
        if ((e as { code?: unknown }).code !== 'SQLITE_BUSY') throw e;
      }
      const waitedMs = Date.now() - started;
      if (waitedMs >= lockTimeoutMs) {
        throw new StorageError('STORAGE_BUSY', { message: 'the store is locked by another process or connection', details: { operation: 'exclusive', waitedMs } });
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      ensureOpen();
    }
  };

  const failed = (operation: string, cause: unknown): StorageError<'STORAGE_FAILED'> =>
    new StorageError('STORAGE_FAILED', { message: `SQLite ${operation} failed`, details: { operation }, cause });
  const ensureOpen = (): void => {
    if (closed) throw new UsageError('CLOSED', { message: 'storage is closed', details: { what: 'storage' } });
  };

  return {
    specificationVersion: STORAGE_SPECIFICATION_VERSION,

    async get(key: StorageKey): Promise<Uint8Array | undefined> {
      ensureOpen();
      assertStorageKey(key);
      try {
        const row = getStmt.get(encodeKey(key));
        return row ? plain(row.v) : undefined;
      } catch (e) {
        throw failed('get', e);
      }
    },

    async range(prefix: StorageKey, opts?: RangeOptions): Promise<StorageEntry[]> {
      ensureOpen();
      assertStorageKey(prefix, 'prefix');
      const window = readRangeOptions(opts); // invariant 12
      if (window.limit === 0) return [];
      const { lower, upper } = windowBounds(prefix, window.after, window.before);
      if (Buffer.compare(lower, upper) >= 0) return []; // memcmp order, as SQLite compares BLOBs
      const limit = Math.min(window.limit, Number.MAX_SAFE_INTEGER);
      try {
        return (window.reverse ? rangeDescStmt : rangeStmt).all(lower, upper, limit).map((row) => ({ key: decodeKey(row.k), value: plain(row.v) }));
      } catch (e) {
        throw failed('range', e);
      }
    },

    async batch(ops: readonly StorageOp[]): Promise<void> {
      ensureOpen();
      assertStorageBatch(ops); // everything is checked before anything is applied
      const encoded = ops.map((op) => ({ key: encodeKey(op.key), value: op.type === 'put' ? op.value.slice() : undefined }));
      try {
        apply.immediate(encoded);
      } catch (e) {
        throw failed('batch', e);
      }
    },

    async exclusive<T>(fn: () => Promise<T>): Promise<T> {
      ensureOpen();
      return inProcess(async () => {
        ensureOpen();
        let file: Database.Database | undefined;
        try {
          file = lockFile();
          if (file !== undefined) await acquireFile(file);
        } catch (e) {
          if (e instanceof StorageError || e instanceof UsageError) throw e;
          throw failed('exclusive', e);
        }
        try {
          return await fn();
        } finally {
          // Closing the connection (below) would release it too; a failed COMMIT cannot
          // leave it held, since the lock file has no data to commit.
          if (file !== undefined && file.open && file.inTransaction) file.exec('COMMIT');
        }
      });
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      db.close();
      lockDb?.close();
    },
  };
}
