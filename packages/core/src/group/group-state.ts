/**
 * The group state (docs/protocol.md §12.2): members, their devices, admins, name and
 * the hash chain that ties every state to the genesis.
 *
 * ```
 * GroupDevice = deviceId string8 | signingKey[32] | identityKey[32] | capabilities u8 | signature[64]
 * GroupMember = userId string8 | accountKey[32] | role u8 (1 member, 2 admin) | deviceCount u8 | GroupDevice*
 * GroupState  = version u8 | groupId[32] | epoch u32 | parentHash[32] | changeHash[32]
 *             | lastRemovalEpoch u32 | name string8 | memberCount u16 | GroupMember*
 * stateHash   = SHA-256(label8("Deadbolt_v1_GroupStateHash") | GroupState)
 * ```
 *
 * A `GroupDevice` is its member's device certificate (§3.2) without the fields the member
 * already carries; in memory it is a full {@link DeviceCertificate}. Members are sorted by
 * user id and devices by device id, strictly, so every state has one encoding.
 *
 * @module
 */
import {
  deviceId as toDeviceId,
  userId as toUserId,
  type DeviceId,
  type Ed25519PublicKey,
  type UserId,
  type X25519PublicKey,
} from '@deadbolt/spec';
import { concatBytes, toHex } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Capability, Label, Len, Limits, WIRE_VERSION, labelPrefix } from '../protocol/constants.js';
import { readVersion, type DeviceCertificate } from '../protocol/device-certificate.js';
import { GROUP_ID_LENGTH, type GroupId } from './group-id.js';

/** A member's role (§12.2.2). */
export type GroupRole = 'member' | 'admin';

/** One member of a group: a user, its account key, its role and its devices (§12.2.2). */
export interface GroupMember {
  readonly userId: UserId;
  readonly accountKey: Ed25519PublicKey;
  readonly role: GroupRole;
  /** The member's devices in the group, sorted by device id; each certified by `accountKey`. */
  readonly devices: readonly DeviceCertificate[];
}

/** A group state (§12.2.3). */
export interface GroupState {
  readonly groupId: GroupId;
  readonly epoch: number;
  /** The previous state's hash (zero at epoch 0). */
  readonly parentHash: Uint8Array;
  /** The hash of the signed change that made this state. */
  readonly changeHash: Uint8Array;
  /** The last epoch whose change removed a member or a device (0 if none). */
  readonly lastRemovalEpoch: number;
  readonly name: string;
  /** Sorted by user id. */
  readonly members: readonly GroupMember[];
}

const STRUCTURE = 'GroupState';
const STATE_LABEL = labelPrefix(Label.groupStateHash);
/** The hash length of states and changes. */
export const HASH_LENGTH = 32;
/** The all-zero parent hash of a genesis. */
export const ZERO_HASH: Uint8Array = new Uint8Array(HASH_LENGTH);

export const ROLE_BYTE = { member: 1, admin: 2 } as const;

/** Compares ids by UTF-16 code units (§12.2.2). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// --- devices and members -------------------------------------------------------------------

/** A device entry without the fields its member carries (§12.2.2): what ADD_DEVICE names. */
export type GroupDeviceEntry = Omit<DeviceCertificate, 'userId' | 'accountKey'>;

/** Writes a device entry (§12.2.2). */
export function writeGroupDevice(w: ByteWriter, d: GroupDeviceEntry): void {
  w.string8(d.deviceId).fixed(d.signingKey, Len.key).fixed(d.identityKey, Len.key).u8(d.capabilities).fixed(d.signature, Len.signature);
}

/** Reads a device entry (§12.2.2). */
export function readGroupDeviceEntry(r: ByteReader): GroupDeviceEntry {
  const deviceId = readDeviceId(r, 'deviceId');
  const signingKey = r.fixed('signingKey', Len.key) as Ed25519PublicKey;
  const identityKey = r.fixed('identityKey', Len.key) as X25519PublicKey;
  const capAt = r.offset;
  const capabilities = r.u8('capabilities');
  if ((capabilities & ~Capability.PQXDH_MLKEM768) !== 0) throw r.fail('capabilities', 'reserved bits set', capAt);
  const signature = r.fixed('signature', Len.signature);
  return { deviceId, signingKey, identityKey, capabilities, signature };
}

