/**
 * Sends a crash interrupted (docs/protocol.md §11.2): an outgoing message is recorded
 * `pending` before its frames leave, and `sent` or `failed` once the transport answered.
 * A process that dies in between would leave it `pending` for ever, so the pending record
 * is written together with a marker, in the same batch, and the marker is deleted in the
 * batch that records the outcome:
 *
 * ```
 * ["pending-send", "d" | "g", conversation, sortKey]   empty record (type 25)
 * ```
 *
 * At the next `start()`, before connecting, every marker left is resolved: a message still
 * `pending` becomes `failed` (the application may offer to send it again), and the marker
 * goes, in one batch. `failed`, not `sent`: the frames may or may not have reached the
 * relay before the crash, and only the user can decide whether a possible repeat is worth
 * it (Signal does the same). A marker whose record is gone or already settled is deleted;
 * a corrupted one (its record, or its key: a conversation that is not a user id or a group
 * id's hex) is reported (`error` event) and deleted, never fatal.
 *
 * Two clients sharing one store (two tabs, storage invariant 11): each marker is resolved,
 * and each outcome recorded, inside the store's exclusive lock, the marker and its record
 * read again under it. Without the lock, a tab starting while the other settles could read
 * the record `pending`, let the sender record `sent` and delete the marker, then write
 * `failed` last, for good: a delivered message shown as failed. Under it, either the sender
 * settled first (the marker is gone: skipped) or the resolution did, and the sender's
 * outcome then overwrites its `failed`: the last word is the sender's, or `failed` if the
 * sender dies first, which is right then.
 *
 * The limit left: a tab that starts while the other is still sending cannot tell that send
 * from one a crash interrupted, so the message shows `failed` until the sender's outcome
 * lands (the user may resend it meanwhile: a possible repeat, as after a crash). Telling
 * them apart needs to know whether the run that wrote a marker is alive, which the storage
 * contract cannot say across tabs or processes; a clock-based lease would instead spare a
 * send that a page reload (the commonest crash) interrupted a moment ago, leaving it
 * `pending` until some later start. An adapter without the lock must be used by one client
 * at a time (invariant 11), so there the question does not arise.
 *
 * @module
 */
import { fromHex, isDeadboltError, StorageError, userId as toUserId, type StorageAdapter, type StorageKey, type StorageOp, type UserId } from '@deadbolt/spec';
import type { CryptoProvider } from '../crypto/provider.js';
import { openRecord, sealRecord } from '../session/record-envelope.js';
import { ClientRecordType, encodeStoredMessage, historyKeys, isConversationId, type ConversationKind, readStoredGroupMessage, readStoredMessage } from './history.js';

/** Markers resolved by one `start()` at most; any beyond wait for the next start. */
const MAX_RESOLVED_PER_START = 1000;

const markerKey = (kind: ConversationKind, conversation: string, sortKey: string): string[] => ['pending-send', kind, conversation, sortKey];

/** The marker written with a `pending` record. */
export function pendingSendMarker(crypto: CryptoProvider, kind: ConversationKind, conversation: string, sortKey: string): StorageOp {
  return { type: 'put', key: markerKey(kind, conversation, sortKey), value: sealRecord(crypto, ClientRecordType.PENDING_SEND, new Uint8Array(0)) };
}

/** The marker's deletion, in the batch that records the outcome. */
function settledSendMarker(kind: ConversationKind, conversation: string, sortKey: string): StorageOp {
  return { type: 'delete', key: markerKey(kind, conversation, sortKey) };
}

/** Runs `fn` inside the store's exclusive lock when it has one (invariant 11; not re-entrant). */
function locked<T>(storage: StorageAdapter, fn: () => Promise<T>): Promise<T> {
  return storage.exclusive === undefined ? fn() : storage.exclusive(fn);
}

/**
 * Hands a message recorded `pending` (with its marker) to `deliver`, then records the
 * outcome and deletes the marker in one batch: `failed` when `deliver` throws (the error
 * is rethrown), else `sent`, whose message is returned. `record(status)` gives the
 * message in a status, `write(message)` its history write.
 */
