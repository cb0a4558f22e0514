/**
 * The device list (docs/protocol.md §3.3): a user's current devices, signed by the account
 * key. Certificates say that the account vouched for a device once; the list says which of
 * them the account vouches for now, so a device can be revoked.
 *
 * ```
 * entry     = deviceId string8 | signingKey[32] | identityKey[32]
 * body      = version u8 (=1) | userId string8 | accountKey[32] | listVersion u32
 *           | issuedAt u64 | count u8 (1..32) | entry × count (strictly increasing deviceId)
 * signature = Ed25519(accountSecret, label8("Deadbolt_v1_DeviceList") | body)
 * encoding  = body | signature[64]
 * ```
 *
 * @module
 */
import {
  ProtocolError,
  UsageError,
  deviceId as toDeviceId,
  userId as toUserId,
  type DeviceId,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type UserId,
  type X25519PublicKey,
} from '@deadbolt/spec';
import { concatBytes, utf8 } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, Len, Limits, WIRE_VERSION, labelPrefix } from './constants.js';
import { readVersion, type DeviceCertificate } from './device-certificate.js';

/** One device of a {@link DeviceList}. */
export interface DeviceListEntry {
  readonly deviceId: DeviceId;
  readonly signingKey: Ed25519PublicKey;
  readonly identityKey: X25519PublicKey;
}

/** A user's current devices, signed by the account key (§3.3). */
export interface DeviceList {
  readonly userId: UserId;
  readonly accountKey: Ed25519PublicKey;
  /** 1, 2, ...: every change increments it. */
  readonly listVersion: number;
  /** When it was signed, in ms since the epoch (informative only). */
  readonly issuedAt: number;
  /** Sorted by device id (UTF-8 byte order), no duplicates. */
  readonly devices: readonly DeviceListEntry[];
  readonly signature: Uint8Array;
  /** The exact bytes it was decoded from or encoded as. */
  readonly encoded: Uint8Array;
}

const STRUCTURE = 'DeviceList';
const LIST_LABEL = labelPrefix(Label.deviceList);

