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
import { isDeadboltError, StorageError, type StorageAdapter, type StorageKey, type StorageOp } from '@deadbolt/spec';
import type { CryptoProvider } from '../crypto/provider.js';
import { sealRecord, openRecord } from '../session/record-envelope.js';
import { ClientRecordType, isConversationId, type ConversationKind } from './history.js';

/** A stored marker, as {@link Announcer.scan} hands it over. */
export interface PendingAnnouncement {
  readonly key: StorageKey;
  readonly kind: ConversationKind;
  /** The user id of a 1:1 conversation, or the group id's hex. */
  readonly conversation: string;
  readonly sortKey: string;
}

export interface Announcer {
  /** The marker to write in the same batch as the message's history record. */
  op(kind: ConversationKind, conversation: string, sortKey: string): StorageOp;
  /** The marker's key. */
  key(kind: ConversationKind, conversation: string, sortKey: string): StorageKey;
  /**
   * Claims the announcement of `key` for this client instance: true the first time, false
   * if it is being announced or was announced already (by the live path, a replay or a
   * sweep). What makes each committed message's event come once per instance.
   */
  begin(key: StorageKey): boolean;
  /** The event for `key` was handled: its marker is deleted with the next flush. */
  done(key: StorageKey): void;
  /**
   * Hands every stored marker not yet claimed by this instance to `announce`, oldest
   * first (at most {@link MAX_REPLAY} per call). `announce` claims it ({@link begin}),
   * emits the event and later calls {@link done}. A corrupted marker is reported through
   * `onError` and dropped (it holds nothing but its key); a failed deletion of handled
   * markers is reported, not thrown (they are announced again at the next start).
   * Used at start (replay, `redelivered: true`) and after a group drain that failed part
   * way (sweep, `redelivered: false`: committed in this run, never announced).
   */
  scan(announce: (pending: PendingAnnouncement) => Promise<void>): Promise<void>;
  /** Deletes the markers of handled events now (at close). */
  flush(): Promise<void>;
  /** Stops the background flush; later {@link done} calls are kept for {@link flush}. */
  close(): void;
}

/** Markers handed over per scan: a bound on the work one start does (they are normally few). */
export const MAX_REPLAY = 10_000;
/** Markers deleted per batch. */
const FLUSH_CHUNK = 256;

export function createAnnouncer(storage: StorageAdapter, crypto: CryptoProvider, onError: (e: unknown) => void): Announcer {
  /** Claimed by this instance and not yet handled (a listener still running). */
  const claimed = new Set<string>();
  /** Handled, marker not yet deleted: keyed by the key's JSON (keys are string arrays). */
  const handled = new Map<string, StorageKey>();
  let scheduled: ReturnType<typeof setTimeout> | undefined;
  let flushing: Promise<void> | undefined;
  let closed = false;

  const key = (kind: ConversationKind, conversation: string, sortKey: string): StorageKey => ['announce', sortKey, kind, conversation];
  const idOf = (k: StorageKey): string => JSON.stringify(k);

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

  function done(k: StorageKey): void {
    const id = idOf(k);
    claimed.delete(id);
    handled.set(id, k);
    schedule();
  }

  return {
    key,
    op: (kind, conversation, sortKey) => ({ type: 'put', key: key(kind, conversation, sortKey), value: sealRecord(crypto, ClientRecordType.ANNOUNCE, new Uint8Array(0)) }),
    begin(k) {
      const id = idOf(k);
      if (claimed.has(id) || handled.has(id)) return false;
      claimed.add(id);
      return true;
    },
    done,
    async scan(announce) {
      // Claimed markers are skipped, so read past them (up to a bound) to make progress.
      const left = await storage.range(['announce'], { limit: MAX_REPLAY + Math.min(claimed.size + handled.size, MAX_REPLAY) });
      let handedOver = 0;
      for (const e of left) {
        const id = idOf(e.key);
        if (claimed.has(id) || handled.has(id)) continue;
        if (handedOver++ >= MAX_REPLAY) break;
        const [, sortKey, kind, conversation] = e.key;
        try {
          // Authenticated like every record (§7.1): a corrupted marker is reported, never
          // guessed at; it is empty, so dropping it loses nothing but the announcement.
          openRecord(crypto, e.key, ClientRecordType.ANNOUNCE, e.value, () => undefined);
          if (e.key.length !== 4 || typeof sortKey !== 'string' || (kind !== 'd' && kind !== 'g') || typeof conversation !== 'string' || !isConversationId(kind, conversation)) {
            throw new StorageError('CORRUPTED_RECORD', { message: 'announcement marker with an unusable key', details: { key: e.key.join('/'), reason: 'bad key' } });
          }
        } catch (err) {
          if (!isDeadboltError(err, 'CORRUPTED_RECORD')) throw err;
          onError(err);
          done(e.key);
          continue;
        }
        await announce({ key: e.key, kind, conversation, sortKey });
      }
      await flush().catch(onError);
    },
    flush,
    close() {
      closed = true;
      if (scheduled !== undefined) clearTimeout(scheduled);
      scheduled = undefined;
    },
  };
}
