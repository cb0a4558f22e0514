/**
 * The client's message history and conversation list (docs/protocol.md §11.2), stored
 * through the same storage adapter as the sessions, and written in the same atomic batch
 * as the session state that decrypted each message (SECURITY.md D24).
 *
 * ```
 * ["msg", conversationUserId, sortKey]   StoredMessage record (type 16)
 *     sortKey = local time as 16 decimal digits | "-" | "i" or "o" | "-" | hex(messageId) | "-" | hex(4 random bytes, incoming only)
 *     Every part a peer could choose is kept from deciding the key alone: the time is
 *     this device's clock (receivedAt for incoming, sentAt for outgoing), the direction
 *     is ours, and incoming records get a local random suffix, so a contact can neither
 *     overwrite another record nor pin its messages to the end of a conversation.
 * ["conv", conversationUserId]           ConversationRecord (type 17)
 * ["client", "pending-upload"]           an encoded PrekeyUpload not yet acknowledged (type 18)
 * ["group-msg", hex(groupId), sortKey]   StoredMessage record of a group conversation (type 19)
 * ["group-conv", hex(groupId)]           ConversationRecord of a group this device created or joined (type 20)
 * ["group-orphan", seq]                  a group message for a group not known yet (type 21, groups.ts)
 * ["msg-seen", conversation, "i"|"o", hex(messageId)]  a message already in history (type 22)
 * ["announce", sortKey, "d"|"g", conversation]  an event not yet handled (type 23, announcements.ts)
 * ["client", "contacted", userId]        this device sent a message to the user (type 24)
 * ["pending-send", "d"|"g", conversation, sortKey]  an outgoing message not settled yet (type 25, interrupted-sends.ts)
 *
 * StoredMessage      = messageId[16] | direction u8 (1 incoming, 2 outgoing) | senderUser string8
 *                    | senderDevice string8 | sentAt u64 | receivedAt u64 | status u8 | flags u8 | body bytes32
 *     flags bit 0: the sender's account key was not the trusted one (identity changed)
 * ConversationRecord = lastActivity u64
 * ```
 *
 * @module
 */
import { STORAGE_LIMITS, UsageError, deviceId as toDeviceId, userId as toUserId, type Address, type StorageAdapter, type StorageEntry, type UserId } from '@deadbolt/spec';
import type { ByteReader } from '../codec/reader.js';
import { toHex } from '../codec/bytes.js';
import { ByteWriter } from '../codec/writer.js';

/**
 * Options of a history read (`client.history`, `group.history`).
 *
 * @example
 * ```ts
 * const latest = await client.history('bob', { limit: 50 }); // the 50 newest, oldest first
 * const older = await client.history('bob', { limit: 50, before: latest[0]!.sortKey }); // the 50 before them
 * ```
 */
export interface HistoryOptions {
  /** How many messages at most: the newest ones of the window. An integer; default 100, capped to 1 to 1,000. */
  readonly limit?: number;
  /** Only messages older than the one with this `sortKey` (scrolling back a page at a time); `undefined`: the newest. */
  readonly before?: string | undefined;
}

/**
 * One page of a conversation's history (docs/protocol.md §11.2): the last `limit` records
 * under `prefix` (before `before`'s record when given), oldest first. A reverse range with
 * a limit (storage invariant 12) reads just that page however long the conversation is.
 */
export async function readHistoryPage(storage: StorageAdapter, prefix: readonly string[], options: HistoryOptions = {}): Promise<StorageEntry[]> {
  if (typeof options !== 'object' || options === null) throw new UsageError('INVALID_ARGUMENT', { message: 'options: expected an object', details: { field: 'options', expected: '{ limit?, before? }' } });
  const requested = options.limit ?? 100;
  if (!Number.isInteger(requested)) throw new UsageError('INVALID_ARGUMENT', { message: 'limit must be an integer', details: { field: 'limit', expected: 'an integer from 1 to 1000' } });
  const limit = Math.min(Math.max(1, requested), 1000);
  const before = options.before;
  if (before !== undefined && (typeof before !== 'string' || before.length > STORAGE_LIMITS.maxSegmentLength)) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'before must be a message sortKey', details: { field: 'before', expected: "a message's sortKey" } });
  }
  const page = await storage.range(prefix, { reverse: true, limit, ...(before !== undefined ? { before: [...prefix, before] } : {}) });
  return page.reverse();
}

