/**
 * The SQLite relay store (better-sqlite3): the default of the `deadbolt-relay` CLI.
 *
 * - WAL journal, `synchronous = FULL` (a committed transaction survives a process kill
 *   and a power cut), `busy_timeout` so several processes can share one file, and
 *   `secure_delete` so acknowledged frames are overwritten on disk, not just unlinked.
 * - One `BEGIN IMMEDIATE` transaction per write method, except that concurrent enqueues and
 *   acks share one (group commit, each in its own savepoint; see `grouped`) (invariant 1): better-sqlite3 is
 *   synchronous, so a method's whole check-then-write runs without yielding, and the
 *   write lock serializes other processes.
 * - Reads that must be consistent (fetch) run in one deferred transaction.
 *
 * Nothing here is SQLite-specific above the {@link RelayStore} interface.
 *
 * @module
 */
import Database from 'better-sqlite3';
import { StorageError, UsageError, isDeadboltError } from '@deadbolt/spec';
import {
  RELAY_STORE_SPECIFICATION_VERSION,
  type EnqueueResult,
  type MailboxQuota,
  type PutDeviceListResult,
  type StoreListVersion,
  type PrekeyCounts,
  type PutPrekeysResult,
  type RegisterDeviceResult,
  type RelayStore,
  type StoreAddress,
  type StoredMessage,
  type StoredPrekey,
  type TakenBundle,
} from './store.js';
import { closedError, listMismatches, newMessageId, quotaRefusal, sameBytes } from './store-util.js';

/** Options of {@link createSqliteRelayStore}. */
export interface SqliteRelayStoreOptions {
  /** The database file (created if absent). `':memory:'` gives a private in-memory database. */
  readonly path: string;
  /** How long a write waits for another process's lock, in ms (default 5,000). */
  readonly busyTimeoutMs?: number;
}

/**
 * The schema version (`user_version`). 1: the first release. 2: `device_lists`. Every
 * table is created with `IF NOT EXISTS`, so opening a schema-1 file adds what 2 has, in
 * the same transaction that records the new version.
 */
const SCHEMA_VERSION = 2;

