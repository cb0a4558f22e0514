/**
 * Test parties: devices with their own memory storage, and a tiny in-test key directory
 * that assembles bundles the way a relay does (one one-time prekey each, the last-resort
 * PQ key when one-time PQ keys run out).
 */
import { address, deviceId, type Address, type StorageAdapter } from '@deadbolt/spec';
import { signDeviceCertificate } from '../../src/protocol/device-certificate.js';
import { openRecord, RecordType, sealRecord } from '../../src/session/record-envelope.js';
import { encodeIdentityRecord, readIdentityRecord } from '../../src/session/stored-records.js';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import {
  createNobleCryptoProvider,
  createNodeCryptoProvider,
  createSessionManager,
  type CryptoProvider,
  type PrekeyBundle,
  type PublicPrekeys,
  type SessionLimits,
  type SessionManager,
} from '../../src/index.js';

export interface Party {
  readonly address: Address;
  readonly storage: StorageAdapter;
  readonly sessions: SessionManager;
  /** What this device uploaded; bundles are served from it. */
  prekeys: PublicPrekeys;
}

export interface PartyOptions {
  readonly crypto?: CryptoProvider;
  readonly oneTime?: number;
  readonly pqOneTime?: number;
  readonly limits?: Partial<SessionLimits>;
  readonly storage?: StorageAdapter;
}

export const nodeCrypto = createNodeCryptoProvider();
export const nobleCrypto = createNobleCryptoProvider();

export async function createParty(user: string, device: string, options: PartyOptions = {}): Promise<Party> {
  const storage = options.storage ?? createMemoryStorage();
  const sessions = createSessionManager({
    storage,
    crypto: options.crypto ?? nodeCrypto,
    ...(options.limits ? { limits: options.limits } : {}),
  });
  await sessions.createIdentity({ userId: user, deviceId: device });
  const prekeys = await sessions.generatePrekeys({ oneTime: options.oneTime ?? 3, pqOneTime: options.pqOneTime ?? 2 });
  return { address: address(user, device), storage, sessions, prekeys };
}

/**
 * Serves one bundle, consuming a one-time prekey and a one-time PQ prekey from the
 * party's upload as a key directory would.
 */
export function takeBundle(p: Party, opts: { oneTime?: boolean; pq?: 'one-time' | 'last-resort' | 'none' } = {}): PrekeyBundle {
  const useOneTime = opts.oneTime ?? true;
  const pqMode = opts.pq ?? 'one-time';
  const oneTime = useOneTime ? p.prekeys.oneTimePrekeys[0] : undefined;
  const pqOneTime = pqMode === 'one-time' ? p.prekeys.pqPrekeys[0] : undefined;
  p.prekeys = {
    ...p.prekeys,
    oneTimePrekeys: oneTime ? p.prekeys.oneTimePrekeys.slice(1) : p.prekeys.oneTimePrekeys,
    pqPrekeys: pqOneTime ? p.prekeys.pqPrekeys.slice(1) : p.prekeys.pqPrekeys,
  };
  const pq = pqMode === 'none' ? undefined : (pqOneTime ?? p.prekeys.lastResortPqPrekey);
  return {
    certificate: p.prekeys.certificate,
    signedPrekey: p.prekeys.signedPrekey,
    ...(oneTime ? { oneTimePrekey: oneTime } : {}),
    ...(pq ? { pqPrekey: pq } : {}),
  };
}

/** Alice and Bob with a session from Alice to Bob, confirmed by one reply. */
export async function establishedPair(options: PartyOptions = {}): Promise<{ alice: Party; bob: Party }> {
  const alice = await createParty('alice', 'phone', options);
  const bob = await createParty('bob', 'laptop', options);
  await alice.sessions.processBundle(takeBundle(bob));
  const first = await alice.sessions.encrypt(bob.address, text('hello bob'));
  await bob.sessions.decrypt(alice.address, first);
  const reply = await bob.sessions.encrypt(alice.address, text('hello alice'));
  await alice.sessions.decrypt(bob.address, reply);
  return { alice, bob };
}

/**
 * A second device of `owner`'s user, certified by the same account key and added to the
 * owner's device list (the linking flow of §3.4 is tested on its own; here the account
 * secret is read from the owner's store and the new device's identity is written directly).
 */
export async function createSiblingDevice(owner: Party, device: string, options: PartyOptions = {}): Promise<Party> {
  const crypto = options.crypto ?? nodeCrypto;
  const storage = options.storage ?? createMemoryStorage();
  const ownerIdentity = openRecord(crypto, ['identity'], RecordType.IDENTITY, (await owner.storage.get(['identity']))!, readIdentityRecord);
  const signing = await crypto.ed25519GenerateKeyPair();
  const dh = await crypto.x25519GenerateKeyPair();
  const certificate = await signDeviceCertificate(crypto, ownerIdentity.accountSecret!, {
    ...ownerIdentity.certificate,
    deviceId: deviceId(device),
    signingKey: signing.publicKey,
    identityKey: dh.publicKey,
  });
  await storage.batch([
    {
      type: 'put',
      key: ['identity'],
      value: sealRecord(crypto, RecordType.IDENTITY, encodeIdentityRecord({ signingSecret: signing.secretKey, identitySecret: dh.secretKey, certificate })),
    },
  ]);
  const sessions = createSessionManager({ storage, crypto, ...(options.limits ? { limits: options.limits } : {}) });
  // The owner lists the new device (docs/protocol.md §3.3); both store the new list.
  const current = (await owner.sessions.deviceList(owner.address.userId))?.devices ?? [];
  const list = await owner.sessions.signDeviceList([...current, { deviceId: certificate.deviceId, signingKey: certificate.signingKey, identityKey: certificate.identityKey }]);
  await owner.sessions.applyDeviceList(owner.address.userId, list.encoded);
  await sessions.applyDeviceList(owner.address.userId, list.encoded);
  const prekeys = await sessions.generatePrekeys({ oneTime: options.oneTime ?? 3, pqOneTime: options.pqOneTime ?? 2 });
  return { address: address(owner.address.userId, device), storage, sessions, prekeys };
}

export function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function str(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