/** The certificate of a device entry of member (`userId`, `accountKey`). */
export function deviceCertificateOf(entry: GroupDeviceEntry, userId: UserId, accountKey: Ed25519PublicKey): DeviceCertificate {
  return {
    userId,
    deviceId: entry.deviceId,
    accountKey,
    signingKey: entry.signingKey,
    identityKey: entry.identityKey,
    capabilities: entry.capabilities,
    signature: entry.signature,
  };
}

/** Reads a user id field. */
export function readUserId(r: ByteReader, field: string): UserId {
  const at = r.offset;
  const raw = r.string8(field);
  try {
    return toUserId(raw);
  } catch {
    throw r.fail(field, 'invalid user id', at);
  }
}

/** Reads a device id field. */
export function readDeviceId(r: ByteReader, field: string): DeviceId {
  const at = r.offset;
  const raw = r.string8(field);
  try {
    return toDeviceId(raw);
  } catch {
    throw r.fail(field, 'invalid device id', at);
  }
}

/** Writes a member entry (§12.2.2). */
export function writeGroupMember(w: ByteWriter, m: GroupMember): void {
  w.string8(m.userId).fixed(m.accountKey, Len.key).u8(ROLE_BYTE[m.role]).u8(m.devices.length);
  for (const d of m.devices) writeGroupDevice(w, d);
}

/**
 * Reads a member entry, checking its shape: a valid user id, 1..maxGroupDevicesPerMember
 * devices in strictly ascending device-id order. Certificates are not verified here.
 */
export function readGroupMember(r: ByteReader): GroupMember {
  const userId = readUserId(r, 'userId');
  const accountKey = r.fixed('accountKey', Len.key) as Ed25519PublicKey;
  const role: GroupRole = r.enumU8('role', [ROLE_BYTE.member, ROLE_BYTE.admin]) === ROLE_BYTE.admin ? 'admin' : 'member';
  const countAt = r.offset;
  const count = r.u8('deviceCount');
  if (count < 1 || count > Limits.maxGroupDevicesPerMember) throw r.fail('deviceCount', `must be 1..${Limits.maxGroupDevicesPerMember}`, countAt);
  const devices: DeviceCertificate[] = [];
  for (let i = 0; i < count; i++) {
    const dAt = r.offset;
    const d = deviceCertificateOf(readGroupDeviceEntry(r), userId, accountKey);
    const prev = devices[devices.length - 1];
    if (prev && compareIds(prev.deviceId, d.deviceId) >= 0) throw r.fail('deviceId', 'devices not strictly ascending', dAt);
    devices.push(d);
  }
  return { userId, accountKey, role, devices };
}

/** Writes a member list with a u16 count. */
export function writeMemberList(w: ByteWriter, members: readonly GroupMember[]): void {
  w.u16(members.length);
  for (const m of members) writeGroupMember(w, m);
}

/** Reads a member list of `min..max` members in strictly ascending user-id order. */
export function readMemberList(r: ByteReader, min: number, max: number): GroupMember[] {
  const at = r.offset;
  const count = r.u16('memberCount');
  if (count < min || count > max) throw r.fail('memberCount', `must be ${min}..${max}`, at);
  const members: GroupMember[] = [];
  for (let i = 0; i < count; i++) {
    const mAt = r.offset;
    const m = readGroupMember(r);
    const prev = members[members.length - 1];
    if (prev && compareIds(prev.userId, m.userId) >= 0) throw r.fail('userId', 'members not strictly ascending', mAt);
    members.push(m);
  }
  return members;
}

// --- the state --------------------------------------------------------------------------------

/**
 * Encodes a state (§12.2.3). Deterministic: its hash is the state hash.
 *
 * @example
 * ```ts
 * const hash = groupStateHash(crypto, encodeGroupState(state));
 * ```
 */