const KIND_ONE_TIME = 1;
const KIND_PQ = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  user_id TEXT PRIMARY KEY,
  account_key BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_lists (
  user_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  list BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  certificate BLOB NOT NULL,
  signed_prekey BLOB,
  last_resort_prekey BLOB,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS one_time_prekeys (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  kind INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  key BLOB NOT NULL,
  PRIMARY KEY (user_id, device_id, kind, key_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumed_prekeys (
  seq INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  kind INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  UNIQUE (user_id, device_id, kind, key_id)
);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  id TEXT NOT NULL,
  sender_user TEXT NOT NULL,
  sender_device TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  frame BLOB NOT NULL,
  UNIQUE (user_id, device_id, id)
);
CREATE INDEX IF NOT EXISTS messages_by_mailbox ON messages (user_id, device_id, seq);
CREATE TABLE IF NOT EXISTS mailbox_usage (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  messages INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sender_usage (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  sender_user TEXT NOT NULL,
  messages INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id, sender_user)
) WITHOUT ROWID;
`;

/**
 * The tables holding a device's rows, keyed by (user_id, device_id): its registration,
 * one-time prekeys, handed-out ids and mailbox. Deleting a device (invariant 11) deletes
 * from each; replacing a user's account key (invariant 2) deletes every device's rows and
 * the user's device list.
 */
const DEVICE_TABLES = ['devices', 'one_time_prekeys', 'consumed_prekeys', 'messages', 'mailbox_usage', 'sender_usage'] as const;

/** Binds only the bytes a view covers, without copying twice. */
function blob(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A fresh, plain `Uint8Array` copy of a returned blob. */
function out(value: unknown): Uint8Array {
  return new Uint8Array(value as Uint8Array);
}

function storageFailure(operation: string, cause: unknown): unknown {
  if (isDeadboltError(cause)) return cause;
  return new StorageError('STORAGE_FAILED', { message: `relay store ${operation} failed`, details: { operation }, cause });
}

/**
 * Creates a relay store over an SQLite file.
 *
 * @example
 * ```ts
 * const relay = await createRelay({ store: createSqliteRelayStore({ path: './deadbolt-relay.db' }) });
 * ```
 */
export function createSqliteRelayStore(options: SqliteRelayStoreOptions): RelayStore {
  if (typeof options?.path !== 'string' || options.path.length === 0) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'path must be a non-empty string', details: { field: 'path', expected: 'a file path' } });
  }
  const db = new Database(options.path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('secure_delete = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StorageError('CORRUPTED_RECORD', {
        message: `relay database schema ${version} is newer than this relay (${SCHEMA_VERSION})`,
        details: { key: 'user_version', reason: `schema ${version}` },
      });
    }
    db.transaction(() => {
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  } catch (e) {
    db.close();
    throw storageFailure('open', e);
  }

  /**
   * Deletes a device's rows from one device table. Prepared once per table: deleting a
   * device runs all of them, replacing one runs the prekey tables' only.
   */
  const deleteDeviceFrom = Object.fromEntries(
    DEVICE_TABLES.map((table) => [table, db.prepare(`DELETE FROM ${table} WHERE user_id = ? AND device_id = ?`)]),
  ) as Record<(typeof DEVICE_TABLES)[number], Database.Statement>;

  const q = {
    getAccount: db.prepare('SELECT account_key FROM accounts WHERE user_id = ?'),
    insertAccount: db.prepare('INSERT INTO accounts (user_id, account_key) VALUES (?, ?)'),
    updateAccount: db.prepare('UPDATE accounts SET account_key = ? WHERE user_id = ?'),
    deleteUser: [...DEVICE_TABLES, 'device_lists'].map((table) => db.prepare(`DELETE FROM ${table} WHERE user_id = ?`)),

    getList: db.prepare('SELECT version, list FROM device_lists WHERE user_id = ?'),
    listVersion: db.prepare('SELECT version FROM device_lists WHERE user_id = ?').pluck(),
    putList: db.prepare(
      `INSERT INTO device_lists (user_id, version, list) VALUES (?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, list = excluded.list`,
    ),
    deleteDevice: DEVICE_TABLES.map((table) => deleteDeviceFrom[table]),

    getDevice: db.prepare('SELECT certificate, signed_prekey, last_resort_prekey FROM devices WHERE user_id = ? AND device_id = ?'),
    deviceExists: db.prepare('SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?').pluck(),
    countDevices: db.prepare('SELECT COUNT(*) FROM devices WHERE user_id = ?').pluck(),
    insertDevice: db.prepare('INSERT INTO devices (user_id, device_id, certificate) VALUES (?, ?, ?)'),
    replaceDevice: db.prepare(
      'UPDATE devices SET certificate = ?, signed_prekey = NULL, last_resort_prekey = NULL WHERE user_id = ? AND device_id = ?',
    ),
    listDevices: db.prepare('SELECT device_id, certificate FROM devices WHERE user_id = ?'),
    deleteDevicePrekeys: deleteDeviceFrom.one_time_prekeys,
    deleteDeviceConsumed: deleteDeviceFrom.consumed_prekeys,

    setStaticPrekeys: db.prepare('UPDATE devices SET signed_prekey = ?, last_resort_prekey = ? WHERE user_id = ? AND device_id = ?'),
    prekeyExists: db.prepare('SELECT 1 FROM one_time_prekeys WHERE user_id = ? AND device_id = ? AND kind = ? AND key_id = ?').pluck(),
    consumedExists: db.prepare('SELECT 1 FROM consumed_prekeys WHERE user_id = ? AND device_id = ? AND kind = ? AND key_id = ?').pluck(),
    insertPrekey: db.prepare('INSERT OR IGNORE INTO one_time_prekeys (user_id, device_id, kind, key_id, key) VALUES (?, ?, ?, ?, ?)'),
    countPrekeys: db.prepare('SELECT COUNT(*) FROM one_time_prekeys WHERE user_id = ? AND device_id = ? AND kind = ?').pluck(),
    lowestPrekey: db.prepare(
      'SELECT key_id, key FROM one_time_prekeys WHERE user_id = ? AND device_id = ? AND kind = ? ORDER BY key_id LIMIT 1',
    ),
    deletePrekey: db.prepare('DELETE FROM one_time_prekeys WHERE user_id = ? AND device_id = ? AND kind = ? AND key_id = ?'),
    insertConsumed: db.prepare('INSERT OR IGNORE INTO consumed_prekeys (user_id, device_id, kind, key_id) VALUES (?, ?, ?, ?)'),
    trimConsumed: db.prepare(
      `DELETE FROM consumed_prekeys WHERE user_id = ? AND device_id = ? AND kind = ? AND seq NOT IN (
         SELECT seq FROM consumed_prekeys WHERE user_id = ? AND device_id = ? AND kind = ? ORDER BY seq DESC LIMIT ?)`,
    ),

    usage: db.prepare('SELECT messages, bytes FROM mailbox_usage WHERE user_id = ? AND device_id = ?'),
    senderUsage: db.prepare('SELECT messages FROM sender_usage WHERE user_id = ? AND device_id = ? AND sender_user = ?').pluck(),
    addUsage: db.prepare(
      `INSERT INTO mailbox_usage (user_id, device_id, messages, bytes) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE SET messages = messages + excluded.messages, bytes = bytes + excluded.bytes`,
    ),
    addSenderUsage: db.prepare(
      `INSERT INTO sender_usage (user_id, device_id, sender_user, messages) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id, device_id, sender_user) DO UPDATE SET messages = messages + excluded.messages`,
    ),
    pruneUsage: db.prepare('DELETE FROM mailbox_usage WHERE user_id = ? AND device_id = ? AND messages <= 0'),
    pruneSenderUsage: db.prepare('DELETE FROM sender_usage WHERE user_id = ? AND device_id = ? AND messages <= 0'),
    idExists: db.prepare('SELECT 1 FROM messages WHERE user_id = ? AND device_id = ? AND id = ?').pluck(),
    insertMessage: db.prepare(
      'INSERT INTO messages (user_id, device_id, id, sender_user, sender_device, received_at, frame) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    scanMailbox: db.prepare(
      'SELECT seq, id, sender_user, sender_device, received_at, length(frame) AS size FROM messages WHERE user_id = ? AND device_id = ? ORDER BY seq',
    ),
    frameOf: db.prepare('SELECT frame FROM messages WHERE seq = ?').pluck(),
    deleteMessage: db.prepare('DELETE FROM messages WHERE user_id = ? AND device_id = ? AND id = ? RETURNING sender_user, length(frame) AS size'),
  };

  let closed = false;

  /** Runs `fn` as one method call: rejects after close, wraps backend failures. */
  async function run<T>(operation: string, fn: () => T): Promise<T> {
    if (closed) throw closedError();
    try {
      return fn();
    } catch (e) {
      throw storageFailure(operation, e);
    }
  }

  function write<T>(fn: () => T): T {
    return db.transaction(fn).immediate();
  }

  /**
   * Group commit for the hot paths (enqueue, ack). Operations queued in one event-loop
   * turn run in order in ONE `IMMEDIATE` transaction, each inside its own savepoint
   * (better-sqlite3 turns a nested transaction into a savepoint), so each stays atomic on
   * its own and one failing operation rolls back only itself. No operation resolves
   * before the shared commit, so an OK still means "durably stored" (invariant 1). One
   * commit per turn instead of one per request is what lets the relay keep up with many
   * clients: a commit blocks the relay's only thread.
   */
  type Grouped = { readonly operation: string; readonly fn: () => unknown; readonly resolve: (v: unknown) => void; readonly reject: (e: unknown) => void };
  let group: Grouped[] = [];
  let flushScheduled = false;
  const MAX_GROUP = 512;

  function flushGroup(): void {
    flushScheduled = false;
    const items = group;
    group = [];
    if (items.length === 0) return;
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      db.transaction(() => {
        for (const item of items) {
          try {
            results.push({ ok: true, value: db.transaction(item.fn)() });
          } catch (e) {
            results.push({ ok: false, value: e });
          }
        }
      }).immediate();
    } catch (e) {
      // The commit itself failed: nothing of this group is stored.
      for (const item of items) item.reject(storageFailure(item.operation, e));
      return;
    }
    items.forEach((item, i) => {
      const r = results[i]!;
      if (r.ok) item.resolve(r.value);
      else item.reject(storageFailure(item.operation, r.value));
    });
  }

  function grouped<T>(operation: string, fn: () => T): Promise<T> {
    if (closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      group.push({ operation, fn, resolve: resolve as (v: unknown) => void, reject });
      if (group.length >= MAX_GROUP) flushGroup();
      else if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushGroup);
      }
    });
  }

  function prekeyCounts(a: StoreAddress): PrekeyCounts {
    return {
      oneTime: q.countPrekeys.get(a.userId, a.deviceId, KIND_ONE_TIME) as number,
      pq: q.countPrekeys.get(a.userId, a.deviceId, KIND_PQ) as number,
    };
  }

  /** The user's stored device list version (0: none). */
  function listVersionOf(userId: string): number {
    return (q.listVersion.get(userId) as number | undefined) ?? 0;
  }

  /**
   * One enqueue, inside the caller's transaction: the list check, then every quota, and
   * only then the writes (a refusal returns before any write, invariant 6).
   */
  function enqueueRows(
    from: StoreAddress,
    receivedAt: number,
    to: readonly StoreAddress[],
    frameOf: (i: number) => Uint8Array,
    quota: MailboxQuota,
    expectedLists: readonly StoreListVersion[] | undefined,
  ): EnqueueResult {
    const mismatched = listMismatches(expectedLists, listVersionOf);
    if (mismatched.length > 0) return { ok: false, reason: 'list-mismatch', users: mismatched };
    const refused = quotaRefusal(to, (i) => frameOf(i).byteLength, quota, (m) => {
      if (q.deviceExists.get(m.userId, m.deviceId) === undefined) return undefined;
      const usage = q.usage.get(m.userId, m.deviceId) as { messages: number; bytes: number } | undefined;
      const sender = (q.senderUsage.get(m.userId, m.deviceId, from.userId) as number | undefined) ?? 0;
      return { messages: usage?.messages ?? 0, bytes: usage?.bytes ?? 0, fromSender: sender };
    });
    if (refused !== undefined) return refused;
    const ids: string[] = [];
    for (let i = 0; i < to.length; i++) {
      const m = to[i] as StoreAddress;
      const frame = frameOf(i);
      let id = newMessageId();
      while (q.idExists.get(m.userId, m.deviceId, id) !== undefined) id = newMessageId();
      q.insertMessage.run(m.userId, m.deviceId, id, from.userId, from.deviceId, receivedAt, blob(frame));
      q.addUsage.run(m.userId, m.deviceId, 1, frame.byteLength);
      q.addSenderUsage.run(m.userId, m.deviceId, from.userId, 1);
      ids.push(id);
    }
    return { ok: true, ids };
  }

  /** Deletes one device with everything stored for it (its registration, prekeys, handed-out ids, mailbox). */
  function deleteDeviceRows(userId: string, deviceId: string): void {
    for (const s of q.deleteDevice) s.run(userId, deviceId);
  }

  function takeLowest(a: StoreAddress, kind: number): StoredPrekey | undefined {
    const row = q.lowestPrekey.get(a.userId, a.deviceId, kind) as { key_id: number; key: Buffer } | undefined;
    if (row === undefined) return undefined;
    q.deletePrekey.run(a.userId, a.deviceId, kind, row.key_id);
    q.insertConsumed.run(a.userId, a.deviceId, kind, row.key_id);
    return { id: row.key_id, key: out(row.key) };
  }

  return {
    specificationVersion: RELAY_STORE_SPECIFICATION_VERSION,

    getAccountKey: (userId) =>
      run('getAccountKey', () => {
        const row = q.getAccount.get(userId) as { account_key: Buffer } | undefined;
        return row ? out(row.account_key) : undefined;
      }),

    setAccountKey: (userId, accountKey, expected) =>
      run('setAccountKey', () =>
        write(() => {
          const row = q.getAccount.get(userId) as { account_key: Buffer } | undefined;
          if (row === undefined) {
            if (expected !== undefined) return false;
            q.insertAccount.run(userId, blob(accountKey));
            return true;
          }
          if (expected === undefined || !sameBytes(row.account_key, expected)) return false;
          if (sameBytes(row.account_key, accountKey)) return true;
          for (const s of q.deleteUser) s.run(userId);
          q.updateAccount.run(blob(accountKey), userId);
          return true;
        }),
      ),

    getDeviceList: (userId) =>
      run('getDeviceList', () => {
        const row = q.getList.get(userId) as { version: number; list: Buffer } | undefined;
        return row ? { version: row.version, list: out(row.list) } : undefined;
      }),

    putDeviceList: (userId, accountKey, version, list, keep) =>
      run('putDeviceList', () =>
        write((): PutDeviceListResult => {
          const account = q.getAccount.get(userId) as { account_key: Buffer } | undefined;
          if (account === undefined || !sameBytes(account.account_key, accountKey)) return { ok: false, reason: 'account-mismatch' };
          const stored = q.getList.get(userId) as { version: number; list: Buffer } | undefined;
          if (stored !== undefined) {
            if (version < stored.version) return { ok: false, reason: 'stale' };
            if (version === stored.version) return sameBytes(stored.list, list) ? { ok: true, changed: false, removed: [] } : { ok: false, reason: 'conflict' };
          }
          // Invariant 11: the list and the deletions in this one transaction.
          const removed = (q.listDevices.all(userId) as { device_id: string; certificate: Buffer }[])
            .filter((d) => !keep.some((k) => k.deviceId === d.device_id && sameBytes(k.certificate, d.certificate)))
            .map((d) => d.device_id)
            .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          for (const deviceId of removed) deleteDeviceRows(userId, deviceId);
          q.putList.run(userId, version, blob(list));
          return { ok: true, changed: true, removed };
        }),
      ),

    registerDevice: (address, accountKey, certificate, maxDevices, listVersion) =>
      run('registerDevice', () =>
        write((): RegisterDeviceResult => {
          const account = q.getAccount.get(address.userId) as { account_key: Buffer } | undefined;
          if (account === undefined || !sameBytes(account.account_key, accountKey)) return 'account-mismatch';
          if (listVersionOf(address.userId) !== listVersion) return 'list-mismatch';
          const existing = q.getDevice.get(address.userId, address.deviceId) as { certificate: Buffer } | undefined;
          if (existing !== undefined) {
            if (sameBytes(existing.certificate, certificate)) return 'unchanged';
            q.replaceDevice.run(blob(certificate), address.userId, address.deviceId);
            q.deleteDevicePrekeys.run(address.userId, address.deviceId);
            q.deleteDeviceConsumed.run(address.userId, address.deviceId);
            return 'replaced';
          }
          if ((q.countDevices.get(address.userId) as number) >= maxDevices) return 'too-many-devices';
          q.insertDevice.run(address.userId, address.deviceId, blob(certificate));
          return 'registered';
        }),
      ),

    getDevice: (address) =>
      run('getDevice', () => {
        const row = q.getDevice.get(address.userId, address.deviceId) as { certificate: Buffer } | undefined;
        return row ? out(row.certificate) : undefined;
      }),

    listDevices: (userId) =>
      run('listDevices', () => {
        const rows = q.listDevices.all(userId) as { device_id: string; certificate: Buffer }[];
        // Code-unit order, as the contract says (SQLite's BINARY collation orders UTF-8 bytes).
        return rows
          .sort((a, b) => (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0))
          .map((r) => ({ deviceId: r.device_id, certificate: out(r.certificate) }));
      }),

    putPrekeys: (address, put, quota) =>
      run('putPrekeys', () =>
        write((): PutPrekeysResult => {
          if (q.deviceExists.get(address.userId, address.deviceId) === undefined) return { ok: false, reason: 'unknown-device' };
          const fresh = (kind: number, keys: readonly StoredPrekey[]): StoredPrekey[] => {
            const seen = new Set<number>();
            return keys.filter((k) => {
              if (seen.has(k.id)) return false;
              seen.add(k.id);
              return (
                q.prekeyExists.get(address.userId, address.deviceId, kind, k.id) === undefined &&
                q.consumedExists.get(address.userId, address.deviceId, kind, k.id) === undefined
              );
            });
          };
          const newOneTime = fresh(KIND_ONE_TIME, put.oneTimePrekeys);
          const newPq = fresh(KIND_PQ, put.pqPrekeys);
          const before = prekeyCounts(address);
          if (before.oneTime + newOneTime.length > quota.maxOneTime || before.pq + newPq.length > quota.maxPq) {
            return { ok: false, reason: 'quota' };
          }
          q.setStaticPrekeys.run(blob(put.signedPrekey), blob(put.lastResortPrekey), address.userId, address.deviceId);
          for (const k of newOneTime) q.insertPrekey.run(address.userId, address.deviceId, KIND_ONE_TIME, k.id, blob(k.key));
          for (const k of newPq) q.insertPrekey.run(address.userId, address.deviceId, KIND_PQ, k.id, blob(k.key));
          for (const kind of [KIND_ONE_TIME, KIND_PQ]) {
            q.trimConsumed.run(address.userId, address.deviceId, kind, address.userId, address.deviceId, kind, quota.rememberConsumed);
          }
          return { ok: true, counts: prekeyCounts(address) };
        }),
      ),

    takeBundle: (address) =>
      run('takeBundle', () =>
        write((): TakenBundle | undefined => {
          const d = q.getDevice.get(address.userId, address.deviceId) as
            | { signed_prekey: Buffer | null; last_resort_prekey: Buffer | null }
            | undefined;
          if (d === undefined || d.signed_prekey === null || d.last_resort_prekey === null) return undefined;
          // Invariant 5: both one-time keys leave in this one transaction.
          const oneTime = takeLowest(address, KIND_ONE_TIME);
          const pq = takeLowest(address, KIND_PQ);
          return {
            signedPrekey: out(d.signed_prekey),
            lastResortPrekey: out(d.last_resort_prekey),
            ...(oneTime ? { oneTimePrekey: oneTime } : {}),
            ...(pq ? { pqPrekey: pq } : {}),
            remaining: prekeyCounts(address),
          };
        }),
      ),

    prekeyCounts: (address) => run('prekeyCounts', () => prekeyCounts(address)),

    enqueue: (batch, quota) =>
      grouped('enqueue', (): EnqueueResult =>
        enqueueRows(batch.from, batch.receivedAt, batch.messages.map((m) => m.to), (i) => batch.messages[i]!.frame, quota, batch.expectedLists),
      ),

    // Each mailbox gets its own row (binding one buffer): per-mailbox acks, quotas and
    // secure_delete stay exactly as for SEND. The relay-protocol allows storing it once.
    enqueueShared: (batch, quota) =>
      grouped('enqueueShared', (): EnqueueResult => enqueueRows(batch.from, batch.receivedAt, batch.to, () => batch.frame, quota, batch.expectedLists)),

    fetch: (mailbox, options) =>
      run('fetch', () =>
        db.transaction(() => {
          // Two phases: pick rows by their metadata (frames of skipped rows are never
          // read), then read the chosen frames.
          const chosen: { seq: number; id: string; sender_user: string; sender_device: string; received_at: number }[] = [];
          let bytes = 0;
          for (const row of q.scanMailbox.iterate(mailbox.userId, mailbox.deviceId) as IterableIterator<{
            seq: number;
            id: string;
            sender_user: string;
            sender_device: string;
            received_at: number;
            size: number;
          }>) {
            if (chosen.length >= options.limit) break;
            if (options.exclude?.has(row.id)) continue;
            if (options.maxBytes !== undefined && chosen.length > 0 && bytes + row.size > options.maxBytes) break;
            bytes += row.size;
            chosen.push(row);
          }
          return chosen.map(
            (r): StoredMessage => ({
              id: r.id,
              from: { userId: r.sender_user, deviceId: r.sender_device },
              receivedAt: r.received_at,
              frame: out(q.frameOf.get(r.seq)),
            }),
          );
        })(),
      ),

    ack: (mailbox, ids) =>
      grouped('ack', () => {
        {
          let deleted = 0;
          for (const id of new Set(ids)) {
            const row = q.deleteMessage.get(mailbox.userId, mailbox.deviceId, id) as { sender_user: string; size: number } | undefined;
            if (row === undefined) continue;
            q.addUsage.run(mailbox.userId, mailbox.deviceId, -1, -row.size);
            q.addSenderUsage.run(mailbox.userId, mailbox.deviceId, row.sender_user, -1);
            deleted++;
          }
          if (deleted > 0) {
            q.pruneUsage.run(mailbox.userId, mailbox.deviceId);
            q.pruneSenderUsage.run(mailbox.userId, mailbox.deviceId);
          }
          return deleted;
        }
      }),

    stats: (mailbox) =>
      run('stats', () => {
        const usage = q.usage.get(mailbox.userId, mailbox.deviceId) as { messages: number; bytes: number } | undefined;
        return { messages: usage?.messages ?? 0, bytes: usage?.bytes ?? 0 };
      }),

    async close() {
      if (closed) return;
      flushGroup(); // what was accepted is committed before the database closes
      closed = true;
      db.close();
    },
  };
}
