/**
 * Persistence of the group records over the storage contract (docs/protocol.md
 * §12.11). Reads check each record's envelope (docs/protocol.md §7.1) and decode it;
 * writes are returned as storage operations so that every state change lands in **one
 * atomic batch** with the rest of its operation. Nothing here decides anything.
 *
 * Large states are decoded once and reused while their stored bytes stay byte-identical
 * (any other writer changes the bytes and forces a fresh, checked decode), so a group of a
 * thousand members is not re-parsed on every distribution.
 *
 * @module
 */
import type { Address, StorageAdapter, StorageKey, StorageOp } from '@deadbolt/spec';
import type { ByteReader } from '../codec/reader.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { openRecord, sealRecord } from '../session/record-envelope.js';
import type { SignedGroupChange } from './group-change.js';
import {
  encodeChangeRecord,
  encodeGroupMetaRecord,
  encodeHeldMessageRecord,
  encodeInboxRecord,
  encodeOwnSenderKey,
  encodeRecipientsRecord,
  encodeSenderRecord,
  groupKeys,
  GroupRecordType,
  readChangeRecord,
  readGroupMetaRecord,
  readGroupStateRecord,
  readHeldMessageRecord,
  readInboxRecord,
  readOwnSenderKey,
  readPendingRecord,
  readRecipientsRecord,
  readSenderRecord,
  type ChangeRecord,
  type GroupMetaRecord,
  type HeldMessageRecord,
  type InboxRecord,
  type OwnSenderKey,
  type RecipientsRecord,
} from './group-records.js';
import type { GroupState } from './group-state.js';
import type { SenderRecord } from './sender-key.js';

/** A record read with its storage key (for ranges). */
export interface Keyed<T> {
  readonly key: StorageKey;
  readonly value: T;
}

/** Typed access to the group records. Create with {@link createGroupStore}. */
export interface GroupStore {
  readonly storage: StorageAdapter;
  meta(gid: string): Promise<GroupMetaRecord | undefined>;
  putMeta(gid: string, v: GroupMetaRecord): StorageOp;
  head(gid: string): Promise<{ readonly state: GroupState; readonly bytes: Uint8Array } | undefined>;
  putHead(gid: string, encoded: Uint8Array): StorageOp;
  base(gid: string): Promise<{ readonly state: GroupState; readonly bytes: Uint8Array } | undefined>;
  putBase(gid: string, encoded: Uint8Array): StorageOp;
  changes(gid: string): Promise<Keyed<ChangeRecord>[]>;
  putChange(gid: string, hashHex: string, v: ChangeRecord): StorageOp;
  pending(gid: string): Promise<Keyed<SignedGroupChange>[]>;
  putPending(gid: string, hashHex: string, change: SignedGroupChange): StorageOp;
  own(gid: string): Promise<OwnSenderKey | undefined>;
  putOwn(gid: string, v: OwnSenderKey): StorageOp;
  recipients(gid: string): Promise<RecipientsRecord | undefined>;
  putRecipients(gid: string, v: RecipientsRecord): StorageOp;
  sender(gid: string, a: Address): Promise<SenderRecord | undefined>;
  putSender(gid: string, a: Address, v: SenderRecord): StorageOp;
  held(gid: string): Promise<Keyed<HeldMessageRecord>[]>;
  putHeld(gid: string, seq: string, v: HeldMessageRecord): StorageOp;
  inbox(limit: number): Promise<Keyed<InboxRecord>[]>;
  /** Synchronous, so a client can add it to a pairwise decrypt's batch (§12.10). */
  putInbox(seq: string, v: InboxRecord): StorageOp;
  /** Every key under a group, for deletions. */
  keysOf(gid: string): Promise<StorageKey[]>;
  /** Writes one atomic batch. */
  commit(ops: readonly StorageOp[]): Promise<void>;
}

/** Upper bound on records listed by one range read (every group list is capped far below it). */
const RANGE_LIMIT = 10_000;

