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
 * a corrupted one is reported (`error` event) and deleted, never fatal.
 *
 * Two clients sharing one store (two tabs) each resolve at their own start: a tab that
 * starts while the other is sending may mark that message `failed` until the sender's own
 * outcome overwrites it (`sent`), which it always does last.
 *
 * @module
 */
import { fromHex, isDeadboltError, userId as toUserId, type StorageAdapter, type StorageOp } from '@deadbolt/spec';
import type { CryptoProvider } from '../crypto/provider.js';
import { openRecord, sealRecord } from '../session/record-envelope.js';
import { ClientRecordType, encodeStoredMessage, historyKeys, readStoredGroupMessage, readStoredMessage } from './history.js';

/** Markers resolved by one `start()` at most; any beyond wait for the next start. */
const MAX_RESOLVED_PER_START = 1000;

/** Which history a marker points into: a 1:1 conversation (`d`) or a group (`g`). */
export type SendKind = 'd' | 'g';

const markerKey = (kind: SendKind, conversation: string, sortKey: string): string[] => ['pending-send', kind, conversation, sortKey];

/** The marker written with a `pending` record. */
export function pendingSendMarker(crypto: CryptoProvider, kind: SendKind, conversation: string, sortKey: string): StorageOp {
  return { type: 'put', key: markerKey(kind, conversation, sortKey), value: sealRecord(crypto, ClientRecordType.PENDING_SEND, new Uint8Array(0)) };
}

/** The marker's deletion, in the batch that records the outcome. */
export function settledSendMarker(kind: SendKind, conversation: string, sortKey: string): StorageOp {
  return { type: 'delete', key: markerKey(kind, conversation, sortKey) };
}

/**
 * Hands a message recorded `pending` (with its marker) to `deliver`, then records the
 * outcome and deletes the marker in one batch: `failed` when `deliver` throws (the error
 * is rethrown), else `sent`, whose message is returned. `record(status)` gives the
 * message in a status, `write(message)` its history write.
 */
export async function settleSend<M>(
  storage: StorageAdapter,
  marker: { readonly kind: SendKind; readonly conversation: string; readonly sortKey: string },
  record: (status: 'sent' | 'failed') => M,
  write: (message: M) => StorageOp,
  deliver: () => Promise<void>,
): Promise<M> {
  const settled = settledSendMarker(marker.kind, marker.conversation, marker.sortKey);
  try {
    await deliver();
  } catch (e) {
    await storage.batch([write(record('failed')), settled]);
    throw e;
  }
  const sent = record('sent');
  await storage.batch([write(sent), settled]);
  return sent;
}

/**
 * Resolves the markers an earlier run left (see the module documentation). Returns how
 * many messages it marked `failed`.
 */
export async function failInterruptedSends(storage: StorageAdapter, crypto: CryptoProvider, report: (error: unknown) => void): Promise<number> {
  let failed = 0;
  for (const marker of await storage.range(['pending-send'], { limit: MAX_RESOLVED_PER_START })) {
    const [, kind, conversation, sortKey] = marker.key as [string, string, string, string];
    const drop: StorageOp = { type: 'delete', key: marker.key };
    if (marker.key.length !== 4 || (kind !== 'd' && kind !== 'g')) {
      await storage.batch([drop]); // not a key this version writes: nothing to resolve
      continue;
    }
    const key = kind === 'd' ? historyKeys.message(conversation, sortKey) : historyKeys.groupMessage(conversation, sortKey);
    const type = kind === 'd' ? ClientRecordType.MESSAGE : ClientRecordType.GROUP_MESSAGE;
    try {
      openRecord(crypto, marker.key, ClientRecordType.PENDING_SEND, marker.value, () => undefined);
      const value = await storage.get(key);
      const message =
        value === undefined
          ? undefined
          : kind === 'd'
            ? openRecord(crypto, key, type, value, (r) => readStoredMessage(r, toUserId(conversation), sortKey))
            : openRecord(crypto, key, type, value, (r) => readStoredGroupMessage(r, conversation, sortKey));
      if (message === undefined || message.status !== 'pending') {
        await storage.batch([drop]);
        continue;
      }
      const record = sealRecord(crypto, type, encodeStoredMessage({ ...message, status: 'failed' }, fromHex(message.id)));
      await storage.batch([{ type: 'put', key, value: record }, drop]);
      failed++;
    } catch (e) {
      // A corrupted marker or record is reported and dropped: it must not stop start().
      if (!isDeadboltError(e, 'CORRUPTED_RECORD')) throw e;
      report(e);
      await storage.batch([drop]);
    }
  }
  return failed;
}
