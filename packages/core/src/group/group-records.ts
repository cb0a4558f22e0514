/**
 * The records the group layer stores (docs/protocol.md §12.11), their storage keys
 * and their body codecs. Every record is wrapped in the envelope of docs/protocol.md §7.1
 * (`sealRecord` / `openRecord`), so a corrupted or truncated one is reported as
 * `CORRUPTED_RECORD` and never used (SECURITY.md D29).
 *
 * @module
 */
import type { Address, DeviceId, Ed25519PublicKey, Ed25519SecretKey, UserId } from '@deadbolt/spec';
import type { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Len, Limits } from '../protocol/constants.js';
import { decodeDeviceCertificate, encodeDeviceCertificate, type DeviceCertificate } from '../protocol/device-certificate.js';
import { decodeGroupChange, type SignedGroupChange } from './group-change.js';
import { decodeGroupState, HASH_LENGTH, readDeviceId, readUserId, type GroupState } from './group-state.js';
import type { SenderKeyState, SenderRecord, SkippedKey } from './sender-key.js';

/** Record type bytes of the group records (§12.11). */
export const GroupRecordType = Object.freeze({
  META: 32,
  HEAD: 33,
  BASE: 34,
  CHANGE: 35,
  PENDING: 36,
  OWN: 37,
  RECIPIENTS: 38,
  SENDER: 39,
  HELD: 40,
  INBOX: 41,
});

/** Where each group record lives (§12.11). `gid` is the group id's lowercase hex. */
export const groupKeys = Object.freeze({
  all: (): string[] => ['group'],
  group: (gid: string): string[] => ['group', gid],
  meta: (gid: string): string[] => ['group', gid, 'meta'],
  head: (gid: string): string[] => ['group', gid, 'head'],
  base: (gid: string): string[] => ['group', gid, 'base'],
  changes: (gid: string): string[] => ['group', gid, 'change'],
  change: (gid: string, hashHex: string): string[] => ['group', gid, 'change', hashHex],
  pendingChanges: (gid: string): string[] => ['group', gid, 'pending'],
  pending: (gid: string, hashHex: string): string[] => ['group', gid, 'pending', hashHex],
  own: (gid: string): string[] => ['group', gid, 'own'],
  recipients: (gid: string): string[] => ['group', gid, 'recipients'],
  senders: (gid: string): string[] => ['group', gid, 'sender'],
  sender: (gid: string, a: Address): string[] => ['group', gid, 'sender', a.userId, a.deviceId],
  heldMessages: (gid: string): string[] => ['group', gid, 'held'],
  held: (gid: string, seq: string): string[] => ['group', gid, 'held', seq],
  inbox: (): string[] => ['group', 'inbox'],
  inboxEntry: (seq: string): string[] => ['group', 'inbox', seq],
});

function readAll(r: ByteReader, field: string): Uint8Array {
  return r.fixed(field, r.remaining);
}

// --- meta ---------------------------------------------------------------------------------------

/** The small record every send and receive reads (§12.11). */
export interface GroupMetaRecord {
  readonly epoch: number;
  readonly stateHash: Uint8Array;
  readonly lastRemovalEpoch: number;
  /** Whether this device is a device of the head. */
  readonly member: boolean;
  /** The key id this device's next sender key gets. */
  readonly nextKeyId: number;
  /** The signing key of the device whose welcome started this log (zero if none, §12.6). */
  readonly welcomedBy: Uint8Array;
}

export function encodeGroupMetaRecord(v: GroupMetaRecord): Uint8Array {
  return new ByteWriter(80).u32(v.epoch).fixed(v.stateHash, HASH_LENGTH).u32(v.lastRemovalEpoch).u8(v.member ? 1 : 0).u32(v.nextKeyId).fixed(v.welcomedBy, Len.key).finish();
}

export function readGroupMetaRecord(r: ByteReader): GroupMetaRecord {
  return {
    epoch: r.u32('epoch'),
    stateHash: r.fixed('stateHash', HASH_LENGTH),
    lastRemovalEpoch: r.u32('lastRemovalEpoch'),
    member: r.bool('member'),
    nextKeyId: r.u32('nextKeyId'),
    welcomedBy: r.fixed('welcomedBy', Len.key),
  };
}

