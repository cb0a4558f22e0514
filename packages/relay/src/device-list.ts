/**
 * The relay's reading of a device list (docs/protocol.md §3.3): decode, verify under its
 * own account key, and tell whether a certificate's device is current. The relay checks a
 * list exactly as it checks a device certificate (`verifyDeviceCertificate`): through the
 * configured `CryptoProvider`'s Ed25519 verification, over the label-prefixed body. It
 * decides nothing on trust: whether the list's account key is the user's is the pinned key
 * comparison the caller makes (relay-protocol.md PUBLISH_DEVICE_LIST).
 *
 * ```
 * entry     = deviceId string8 | signingKey[32] | identityKey[32]
 * body      = version u8 (=1) | userId string8 | accountKey[32] | listVersion u32 (>= 1)
 *           | issuedAt u64 | count u8 (1..32) | entry × count (strictly increasing deviceId)
 * signature = Ed25519.Sign(AIK, label8("Deadbolt_v1_DeviceList") | body)
 * DeviceList = body | signature[64]
 * ```
 *
 * Lists are signed by clients, never by the relay; {@link encodeDeviceListBody} exists for
 * the test helpers (`@deadbolt/relay/testing`) that sign lists the way a client does.
 *
 * @module
 */
import type { CryptoProvider, DeviceCertificate } from '@deadbolt/core';
import { ByteReader, ByteWriter, concatBytes, deviceId as toDeviceId, RELAY_LIMITS, userId as toUserId, utf8 } from '@deadbolt/spec';
import { sameBytes } from './store-util.js';

/** The device list version byte (protocol §2: every v1 structure starts with 0x01). */
const LIST_VERSION_BYTE = 1;
/** Devices in one list (protocol §8: `Limits.maxDevicesPerUser`). */
export const MAX_LISTED_DEVICES = 32;
const KEY = 32;
const SIGNATURE = 64;
/** `label8("Deadbolt_v1_DeviceList")`: the domain separation of list signatures (protocol §2.3, SECURITY.md A4). */
const LABEL = ((): Uint8Array => {
  const raw = utf8('Deadbolt_v1_DeviceList');
  return concatBytes(Uint8Array.of(raw.length), raw);
})();

/** One device of a list. */
export interface DeviceListEntry {
  readonly deviceId: string;
  readonly signingKey: Uint8Array;
  readonly identityKey: Uint8Array;
}

/** A decoded (not yet verified) device list. */
export interface DecodedDeviceList {
  readonly userId: string;
  readonly accountKey: Uint8Array;
  /** 1, 2, ...: every change increments it. */
  readonly listVersion: number;
  readonly issuedAt: number;
  /** In strictly increasing device-id order. */
  readonly devices: readonly DeviceListEntry[];
  /** The signed part (everything before the signature). */
  readonly body: Uint8Array;
  readonly signature: Uint8Array;
  /** The exact encoding (a private copy). */
  readonly encoded: Uint8Array;
}

/** Device ids are ASCII (`[A-Za-z0-9._@:+-]`), so code-unit order is the UTF-8 byte order §3.3 asks for. */
function before(a: string, b: string): boolean {
  return a < b;
}

/**
 * Decodes a device list without verifying it. Throws `CodecError` (naming field and
 * offset) for anything malformed: a size over 4,303 bytes before parsing, a wrong version,
 * an invalid id, list version 0, a count outside 1..32, entries out of order or
 * duplicated, trailing bytes.
 */
export function decodeDeviceList(bytes: Uint8Array): DecodedDeviceList {
  const r = new ByteReader(bytes, 'DeviceList', RELAY_LIMITS.maxDeviceList);
  r.enumU8('version', [LIST_VERSION_BYTE]);
  const uAt = r.offset;
  const userId = r.string8('userId');
  try {
    toUserId(userId);
  } catch {
    throw r.fail('userId', 'invalid user id', uAt);
  }
  const accountKey = r.fixed('accountKey', KEY);
  const vAt = r.offset;
  const listVersion = r.u32('listVersion');
  if (listVersion === 0) throw r.fail('listVersion', 'must be at least 1', vAt);
  const issuedAt = r.u64('issuedAt');
  const cAt = r.offset;
  const count = r.u8('count');
  if (count < 1 || count > MAX_LISTED_DEVICES) throw r.fail('count', `must be 1 to ${MAX_LISTED_DEVICES}`, cAt);
  const devices: DeviceListEntry[] = [];
  for (let i = 0; i < count; i++) {
    const dAt = r.offset;
    const deviceId = r.string8('deviceId');
    try {
      toDeviceId(deviceId);
    } catch {
      throw r.fail('deviceId', 'invalid device id', dAt);
    }
    // Strictly increasing: one canonical encoding per set of devices, and no duplicates.
    const previous = devices[i - 1];
    if (previous !== undefined && !before(previous.deviceId, deviceId)) throw r.fail('deviceId', 'entries out of order or duplicated', dAt);
    devices.push({ deviceId, signingKey: r.fixed('signingKey', KEY), identityKey: r.fixed('identityKey', KEY) });
  }
  const bodyLength = r.offset;
  const signature = r.fixed('signature', SIGNATURE);
  r.end();
  const encoded = bytes.slice();
  return { userId, accountKey, listVersion, issuedAt, devices, body: encoded.slice(0, bodyLength), signature, encoded };
}

/** Whether the list's own account key signed it (protocol §3.3 "valid"). */
export function verifyDeviceList(crypto: CryptoProvider, list: DecodedDeviceList): Promise<boolean> {
  return crypto.ed25519Verify(list.accountKey, concatBytes(LABEL, list.body), list.signature);
}

/**
 * Whether `certificate`'s device is current under `list` (protocol §3.3): the list names
 * the certificate's user and account key, and has an entry with its device id, signing
 * key and identity key, all three equal.
 */
export function listsCertificate(list: DecodedDeviceList, certificate: DeviceCertificate): boolean {
  if (list.userId !== certificate.userId || !sameBytes(list.accountKey, certificate.accountKey)) return false;
  const entry = list.devices.find((d) => d.deviceId === certificate.deviceId);
  return entry !== undefined && sameBytes(entry.signingKey, certificate.signingKey) && sameBytes(entry.identityKey, certificate.identityKey);
}

/**
 * The body of a list and the bytes its signature covers, for signers (test helpers; the
 * relay itself never signs). `devices` may be in any order: they are sorted.
 */
export function encodeDeviceListBody(fields: {
  readonly userId: string;
  readonly accountKey: Uint8Array;
  readonly listVersion: number;
  readonly issuedAt: number;
  readonly devices: readonly DeviceListEntry[];
}): { readonly body: Uint8Array; readonly signedInput: Uint8Array } {
  const devices = [...fields.devices].sort((a, b) => (before(a.deviceId, b.deviceId) ? -1 : before(b.deviceId, a.deviceId) ? 1 : 0));
  const w = new ByteWriter(128 + devices.length * 130)
    .u8(LIST_VERSION_BYTE)
    .string8(fields.userId)
    .fixed(fields.accountKey, KEY)
    .u32(fields.listVersion)
    .u64(fields.issuedAt)
    .u8(devices.length);
  for (const d of devices) w.string8(d.deviceId).fixed(d.signingKey, KEY).fixed(d.identityKey, KEY);
  const body = w.finish();
  return { body, signedInput: concatBytes(LABEL, body) };
}
