/**
 * Test helpers for adapter authors (`@deadbolt/relay/testing`): a relay on loopback with
 * rate limits loose enough for conformance suites, a restart at the same URL, and devices
 * with real keys that the relay accepts, which can also link further devices of their
 * user and sign its device lists (docs/protocol.md §3.3, §3.4). Used by every transport's
 * conformance test.
 *
 * @module
 */
import {
  createDefaultCryptoProvider,
  createSessionManager,
  decodeDeviceCertificate,
  encodeDeviceCertificate,
  encodePrekeyUpload,
  Label,
  verifyDeviceCertificate,
  type CryptoProvider,
} from '@deadbolt/core';
import { address, concatBytes, utf8, type Address, type Ed25519PublicKey, type Ed25519SecretKey, type KeyPair, type TransportAuth } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { encodeDeviceListBody } from './device-list.js';
import { createRelay, type Relay, type RelayOptions } from './relay.js';
import { createMemoryRelayStore } from './memory-store.js';
import { silentRelayLogger } from './logger.js';
import type { RateLimit } from './limits.js';

const LOOSE: RateLimit = { burst: 1_000_000, refill: 1_000_000, intervalMs: 1000 };

/** Limits for tests: every rate limit effectively off, every size limit as in production. */
export const LOOSE_TEST_LIMITS: NonNullable<RelayOptions['limits']> = {
  messages: LOOSE,
  bundleFetches: LOOSE,
  directoryReads: LOOSE,
  requests: LOOSE,
  sendBytes: { burst: 2 ** 40, refill: 2 ** 40, intervalMs: 1000 },
  authAttempts: LOOSE,
  prekeyUploads: LOOSE,
  deviceListPublishes: LOOSE,
  provisionPuts: LOOSE,
  provisionTakes: LOOSE,
};

/**
 * A relay on 127.0.0.1 with a memory store and loose rate limits.
 *
 * @example
 * ```ts
 * const relay = await conformanceRelay();
 * ```
 */
export function conformanceRelay(options: RelayOptions = {}): Promise<Relay> {
  return createRelay({ host: '127.0.0.1', port: 0, logger: silentRelayLogger, store: createMemoryRelayStore(), limits: LOOSE_TEST_LIMITS, ...options });
}

/**
 * Closes `relay` and starts a fresh one on the same port. Its memory store starts
 * empty, so devices must re-register when their transports reconnect: what a transport
 * meets after a relay loses its state.
 */
export async function restartConformanceRelay(relay: { url: string; close(): Promise<void> }): Promise<Relay> {
  const port = Number(new URL(relay.url).port);
  await relay.close();
  return conformanceRelay({ port });
}

/** A device with its own identity: its address, the credentials a transport needs, and an encoded prekey upload. */
export interface TestDevice {
  readonly address: Address;
  readonly auth: TransportAuth;
  /** An encoded prekey upload (2 one-time X25519 keys, 1 one-time PQ key). */
  readonly upload: Uint8Array;
  /**
   * Signs a device list of this device's user (docs/protocol.md §3.3) with its account
   * key: version `listVersion`, listing `devices` (devices of this user, made by
   * {@link conformanceDevice} or {@link TestDevice.linkDevice}, in any order).
   */
  signDeviceList(listVersion: number, devices: readonly TestDevice[]): Promise<Uint8Array>;
  /** A new device of this device's user, certified by the same account key (what linking gives it, protocol §3.4). */
  linkDevice(deviceId: string): Promise<TestDevice>;
}

/** An account: its key pair, shared by every device linked to it. */
interface TestAccount {
  readonly userId: string;
  readonly keys: KeyPair<Ed25519PublicKey, Ed25519SecretKey>;
  readonly crypto: CryptoProvider;
}

/** `label8(label)`: the one-byte length prefix every Deadbolt signature input starts with (protocol §2.3). */
function label8(label: string): Uint8Array {
  const raw = utf8(label);
  return concatBytes(Uint8Array.of(raw.length), raw);
}

/**
 * A session manager whose first Ed25519 key pair (the account key of `createIdentity`)
 * is also handed back: the provider is the platform's, only observed. This keeps the
 * helper on core's public API.
 */
async function newIdentity(userId: string, deviceId: string): Promise<{ sessions: ReturnType<typeof createSessionManager>; account: KeyPair<Ed25519PublicKey, Ed25519SecretKey> }> {
  const crypto = createDefaultCryptoProvider();
  const generated: KeyPair<Ed25519PublicKey, Ed25519SecretKey>[] = [];
  const observed: CryptoProvider = {
    ...crypto,
    async ed25519GenerateKeyPair() {
      const pair = await crypto.ed25519GenerateKeyPair();
      generated.push(pair);
      return pair;
    },
  };
  const sessions = createSessionManager({ storage: createMemoryStorage(), crypto: observed });
  const certificate = await sessions.createIdentity({ userId, deviceId });
  const account = generated.find((k) => k.publicKey.length === certificate.accountKey.length && k.publicKey.every((b, i) => b === certificate.accountKey[i]));
  if (account === undefined) throw new Error('conformanceDevice: the account key pair was not observed');
  return { sessions, account };
}

/** A device of `userId`: the first of a new account, or one more device of `existing`. */
async function makeDevice(userId: string, deviceId: string, existing: TestAccount | undefined): Promise<TestDevice> {
  const { sessions, account: own } = await newIdentity(userId, deviceId);
  const account: TestAccount = existing ?? { userId, keys: own, crypto: createDefaultCryptoProvider() };
  // A linked device's own keys are certified by the existing account (the account key of
  // its own identity is never used).
  let certificate = await sessions.certificate();
  if (existing !== undefined) {
    const fields = { ...certificate, accountKey: account.keys.publicKey };
    const body = encodeDeviceCertificate({ ...fields, signature: new Uint8Array(64) }).subarray(0, -64);
    const signature = await account.crypto.ed25519Sign(account.keys.secretKey, concatBytes(label8(Label.deviceCertificate), body));
    certificate = decodeDeviceCertificate(concatBytes(body, signature));
    await verifyDeviceCertificate(account.crypto, certificate);
  }
  const prekeys = await sessions.generatePrekeys({ oneTime: 2, pqOneTime: 1 });
  const device: TestDevice = {
    address: address(account.userId, deviceId),
    auth: { certificate: encodeDeviceCertificate(certificate), sign: (relayId, challenge) => sessions.signRelayChallenge(relayId, challenge) },
    upload: encodePrekeyUpload({ ...prekeys, certificate }),
    async signDeviceList(listVersion, devices) {
      const entries = devices.map((d) => {
        const c = decodeDeviceCertificate(d.auth.certificate);
        return { deviceId: c.deviceId, signingKey: c.signingKey, identityKey: c.identityKey };
      });
      const { body, signedInput } = encodeDeviceListBody({ userId: account.userId, accountKey: account.keys.publicKey, listVersion, issuedAt: Date.now(), devices: entries });
      return concatBytes(body, await account.crypto.ed25519Sign(account.keys.secretKey, signedInput));
    },
    linkDevice: (id) => makeDevice(account.userId, id, account),
  };
  return device;
}

/**
 * A device with real keys (in memory) of a new account, as a transport test needs one.
 *
 * @example
 * ```ts
 * const alice = await conformanceDevice('alice', 'phone');
 * await transport.connect(alice.auth);
 * const laptop = await alice.linkDevice('laptop');
 * await transport.publishDeviceList(await alice.signDeviceList(1, [alice, laptop]));
 * ```
 */
export function conformanceDevice(userId: string, deviceId: string): Promise<TestDevice> {
  return makeDevice(userId, deviceId, undefined);
}