/** Client record types (continuing the core record types of §7.1). */
export const ClientRecordType = Object.freeze({ MESSAGE: 16, CONVERSATION: 17, PENDING_UPLOAD: 18, GROUP_MESSAGE: 19, GROUP_CONVERSATION: 20, GROUP_ORPHAN: 21, SEEN: 22, ANNOUNCE: 23, CONTACTED: 24, PENDING_SEND: 25 });

/** Delivery state of an outgoing message. */
export type DeliveryStatus = 'received' | 'pending' | 'sent' | 'failed';
const STATUS: readonly DeliveryStatus[] = ['received', 'pending', 'sent', 'failed'];

/** One message in a conversation. */
export interface StoredMessage {
  /** Hex of the sender-chosen 16-byte id. */
  readonly id: string;
  /** The other user of the conversation. */
  readonly conversation: UserId;
  readonly direction: 'incoming' | 'outgoing';
  readonly sender: Address;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly status: DeliveryStatus;
  /** True if the sender's account key was not the trusted one when it arrived. */
  readonly untrusted: boolean;
  /** The storage sort key (see the module documentation). */
  readonly sortKey: string;
  readonly body: Uint8Array;
}

/**
 * One message of a group conversation (docs/protocol.md §11.2): the fields of a
 * {@link StoredMessage}, in the conversation of a group rather than of a user.
 */
export interface StoredGroupMessage extends Omit<StoredMessage, 'conversation'> {
  /** The group's id: 64 lowercase hex characters. */
  readonly groupId: string;
}

/**
 * A message this device sends, as history records it in `status` (§11.2), without its
 * conversation: outgoing, received when sent, and never untrusted (it is this device's own).
 */
export function outgoingMessage(
  m: Pick<StoredMessage, 'id' | 'sender' | 'sentAt' | 'sortKey' | 'body'>,
  status: DeliveryStatus,
): Omit<StoredMessage, 'conversation'> {
  return { id: m.id, direction: 'outgoing', sender: m.sender, sentAt: m.sentAt, receivedAt: m.sentAt, status, untrusted: false, sortKey: m.sortKey, body: m.body };
}

/**
 * A message as the `message-received` event hands it over (docs/protocol.md §11.4): the
 * stored message, and whether this may be a repeat.
 */
export interface ReceivedMessage extends StoredMessage {
  /**
   * This device's own id for the message, unique on the device and the same when the event
   * is redelivered: the kind, the conversation and the record's sort key (which for every
   * received message carries a local random part). Use it, not {@link StoredMessage.id}, to
   * recognise a redelivery: `id` is chosen by the sender, so another member of a group can
   * send a message with the same `id` on purpose.
   */
  readonly localId: string;
  /**
   * False the first time. True when the event is emitted again at `start` because the
   * process stopped before the last announcement was recorded as handled: the application
   * may have seen this message (same {@link StoredMessage.id}) already.
   */
  readonly redelivered: boolean;
}

/** A group message as the `group-message-received` event hands it over (§11.4). */
export interface ReceivedGroupMessage extends StoredGroupMessage {
  /** As {@link ReceivedMessage.localId}. */
  readonly localId: string;
  /** As {@link ReceivedMessage.redelivered}. */
  readonly redelivered: boolean;
}

/** A conversation summary. */
export interface Conversation {
  readonly userId: UserId;
  readonly lastActivity: number;
}

