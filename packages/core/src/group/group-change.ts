/**
 * Signed group changes (docs/protocol.md §12.3).
 *
 * ```
 * GroupChange = version u8 | type u8 (=0x12) | groupId[32] | epoch u32 | parentHash[32]
 *             | signerUserId string8 | signerDeviceId string8 | createdAt u64
 *             | opCount u8 | Op* | signature[64]
 * signature   = Ed25519.Sign(DSK, label8("Deadbolt_v1_GroupChange") | body)     body = bytes before the signature
 * changeHash  = SHA-256(label8("Deadbolt_v1_GroupChangeHash") | GroupChange)
 * ```
 *
 * Changes are signed by the acting device's signing key (DSK), which the group state binds
 * to the member's account key through the device certificate (§12.1.1).
 *
 * @module
 */
import type { Address, DeviceId, Ed25519SecretKey, UserId } from '@deadbolt/spec';
import { concatBytes } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, Len, Limits, MessageType, WIRE_VERSION, labelPrefix } from '../protocol/constants.js';
import { readVersion } from '../protocol/device-certificate.js';
import { deriveGroupId, GROUP_ID_LENGTH, type GroupId } from './group-id.js';
import {
  HASH_LENGTH,
  readDeviceId,
  readGroupDeviceEntry,
  readGroupMember,
  readMemberList,
  readUserId,
  writeGroupDevice,
  writeGroupMember,
  writeMemberList,
  type GroupDeviceEntry,
  type GroupMember,
} from './group-state.js';

/**
 * Operation type bytes (§12.3.2).
 *
 * @example
 * ```ts
 * payload[offset] === OpType.REMOVE_MEMBER;
 * ```
 */
export const OpType = Object.freeze({
  CREATE: 0x01,
  ADD_MEMBER: 0x02,
  REMOVE_MEMBER: 0x03,
  ADD_DEVICE: 0x04,
  REMOVE_DEVICE: 0x05,
  PROMOTE: 0x06,
  DEMOTE: 0x07,
  RENAME: 0x08,
});

/** Length of a genesis nonce. */
export const GENESIS_NONCE_LENGTH = 16;

/** One operation of a change (§12.3.2). Leaving is `remove-member` of one's own user. */
export type GroupOp =
  | { readonly type: 'create'; readonly nonce: Uint8Array; readonly name: string; readonly members: readonly GroupMember[] }
  | { readonly type: 'add-member'; readonly member: GroupMember }
  | { readonly type: 'remove-member'; readonly userId: UserId }
  | { readonly type: 'add-device'; readonly userId: UserId; readonly device: GroupDeviceEntry }
  | { readonly type: 'remove-device'; readonly userId: UserId; readonly deviceId: DeviceId }
  | { readonly type: 'promote'; readonly userId: UserId }
  | { readonly type: 'demote'; readonly userId: UserId }
  | { readonly type: 'rename'; readonly name: string };

/** The fields of a change other than its signature. */
export interface GroupChangeBody {
  readonly groupId: GroupId;
  /** The epoch this change creates: parent epoch + 1 (genesis: 0). */
  readonly epoch: number;
  /** The parent state's hash (genesis: zero). */
  readonly parentHash: Uint8Array;
  /** The signing device. */
  readonly signer: Address;
  /** The signer's clock in ms; informational only. */
  readonly createdAt: number;
  readonly ops: readonly GroupOp[];
}

/** A signed change, with its exact encoding (what is hashed and forwarded). */
export interface SignedGroupChange extends GroupChangeBody {
  readonly signature: Uint8Array;
  /** The encoding, signature included. */
  readonly bytes: Uint8Array;
}

const STRUCTURE = 'GroupChange';
const SIGN_LABEL = labelPrefix(Label.groupChange);
const HASH_LABEL = labelPrefix(Label.groupChangeHash);
/** Offset of the groupId field in a change (after version and type). */
const GROUP_ID_OFFSET = 2;

function writeOp(w: ByteWriter, op: GroupOp): void {
  switch (op.type) {
    case 'create':
      w.u8(OpType.CREATE).fixed(op.nonce, GENESIS_NONCE_LENGTH).string8(op.name);
      writeMemberList(w, op.members);
      return;
    case 'add-member':
      w.u8(OpType.ADD_MEMBER);
      writeGroupMember(w, op.member);
      return;
    case 'remove-member':
      w.u8(OpType.REMOVE_MEMBER).string8(op.userId);
      return;
    case 'add-device':
      w.u8(OpType.ADD_DEVICE).string8(op.userId);
      writeGroupDevice(w, op.device);
      return;
    case 'remove-device':
      w.u8(OpType.REMOVE_DEVICE).string8(op.userId).string8(op.deviceId);
      return;
    case 'promote':
      w.u8(OpType.PROMOTE).string8(op.userId);
      return;
    case 'demote':
      w.u8(OpType.DEMOTE).string8(op.userId);
      return;
    case 'rename':
      w.u8(OpType.RENAME).string8(op.name);
      return;
  }
}