// --- states and changes ---------------------------------------------------------------------

/** A state record body is the state's encoding (§12.2.3). */
export function readGroupStateRecord(r: ByteReader): { readonly state: GroupState; readonly bytes: Uint8Array } {
  const at = r.offset;
  const bytes = readAll(r, 'state');
  try {
    return { state: decodeGroupState(bytes), bytes };
  } catch {
    throw r.fail('state', 'invalid group state', at);
  }
}

/** A log entry: the hash of the state it makes, then the change (§12.11). */
export interface ChangeRecord {
  readonly stateHash: Uint8Array;
  readonly change: SignedGroupChange;
}

export function encodeChangeRecord(v: ChangeRecord): Uint8Array {
  return new ByteWriter(v.change.bytes.length + 40).fixed(v.stateHash, HASH_LENGTH).bytes32(v.change.bytes).finish();
}

export function readChangeRecord(r: ByteReader): ChangeRecord {
  const stateHash = r.fixed('stateHash', HASH_LENGTH);
  return { stateHash, change: readChange(r, r.bytes32('change', Limits.maxGroupChange)) };
}

function readChange(r: ByteReader, bytes: Uint8Array): SignedGroupChange {
  try {
    return decodeGroupChange(bytes);
  } catch {
    throw r.fail('change', 'invalid group change');
  }
}

/** A pending change record body is the change's encoding. */
export function readPendingRecord(r: ByteReader): SignedGroupChange {
  return readChange(r, readAll(r, 'change'));
}

// --- own sender key -------------------------------------------------------------------------

/** This device's current sender key for a group (§12.11). Holds secrets. */
export interface OwnSenderKey {
  readonly keyId: number;
  readonly createdEpoch: number;
  readonly createdAt: number;
  /** The next generation to send. */
  readonly generation: number;
  /** `CK_generation`. */
  readonly chainKey: Uint8Array;
  readonly signingSecret: Ed25519SecretKey;
  readonly signingPublic: Ed25519PublicKey;
  /** The head hash at which the recipients were last reconciled (§12.7.3). */
  readonly syncedStateHash: Uint8Array;
  /** Recipients still marked pending. */
  readonly pendingCount: number;
}

export function encodeOwnSenderKey(v: OwnSenderKey): Uint8Array {
  return new ByteWriter(192)
    .u32(v.keyId)
    .u32(v.createdEpoch)
    .u64(v.createdAt)
    .u32(v.generation)
    .fixed(v.chainKey, Len.key)
    .fixed(v.signingSecret, Len.key)
    .fixed(v.signingPublic, Len.key)
    .fixed(v.syncedStateHash, HASH_LENGTH)
    .u16(v.pendingCount)
    .finish();
}

export function readOwnSenderKey(r: ByteReader): OwnSenderKey {
  return {
    keyId: r.u32('keyId'),
    createdEpoch: r.u32('createdEpoch'),
    createdAt: r.u64('createdAt'),
    generation: r.u32('generation'),
    chainKey: r.fixed('chainKey', Len.key),
    signingSecret: r.fixed('signingSecret', Len.key) as Ed25519SecretKey,
    signingPublic: r.fixed('signingPublic', Len.key) as Ed25519PublicKey,
    syncedStateHash: r.fixed('syncedStateHash', HASH_LENGTH),
    pendingCount: r.u16('pendingCount'),
  };
}

/** One device the own key was given to (§12.7.3). */
export interface Recipient {
  readonly userId: UserId;
  readonly deviceId: DeviceId;
  readonly signingKey: Uint8Array;
  /** Not yet confirmed as sent. */
  readonly pending: boolean;
}

/** The devices the current own key was given to. */
export interface RecipientsRecord {
  readonly keyId: number;
  readonly recipients: readonly Recipient[];
}

export function encodeRecipientsRecord(v: RecipientsRecord): Uint8Array {
  const w = new ByteWriter(8 + v.recipients.length * 64).u32(v.keyId).u16(v.recipients.length);
  for (const x of v.recipients) w.string8(x.userId).string8(x.deviceId).fixed(x.signingKey, Len.key).u8(x.pending ? 1 : 0);
  return w.finish();
}

const MAX_RECIPIENTS = Limits.maxGroupMembers * Limits.maxGroupDevicesPerMember;

