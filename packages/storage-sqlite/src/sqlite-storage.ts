/**
 * The SQLite storage adapter (better-sqlite3), implementing the storage contract
 * (`deadbolt.storage.v1`). One table of BLOB keys in an order-preserving encoding
 * (`key-encoding.ts`) and BLOB values; WAL journaling; a busy timeout so two processes
 * sharing the file wait for each other instead of failing; every batch one `BEGIN
 * IMMEDIATE` transaction, so it applies entirely or not at all and two processes'
 * batches are serialised.
 *
 * better-sqlite3 is synchronous: each call runs to completion on the calling thread, so
 * no other work interleaves inside a transaction.
 *
 * @module
 */
import Database from 'better-sqlite3';
import {
  STORAGE_SPECIFICATION_VERSION,
  StorageError,
  UsageError,
  assertStorageBatch,
  assertStorageKey,
  type RangeOptions,
  type StorageAdapter,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
} from '@deadbolt/spec';
import { decodeKey, encodeKey, prefixEnd } from './key-encoding.js';

/** Options of {@link createSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The database file (created if absent). `':memory:'` for a private in-memory database. */
  readonly path: string;
  /** How long to wait for another process's lock, in ms. Default 5,000. */
  readonly busyTimeoutMs?: number;
}

/** The schema version this adapter writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 1;

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
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SQLITE_SCHEMA_VERSION) {
      db.close();
      throw new StorageError('CORRUPTED_RECORD', { message: `database schema ${version} is newer than this adapter`, details: { key: 'user_version', reason: 'newer schema' } });
    }
    db.exec('CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw new StorageError('STORAGE_FAILED', { message: 'cannot open the SQLite database', details: { operation: 'open' }, cause });
  }
  const getStmt = db.prepare<[Uint8Array], { v: Uint8Array }>('SELECT v FROM kv WHERE k = ?');
  const rangeStmt = db.prepare<[Uint8Array, Uint8Array, number], { k: Uint8Array; v: Uint8Array }>('SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k LIMIT ?');
  const putStmt = db.prepare<[Uint8Array, Uint8Array]>('INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v');
  const deleteStmt = db.prepare<[Uint8Array]>('DELETE FROM kv WHERE k = ?');
  const apply = db.transaction((ops: readonly { key: Uint8Array; value: Uint8Array | undefined }[]) => {
    for (const op of ops) {
      if (op.value === undefined) deleteStmt.run(op.key);
      else putStmt.run(op.key, op.value);
    }
  });
  let closed = false;

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

    async range(prefix: StorageKey, opts: RangeOptions = {}): Promise<StorageEntry[]> {
      ensureOpen();
      assertStorageKey(prefix, 'prefix');
      const limit = opts.limit ?? Number.MAX_SAFE_INTEGER;
      if (!Number.isInteger(limit) || limit < 0) {
        throw new UsageError('INVALID_ARGUMENT', { message: 'limit must be a non-negative integer', details: { field: 'limit', expected: 'a non-negative integer' } });
      }
      if (limit === 0) return [];
      const from = encodeKey(prefix);
      try {
        return rangeStmt.all(from, prefixEnd(from), limit).map((row) => ({ key: decodeKey(row.k), value: plain(row.v) }));
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

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