function readOp(r: ByteReader): GroupOp {
  const at = r.offset;
  const type = r.u8('opType');
  switch (type) {
    case OpType.CREATE:
      return {
        type: 'create',
        nonce: r.fixed('nonce', GENESIS_NONCE_LENGTH),
        name: r.string8('name'),
        members: readMemberList(r, 1, Limits.maxGroupMembers),
      };
    case OpType.ADD_MEMBER:
      return { type: 'add-member', member: readGroupMember(r) };
    case OpType.REMOVE_MEMBER:
      return { type: 'remove-member', userId: readUserId(r, 'userId') };
    case OpType.ADD_DEVICE:
      return { type: 'add-device', userId: readUserId(r, 'userId'), device: readGroupDeviceEntry(r) };
    case OpType.REMOVE_DEVICE:
      return { type: 'remove-device', userId: readUserId(r, 'userId'), deviceId: readDeviceId(r, 'deviceId') };
    case OpType.PROMOTE:
      return { type: 'promote', userId: readUserId(r, 'userId') };
    case OpType.DEMOTE:
      return { type: 'demote', userId: readUserId(r, 'userId') };
    case OpType.RENAME:
      return { type: 'rename', name: r.string8('name') };
    default:
      throw r.fail('opType', `unknown operation ${type}`, at);
  }
}

/** Encodes the body of a change (every byte before the signature). */
export function encodeGroupChangeBody(c: GroupChangeBody): Uint8Array {
  const w = new ByteWriter(256)
    .u8(WIRE_VERSION)
    .u8(MessageType.GROUP_CHANGE)
    .fixed(c.groupId, GROUP_ID_LENGTH)
    .u32(c.epoch)
    .fixed(c.parentHash, HASH_LENGTH)
    .string8(c.signer.userId)
    .string8(c.signer.deviceId)
    .u64(c.createdAt)
    .u8(c.ops.length);
  for (const op of c.ops) writeOp(w, op);
  return w.finish();
}

/**
 * Decodes a change. Throws `CodecError` (or `UNSUPPORTED_VERSION`); the signature is not
 * checked (that is §12.4, in `applyChange`).
 *
 * @example
 * ```ts
 * const { signer, ops } = decodeGroupChange(payload);
 * ```
 */
export function decodeGroupChange(bytes: Uint8Array): SignedGroupChange {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxGroupChange);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.GROUP_CHANGE]);
  const groupId = r.fixed('groupId', GROUP_ID_LENGTH) as GroupId;
  const epoch = r.u32('epoch');
  const parentHash = r.fixed('parentHash', HASH_LENGTH);
  const signer: Address = { userId: readUserId(r, 'signerUserId'), deviceId: readDeviceId(r, 'signerDeviceId') };
  const createdAt = r.u64('createdAt');
  const countAt = r.offset;
  const count = r.u8('opCount');
  if (count < 1 || count > Limits.maxGroupOpsPerChange) throw r.fail('opCount', `must be 1..${Limits.maxGroupOpsPerChange}`, countAt);
  const ops: GroupOp[] = [];
  for (let i = 0; i < count; i++) {
    const opAt = r.offset;
    const op = readOp(r);
    // CREATE only ever appears alone, in a genesis (§12.3.3).
    if (op.type === 'create' && (count !== 1 || epoch !== 0)) throw r.fail('opType', 'CREATE outside a genesis', opAt);
    ops.push(op);
  }
  const signature = r.fixed('signature', Len.signature);
  r.end();
  return { groupId, epoch, parentHash, signer, createdAt, ops, signature, bytes: bytes.slice() };
}

/** The signature input of a change: `label8 | body` (§12.3.1). */
function signatureInput(body: Uint8Array): Uint8Array {
  return concatBytes(SIGN_LABEL, body);
}

/** Signs a change body with a device signing key (DSK). */
export async function signGroupChange(crypto: CryptoProvider, signingSecret: Ed25519SecretKey, c: GroupChangeBody): Promise<SignedGroupChange> {
  const body = encodeGroupChangeBody(c);
  const signature = await crypto.ed25519Sign(signingSecret, signatureInput(body));
  return { ...c, signature, bytes: concatBytes(body, signature) };
}

/** Whether the change's signature verifies under `signingKey` (strict Ed25519, §10). */
export function verifyGroupChangeSignature(crypto: CryptoProvider, signingKey: Uint8Array, c: SignedGroupChange): Promise<boolean> {
  return crypto.ed25519Verify(signingKey, signatureInput(c.bytes.subarray(0, c.bytes.length - Len.signature)), c.signature);
}

/** The change hash (§12.3.1) of a signed change. */
export function groupChangeHash(crypto: CryptoProvider, c: SignedGroupChange): Uint8Array {
  return crypto.sha256(concatBytes(HASH_LABEL, c.bytes));
}

/** Whether a change revokes anything: removes a member or device, or demotes (§12.3.2). */
export function isRevoking(c: GroupChangeBody): boolean {
  return c.ops.some((op) => op.type === 'remove-member' || op.type === 'remove-device' || op.type === 'demote');
}

/**
 * The group id a genesis change body should carry (§12.3.3): the body with the id field
 * zeroed, hashed under `Deadbolt_v1_GroupId`.
 */
export function genesisGroupId(crypto: CryptoProvider, c: GroupChangeBody): GroupId {
  const body = encodeGroupChangeBody(c);
  body.fill(0, GROUP_ID_OFFSET, GROUP_ID_OFFSET + GROUP_ID_LENGTH);
  return deriveGroupId(crypto, body);
}