export function readRecipientsRecord(r: ByteReader): RecipientsRecord {
  const keyId = r.u32('keyId');
  const at = r.offset;
  const count = r.u16('count');
  if (count > MAX_RECIPIENTS) throw r.fail('count', `over ${MAX_RECIPIENTS}`, at);
  const recipients: Recipient[] = [];
  for (let i = 0; i < count; i++) {
    recipients.push({ userId: readUserId(r, 'userId'), deviceId: readDeviceId(r, 'deviceId'), signingKey: r.fixed('signingKey', Len.key), pending: r.bool('pending') });
  }
  return { keyId, recipients };
}

// --- received sender keys ---------------------------------------------------------------------

export function encodeSenderRecord(v: SenderRecord): Uint8Array {
  const w = new ByteWriter(128).u32(v.minKeyId).u8(v.keys.length);
  for (const k of v.keys) {
    w.u32(k.keyId).u32(k.createdEpoch).fixed(k.signingKey, Len.key).u32(k.nextGeneration).fixed(k.chainKey, Len.key).u16(k.skipped.length);
    for (const s of k.skipped) w.u32(s.generation).fixed(s.mk, Len.key);
  }
  return w.finish();
}

export function readSenderRecord(r: ByteReader): SenderRecord {
  const minKeyId = r.u32('minKeyId');
  const countAt = r.offset;
  const count = r.u8('count');
  if (count < 1 || count > Limits.maxGroupSenderKeysPerDevice) throw r.fail('count', `must be 1..${Limits.maxGroupSenderKeysPerDevice}`, countAt);
  const keys: SenderKeyState[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const keyId = r.u32('keyId');
    const createdEpoch = r.u32('createdEpoch');
    const signingKey = r.fixed('signingKey', Len.key);
    const nextGeneration = r.u32('nextGeneration');
    const chainKey = r.fixed('chainKey', Len.key);
    const skippedAt = r.offset;
    const n = r.u16('skippedCount');
    total += n;
    if (total > Limits.maxGroupSkippedKeys) throw r.fail('skippedCount', `over ${Limits.maxGroupSkippedKeys} in total`, skippedAt);
    const skipped: SkippedKey[] = [];
    for (let j = 0; j < n; j++) skipped.push({ generation: r.u32('generation'), mk: r.fixed('mk', Len.key) });
    keys.push({ keyId, createdEpoch, signingKey, nextGeneration, chainKey, skipped });
  }
  return { minKeyId, keys };
}

// --- held messages and the inbox --------------------------------------------------------------

/** A group message waiting for its sender key (§12.10). */
export interface HeldMessageRecord {
  readonly receivedAt: number;
  readonly message: Uint8Array;
}

export function encodeHeldMessageRecord(v: HeldMessageRecord): Uint8Array {
  return new ByteWriter(v.message.length + 16).u64(v.receivedAt).bytes32(v.message).finish();
}

export function readHeldMessageRecord(r: ByteReader): HeldMessageRecord {
  return { receivedAt: r.u64('receivedAt'), message: r.bytes32('message', Limits.maxGroupMessage) };
}

/** A group payload received over a pairwise session, not yet processed (§12.10). */
export interface InboxRecord {
  readonly receivedAt: number;
  /** The certificate of the pairwise session that decrypted it. */
  readonly from: DeviceCertificate;
  readonly payload: Uint8Array;
}

const MAX_INBOX_PAYLOAD = Math.max(Limits.maxGroupWelcome, Limits.maxGroupChange);

export function encodeInboxRecord(v: InboxRecord): Uint8Array {
  return new ByteWriter(v.payload.length + 600).u64(v.receivedAt).bytes16(encodeDeviceCertificate(v.from)).bytes32(v.payload).finish();
}

export function readInboxRecord(r: ByteReader): InboxRecord {
  const receivedAt = r.u64('receivedAt');
  const at = r.offset;
  let from: DeviceCertificate;
  try {
    from = decodeDeviceCertificate(r.bytes16('certificate', Limits.maxCertificate));
  } catch {
    throw r.fail('certificate', 'invalid certificate', at);
  }
  return { receivedAt, from, payload: r.bytes32('payload', MAX_INBOX_PAYLOAD) };
}