/** Orders device ids by their UTF-8 bytes (ids are ASCII, so this is also code unit order). */
function compareIds(a: string, b: string): number {
  const x = utf8(a);
  const y = utf8(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

function encodeBody(l: Omit<DeviceList, 'signature' | 'encoded'>): Uint8Array {
  const w = new ByteWriter(128 + l.devices.length * 130)
    .u8(WIRE_VERSION)
    .string8(l.userId)
    .fixed(l.accountKey, Len.key)
    .u32(l.listVersion)
    .u64(l.issuedAt)
    .u8(l.devices.length);
  for (const d of l.devices) w.string8(d.deviceId).fixed(d.signingKey, Len.key).fixed(d.identityKey, Len.key);
  return w.finish();
}

/** Decodes a device list without verifying its signature. Throws `CodecError`. */
export function decodeDeviceList(bytes: Uint8Array): DeviceList {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxDeviceList);
  readVersion(r, STRUCTURE);
  const uAt = r.offset;
  const user = r.string8('userId');
  let userId: UserId;
  try {
    userId = toUserId(user);
  } catch {
    throw r.fail('userId', 'invalid user id', uAt);
  }
  const accountKey = r.fixed('accountKey', Len.key) as Ed25519PublicKey;
  const vAt = r.offset;
  const listVersion = r.u32('listVersion');
  if (listVersion === 0) throw r.fail('listVersion', 'must be at least 1', vAt);
  const issuedAt = r.u64('issuedAt');
  const cAt = r.offset;
  const count = r.u8('count');
  if (count < 1 || count > Limits.maxDevicesPerUser) throw r.fail('count', `must be 1 to ${Limits.maxDevicesPerUser}`, cAt);
  const devices: DeviceListEntry[] = [];
  for (let i = 0; i < count; i++) {
    const dAt = r.offset;
    const raw = r.string8('deviceId');
    let deviceId: DeviceId;
    try {
      deviceId = toDeviceId(raw);
    } catch {
      throw r.fail('deviceId', 'invalid device id', dAt);
    }
    // Strictly increasing: one canonical encoding per set, and no duplicate ids.
    const previous = devices[i - 1];
    if (previous !== undefined && compareIds(previous.deviceId, deviceId) >= 0) throw r.fail('deviceId', 'entries out of order or duplicated', dAt);
    devices.push({ deviceId, signingKey: r.fixed('signingKey', Len.key) as Ed25519PublicKey, identityKey: r.fixed('identityKey', Len.key) as X25519PublicKey });
  }
  const signature = r.fixed('signature', Len.signature);
  r.end();
  return { userId, accountKey, listVersion, issuedAt, devices, signature, encoded: bytes.slice() };
}

/**
 * Signs a device list with the account's secret key. `devices` may be in any order (they
 * are sorted); duplicate ids or a count outside 1..32 are `INVALID_ARGUMENT`.
 */
export async function signDeviceList(
  crypto: CryptoProvider,
  accountSecret: Ed25519SecretKey,
  fields: { readonly userId: UserId; readonly accountKey: Ed25519PublicKey; readonly listVersion: number; readonly issuedAt: number; readonly devices: readonly DeviceListEntry[] },
): Promise<DeviceList> {
  const devices = [...fields.devices].sort((a, b) => compareIds(a.deviceId, b.deviceId));
  if (devices.length < 1 || devices.length > Limits.maxDevicesPerUser) {
    throw new UsageError('INVALID_ARGUMENT', { message: `a device list holds 1 to ${Limits.maxDevicesPerUser} devices`, details: { field: 'devices', expected: `1 to ${Limits.maxDevicesPerUser} devices` } });
  }
  for (let i = 1; i < devices.length; i++) {
    if ((devices[i - 1] as DeviceListEntry).deviceId === (devices[i] as DeviceListEntry).deviceId) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'a device id appears twice', details: { field: 'devices', expected: 'distinct device ids' } });
    }
  }
  if (!Number.isInteger(fields.listVersion) || fields.listVersion < 1 || fields.listVersion > 0xffffffff) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'listVersion must be 1 to 2^32-1', details: { field: 'listVersion', expected: '1 to 2^32-1' } });
  }
  const unsigned = { ...fields, devices };
  const body = encodeBody(unsigned);
  const signature = await crypto.ed25519Sign(accountSecret, concatBytes(LIST_LABEL, body));
  return { ...unsigned, signature, encoded: concatBytes(body, signature) };
}

/** Throws `ProtocolError` `BAD_SIGNATURE` unless the list's own account key signed it. */
export async function verifyDeviceList(crypto: CryptoProvider, list: DeviceList): Promise<void> {
  const ok = await crypto.ed25519Verify(list.accountKey, concatBytes(LIST_LABEL, encodeBody(list)), list.signature);
  if (!ok) throw new ProtocolError('BAD_SIGNATURE', { message: 'device list signature', details: { what: 'device list' } });
}

/** Whether the list makes this certificate's device current: same id, signing key and identity key (§3.3). */
export function listsDevice(list: DeviceList, certificate: DeviceCertificate): boolean {
  if (list.userId !== certificate.userId || !equalBytes(list.accountKey, certificate.accountKey)) return false;
  const entry = list.devices.find((d) => d.deviceId === certificate.deviceId);
  return entry !== undefined && equalBytes(entry.signingKey, certificate.signingKey) && equalBytes(entry.identityKey, certificate.identityKey);
}

/** The list entry describing a certificate's device. */
export function deviceListEntry(certificate: DeviceCertificate): DeviceListEntry {
  return { deviceId: certificate.deviceId, signingKey: certificate.signingKey, identityKey: certificate.identityKey };
}
