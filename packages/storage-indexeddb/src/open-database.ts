/**
 * Opening the database: the upgrade, a blocked upgrade, and connections closed underneath.
 *
 * idb's `openDB` always uses the global `indexedDB`; the adapter takes the factory as an
 * option (STYLE.md: platform objects are injectable), so it opens the request itself and
 * wraps the connection with idb's `wrap`.
 *
 * @module
 */
import { StorageError } from '@deadbolt/spec';
import { wrap } from 'idb';
import { backendError, type LostReason } from './storage-errors.js';
import { STORE_NAME, upgradeSchema, type Migration, type StorageDatabase } from './schema.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

/** @internal */
export interface OpenDatabaseOptions {
  readonly factory: IDBFactory;
  readonly name: string;
  readonly version: number;
  readonly migrations?: readonly Migration[];
  /**
   * How long an upgrade may stay blocked by other connections (the open request's
   * `blocked` event) before the open fails with `STORAGE_BUSY`; 0 fails at once, and
   * `Infinity` waits as long as it takes.
   */
  readonly blockedTimeoutMs: number;
  /**
   * Called once when the connection goes away underneath: after it was closed because
   * another connection wants to delete or upgrade the database (`versionchange`), or when
   * the browser closed it (`close` event).
   */
  readonly onLost: (reason: LostReason) => void;
}

/** @internal An open in progress. */
export interface PendingOpen {
  /** The connection, or a `StorageError` (never rejects with anything else). */
  readonly connection: Promise<StorageDatabase>;
  /**
   * Gives up: `connection` rejects with `reason` if it has not settled yet, and a
   * connection that opens later (say, once a blocked upgrade is unblocked) is closed at
   * once instead of leaking and blocking the next upgrade.
   */
  abandon(reason: unknown): void;
}

/** @internal Opens (creating or upgrading) the database. */
export function openDatabase(options: OpenDatabaseOptions): PendingOpen {
  const { factory, name, version } = options;
  let settled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let resolveConnection!: (db: StorageDatabase) => void;
  let rejectConnection!: (e: unknown) => void;
  const connection = new Promise<StorageDatabase>((resolve, reject) => {
    resolveConnection = resolve;
    rejectConnection = reject;
  });
  const fail = (e: unknown): void => {
    if (settled) return;
    settled = true;
    if (timer !== undefined) clearTimeout(timer);
    rejectConnection(e);
  };

  let request: IDBOpenDBRequest;
  try {
    request = factory.open(name, version);
  } catch (cause) {
    // TypeError for a bad version, SecurityError in an opaque origin (about:blank, file:).
    fail(backendError(name, 'open', cause));
    return { connection, abandon: fail };
  }
  // Set when a migration throws: the upgrade is aborted and this explains why.
  let migrationFailure: { cause: unknown } | undefined;

  request.addEventListener('upgradeneeded', (event) => {
    const raw = request.result;
    const tx = request.transaction as IDBTransaction;
    if (settled) {
      // Abandoned while blocked (or closed) before the upgrade could start: the caller was
      // told it failed, so it must not happen later behind their back.
      tx.abort();
      return;
    }
    try {
      upgradeSchema(raw, tx, event.oldVersion, event.newVersion ?? version, options.migrations);
    } catch (cause) {
      migrationFailure = { cause };
      tx.abort(); // the open request then fails with AbortError: nothing half-migrated
    }
  });

  request.addEventListener('blocked', () => {
    // Another connection (another tab running an older build that does not close on
    // `versionchange`) keeps the database open at an older version. Our own connections
    // close on `versionchange` (below), so they never cause this.
    if (settled || timer !== undefined) return;
    const busy = () =>
      new StorageError('STORAGE_BUSY', {
        message: `IndexedDB upgrade of "${name}" to schema version ${version} is blocked: another tab or connection keeps it open at an older version. Close other tabs of this app and retry`,
        details: { operation: 'open', waitedMs: options.blockedTimeoutMs },
      });
    if (options.blockedTimeoutMs <= 0) fail(busy());
    // Timers overflow past 2^31 - 1 ms (and would fire at once): beyond that, wait forever.
    else if (options.blockedTimeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => fail(busy()), options.blockedTimeoutMs);
  });

  request.addEventListener('success', () => {
    const raw = request.result;
    if (settled) {
      raw.close(); // abandoned (closed, or gave up while blocked): do not leak it
      return;
    }
    let lost = false;
    const onLost = (reason: LostReason) => {
      if (lost) return;
      lost = true;
      options.onLost(reason);
    };
    // Another connection wants to delete or upgrade the database. Close at once (in the
    // event handler, synchronously) so we never block it; in-flight transactions still
    // complete. Do not reopen: after a delete that would silently recreate an empty
    // store, and after an upgrade this build is too old to read it.
    raw.addEventListener('versionchange', () => {
      raw.close();
      onLost('versionchange');
    });
    // The browser closed the connection (site data cleared, storage failure).
    raw.addEventListener('close', () => onLost('terminated'));
    if (!raw.objectStoreNames.contains(STORE_NAME)) {
      raw.close();
      fail(
        new StorageError('CORRUPTED_RECORD', {
          message: `IndexedDB database "${name}" has schema version ${raw.version} but no "${STORE_NAME}" store: not a Deadbolt storage database`,
          details: { key: `indexeddb:${name}`, reason: `no ${STORE_NAME} store` },
        }),
      );
      return;
    }
    settled = true;
    if (timer !== undefined) clearTimeout(timer);
    resolveConnection(wrap(raw) as unknown as StorageDatabase);
  });

  request.addEventListener('error', (event) => {
    // Handled here: keep it from surfacing as an uncaught error event.
    event.preventDefault();
    const error = request.error;
    if (error?.name === 'VersionError') {
      fail(
        new StorageError('CORRUPTED_RECORD', {
          message: `IndexedDB database "${name}" has a newer schema than this adapter (which reads version ${version}): update the app`,
          details: { key: `indexeddb:${name}`, reason: 'newer schema' },
          cause: error,
        }),
      );
    } else if (migrationFailure !== undefined) {
      fail(
        new StorageError('STORAGE_FAILED', {
          message: `IndexedDB upgrade of "${name}" to schema version ${version} failed; the database keeps its previous version`,
          details: { operation: 'upgrade' },
          cause: migrationFailure.cause,
        }),
      );
    } else {
      fail(backendError(name, 'open', error));
    }
  });

  return { connection, abandon: fail };
}