export async function settleSend<M>(
  storage: StorageAdapter,
  marker: { readonly kind: ConversationKind; readonly conversation: string; readonly sortKey: string },
  record: (status: 'sent' | 'failed') => M,
  write: (message: M) => StorageOp,
  deliver: () => Promise<void>,
): Promise<M> {
  const settled = settledSendMarker(marker.kind, marker.conversation, marker.sortKey);
  // Under the lock, so that a resolution by another tab never lands after it (module doc).
  // A lock that cannot be had in time (STORAGE_BUSY: another process holds the file and
  // does not let go) must not turn a delivered message into an error and, at the next
  // start, a `failed` one the user would send twice: the outcome is then written without
  // it (a batch is atomic on its own; only the ordering against another tab is lost).
  const settle = async (message: M): Promise<void> => {
    const ops = [write(message), settled];
    try {
      await locked(storage, () => storage.batch(ops));
    } catch (e) {
      if (!isDeadboltError(e, 'STORAGE_BUSY')) throw e;
      await storage.batch(ops);
    }
  };
  try {
    await deliver();
  } catch (e) {
    // The delivery's error is the one the caller gets. If recording `failed` fails too,
    // the marker stays, and the next start records it (module doc).
    await settle(record('failed')).catch(() => undefined);
    throw e;
  }
  const sent = record('sent');
  await settle(sent);
  return sent;
}

/** What a marker's key names, checked: its conversation is used as a user id or a group id's hex. */
type MarkerTarget =
  | { readonly kind: 'd'; readonly conversation: UserId; readonly sortKey: string }
  | { readonly kind: 'g'; readonly conversation: string; readonly sortKey: string };

/** A marker's key read back; anything but a key {@link markerKey} writes is a corrupted marker. */
function readMarkerKey(key: StorageKey): MarkerTarget {
  const [, kind, conversation = '', sortKey = ''] = key;
  const bad = (reason: string): StorageError<'CORRUPTED_RECORD'> =>
    new StorageError('CORRUPTED_RECORD', { message: `stored record ${key.join('/')} is unusable: ${reason}`, details: { key: key.join('/'), reason } });
  if (key.length !== 4 || (kind !== 'd' && kind !== 'g')) throw bad('bad key');
  if (!isConversationId(kind, conversation)) throw bad(kind === 'g' ? 'bad group id' : 'bad user id');
  return kind === 'g' ? { kind, conversation, sortKey } : { kind, conversation: toUserId(conversation), sortKey };
}

/**
 * Resolves one marker, inside the lock: read again, as another tab may have settled it
 * since it was listed. Whether it marked a message `failed`.
 */
async function resolveMarker(storage: StorageAdapter, crypto: CryptoProvider, key: StorageKey, report: (error: unknown) => void): Promise<boolean> {
  const marker = await storage.get(key);
  if (marker === undefined) return false; // settled meanwhile by the run that sent it
  const drop: StorageOp = { type: 'delete', key };
  try {
    openRecord(crypto, key, ClientRecordType.PENDING_SEND, marker, () => undefined);
    const target = readMarkerKey(key);
    const at = target.kind === 'd' ? historyKeys.message(target.conversation, target.sortKey) : historyKeys.groupMessage(target.conversation, target.sortKey);
    const type = target.kind === 'd' ? ClientRecordType.MESSAGE : ClientRecordType.GROUP_MESSAGE;
    const value = await storage.get(at);
    const message =
      value === undefined
        ? undefined
        : target.kind === 'd'
          ? openRecord(crypto, at, type, value, (r) => readStoredMessage(r, target.conversation, target.sortKey))
          : openRecord(crypto, at, type, value, (r) => readStoredGroupMessage(r, target.conversation, target.sortKey));
    if (message === undefined || message.status !== 'pending') {
      await storage.batch([drop]);
      return false;
    }
    const record = sealRecord(crypto, type, encodeStoredMessage({ ...message, status: 'failed' }, fromHex(message.id)));
    await storage.batch([{ type: 'put', key: at, value: record }, drop]);
    return true;
  } catch (e) {
    // A corrupted marker or record is reported and dropped: it must not stop start().
    if (!isDeadboltError(e, 'CORRUPTED_RECORD')) throw e;
    report(e);
    await storage.batch([drop]);
    return false;
  }
}

/**
 * Resolves the markers an earlier run left (see the module documentation), each in its
 * own hold of the store's lock. Returns how many messages it marked `failed`.
 */
export async function failInterruptedSends(storage: StorageAdapter, crypto: CryptoProvider, report: (error: unknown) => void): Promise<number> {
  let failed = 0;
  for (const { key } of await storage.range(['pending-send'], { limit: MAX_RESOLVED_PER_START })) {
    if (await locked(storage, () => resolveMarker(storage, crypto, key, report))) failed++;
  }
  return failed;
}
