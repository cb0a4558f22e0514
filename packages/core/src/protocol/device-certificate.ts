/**
 * The device certificate (docs/protocol.md §3.2): the account key's signature over one
 * device's keys. It is what lets a peer (and never the relay) decide that a device belongs
 * to a user: a device whose certificate does not verify under the user's trusted account
 * key is not that user's device.
 *
 * ```
 * body      = version u8 (=1) | userId string8 | deviceId string8 | accountKey[32]
 *           | signingKey[32] | identityKey[32] | capabilities u8
 * signature = Ed25519(accountSecret, label8("Deadbolt_v1_DeviceCertificate") | body)
 * encoding  = body | signature[64]
 * ```
 *
 * @module
 */
import {
  ProtocolError,
  deviceId as toDeviceId,
  userId as toUserId,
  type Address,
  type DeviceId,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type UserId,
  type X25519PublicKey,
} from '@deadbolt/spec';
import { concatBytes } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Capability, Label, Len, Limits, WIRE_VERSION, labelPrefix } from './constants.js';

/** A device's public identity, signed by its account. */
export interface DeviceCertificate {
  readonly userId: UserId;
  readonly deviceId: DeviceId;
  /** The user's account identity key (Ed25519): what safety numbers are made of. */
  readonly accountKey: Ed25519PublicKey;
  /** The device's signing key (Ed25519): signs prekeys. */
  readonly signingKey: Ed25519PublicKey;
  /** The device's identity key (X25519): IK in PQXDH. */
  readonly identityKey: X25519PublicKey;
  /** Capability bits (§3.2); bit 0: PQXDH with ML-KEM-768. */
  readonly capabilities: number;
  /** Ed25519 signature by the account key over the body. */
  readonly signature: Uint8Array;
}

const STRUCTURE = 'DeviceCertificate';
const CERT_LABEL = labelPrefix(Label.deviceCertificate);

function encodeBody(c: Omit<DeviceCertificate, 'signature'>): Uint8Array {
  return new ByteWriter(192)
    .u8(WIRE_VERSION)
    .string8(c.userId)
    .string8(c.deviceId)
    .fixed(c.accountKey, Len.key)
    .fixed(c.signingKey, Len.key)
    .fixed(c.identityKey, Len.key)
    .u8(c.capabilities)
    .finish();
}

/** Encodes a certificate (§3.2). */
export function encodeDeviceCertificate(c: DeviceCertificate): Uint8Array {
  let encoded = encodings.get(c);
  if (encoded === undefined) {
    encoded = concatBytes(encodeBody(c), c.signature);
    encodings.set(c, encoded);
  }
  return encoded.slice();
}

/**
 * Encodings by certificate object. A session record holds its peer's certificate and is
 * written after every message (docs/protocol.md §7.2): the certificate object, decoded
 * once or made once and never changed by core (copies go to applications), encodes to the
 * same bytes each time. Entries go with their objects.
 */
const encodings = new WeakMap<DeviceCertificate, Uint8Array>();

/** Decodes a certificate without verifying it. Throws `CodecError`. */
export function decodeDeviceCertificate(bytes: Uint8Array): DeviceCertificate {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxCertificate);
  readVersion(r, STRUCTURE);
  const uAt = r.offset;
  const user = r.string8('userId');
  const dAt = r.offset;
  const device = r.string8('deviceId');
  let u: UserId;
  let d: DeviceId;
  try {
    u = toUserId(user);
  } catch {
    throw r.fail('userId', 'invalid user id', uAt);
  }
  try {
    d = toDeviceId(device);
  } catch {
    throw r.fail('deviceId', 'invalid device id', dAt);
  }
  const cert: DeviceCertificate = {
    userId: u,
    deviceId: d,
    accountKey: r.fixed('accountKey', Len.key) as Ed25519PublicKey,
    signingKey: r.fixed('signingKey', Len.key) as Ed25519PublicKey,
    identityKey: r.fixed('identityKey', Len.key) as X25519PublicKey,
    capabilities: readCapabilities(r),
    signature: r.fixed('signature', Len.signature),
  };
  r.end();
  return cert;
}

/** Capability bits other than those defined must be 0 (§3.2). */
function readCapabilities(r: ByteReader): number {
  const at = r.offset;
  const bits = r.u8('capabilities');
  if ((bits & ~Capability.PQXDH_MLKEM768) !== 0) throw r.fail('capabilities', 'reserved bits set', at);
  return bits;
}

/** Reads and checks the leading version byte. */
export function readVersion(r: ByteReader, structure: string): void {
  const version = r.u8('version');
  if (version !== WIRE_VERSION) {
    throw new ProtocolError('UNSUPPORTED_VERSION', {
      message: `${structure}: unsupported version ${version}`,
      details: { structure, version },
    });
  }
}

/** Signs a new certificate with the account's secret key. */
export async function signDeviceCertificate(
  crypto: CryptoProvider,
  accountSecret: Ed25519SecretKey,
  fields: Omit<DeviceCertificate, 'signature'>,
): Promise<DeviceCertificate> {
  const signature = await crypto.ed25519Sign(accountSecret, concatBytes(CERT_LABEL, encodeBody(fields)));
  return { ...fields, signature };
}

/** Throws `ProtocolError` `BAD_SIGNATURE` unless the account key signed this certificate. */
export async function verifyDeviceCertificate(crypto: CryptoProvider, c: DeviceCertificate): Promise<void> {
  const ok = await crypto.ed25519Verify(c.accountKey, concatBytes(CERT_LABEL, encodeBody(c)), c.signature);
  if (!ok) throw new ProtocolError('BAD_SIGNATURE', { message: 'device certificate signature', details: { what: 'device certificate' } });
}

/** The address a certificate names. */
export function certificateAddress(c: DeviceCertificate): Address {
  return { userId: c.userId, deviceId: c.deviceId };
}
