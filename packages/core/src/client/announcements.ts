/**
 * Announcements (docs/protocol.md §11.4): a message reaches the application's
 * `message-received` / `group-message-received` listeners at least once, even when the
 * process dies between committing the message and emitting its event.
 *
 * ```
 * ["announce", sortKey, "d", conversationUserId]   empty (record type 23): a 1:1 message
 * ["announce", sortKey, "g", gid]                  empty (record type 23): a group message
 * ```
 *
 * The marker is written in the same atomic batch as the message's history record, so a
 * committed message always has one until its event has been handled. After the listeners
 * returned (and the promises they returned settled), the marker is deleted; deletions are
 * coalesced into one batch per burst of messages. On the next `start`, every marker left
 * (the process died between the commit and the deletion) is emitted again, in `sortKey`
 * order, with `redelivered: true`.
 *
 * Why not exactly once here: the application's own side effect (a database row, a
 * notification) and this store are two stores, and no ordering of two writes makes them
 * atomic. So the guarantee is split where it can be kept: the SDK never loses an
 * announcement, and never repeats one without saying so (`redelivered`); an application
 * that records the ids of what it handled, and checks them only for redelivered events,
 * sees every message exactly once.
 *
 * @module
 */
import type { StorageAdapter, StorageKey, StorageOp } from '@deadbolt/spec';
import type { CryptoProvider } from '../crypto/provider.js';
import { sealRecord, openRecord } from '../session/record-envelope.js';
import { ClientRecordType } from './history.js';

/** Whom a marker points at: a 1:1 conversation (`d`) or a group (`g`). */
export type AnnouncedKind = 'd' | 'g';

/** A marker left by an earlier run, as {@link Announcer.replay} hands it over. */
export interface PendingAnnouncement {
  readonly key: StorageKey;
  readonly kind: AnnouncedKind;
  /** The user id of a 1:1 conversation, or the group id's hex. */
  readonly conversation: string;
  readonly sortKey: string;
}

export interface Announcer {
  /** The marker to write in the same batch as the message's history record. */
  op(kind: AnnouncedKind, conversation: string, sortKey: string): StorageOp;
  /** The marker's key. */
  key(kind: AnnouncedKind, conversation: string, sortKey: string): StorageKey;
  /** The event for `key` was handled: its marker is deleted with the next flush. */
  done(key: StorageKey): void;
  /**
   * Calls `announce` for every marker left by an earlier run, oldest first, at most
   * {@link MAX_REPLAY} of them per call; `announce` emits the event and calls
   * {@link done} (or leaves the marker for the next start). Resolves once they were
   * handed over and the markers of those already done were deleted.
   */
  replay(announce: (pending: PendingAnnouncement) => Promise<void>): Promise<void>;
  /** Deletes the markers of handled events now (at close). */
  flush(): Promise<void>;
  /** Stops the background flush; later {@link done} calls are kept for {@link flush}. */
  close(): void;
}

/** Markers replayed per start: a bound on the work one start does (they are normally few). */
export const MAX_REPLAY = 10_000;
/** Markers deleted per batch. */
const FLUSH_CHUNK = 256;

export function createAnnouncer(storage: StorageAdapter, crypto: CryptoProvider, onError: (e: unknown) => void): Announcer {
  /** Handled, marker not yet deleted: keyed by the key's JSON (keys are string arrays). */
  const handled = new Map<string, StorageKey>();
  let scheduled: ReturnType<typeof setTimeout> | undefined;
  let flushing: Promise<void> | undefined;
  let closed = false;

  const key = (kind: AnnouncedKind, conversation: string, sortKey: string): StorageKey => ['announce', sortKey, kind, conversation];

  async function flushNow(): Promise<void> {
    while (handled.size > 0) {
      const chunk = [...handled].slice(0, FLUSH_CHUNK);
      await storage.batch(chunk.map(([, k]): StorageOp => ({ type: 'delete', key: k })));
      for (const [id] of chunk) handled.delete(id);
    }
  }

  function flush(): Promise<void> {
    // One flush at a time; a done() during it is picked up by its loop.
    flushing ??= flushNow().finally(() => (flushing = undefined));
    return flushing;
  }

  function schedule(): void {
    if (closed || scheduled !== undefined) return;
    // A macrotask later: the events of one burst of frames share one delete batch.
    scheduled = setTimeout(() => {
      scheduled = undefined;
      // A failed delete only means a redelivery at the next start; the keys stay queued.
      flush().catch(onError);
    }, 0);
    (scheduled as { unref?: () => void }).unref?.();
  }

  return {
    key,
    op: (kind, conversation, sortKey) => ({ type: 'put', key: key(kind, conversation, sortKey), value: sealRecord(crypto, ClientRecordType.ANNOUNCE, new Uint8Array(0)) }),
    done(k) {
      handled.set(JSON.stringify(k), k);
      schedule();
    },
    async replay(announce) {
      const left = await storage.range(['announce'], { limit: MAX_REPLAY });
      for (const e of left) {
        // A marker is authenticated like every record (§7.1): a corrupted one is an error,
        // not a guess. Its key says what it points at.
        openRecord(crypto, e.key, ClientRecordType.ANNOUNCE, e.value, () => undefined);
        const [, sortKey, kind, conversation] = e.key;
        if (e.key.length !== 4 || typeof sortKey !== 'string' || (kind !== 'd' && kind !== 'g') || typeof conversation !== 'string') {
          handled.set(JSON.stringify(e.key), e.key); // not ours to read: dropped
          continue;
        }
        await announce({ key: e.key, kind, conversation, sortKey });
      }
      await flush();
    },
    flush,
    close() {
      closed = true;
      if (scheduled !== undefined) clearTimeout(scheduled);
      scheduled = undefined;
    },
  };
}