/** Creates typed access to the group records of `storage`. */
export function createGroupStore(storage: StorageAdapter, crypto: CryptoProvider): GroupStore {
  async function load<T>(key: StorageKey, type: number, read: (r: ByteReader) => T): Promise<T | undefined> {
    const bytes = await storage.get(key);
    return bytes === undefined ? undefined : openRecord(crypto, key, type, bytes, read);
  }
  const put = (key: StorageKey, type: number, body: Uint8Array): StorageOp => ({ type: 'put', key, value: sealRecord(crypto, type, body) });
  async function range<T>(prefix: StorageKey, type: number, read: (r: ByteReader) => T, limit = RANGE_LIMIT): Promise<Keyed<T>[]> {
    const out: Keyed<T>[] = [];
    for (const e of await storage.range(prefix, { limit })) out.push({ key: e.key, value: openRecord(crypto, e.key, type, e.value, read) });
    return out;
  }

  // Decoded states by storage key, reused while the stored bytes are byte-identical.
  const stateCache = new Map<string, { readonly record: Uint8Array; readonly state: GroupState; readonly bytes: Uint8Array }>();
  const STATE_CACHE_SIZE = 16;
  async function loadState(key: StorageKey, type: number): Promise<{ readonly state: GroupState; readonly bytes: Uint8Array } | undefined> {
    const record = await storage.get(key);
    const id = JSON.stringify(key);
    if (record === undefined) {
      stateCache.delete(id);
      return undefined;
    }
    const hit = stateCache.get(id);
    if (hit && equalBytes(hit.record, record)) return hit;
    const decoded = openRecord(crypto, key, type, record, readGroupStateRecord);
    stateCache.delete(id);
    stateCache.set(id, { record, ...decoded });
    if (stateCache.size > STATE_CACHE_SIZE) stateCache.delete(stateCache.keys().next().value as string);
    return decoded;
  }

  return {
    storage,
    meta: (gid) => load(groupKeys.meta(gid), GroupRecordType.META, readGroupMetaRecord),
    putMeta: (gid, v) => put(groupKeys.meta(gid), GroupRecordType.META, encodeGroupMetaRecord(v)),
    head: (gid) => loadState(groupKeys.head(gid), GroupRecordType.HEAD),
    putHead: (gid, encoded) => put(groupKeys.head(gid), GroupRecordType.HEAD, encoded),
    base: (gid) => loadState(groupKeys.base(gid), GroupRecordType.BASE),
    putBase: (gid, encoded) => put(groupKeys.base(gid), GroupRecordType.BASE, encoded),
    changes: (gid) => range(groupKeys.changes(gid), GroupRecordType.CHANGE, readChangeRecord),
    putChange: (gid, hex, v) => put(groupKeys.change(gid, hex), GroupRecordType.CHANGE, encodeChangeRecord(v)),
    pending: (gid) => range(groupKeys.pendingChanges(gid), GroupRecordType.PENDING, readPendingRecord),
    putPending: (gid, hex, change) => put(groupKeys.pending(gid, hex), GroupRecordType.PENDING, change.bytes),
    own: (gid) => load(groupKeys.own(gid), GroupRecordType.OWN, readOwnSenderKey),
    putOwn: (gid, v) => put(groupKeys.own(gid), GroupRecordType.OWN, encodeOwnSenderKey(v)),
    recipients: (gid) => load(groupKeys.recipients(gid), GroupRecordType.RECIPIENTS, readRecipientsRecord),
    putRecipients: (gid, v) => put(groupKeys.recipients(gid), GroupRecordType.RECIPIENTS, encodeRecipientsRecord(v)),
    sender: (gid, a) => load(groupKeys.sender(gid, a), GroupRecordType.SENDER, readSenderRecord),
    putSender: (gid, a, v) => put(groupKeys.sender(gid, a), GroupRecordType.SENDER, encodeSenderRecord(v)),
    held: (gid) => range(groupKeys.heldMessages(gid), GroupRecordType.HELD, readHeldMessageRecord),
    putHeld: (gid, seq, v) => put(groupKeys.held(gid, seq), GroupRecordType.HELD, encodeHeldMessageRecord(v)),
    inbox: (limit) => range(groupKeys.inbox(), GroupRecordType.INBOX, readInboxRecord, limit),
    putInbox: (seq, v) => put(groupKeys.inboxEntry(seq), GroupRecordType.INBOX, encodeInboxRecord(v)),
    keysOf: async (gid) => (await storage.range(groupKeys.group(gid), { limit: RANGE_LIMIT })).map((e) => e.key),
    commit: (ops) => storage.batch(ops),
  };
}