export function encodeGroupState(s: GroupState): Uint8Array {
  const w = new ByteWriter(256 + s.members.length * 200)
    .u8(WIRE_VERSION)
    .fixed(s.groupId, GROUP_ID_LENGTH)
    .u32(s.epoch)
    .fixed(s.parentHash, HASH_LENGTH)
    .fixed(s.changeHash, HASH_LENGTH)
    .u32(s.lastRemovalEpoch)
    .string8(s.name);
  writeMemberList(w, s.members);
  return w.finish();
}

/**
 * Decodes a state. Throws `CodecError` (or `UNSUPPORTED_VERSION`). Certificates are not verified.
 *
 * @example
 * ```ts
 * const { members } = decodeGroupState(bytes);
 * ```
 */
export function decodeGroupState(bytes: Uint8Array): GroupState {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxGroupState);
  readVersion(r, STRUCTURE);
  const state: GroupState = {
    groupId: r.fixed('groupId', GROUP_ID_LENGTH) as GroupId,
    epoch: r.u32('epoch'),
    parentHash: r.fixed('parentHash', HASH_LENGTH),
    changeHash: r.fixed('changeHash', HASH_LENGTH),
    lastRemovalEpoch: r.u32('lastRemovalEpoch'),
    name: r.string8('name'),
    members: readMemberList(r, 0, Limits.maxGroupMembers),
  };
  r.end();
  return state;
}

/** The state hash (§12.2.3) of an encoded state. */
export function groupStateHash(crypto: CryptoProvider, encodedState: Uint8Array): Uint8Array {
  return crypto.sha256(concatBytes(STATE_LABEL, encodedState));
}

// --- lookups ------------------------------------------------------------------------------------

/**
 * The member with `userId`, if any (binary search: members are sorted).
 *
 * @example
 * ```ts
 * const isAdmin = findMember(state, 'alice')?.role === 'admin';
 * ```
 */
export function findMember(s: GroupState, userId: string): GroupMember | undefined {
  let lo = 0;
  let hi = s.members.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = s.members[mid] as GroupMember;
    const c = compareIds(m.userId, userId);
    if (c === 0) return m;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The device at an address, if any. */
export function findDevice(s: GroupState, userId: string, deviceId: string): DeviceCertificate | undefined {
  return findMember(s, userId)?.devices.find((d) => d.deviceId === deviceId);
}

/** Whether two certificates are the same device: same address, account, signing and identity keys. */
export function sameGroupDevice(a: DeviceCertificate, b: DeviceCertificate): boolean {
  return (
    a.userId === b.userId &&
    a.deviceId === b.deviceId &&
    equalBytes(a.accountKey, b.accountKey) &&
    equalBytes(a.signingKey, b.signingKey) &&
    equalBytes(a.identityKey, b.identityKey)
  );
}

/**
 * Whether `cert` (for example a pairwise session's remote certificate) matches a device of
 * `s`: same address, account, signing and identity keys (§12.2.2).
 *
 * @example
 * ```ts
 * if (!hasGroupDevice(head, sessionCertificate)) return; // not a device of the group
 * ```
 */
export function hasGroupDevice(s: GroupState, cert: DeviceCertificate): boolean {
  const d = findDevice(s, cert.userId, cert.deviceId);
  return d !== undefined && sameGroupDevice(d, cert);
}

/** A device's fingerprint (§12.2.2) as a string key: address and signing key. */
export function deviceFingerprint(d: { readonly userId: string; readonly deviceId: string; readonly signingKey: Uint8Array }): string {
  return `${d.userId}\n${d.deviceId}\n${toHex(d.signingKey)}`;
}

/**
 * Every device of a state, in member then device order.
 *
 * @example
 * ```ts
 * const fanOut = groupDevices(head).map((d) => ({ userId: d.userId, deviceId: d.deviceId }));
 * ```
 */
export function groupDevices(s: GroupState): DeviceCertificate[] {
  const out: DeviceCertificate[] = [];
  for (const m of s.members) for (const d of m.devices) out.push(d);
  return out;
}

/** Whether the state has at least one admin. */
export function hasAdmin(s: GroupState): boolean {
  return s.members.some((m) => m.role === 'admin');
}
