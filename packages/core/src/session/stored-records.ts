/**
 * The other records core keeps (docs/protocol.md §7.2, §7.4): the local identity,
 * prekey private halves, prekey counters and trust decisions. Each has a body codec here;
 * {@link sealRecord} / {@link openRecord} wrap them, and `storageKeys` names where each lives.
 *
 * @module
 */
import type {
  Address,
  Ed25519PublicKey,
  Ed25519SecretKey,
  MlKemPublicKey,
  MlKemSecretKey,
  X25519PublicKey,
  X25519SecretKey,
} from '@deadbolt/spec';
import type { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Len, Limits, PqPrekeyKind } from '../protocol/constants.js';
import { decodeDeviceCertificate, encodeDeviceCertificate, type DeviceCertificate } from '../protocol/device-certificate.js';

/** Where each record lives in the store (§7.1). */
export const storageKeys = Object.freeze({
  identity: (): string[] => ['identity'],
  prekeyMeta: (): string[] => ['prekey-meta'],
  signedPrekey: (id: number): string[] => ['prekey', 'signed', String(id)],
  signedPrekeys: (): string[] => ['prekey', 'signed'],
  oneTimePrekey: (id: number): string[] => ['prekey', 'one-time', String(id)],
  pqPrekey: (id: number): string[] => ['prekey', 'pq', String(id)],
  replayMarker: (pqId: number, baseKeyHex: string): string[] => ['prekey-replay', String(pqId), baseKeyHex],
  replayMarkers: (pqId: number): string[] => ['prekey-replay', String(pqId)],
  session: (a: Address): string[] => ['session', a.userId, a.deviceId],
  sessionsOf: (userId: string): string[] => ['session', userId],
  trust: (userId: string): string[] => ['trust', userId],
  deviceList: (userId: string): string[] => ['device-list', userId],
});

/** This device's identity (§3.1). The account secret is absent on devices that were linked. */
export interface IdentityRecord {
  readonly accountSecret?: Ed25519SecretKey;
  readonly signingSecret: Ed25519SecretKey;
  readonly identitySecret: X25519SecretKey;
  readonly certificate: DeviceCertificate;
}

export function encodeIdentityRecord(v: IdentityRecord): Uint8Array {
  const w = new ByteWriter(512);
  if (v.accountSecret) w.u8(1).fixed(v.accountSecret, Len.key);
  else w.u8(0);
  return w.fixed(v.signingSecret, Len.key).fixed(v.identitySecret, Len.key).bytes16(encodeDeviceCertificate(v.certificate)).finish();
}

export function readIdentityRecord(r: ByteReader): IdentityRecord {
  const accountSecret = r.bool('hasAccountSecret') ? (r.fixed('accountSecret', Len.key) as Ed25519SecretKey) : undefined;
  const signingSecret = r.fixed('signingSecret', Len.key) as Ed25519SecretKey;
  const identitySecret = r.fixed('identitySecret', Len.key) as X25519SecretKey;
  const at = r.offset;
  let certificate: DeviceCertificate;
  try {
    certificate = decodeDeviceCertificate(r.bytes16('certificate', Limits.maxCertificate));
  } catch {
    throw r.fail('certificate', 'invalid certificate', at);
  }
  return { ...(accountSecret ? { accountSecret } : {}), signingSecret, identitySecret, certificate };
}

/** A signed prekey with its private half. */
export interface SignedPrekeyRecord {
  readonly id: number;
  readonly createdAt: number;
  readonly publicKey: X25519PublicKey;
  readonly secretKey: X25519SecretKey;
  readonly signature: Uint8Array;
}

export function encodeSignedPrekeyRecord(v: SignedPrekeyRecord): Uint8Array {
  return new ByteWriter(144).u32(v.id).u64(v.createdAt).fixed(v.publicKey, Len.key).fixed(v.secretKey, Len.key).fixed(v.signature, Len.signature).finish();
}

export function readSignedPrekeyRecord(r: ByteReader): SignedPrekeyRecord {
  return {
    id: r.u32('id'),
    createdAt: r.u64('createdAt'),
    publicKey: r.fixed('publicKey', Len.key) as X25519PublicKey,
    secretKey: r.fixed('secretKey', Len.key) as X25519SecretKey,
    signature: r.fixed('signature', Len.signature),
  };
}