export const historyKeys = Object.freeze({
  message: (conversation: string, sortKey: string): string[] => ['msg', conversation, sortKey],
  sortKey: (localTime: number, direction: 'incoming' | 'outgoing', messageIdHex: string, suffix = ''): string =>
    `${String(localTime).padStart(16, '0')}-${direction === 'incoming' ? 'i' : 'o'}-${messageIdHex}${suffix ? `-${suffix}` : ''}`,
  messages: (conversation: string): string[] => ['msg', conversation],
  conversation: (userId: string): string[] => ['conv', userId],
  /** A message already in history (§11.2): a second copy of it is dropped. */
  seen: (conversation: string, direction: 'incoming' | 'outgoing', messageIdHex: string): string[] => ['msg-seen', conversation, direction === 'incoming' ? 'i' : 'o', messageIdHex],
  conversations: (): string[] => ['conv'],
  pendingUpload: (): string[] => ['client', 'pending-upload'],
  /** This device sent a message to this user (§11.1): signals from the user are not a first contact. */
  contacted: (userId: string): string[] => ['client', 'contacted', userId],
  groupMessage: (groupIdHex: string, sortKey: string): string[] => ['group-msg', groupIdHex, sortKey],
  groupMessages: (groupIdHex: string): string[] => ['group-msg', groupIdHex],
  groupConversation: (groupIdHex: string): string[] => ['group-conv', groupIdHex],
  groupConversations: (): string[] => ['group-conv'],
  groupOrphan: (seq: string): string[] => ['group-orphan', seq],
  groupOrphans: (): string[] => ['group-orphan'],
});

/** How a marker's key names its conversation (`pending-send`, `announce`): `d` a 1:1 one, `g` a group. */
export type ConversationKind = 'd' | 'g';

/**
 * Whether `conversation`, read back from a marker's key (`pending-send`, `announce`), is
 * one the client writes: a valid user id for a 1:1 message (`d`), a group id's 64-char
 * lowercase hex for a group message (`g`). Anything else is a corrupted marker.
 */
export function isConversationId(kind: ConversationKind, conversation: string): boolean {
  if (kind === 'g') return /^[0-9a-f]{64}$/.test(conversation);
  try {
    toUserId(conversation);
    return true;
  } catch {
    return false;
  }
}

export function encodeStoredMessage(m: Omit<StoredMessage, 'conversation'>, messageId: Uint8Array): Uint8Array {
  return new ByteWriter(64 + m.body.length)
    .fixed(messageId, 16)
    .u8(m.direction === 'incoming' ? 1 : 2)
    .string8(m.sender.userId)
    .string8(m.sender.deviceId)
    .u64(m.sentAt)
    .u64(m.receivedAt)
    .u8(STATUS.indexOf(m.status))
    .u8(m.untrusted ? 1 : 0)
    .bytes32(m.body)
    .finish();
}

/** Reads a stored message; `conversation` and `sortKey` come from its key. */
export function readStoredMessage(r: ByteReader, conversation: UserId, sortKey: string): StoredMessage {
  const id = toHex(r.fixed('messageId', 16));
  const direction = r.enumU8('direction', [1, 2]) === 1 ? 'incoming' : 'outgoing';
  const at = r.offset;
  let sender: Address;
  try {
    sender = { userId: toUserId(r.string8('sender.userId')), deviceId: toDeviceId(r.string8('sender.deviceId')) };
  } catch {
    throw r.fail('sender', 'invalid address', at);
  }
  const sentAt = r.u64('sentAt');
  const receivedAt = r.u64('receivedAt');
  const status = STATUS[r.enumU8('status', [0, 1, 2, 3])] as DeliveryStatus;
  const untrusted = r.bool('flags');
  const body = r.bytes32('body', 1 << 20);
  return { id, conversation, direction, sender, sentAt, receivedAt, status, untrusted, sortKey, body };
}

/** Reads a stored group message; `groupId` and `sortKey` come from its key. */
export function readStoredGroupMessage(r: ByteReader, groupId: string, sortKey: string): StoredGroupMessage {
  const { conversation: _none, ...fields } = readStoredMessage(r, '' as UserId, sortKey);
  return { ...fields, groupId };
}

export function encodeConversation(c: Omit<Conversation, 'userId'>): Uint8Array {
  return new ByteWriter(8).u64(c.lastActivity).finish();
}

export function readConversation(r: ByteReader): Omit<Conversation, 'userId'> {
  return { lastActivity: r.u64('lastActivity') };
}
