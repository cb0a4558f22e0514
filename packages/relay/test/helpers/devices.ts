/**
 * Test devices: real identities and prekeys made by @deadbolt/core's session manager,
 * each with its own memory storage. The relay-auth signature uses the device signing
 * key, read (like core's own test helpers do) from the device's identity record: core's
 * internal record modules are imported for that and for listing private keys (F43).
 */
import { address, concatBytes, deviceId as toDeviceId, type Address, type StorageAdapter } from '@deadbolt/spec';
import {
  createNodeCryptoProvider,
  createSessionManager,
  decodeDeviceCertificate,
  encodeDeviceCertificate,
  encodePrekeyUpload,
  relayAuthSignatureInput,
  type PublicPrekeys,
  type SessionManager,
} from '@deadbolt/core';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { encodeDeviceListBody } from '../../src/device-list.js';
import { signDeviceCertificate } from '../../../core/src/protocol/device-certificate.js';
import { openRecord, RecordType, sealRecord } from '../../../core/src/session/record-envelope.js';
import {
  encodeIdentityRecord,
  readIdentityRecord,
  readOneTimePrekeyRecord,
  readPqPrekeyRecord,
  readSignedPrekeyRecord,
  type IdentityRecord,
} from '../../../core/src/session/stored-records.js';

export const crypto = createNodeCryptoProvider();

export interface TestDevice {
  readonly address: Address;
  readonly storage: StorageAdapter;
  readonly sessions: SessionManager;
  /** The encoded device certificate. */
  readonly certificate: Uint8Array;
  /** The public prekeys of the last `generatePrekeys`. */
  prekeys: PublicPrekeys;
  /** The encoded upload of `prekeys`. */
  upload(): Uint8Array;
  /** Signs a relay challenge with the device signing key (docs/relay-protocol.md §2). */
  sign(relayId: string, challenge: Uint8Array): Promise<Uint8Array>;
}

export interface DeviceOptions {
  readonly oneTime?: number;
  readonly pqOneTime?: number;
}

async function identityOf(storage: StorageAdapter): Promise<IdentityRecord> {
  const bytes = await storage.get(['identity']);
  if (bytes === undefined) throw new Error('no identity');
  return openRecord(crypto, ['identity'], RecordType.IDENTITY, bytes, readIdentityRecord);
}

async function wrap(addr: Address, storage: StorageAdapter, sessions: SessionManager, prekeys: PublicPrekeys): Promise<TestDevice> {
  const identity = await identityOf(storage);
  const device: TestDevice = {
    address: addr,
    storage,
    sessions,
    certificate: encodeDeviceCertificate(identity.certificate),
    prekeys,
    upload: () => encodePrekeyUpload(device.prekeys),
    sign: (relayId, challenge) => crypto.ed25519Sign(identity.signingSecret, relayAuthSignatureInput(relayId, challenge)),
  };
  return device;
}

/** A new device of a new account. */
export async function createDevice(user: string, device: string, options: DeviceOptions = {}): Promise<TestDevice> {
  const storage = createMemoryStorage();
  const sessions = createSessionManager({ storage, crypto });
  await sessions.createIdentity({ userId: user, deviceId: device });
  const prekeys = await sessions.generatePrekeys({ oneTime: options.oneTime ?? 5, pqOneTime: options.pqOneTime ?? 3 });
  return wrap(address(user, device), storage, sessions, prekeys);
}

/** A second device of `owner`'s account, certified by the same account key. */
export async function createSiblingDevice(owner: TestDevice, device: string, options: DeviceOptions = {}): Promise<TestDevice> {
  const ownerIdentity = await identityOf(owner.storage);
  const signing = await crypto.ed25519GenerateKeyPair();
  const dh = await crypto.x25519GenerateKeyPair();
  const certificate = await signDeviceCertificate(crypto, ownerIdentity.accountSecret!, {
    ...ownerIdentity.certificate,
    deviceId: toDeviceId(device),
    signingKey: signing.publicKey,
    identityKey: dh.publicKey,
  });
  const storage = createMemoryStorage();
  await storage.batch([
    {
      type: 'put',
      key: ['identity'],
      value: sealRecord(crypto, RecordType.IDENTITY, encodeIdentityRecord({ signingSecret: signing.secretKey, identitySecret: dh.secretKey, certificate })),
    },
  ]);
  const sessions = createSessionManager({ storage, crypto });
  const prekeys = await sessions.generatePrekeys({ oneTime: options.oneTime ?? 5, pqOneTime: options.pqOneTime ?? 3 });
  return wrap(address(owner.address.userId, device), storage, sessions, prekeys);
}

/**
 * A device list of `owner`'s user (docs/protocol.md §3.3), signed with the account key
 * `owner` holds, listing `members` (in any order) at `listVersion`.
 */
export async function deviceListOf(owner: TestDevice, listVersion: number, members: readonly TestDevice[], issuedAt = 1_700_000_000_000): Promise<Uint8Array> {
  const identity = await identityOf(owner.storage);
  if (identity.accountSecret === undefined) throw new Error('this device holds no account secret');
  const devices = members.map((m) => {
    const c = decodeDeviceCertificate(m.certificate);
    return { deviceId: c.deviceId, signingKey: c.signingKey, identityKey: c.identityKey };
  });
  const { body, signedInput } = encodeDeviceListBody({ userId: owner.address.userId, accountKey: identity.certificate.accountKey, listVersion, issuedAt, devices });
  return concatBytes(body, await crypto.ed25519Sign(identity.accountSecret, signedInput));
}

/** Every private key a device holds: account, signing, identity and prekey secrets. */
export async function privateKeysOf(d: TestDevice): Promise<{ name: string; bytes: Uint8Array }[]> {
  const identity = await identityOf(d.storage);
  const out: { name: string; bytes: Uint8Array }[] = [
    { name: 'signingSecret', bytes: identity.signingSecret },
    { name: 'identitySecret', bytes: identity.identitySecret },
  ];
  if (identity.accountSecret) out.push({ name: 'accountSecret', bytes: identity.accountSecret });
  for (const e of await d.storage.range(['prekey', 'signed'])) {
    out.push({ name: `signedPrekey ${e.key[2]}`, bytes: openRecord(crypto, e.key, RecordType.SIGNED_PREKEY, e.value, readSignedPrekeyRecord).secretKey });
  }
  for (const e of await d.storage.range(['prekey', 'one-time'])) {
    out.push({ name: `oneTimePrekey ${e.key[2]}`, bytes: openRecord(crypto, e.key, RecordType.ONE_TIME_PREKEY, e.value, readOneTimePrekeyRecord).secretKey });
  }
  for (const e of await d.storage.range(['prekey', 'pq'])) {
    out.push({ name: `pqPrekey ${e.key[2]}`, bytes: openRecord(crypto, e.key, RecordType.PQ_PREKEY, e.value, readPqPrekeyRecord).secretKey });
  }
  return out;
}

export function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function str(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