/** A one-time prekey with its private half. */
export interface OneTimePrekeyRecord {
  readonly id: number;
  readonly publicKey: X25519PublicKey;
  readonly secretKey: X25519SecretKey;
}

export function encodeOneTimePrekeyRecord(v: OneTimePrekeyRecord): Uint8Array {
  return new ByteWriter(68).u32(v.id).fixed(v.publicKey, Len.key).fixed(v.secretKey, Len.key).finish();
}

export function readOneTimePrekeyRecord(r: ByteReader): OneTimePrekeyRecord {
  return {
    id: r.u32('id'),
    publicKey: r.fixed('publicKey', Len.key) as X25519PublicKey,
    secretKey: r.fixed('secretKey', Len.key) as X25519SecretKey,
  };
}

/** A PQ prekey with its private half; `uses` counts initial messages to a last-resort key. */
export interface PqPrekeyRecord {
  readonly id: number;
  readonly kind: number;
  readonly createdAt: number;
  readonly uses: number;
  readonly publicKey: MlKemPublicKey;
  readonly secretKey: MlKemSecretKey;
  readonly signature: Uint8Array;
}

export function encodePqPrekeyRecord(v: PqPrekeyRecord): Uint8Array {
  return new ByteWriter(3680)
    .u32(v.id)
    .u8(v.kind)
    .u64(v.createdAt)
    .u32(v.uses)
    .fixed(v.publicKey, Len.mlkemPublic)
    .fixed(v.secretKey, Len.mlkemSecret)
    .fixed(v.signature, Len.signature)
    .finish();
}

export function readPqPrekeyRecord(r: ByteReader): PqPrekeyRecord {
  return {
    id: r.u32('id'),
    kind: r.enumU8('kind', [PqPrekeyKind.ONE_TIME, PqPrekeyKind.LAST_RESORT]),
    createdAt: r.u64('createdAt'),
    uses: r.u32('uses'),
    publicKey: r.fixed('publicKey', Len.mlkemPublic) as MlKemPublicKey,
    secretKey: r.fixed('secretKey', Len.mlkemSecret) as MlKemSecretKey,
    signature: r.fixed('signature', Len.signature),
  };
}

/** Prekey id counters and the current signed and last-resort keys (0 = none yet). */
export interface PrekeyMetaRecord {
  readonly nextId: number;
  readonly currentSignedId: number;
  readonly currentLastResortId: number;
  /** The last-resort key before the current one, still accepted for messages in flight. */
  readonly previousLastResortId: number;
}

export function encodePrekeyMetaRecord(v: PrekeyMetaRecord): Uint8Array {
  return new ByteWriter(16).u32(v.nextId).u32(v.currentSignedId).u32(v.currentLastResortId).u32(v.previousLastResortId).finish();
}

export function readPrekeyMetaRecord(r: ByteReader): PrekeyMetaRecord {
  return {
    nextId: r.u32('nextId'),
    currentSignedId: r.u32('currentSignedId'),
    currentLastResortId: r.u32('currentLastResortId'),
    previousLastResortId: r.u32('previousLastResortId'),
  };
}

/**
 * What this device trusts as a contact's account key (§7.4). `pendingKey` is a different
 * key seen since; while it is set, sending to the contact is refused until the
 * application accepts it (SECURITY.md B16).
 */
export interface TrustRecord {
  readonly accountKey: Ed25519PublicKey;
  readonly verified: boolean;
  readonly pendingKey?: Ed25519PublicKey;
}

export function encodeTrustRecord(v: TrustRecord): Uint8Array {
  const w = new ByteWriter(68).fixed(v.accountKey, Len.key).u8(v.verified ? 1 : 0);
  if (v.pendingKey) w.u8(1).fixed(v.pendingKey, Len.key);
  else w.u8(0);
  return w.finish();
}

export function readTrustRecord(r: ByteReader): TrustRecord {
  const accountKey = r.fixed('accountKey', Len.key) as Ed25519PublicKey;
  const verified = r.bool('verified');
  const pendingKey = r.bool('hasPendingKey') ? (r.fixed('pendingKey', Len.key) as Ed25519PublicKey) : undefined;
  return { accountKey, verified, ...(pendingKey ? { pendingKey } : {}) };
}
