/**
 * The pairwise session manager: identities, prekeys, PQXDH and the Double Ratchet over a
 * storage adapter (docs/protocol.md §5–§7).
 *
 * Every state change is computed in memory first and written in **one atomic batch**
 * afterwards; nothing is written when any step fails. So a failed decrypt leaves the store
 * byte-identical (SECURITY.md B9, B14), and an encrypt returns ciphertext only after the
 * advanced sending chain is persisted, so a crash can never make a message key be used
 * twice (SECURITY.md D28).
 *
 * @module
 */
import {
  createAsyncLock,
  StorageError,
  CodecError,
  ProtocolError,
  UsageError,
  sameAddress,
  type Address,
  type DeviceId,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type StorageAdapter,
  type StorageKey,
  type StorageOp,
  type UserId,
  userId as toUserId,
  deviceId as toDeviceId,
} from '@deadbolt/spec';
import { toHex } from '../codec/bytes.js';
import type { ByteReader } from '../codec/reader.js';
import { createDefaultCryptoProvider } from '#crypto-default';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { pairwiseAdPrefix } from '../protocol/associated-data.js';
import { Capability, Limits, MessageType, PqPrekeyKind } from '../protocol/constants.js';
import { certificateAddress, encodeDeviceCertificate, signDeviceCertificate, verifyDeviceCertificate, type DeviceCertificate } from '../protocol/device-certificate.js';
import { deviceListEntry, decodeDeviceList, listsDevice, signDeviceList, verifyDeviceList, type DeviceList, type DeviceListEntry } from '../protocol/device-list.js';
import { parseLinkCode, sealLinkResponse } from '../protocol/device-link.js';
import { ratchetDecrypt, ratchetEncrypt, ratchetInitInitiator, ratchetInitResponder, skipCost, type RatchetLimits } from '../protocol/double-ratchet.js';
import { pad, unpad } from '../protocol/padding.js';
import { decodePrekeyBundle, encodePrekeyBundle, verifyPrekeyBundle, type PrekeyBundle } from '../protocol/prekey-bundle.js';
import { decodePrekeyMessage, encodePrekeyMessage, peekMessageType, type PrekeyMessage } from '../protocol/prekey-message.js';
import { signPqPrekey, signSignedPrekey, type OneTimePrekeyPublic, type PqPrekeyPublic, type SignedPrekeyPublic } from '../protocol/prekeys.js';
import { pqxdhInitiate, pqxdhRespond } from '../protocol/pqxdh.js';
import { decodeRatchetMessage, encodeRatchetMessage } from '../protocol/ratchet-message.js';
import { relayAuthSignatureInput } from '../protocol/relay-auth.js';
import { safetyNumber, type SafetyNumber } from '../protocol/safety-number.js';
import { RecordType, openRecord, sealRecord } from './record-envelope.js';
import { AT_REST_CHECK_KEY } from '../storage/encrypted-storage.js';
import { createDecodedCache } from './decoded-cache.js';
import { encodeSessionRecord, readSessionRecord, type SessionRecord, type SessionState } from './session-state.js';
import {
  encodeIdentityRecord,
  encodeOneTimePrekeyRecord,
  encodePqPrekeyRecord,
  encodePrekeyMetaRecord,
  encodeSignedPrekeyRecord,
  encodeTrustRecord,
  readIdentityRecord,
  readOneTimePrekeyRecord,
  readPqPrekeyRecord,
  readPrekeyMetaRecord,
  readSignedPrekeyRecord,
  readTrustRecord,
  storageKeys,
  type IdentityRecord,
  type PqPrekeyRecord,
  type PrekeyMetaRecord,
  type TrustRecord,
} from './stored-records.js';

/** Session limits (docs/protocol.md §8). Each may be lowered, never raised past its default. */
export interface SessionLimits extends RatchetLimits {
  /** Sessions kept per peer device (default 5). */
  readonly maxSessionsPerDevice: number;
}

/** Options of {@link createSessionManager}. */
export interface SessionManagerOptions {
  /** Where identity, prekeys, sessions and trust decisions are kept. */
  readonly storage: StorageAdapter;
  /** The crypto provider; defaults to the platform's fastest. */
  readonly crypto?: CryptoProvider;
  /** Tighter limits than the defaults. */
  readonly limits?: Partial<SessionLimits>;
  /** The clock, in milliseconds (for prekey timestamps). */
  readonly now?: () => number;
}

/** Everything a device uploads to the key directory (public halves only). */
export interface PublicPrekeys {
  readonly certificate: DeviceCertificate;
  readonly signedPrekey: SignedPrekeyPublic;
  readonly lastResortPqPrekey: PqPrekeyPublic;
  readonly oneTimePrekeys: readonly OneTimePrekeyPublic[];
  readonly pqPrekeys: readonly PqPrekeyPublic[];
}

/** Options of {@link SessionManager.generatePrekeys}. */
export interface GeneratePrekeysOptions {
  /** New X25519 one-time prekeys (default 0, at most 1,000 per call). */
  readonly oneTime?: number;
  /** New ML-KEM-768 one-time prekeys (default 0, at most 200 per call). */
  readonly pqOneTime?: number;
  /** Replace the signed prekey (the previous two are kept for messages in flight). */
  readonly rotateSigned?: boolean;
  /** Replace the last-resort PQ prekey (the previous one is kept). */
  readonly rotateLastResort?: boolean;
  /**
   * Extra storage operations committed in the same atomic batch as the new private
   * keys, given their public halves: the client records the pending upload here, so a
   * crash between generating and publishing re-publishes the same keys (SECURITY.md D25).
   */
  readonly extraOps?: (publicPrekeys: PublicPrekeys) => readonly StorageOp[];
}

/** The outcome of a successful decrypt. */
export interface DecryptResult {
  readonly plaintext: Uint8Array;
  /** The authenticated sender. */
  readonly sender: Address;
  /** The sender's account key, as certified in the session. */
  readonly senderAccountKey: Ed25519PublicKey;
  /**
   * The remote certificate of the session that decrypted the message: the authenticated
   * sender device (the group layer matches it against group states, docs/protocol.md §12.2.2).
   */
  readonly senderCertificate: DeviceCertificate;
  /** True if this message created a new session. */
  readonly sessionCreated: boolean;
  /**
   * True if the sender's account key differs from the trusted one: the message was
   * decrypted, but sending to this user is refused until {@link SessionManager.acceptIdentity}.
   */
  readonly identityChanged: boolean;
}

/** Options of {@link SessionManager.encrypt}. */
export interface EncryptOptions {
  /**
   * Encrypt only if the active session's remote certificate has this certificate's
   * address, account key, signing key and identity key (`NO_SESSION` otherwise): the group
   * layer sends only to the device a group state names (docs/protocol.md §12.2.2).
   */
  readonly remoteCertificate?: DeviceCertificate;
}

/** Options of {@link SessionManager.decrypt}. */
export interface DecryptOptions {
  /**
   * Extra storage operations to commit in the same atomic batch as the new session
   * state (for example the decrypted message and its dedup marker), so a crash never
   * separates them (SECURITY.md D24). It may read the store (it runs inside the
   * operation, under the storage lock), for example to check a dedup marker.
   */
  readonly extraOps?: (result: DecryptResult) => readonly StorageOp[] | Promise<readonly StorageOp[]>;
}

/** What this device knows about a contact's account key. */
export interface TrustInfo {
  readonly accountKey: Ed25519PublicKey;
  readonly verified: boolean;
  /** A different account key seen since, awaiting {@link SessionManager.acceptIdentity}. */
  readonly pendingKey?: Ed25519PublicKey;
}

/**
 * Pairwise sessions for one device. Create with {@link createSessionManager}.
 *
 * @example
 * ```ts
 * const alice = createSessionManager({ storage: createMemoryStorage() });
 * await alice.createIdentity({ userId: 'alice', deviceId: 'phone' });
 * await alice.processBundle(bobBundle);            // fetched from the key directory
 * const wire = await alice.encrypt(bob, utf8('hi'));
 * // ... on Bob's device:
 * const { plaintext } = await bobSessions.decrypt(aliceAddress, wire);
 * ```
 */
export interface SessionManager {
  /** The crypto provider in use. */
  readonly crypto: CryptoProvider;
  /** Creates this device's account and device identity. Fails if one exists. */
  createIdentity(params: { userId: string; deviceId: string }): Promise<DeviceCertificate>;
  /** This device's certificate. Throws `NOT_INITIALIZED` before {@link createIdentity}. */
  certificate(): Promise<DeviceCertificate>;
  /** Generates and persists prekeys, then returns their public halves for upload. */
  generatePrekeys(options?: GeneratePrekeysOptions): Promise<PublicPrekeys>;
  /** Verifies a peer's bundle and starts a session with it (PQXDH as initiator). */
  processBundle(bundle: PrekeyBundle | Uint8Array): Promise<Address>;
  /** Whether a session exists with a peer device. */
  hasSession(peer: Address): Promise<boolean>;
  /** The devices of `userId` this device has sessions with. */
  devices(userId: string): Promise<Address[]>;
  /** Encrypts for a peer device. The returned bytes are safe to send once it resolves. */
  encrypt(peer: Address, plaintext: Uint8Array, options?: EncryptOptions): Promise<Uint8Array>;
  /**
   * The remote certificate of the active session with each device of `userId` this device
   * has a session with (what the group layer puts in a group state for that user).
   */
  peerCertificates(userId: string): Promise<DeviceCertificate[]>;
  /** Decrypts a message the transport says came from `from`. */
  decrypt(from: Address, message: Uint8Array, options?: DecryptOptions): Promise<DecryptResult>;
  /** The trust decision for a contact, if any. */
  trust(userId: string): Promise<TrustInfo | undefined>;
  /**
   * Accepts a contact's new account key. `expectedKey` must be the pending key the user
   * was shown (for example through {@link safetyNumber} with `pending: true`): if the
   * pending key changed since, nothing is accepted and `UNTRUSTED_IDENTITY` is thrown.
   * The contact is then unverified, and sessions with the new key become active.
   */
  acceptIdentity(userId: string, expectedKey: Uint8Array): Promise<void>;
  /** Refuses a contact's pending key: forgets it and every session certified by it. */
  rejectIdentity(userId: string): Promise<void>;
  /** Marks a contact's current account key as verified (or not). */
  setVerified(userId: string, verified: boolean): Promise<void>;
  /**
   * The safety number with a contact, from the trusted account key, or with
   * `{ pending: true }` from the pending (changed) key, so the user can verify a change
   * before accepting it.
   */
  safetyNumber(userId: string, options?: { readonly pending?: boolean }): Promise<SafetyNumber>;
  /**
   * Signs a relay's authentication challenge with the device signing key
   * (docs/relay-protocol.md §2). The key never leaves the manager.
   */
  signRelayChallenge(relayId: string, challenge: Uint8Array): Promise<Uint8Array>;
  /** The newest authentic device list stored for a user (docs/protocol.md §3.3), if any. */
  deviceList(userId: string): Promise<DeviceList | undefined>;
  /**
   * Applies a user's device list (§3.3): verifies it under the user's account key (this
   * device's own for its own user; the trusted one for a contact, trusting it on first use
   * as a bundle would), ignores one older than the stored list, refuses a different one of
   * the same version (`DEVICE_LIST_CONFLICT`), then stores it and deletes the sessions with
   * every device it does not list. Returns the list now stored and the devices dropped.
   */
  applyDeviceList(userId: string, encoded: Uint8Array): Promise<AppliedDeviceList>;
  /**
   * Signs this user's next device list with the account key: the stored list's version
   * plus one (or 1), with `devices` (this device must hold the account secret, else
   * `NOT_INITIALIZED`). Nothing is stored: publish it, then {@link applyDeviceList} it.
   */
  signDeviceList(devices: readonly DeviceListEntry[]): Promise<DeviceList>;
  /**
   * Approves a link request (§3.4): signs the new device's certificate and the next device
   * list with it added, and seals the answer. Nothing is stored: the caller publishes the
   * list, applies it, and leaves `sealed` at the relay under the request's channel.
   */
  approveLink(code: string, options?: { readonly canManageDevices?: boolean }): Promise<LinkApproval>;
}

/** What {@link SessionManager.applyDeviceList} did. */
export interface AppliedDeviceList {
  /** The list stored now (the older stored one if the applied one was a rollback). */
  readonly list: DeviceList;
  /** Whether the applied list replaced the stored one. */
  readonly changed: boolean;
  /** Devices whose sessions were deleted because the new list does not name them. */
  readonly removed: readonly Address[];
}

/** What {@link SessionManager.approveLink} prepared. */
export interface LinkApproval {
  /** The new device. */
  readonly device: Address;
  /** The next device list, naming it. */
  readonly deviceList: DeviceList;
  /** Where to leave the answer (16 bytes). */
  readonly channel: Uint8Array;
  /** The sealed answer. */
  readonly sealed: Uint8Array;
}

const DEFAULT_LIMITS: SessionLimits = {
  maxForwardSkip: Limits.maxForwardSkip,
  maxSkippedKeys: Limits.maxSkippedKeys,
  maxSessionsPerDevice: Limits.maxSessionsPerDevice,
};

const SIGNED_PREKEYS_KEPT = 3;
/** Decoded session records kept in memory (see `recordCache`). */
const RECORD_CACHE_SIZE = 256;
const MAX_ONE_TIME_PER_CALL = 1000;
const MAX_PQ_PER_CALL = 200;

function checkLimits(limits: Partial<SessionLimits> | undefined): SessionLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const name of Object.keys(DEFAULT_LIMITS) as (keyof SessionLimits)[]) {
    const v = limits?.[name];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 1 || v > DEFAULT_LIMITS[name]) {
      throw new UsageError('INVALID_ARGUMENT', {
        message: `limits.${name} must be an integer from 1 to ${DEFAULT_LIMITS[name]}`,
        details: { field: `limits.${name}`, expected: `1..${DEFAULT_LIMITS[name]}` },
      });
    }
    out[name] = v;
  }
  return out;
}

function compareAddresses(a: Address, b: Address): number {
  if (a.userId !== b.userId) return a.userId < b.userId ? -1 : 1;
  if (a.deviceId !== b.deviceId) return a.deviceId < b.deviceId ? -1 : 1;
  return 0;
}

/** A copy of a certificate whose arrays the caller may keep (records are cached, never shared). */
function copyCertificate(c: DeviceCertificate): DeviceCertificate {
  return { ...c, accountKey: c.accountKey.slice() as Ed25519PublicKey, signingKey: c.signingKey.slice() as Ed25519PublicKey, identityKey: c.identityKey.slice() as DeviceCertificate['identityKey'], signature: c.signature.slice() };
}

/** Whether two certificates name the same device keys (the same device installation). */
function sameDevice(a: DeviceCertificate, b: DeviceCertificate): boolean {
  return equalBytes(a.identityKey, b.identityKey) && equalBytes(a.signingKey, b.signingKey);
}

/** Whether `s` was initiated by whichever of the two addresses sorts first (§7.3). */
function initiatedByLower(me: IdentityRecord, peer: Address, s: SessionState): boolean {
  const weAreLower = compareAddresses(certificateAddress(me.certificate), peer) < 0;
  return (s.role === 'initiator') === weAreLower;
}

/**
 * Sesame-style promotion (Sesame §3.2, docs/protocol.md §7.3): a session that decrypts a
 * message becomes active, unless that would trade the session the lower address
 * initiated for one the higher address initiated with the same device (both sides keep
 * the lower address's session, so they converge), or trade a trusted key for an
 * untrusted one.
 */
function shouldPromote(
  me: IdentityRecord,
  peer: Address,
  active: SessionState,
  candidate: SessionState,
  trusted: (s: SessionState) => boolean,
): boolean {
  if (!trusted(candidate)) return false;
  if (!trusted(active)) return true;
  if (sameDevice(active.remoteCertificate, candidate.remoteCertificate) && initiatedByLower(me, peer, active) && !initiatedByLower(me, peer, candidate)) return false;
  return true;
}

function untrusted(userId: string): UsageError<'UNTRUSTED_IDENTITY'> {
  return new UsageError('UNTRUSTED_IDENTITY', {
    message: `the identity of ${userId} changed and must be accepted before sending`,
    details: { userId },
  });
}

/**
 * Creates a session manager over a storage adapter.
 *
 * @example
 * ```ts
 * import { createSessionManager } from '@deadbolt/core';
 * import { createMemoryStorage } from '@deadbolt/storage-memory';
 *
 * const sessions = createSessionManager({ storage: createMemoryStorage() });
 * await sessions.createIdentity({ userId: 'alice', deviceId: 'laptop' });
 * const upload = await sessions.generatePrekeys({ oneTime: 100, pqOneTime: 20 });
 * ```
 */
export function createSessionManager(options: SessionManagerOptions): SessionManager {
  const storage = options.storage;
  const crypto = options.crypto ?? createDefaultCryptoProvider();
  const limits = checkLimits(options.limits);
  const now = options.now ?? Date.now;
  // Every operation runs through one in-process queue, so two decrypts never read the same
  // session state and both write a successor (forking the ratchet), and two initial
  // messages never both consume one one-time prekey; across tabs and processes the
  // storage's own lock does the same (SECURITY.md D26).
  const queue = createAsyncLock();
  let identityCache: IdentityRecord | undefined;

  async function load<T>(key: StorageKey, type: number, read: (r: ByteReader) => T): Promise<T | undefined> {
    const bytes = await storage.get(key);
    return bytes === undefined ? undefined : openRecord(crypto, key, type, bytes, read);
  }

  function put(key: StorageKey, type: number, body: Uint8Array): StorageOp {
    return { type: 'put', key, value: sealRecord(crypto, type, body) };
  }

  /**
   * A store sealed at rest (docs/protocol.md §7.5) holds the key-check entry, which the
   * encryption wrapper hides: seeing it means the store is used without its key, and
   * neither reading its sealed values as records nor writing plaintext into it is allowed.
   */
  let rawChecked = false;
  async function refuseSealedStore(): Promise<void> {
    if (rawChecked) return;
    if ((await storage.get(AT_REST_CHECK_KEY)) !== undefined) {
      throw new StorageError('STORAGE_ENCRYPTION', { message: 'this store is encrypted at rest: open it with createEncryptedStorage and its key', details: { reason: 'store-encrypted' } });
    }
    rawChecked = true;
  }

  async function identity(): Promise<IdentityRecord> {
    if (identityCache) return identityCache;
    await refuseSealedStore();
    const found = await load(storageKeys.identity(), RecordType.IDENTITY, readIdentityRecord);
    if (!found) throw new UsageError('NOT_INITIALIZED', { message: 'no identity: call createIdentity first', details: { what: 'identity' } });
    identityCache = found;
    return found;
  }

  /**
   * Decoded session records by storage key (decoded-cache.ts). Reusing a record also keeps
   * the ratchet keys' arrays, so the provider's imported key objects stay valid between
   * messages.
   */
  const recordCache = createDecodedCache<SessionRecord>(RECORD_CACHE_SIZE);
  const pendingRecords = new WeakMap<Uint8Array, SessionRecord>();
  const loadSessions = async (peer: Address): Promise<SessionRecord | undefined> => {
    const key = storageKeys.session(peer);
    return recordCache.read(JSON.stringify(key), await storage.get(key), (bytes) => openRecord(crypto, key, RecordType.SESSION, bytes, readSessionRecord));
  };
  const putSessions = (peer: Address, record: SessionRecord): StorageOp => {
    const op = put(storageKeys.session(peer), RecordType.SESSION, encodeSessionRecord(record));
    if (op.type === 'put') pendingRecords.set(op.value, record);
    return op;
  };
  /** Writes one atomic batch; only once it succeeded do written session records enter the cache. */
  const commit = async (ops: readonly StorageOp[]): Promise<void> => {
    await storage.batch(ops);
    for (const op of ops) {
      const id = JSON.stringify(op.key);
      if (op.type === 'delete') recordCache.drop(id);
      else {
        const record = pendingRecords.get(op.value);
        if (record) recordCache.keep(id, op.value, record);
      }
    }
  };

  /** AD prefixes per remote certificate object (docs/protocol.md §6.3), both directions. */
  const adCache = new WeakMap<DeviceCertificate, { readonly send: Uint8Array; readonly receive: Uint8Array }>();
  const adFor = (me: IdentityRecord, remote: DeviceCertificate): { readonly send: Uint8Array; readonly receive: Uint8Array } => {
    let ad = adCache.get(remote);
    if (!ad) adCache.set(remote, (ad = { send: pairwiseAdPrefix(me.certificate, remote), receive: pairwiseAdPrefix(remote, me.certificate) }));
    return ad;
  };
  /**
   * Decoded trust records by user, with the bytes they came from: every encrypt and
   * decrypt reads the peer's trust (decoded-cache.ts, as session records). Records are
   * never changed in place; `trust()` hands applications copies.
   */
  const trustCache = createDecodedCache<TrustRecord>(RECORD_CACHE_SIZE);
  const loadTrust = async (userId: string): Promise<TrustRecord | undefined> => {
    const key = storageKeys.trust(userId);
    return trustCache.read(userId, await storage.get(key), (bytes) => openRecord(crypto, key, RecordType.TRUST, bytes, readTrustRecord));
  };
  const putTrust = (userId: string, record: TrustRecord): StorageOp =>
    put(storageKeys.trust(userId), RecordType.TRUST, encodeTrustRecord(record));
  // Device lists (§3.3): stored as encoded and signed; the record checksum guards the
  // store, the signature was checked when the list was applied.
  const putDeviceList = (userId: string, list: DeviceList): StorageOp => put(storageKeys.deviceList(userId), RecordType.DEVICE_LIST, list.encoded);
  const loadDeviceList = async (userId: string): Promise<DeviceList | undefined> =>
    load(storageKeys.deviceList(userId), RecordType.DEVICE_LIST, (r) => decodeDeviceList(r.fixed('deviceList', r.remaining)));
  /**
   * `DEVICE_NOT_CURRENT` unless the user has no list or its newest list names this device
   * (§3.3). A certificate under another account key than the stored list's is a question
   * of trust (§7.4: a pending key, flagged messages), not of the device list: it is left
   * to the trust checks, which every caller makes first.
   */
  const assertCurrent = async (certificate: DeviceCertificate): Promise<void> => {
    const list = await loadDeviceList(certificate.userId);
    if (list !== undefined && equalBytes(list.accountKey, certificate.accountKey) && !listsDevice(list, certificate)) {
      throw new ProtocolError('DEVICE_NOT_CURRENT', {
        message: 'the device is not in its user\'s device list',
        details: { userId: certificate.userId, deviceId: certificate.deviceId },
      });
    }
  };
  const loadMeta = async (): Promise<PrekeyMetaRecord> =>
    (await load(storageKeys.prekeyMeta(), RecordType.PREKEY_META, readPrekeyMetaRecord)) ?? {
      nextId: 1,
      currentSignedId: 0,
      currentLastResortId: 0,
      previousLastResortId: 0,
    };

  /**
   * Trust on first use, then pinning (docs/protocol.md §7.4). Returns the trust record to
   * write (if any) and whether the key differs from the trusted one.
   */
  function evaluateTrust(
    me: IdentityRecord,
    userId: string,
    current: TrustRecord | undefined,
    accountKey: Ed25519PublicKey,
  ): { write?: TrustRecord; changed: boolean } {
    // This user's own devices are anchored to this device's own account key, never to
    // trust on first use: a device certified by any other key is not ours.
    if (userId === me.certificate.userId) {
      if (equalBytes(accountKey, me.certificate.accountKey)) return { changed: false };
      throw new ProtocolError('UNTRUSTED_IDENTITY', { message: 'a device of this user certified by another account key', details: { userId } });
    }
    if (!current) return { write: { accountKey, verified: false }, changed: false };
    if (equalBytes(current.accountKey, accountKey)) return { changed: false };
    if (current.pendingKey && equalBytes(current.pendingKey, accountKey)) return { changed: true };
    return { write: { ...current, pendingKey: accountKey }, changed: true };
  }

  async function createIdentity(params: { userId: string; deviceId: string }): Promise<DeviceCertificate> {
    const user: UserId = toUserId(params.userId);
    const device: DeviceId = toDeviceId(params.deviceId);
    await refuseSealedStore();
    if (await storage.get(storageKeys.identity())) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'an identity already exists', details: { field: 'identity', expected: 'none yet' } });
    }
    const account = await crypto.ed25519GenerateKeyPair();
    const signing = await crypto.ed25519GenerateKeyPair();
    const dh = await crypto.x25519GenerateKeyPair();
    const certificate = await signDeviceCertificate(crypto, account.secretKey as Ed25519SecretKey, {
      userId: user,
      deviceId: device,
      accountKey: account.publicKey,
      signingKey: signing.publicKey,
      identityKey: dh.publicKey,
      capabilities: Capability.PQXDH_MLKEM768,
    });
    const record: IdentityRecord = { accountSecret: account.secretKey, signingSecret: signing.secretKey, identitySecret: dh.secretKey, certificate };
    // The user's first device list: this device alone (§3.3). Published by the client.
    const list = await signDeviceList(crypto, account.secretKey as Ed25519SecretKey, {
      userId: user,
      accountKey: account.publicKey,
      listVersion: 1,
      issuedAt: now(),
      devices: [deviceListEntry(certificate)],
    });
    await commit([put(storageKeys.identity(), RecordType.IDENTITY, encodeIdentityRecord(record)), putDeviceList(user, list)]);
    identityCache = record;
    // A copy: the identity's own object stays core's (its encoding is memoised, §3.2).
    return copyCertificate(certificate);
  }

  async function generatePrekeys(opts: GeneratePrekeysOptions = {}): Promise<PublicPrekeys> {
    const oneTime = opts.oneTime ?? 0;
    const pqOneTime = opts.pqOneTime ?? 0;
    for (const [field, v, max] of [['oneTime', oneTime, MAX_ONE_TIME_PER_CALL], ['pqOneTime', pqOneTime, MAX_PQ_PER_CALL]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > max) {
        throw new UsageError('INVALID_ARGUMENT', { message: `${field} must be 0..${max}`, details: { field, expected: `0..${max}` } });
      }
    }
    const me = await identity();
    const meta = await loadMeta();
    let nextId = meta.nextId;
    const takeId = (): number => {
      if (nextId >= 0xffffffff) throw new ProtocolError('LIMIT_EXCEEDED', { message: 'prekey ids exhausted', details: { limit: 'prekeyId', max: 0xffffffff } });
      return nextId++;
    };
    const ops: StorageOp[] = [];
    const t = now();

    // Signed prekey: create or rotate, keeping the last few for messages in flight.
    let signed = meta.currentSignedId ? await load(storageKeys.signedPrekey(meta.currentSignedId), RecordType.SIGNED_PREKEY, readSignedPrekeyRecord) : undefined;
    if (!signed || opts.rotateSigned) {
      const kp = await crypto.x25519GenerateKeyPair();
      const pub = await signSignedPrekey(crypto, me.signingSecret, takeId(), kp.publicKey);
      signed = { id: pub.id, createdAt: t, publicKey: kp.publicKey, secretKey: kp.secretKey, signature: pub.signature };
      ops.push(put(storageKeys.signedPrekey(signed.id), RecordType.SIGNED_PREKEY, encodeSignedPrekeyRecord(signed)));
      const existing = (await storage.range(storageKeys.signedPrekeys())).map((e) => Number(e.key[2])).sort((a, b) => b - a);
      for (const id of existing.slice(SIGNED_PREKEYS_KEPT - 1)) ops.push({ type: 'delete', key: storageKeys.signedPrekey(id) });
    }

    // Last-resort PQ prekey: create or rotate, keeping the previous one; delete older ones
    // with their replay markers.
    let lastResort = meta.currentLastResortId ? await load(storageKeys.pqPrekey(meta.currentLastResortId), RecordType.PQ_PREKEY, readPqPrekeyRecord) : undefined;
    let previousLastResortId = meta.previousLastResortId;
    if (!lastResort || opts.rotateLastResort) {
      const kp = crypto.mlkem768GenerateKeyPair();
      const pub = await signPqPrekey(crypto, me.signingSecret, takeId(), PqPrekeyKind.LAST_RESORT, kp.publicKey);
      lastResort = { id: pub.id, kind: PqPrekeyKind.LAST_RESORT, createdAt: t, uses: 0, publicKey: kp.publicKey, secretKey: kp.secretKey, signature: pub.signature };
      ops.push(put(storageKeys.pqPrekey(lastResort.id), RecordType.PQ_PREKEY, encodePqPrekeyRecord(lastResort)));
      const stale = meta.previousLastResortId;
      if (stale) {
        ops.push({ type: 'delete', key: storageKeys.pqPrekey(stale) });
        for (const e of await storage.range(storageKeys.replayMarkers(stale), { limit: Limits.maxLastResortUses })) ops.push({ type: 'delete', key: e.key });
      }
      previousLastResortId = meta.currentLastResortId;
    }

    const oneTimePrekeys: OneTimePrekeyPublic[] = [];
    for (let i = 0; i < oneTime; i++) {
      const kp = await crypto.x25519GenerateKeyPair();
      const id = takeId();
      ops.push(put(storageKeys.oneTimePrekey(id), RecordType.ONE_TIME_PREKEY, encodeOneTimePrekeyRecord({ id, ...kp })));
      oneTimePrekeys.push({ id, publicKey: kp.publicKey });
    }
    const pqPrekeys: PqPrekeyPublic[] = [];
    for (let i = 0; i < pqOneTime; i++) {
      const kp = crypto.mlkem768GenerateKeyPair();
      const pub = await signPqPrekey(crypto, me.signingSecret, takeId(), PqPrekeyKind.ONE_TIME, kp.publicKey);
      const rec: PqPrekeyRecord = { id: pub.id, kind: PqPrekeyKind.ONE_TIME, createdAt: t, uses: 0, publicKey: kp.publicKey, secretKey: kp.secretKey, signature: pub.signature };
      ops.push(put(storageKeys.pqPrekey(rec.id), RecordType.PQ_PREKEY, encodePqPrekeyRecord(rec)));
      pqPrekeys.push(pub);
    }
    ops.push(
      put(
        storageKeys.prekeyMeta(),
        RecordType.PREKEY_META,
        encodePrekeyMetaRecord({ nextId, currentSignedId: signed.id, currentLastResortId: lastResort.id, previousLastResortId }),
      ),
    );
    const published: PublicPrekeys = {
      certificate: me.certificate,
      signedPrekey: { id: signed.id, publicKey: signed.publicKey, signature: signed.signature },
      lastResortPqPrekey: { id: lastResort.id, kind: lastResort.kind, publicKey: lastResort.publicKey, signature: lastResort.signature },
      oneTimePrekeys,
      pqPrekeys,
    };
    // Private halves are persisted before anything is returned for upload (SECURITY.md D25).
    await commit([...ops, ...(opts.extraOps?.(published) ?? [])]);
    return published;
  }

  async function processBundle(input: PrekeyBundle | Uint8Array): Promise<Address> {
    // Decoded from bytes either way: nothing the caller holds is kept (records are cached).
    const bundle = decodePrekeyBundle(input instanceof Uint8Array ? input : encodePrekeyBundle(input));
    const me = await identity();
    await verifyPrekeyBundle(crypto, bundle);
    const cert = bundle.certificate;
    const peer = certificateAddress(cert);
    if (sameAddress(peer, certificateAddress(me.certificate))) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'cannot start a session with this device itself', details: { field: 'bundle', expected: 'another device' } });
    }
    const trust = evaluateTrust(me, cert.userId, await loadTrust(cert.userId), cert.accountKey);
    if (trust.changed) {
      // The one failing call that writes: the changed key is remembered as pending so the
      // application can show it (docs/protocol.md §7.4). Nothing else is stored.
      if (trust.write) await commit([putTrust(cert.userId, trust.write)]);
      throw untrusted(cert.userId);
    }
    await assertCurrent(cert); // a bundle for a revoked or unlisted device is never used (§3.3)
    const pq = bundle.pqPrekey as PqPrekeyPublic; // verifyPrekeyBundle refused bundles without it
    const init = await pqxdhInitiate(
      crypto,
      { publicKey: me.certificate.identityKey, secretKey: me.identitySecret },
      {
        identityKey: cert.identityKey,
        signedPrekey: bundle.signedPrekey.publicKey,
        pqPrekey: pq.publicKey,
        ...(bundle.oneTimePrekey ? { oneTimePrekey: bundle.oneTimePrekey.publicKey } : {}),
      },
    );
    const ratchet = await ratchetInitInitiator(crypto, init.sharedKey, bundle.signedPrekey.publicKey);
    const session: SessionState = {
      baseKey: init.baseKey.publicKey,
      role: 'initiator',
      confirmed: false,
      remoteCertificate: cert,
      ratchet,
      pending: {
        signedPrekeyId: bundle.signedPrekey.id,
        ...(bundle.oneTimePrekey ? { oneTimePrekeyId: bundle.oneTimePrekey.id } : {}),
        pqId: pq.id,
        pqKind: pq.kind,
        kemCiphertext: init.kemCiphertext,
      },
    };
    const existing = await loadSessions(peer);
    const sessions = [session, ...(existing?.sessions ?? [])].slice(0, limits.maxSessionsPerDevice);
    const ops = [putSessions(peer, { sessions })];
    if (trust.write) ops.push(putTrust(cert.userId, trust.write));
    await commit(ops);
    return peer;
  }

  async function encrypt(peer: Address, plaintext: Uint8Array, options?: EncryptOptions): Promise<Uint8Array> {
    if (!(plaintext instanceof Uint8Array)) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'plaintext must be a Uint8Array', details: { field: 'plaintext', expected: 'Uint8Array' } });
    }
    const me = await identity();
    const record = await loadSessions(peer);
    const active = record?.sessions[0];
    if (!record || !active) throw new UsageError('NO_SESSION', { message: 'no session with this device', details: { userId: peer.userId, deviceId: peer.deviceId } });
    const expected = options?.remoteCertificate;
    if (expected !== undefined && !(sameAddress(certificateAddress(expected), peer) && equalBytes(expected.accountKey, active.remoteCertificate.accountKey) && sameDevice(expected, active.remoteCertificate))) {
      throw new UsageError('NO_SESSION', { message: 'no session with this device under the expected keys', details: { userId: peer.userId, deviceId: peer.deviceId } });
    }
    // Own devices are anchored to our own account key; contacts to the trusted key, with no change pending.
    const anchor = peer.userId === me.certificate.userId ? me.certificate.accountKey : await loadTrust(peer.userId).then((t) => (t?.pendingKey ? undefined : t?.accountKey));
    if (!anchor || !equalBytes(anchor, active.remoteCertificate.accountKey)) throw untrusted(peer.userId);

    const out = ratchetEncrypt(crypto, active.ratchet, pad(plaintext), adFor(me, active.remoteCertificate).send);
    let wire = encodeRatchetMessage(out.headerBytes, out.body);
    if (active.pending) {
      const p = active.pending;
      const initial: PrekeyMessage = {
        certificate: me.certificate,
        signedPrekeyId: p.signedPrekeyId,
        ...(p.oneTimePrekeyId !== undefined ? { oneTimePrekeyId: p.oneTimePrekeyId } : {}),
        pq: { id: p.pqId, kind: p.pqKind, ciphertext: p.kemCiphertext },
        baseKey: active.baseKey,
        message: wire,
      };
      wire = encodePrekeyMessage(initial);
    }
    const sessions = [{ ...active, ratchet: out.state }, ...record.sessions.slice(1)];
    // Persist the advanced chain before the ciphertext can leave (SECURITY.md D28).
    await commit([putSessions(peer, { sessions })]);
    return wire;
  }

  /** Tries a ratchet message on each session with the peer, active first. */
  async function decryptOnSessions(
    me: IdentityRecord,
    record: SessionRecord,
    wire: Uint8Array,
  ): Promise<{ index: number; session: SessionState; padded: Uint8Array }> {
    const message = decodeRatchetMessage(wire);
    let firstError: unknown;
    let duplicate: unknown;
    // One derivation budget for the message across every session tried (docs/protocol.md
    // §6.5): a forged header cannot make each of several sessions skip the maximum.
    let budget = limits.maxForwardSkip;
    // Cheapest first: sessions that already know the header's chain, then the rest in order.
    const order = record.sessions
      .map((s, index) => ({ index, cost: skipCost(s.ratchet, message) }))
      .sort((a, b) => Number(b.cost === 0) - Number(a.cost === 0) || a.index - b.index);
    for (const { index, cost } of order) {
      const s = record.sessions[index] as SessionState;
      if (cost > budget) {
        firstError ??= new ProtocolError('LIMIT_EXCEEDED', { message: 'message number too far ahead', details: { limit: 'maxForwardSkip', max: limits.maxForwardSkip } });
        continue;
      }
      budget -= cost;
      try {
        const out = await ratchetDecrypt(crypto, s.ratchet, message, adFor(me, s.remoteCertificate).receive, limits);
        // A reply on a session confirms it: the peer holds it, so stop sending the initial message.
        const { pending: _dropped, ...rest } = s;
        return { index, session: { ...rest, ratchet: out.state, confirmed: true }, padded: out.paddedPlaintext };
      } catch (e) {
        if (e instanceof ProtocolError && e.code === 'DUPLICATE_MESSAGE') duplicate ??= e;
        firstError ??= e;
      }
    }
    throw duplicate ?? firstError;
  }

  async function decryptRatchet(me: IdentityRecord, from: Address, wire: Uint8Array, options: DecryptOptions | undefined): Promise<DecryptResult> {
    const record = await loadSessions(from);
    if (!record) throw new ProtocolError('UNKNOWN_KEY', { message: 'no session with the sender', details: { what: 'session' } });
    const { index, session, padded } = await decryptOnSessions(me, record, wire);
    const plaintext = unpad(padded);
    const trust = from.userId === me.certificate.userId ? undefined : await loadTrust(from.userId);
    const trusted = (s: SessionState): boolean =>
      from.userId === me.certificate.userId ? equalBytes(s.remoteCertificate.accountKey, me.certificate.accountKey) : trust !== undefined && equalBytes(s.remoteCertificate.accountKey, trust.accountKey);
    const sessions = record.sessions.slice();
    sessions[index] = session;
    const active = sessions[0] as SessionState;
    if (index > 0 && shouldPromote(me, from, active, session, trusted)) {
      sessions.splice(index, 1);
      sessions.unshift(session);
    }
    const result: DecryptResult = {
      plaintext,
      sender: from,
      senderAccountKey: session.remoteCertificate.accountKey.slice() as Ed25519PublicKey,
      senderCertificate: copyCertificate(session.remoteCertificate),
      sessionCreated: false,
      // Every message certified by a key other than the trusted one is flagged, not just the first.
      identityChanged: !trusted(session),
    };
    const ops: StorageOp[] = [putSessions(from, { sessions })];
    // A message on an untrusted session makes its key the pending one again, so the
    // application is always asked about the key it is actually hearing from.
    if (result.identityChanged && trust && !(trust.pendingKey && equalBytes(trust.pendingKey, session.remoteCertificate.accountKey))) {
      ops.push(putTrust(from.userId, { ...trust, pendingKey: session.remoteCertificate.accountKey }));
    }
    await commit([...ops, ...((await options?.extraOps?.(result)) ?? [])]);
    return result;
  }

  async function decryptPrekey(me: IdentityRecord, from: Address, wire: Uint8Array, options: DecryptOptions | undefined): Promise<DecryptResult> {
    const msg = decodePrekeyMessage(wire);
    const cert = msg.certificate;
    // The sender the transport claims must be the one the certificate names (SECURITY.md B11).
    if (!sameAddress(certificateAddress(cert), from)) throw new ProtocolError('SENDER_MISMATCH', { message: 'claimed sender differs from the certified sender' });
    await verifyDeviceCertificate(crypto, cert);
    if (!msg.pq) throw new ProtocolError('DOWNGRADE', { message: 'initial message without its PQ part', details: { what: 'pq ciphertext' } });

    // Checked before any key agreement: a device of our own user certified by another
    // account key is refused outright (docs/protocol.md §7.4), at no crypto cost.
    const trust = evaluateTrust(me, cert.userId, await loadTrust(cert.userId), cert.accountKey);
    const record = await loadSessions(from);
    const sameSession = record?.sessions.findIndex((s) => equalBytes(s.baseKey, msg.baseKey)) ?? -1;
    if (record && sameSession >= 0) {
      // A repeat of the initial message of a session we already have: treat its inner
      // message as an ordinary ratchet message of that session (duplicates are caught there).
      const known = record.sessions[sameSession] as SessionState;
      if (!equalBytes(known.remoteCertificate.signature, cert.signature)) throw new ProtocolError('SENDER_MISMATCH', { message: 'certificate differs from the session' });
      return decryptRatchet(me, from, msg.message, options);
    }

    // A revoked or unlisted device starts no session (§3.3), before any key is touched.
    await assertCurrent(cert);
    // A new session: load every private key the message names (SECURITY.md B10).
    const spk = await load(storageKeys.signedPrekey(msg.signedPrekeyId), RecordType.SIGNED_PREKEY, readSignedPrekeyRecord);
    if (!spk) throw new ProtocolError('UNKNOWN_KEY', { message: 'unknown signed prekey', details: { what: 'signed prekey' } });
    const opk = msg.oneTimePrekeyId === undefined ? undefined : await load(storageKeys.oneTimePrekey(msg.oneTimePrekeyId), RecordType.ONE_TIME_PREKEY, readOneTimePrekeyRecord);
    if (msg.oneTimePrekeyId !== undefined && !opk) throw new ProtocolError('UNKNOWN_KEY', { message: 'unknown or used one-time prekey', details: { what: 'one-time prekey' } });
    const pq = await load(storageKeys.pqPrekey(msg.pq.id), RecordType.PQ_PREKEY, readPqPrekeyRecord);
    if (!pq || pq.kind !== msg.pq.kind) throw new ProtocolError('UNKNOWN_KEY', { message: 'unknown or used PQ prekey', details: { what: 'pq prekey' } });
    const baseKeyHex = toHex(msg.baseKey);
    if (pq.kind === PqPrekeyKind.LAST_RESORT) {
      // Without a one-time key nothing is consumed, so remember the base key to refuse replays.
      if (await storage.get(storageKeys.replayMarker(pq.id, baseKeyHex))) throw new ProtocolError('DUPLICATE_MESSAGE');
      if (pq.uses >= Limits.maxLastResortUses) {
        throw new ProtocolError('LIMIT_EXCEEDED', { message: 'last-resort prekey must be rotated', details: { limit: 'maxLastResortUses', max: Limits.maxLastResortUses } });
      }
    }

    const sk = await pqxdhRespond(
      crypto,
      {
        identityKey: me.identitySecret,
        signedPrekey: spk.secretKey,
        pqPrekey: pq.secretKey,
        ...(opk ? { oneTimePrekey: opk.secretKey } : {}),
      },
      cert.identityKey,
      msg.baseKey,
      msg.pq.ciphertext,
    );
    const fresh: SessionState = {
      baseKey: msg.baseKey,
      role: 'responder',
      confirmed: true,
      remoteCertificate: cert,
      ratchet: ratchetInitResponder(sk, { publicKey: spk.publicKey, secretKey: spk.secretKey }),
    };
    const { session, padded } = await decryptOnSessions(me, { sessions: [fresh] }, msg.message);
    const plaintext = unpad(padded);

    // Which session becomes active (docs/protocol.md §7.3): a session certified by a key
    // that is not trusted never displaces a trusted one; the same peer device starting a
    // second session is simultaneous initiation, resolved by address order; a peer with
    // new device keys (a re-install) gets the new session.
    const old = record?.sessions ?? [];
    const active = old[0];
    const behind =
      active !== undefined &&
      (trust.changed || (sameDevice(active.remoteCertificate, cert) && initiatedByLower(me, from, active)));
    const sessions = (behind ? [active, session, ...old.slice(1)] : [session, ...old]).slice(0, limits.maxSessionsPerDevice);

    const result: DecryptResult = {
      plaintext,
      sender: from,
      senderAccountKey: cert.accountKey.slice() as Ed25519PublicKey,
      senderCertificate: copyCertificate(cert),
      sessionCreated: true,
      identityChanged: trust.changed,
    };
    const ops: StorageOp[] = [putSessions(from, { sessions })];
    if (opk) ops.push({ type: 'delete', key: storageKeys.oneTimePrekey(opk.id) });
    if (pq.kind === PqPrekeyKind.ONE_TIME) ops.push({ type: 'delete', key: storageKeys.pqPrekey(pq.id) });
    else {
      ops.push({ type: 'put', key: storageKeys.replayMarker(pq.id, baseKeyHex), value: sealRecord(crypto, RecordType.REPLAY_MARKER, new Uint8Array(0)) });
      ops.push(put(storageKeys.pqPrekey(pq.id), RecordType.PQ_PREKEY, encodePqPrekeyRecord({ ...pq, uses: pq.uses + 1 })));
    }
    if (trust.write) ops.push(putTrust(cert.userId, trust.write));
    ops.push(...((await options?.extraOps?.(result)) ?? []));
    await commit(ops);
    return result;
  }

  async function decrypt(from: Address, wire: Uint8Array, options?: DecryptOptions): Promise<DecryptResult> {
    const me = await identity();
    const type = wire instanceof Uint8Array ? peekMessageType(wire) : undefined;
    if (type === MessageType.PREKEY) return decryptPrekey(me, from, wire, options);
    if (type === MessageType.RATCHET) return decryptRatchet(me, from, wire, options);
    // Group ciphertexts and anything else are refused before any crypto (SECURITY.md C22).
    throw new CodecError({ structure: 'PairwiseMessage', field: 'type', offset: 1, reason: 'not a pairwise message type' });
  }

  async function safetyNumberWith(userId: string, opts: { readonly pending?: boolean } = {}): Promise<SafetyNumber> {
    const me = await identity();
    const trust = await loadTrust(userId);
    const key = opts.pending ? trust?.pendingKey : trust?.accountKey;
    if (!key) throw new UsageError('NOT_INITIALIZED', { message: opts.pending ? 'no pending key for this contact' : 'no key known for this contact', details: { what: 'contact key' } });
    return safetyNumber(crypto, { userId: me.certificate.userId, accountKey: me.certificate.accountKey }, { userId, accountKey: key });
  }

  /** Rewrites every session record of `userId`: keeps sessions `keep` accepts, those with `first` key first. */
  async function reorderSessions(userId: string, keep: (s: SessionState) => boolean, first: Uint8Array): Promise<StorageOp[]> {
    const ops: StorageOp[] = [];
    for (const entry of await storage.range(storageKeys.sessionsOf(userId), { limit: 10_000 })) {
      const peer: Address = { userId: toUserId(userId), deviceId: toDeviceId(entry.key[2] as string) };
      const record = openRecord(crypto, entry.key, RecordType.SESSION, entry.value, readSessionRecord);
      const kept = record.sessions.filter(keep);
      const ordered = [...kept.filter((s) => equalBytes(s.remoteCertificate.accountKey, first)), ...kept.filter((s) => !equalBytes(s.remoteCertificate.accountKey, first))];
      ops.push(ordered.length > 0 ? putSessions(peer, { sessions: ordered }) : { type: 'delete', key: entry.key });
    }
    return ops;
  }

  async function acceptIdentity(userId: string, expectedKey: Uint8Array): Promise<void> {
    const t = await loadTrust(userId);
    if (!t?.pendingKey || !(expectedKey instanceof Uint8Array) || !equalBytes(t.pendingKey, expectedKey)) {
      // The key the user was shown is no longer the pending one: accept nothing.
      throw untrusted(userId);
    }
    const accepted = t.pendingKey;
    // Sessions certified by any other key (the old one, or a forged one) are dropped.
    await commit([
      putTrust(userId, { accountKey: accepted, verified: false }),
      ...(await reorderSessions(userId, (s) => equalBytes(s.remoteCertificate.accountKey, accepted), accepted)),
    ]);
  }

  async function rejectIdentity(userId: string): Promise<void> {
    const t = await loadTrust(userId);
    if (!t) return;
    // Always clean: sessions certified by an untrusted key are deleted even when no key
    // is pending any more (a forged session may outlive the pending key it raised).
    const { pendingKey: _rejected, ...rest } = t;
    const ops = await reorderSessions(userId, (s) => equalBytes(s.remoteCertificate.accountKey, t.accountKey), t.accountKey);
    await commit([putTrust(userId, rest), ...ops]);
  }

  async function applyDeviceList(userId: string, encoded: Uint8Array): Promise<AppliedDeviceList> {
    const user = toUserId(userId);
    const list = decodeDeviceList(encoded);
    if (list.userId !== user) throw new ProtocolError('SENDER_MISMATCH', { message: 'a device list names another user' });
    await verifyDeviceList(crypto, list);
    const me = await identity();
    const trust = evaluateTrust(me, user, await loadTrust(user), list.accountKey);
    if (trust.changed) {
      // As for a bundle (§7.4): a list under another key raises it as pending, nothing else.
      if (trust.write) await commit([putTrust(user, trust.write)]);
      throw untrusted(user);
    }
    // A stored list under another account key belongs to a key this device no longer
    // trusts (the contact's new key was accepted, §7.4): it governs nothing any more, and
    // versions restart with the new key.
    const previous = await loadDeviceList(user);
    const stored = previous !== undefined && equalBytes(previous.accountKey, list.accountKey) ? previous : undefined;
    if (stored !== undefined && list.listVersion < stored.listVersion) return { list: stored, changed: false, removed: [] }; // a rollback
    if (stored !== undefined && list.listVersion === stored.listVersion) {
      if (equalBytes(stored.encoded, list.encoded)) return { list: stored, changed: false, removed: [] };
      throw new ProtocolError('DEVICE_LIST_CONFLICT', { message: 'two different device lists with one version', details: { userId: user, listVersion: list.listVersion } });
    }
    // Sessions with devices the list does not name, or names with other keys, go.
    const ops: StorageOp[] = [putDeviceList(user, list)];
    if (trust.write) ops.push(putTrust(user, trust.write));
    const removed: Address[] = [];
    for (const entry of await storage.range(storageKeys.sessionsOf(user), { limit: 10_000 })) {
      const peer: Address = { userId: user, deviceId: toDeviceId(entry.key[2] as string) };
      const record = openRecord(crypto, entry.key, RecordType.SESSION, entry.value, readSessionRecord);
      const kept = record.sessions.filter((session) => listsDevice(list, session.remoteCertificate));
      if (kept.length === record.sessions.length) continue;
      if (kept.length === 0) {
        ops.push({ type: 'delete', key: storageKeys.session(peer) });
        removed.push(peer);
      } else ops.push(putSessions(peer, { sessions: kept }));
    }
    await commit(ops);
    return { list, changed: true, removed };
  }

  const requireAccountSecret = (me: IdentityRecord): Ed25519SecretKey => {
    if (me.accountSecret === undefined) {
      throw new UsageError('NOT_INITIALIZED', { message: 'this device does not hold the account key: it cannot change the device list', details: { what: 'account secret' } });
    }
    return me.accountSecret;
  };

  async function signOwnDeviceList(devices: readonly DeviceListEntry[]): Promise<DeviceList> {
    const me = await identity();
    const secret = requireAccountSecret(me);
    const stored = await loadDeviceList(me.certificate.userId);
    return signDeviceList(crypto, secret, {
      userId: me.certificate.userId,
      accountKey: me.certificate.accountKey,
      listVersion: (stored?.listVersion ?? 0) + 1,
      issuedAt: now(),
      devices,
    });
  }

  async function approveLink(code: string, options: { readonly canManageDevices?: boolean } = {}): Promise<LinkApproval> {
    const { request, encoded } = parseLinkCode(code);
    const me = await identity();
    const secret = requireAccountSecret(me);
    if (request.userId !== me.certificate.userId) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'the code is for another user', details: { field: 'code', expected: `a code for ${me.certificate.userId}` } });
    }
    const stored = await loadDeviceList(me.certificate.userId);
    const current = stored?.devices ?? [deviceListEntry(me.certificate)];
    if (current.some((d) => d.deviceId === request.deviceId)) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'a device with this id is already listed: revoke it first', details: { field: 'code', expected: 'a new device id' } });
    }
    const certificate = await signDeviceCertificate(crypto, secret, {
      userId: request.userId,
      deviceId: request.deviceId,
      accountKey: me.certificate.accountKey,
      signingKey: request.signingKey,
      identityKey: request.identityKey,
      capabilities: Capability.PQXDH_MLKEM768,
    });
    const deviceList = await signDeviceList(crypto, secret, {
      userId: me.certificate.userId,
      accountKey: me.certificate.accountKey,
      listVersion: (stored?.listVersion ?? 0) + 1,
      issuedAt: now(),
      devices: [...current, deviceListEntry(certificate)],
    });
    const sealed = await sealLinkResponse(crypto, encoded, request, {
      certificate: encodeDeviceCertificate(certificate),
      deviceList: deviceList.encoded,
      ...(options.canManageDevices === true ? { accountSecret: secret } : {}),
    });
    return { device: { userId: request.userId, deviceId: request.deviceId }, deviceList, channel: request.channel.slice(), sealed };
  }

  const serial =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      queue(() => fn(...args));

  /**
   * For operations that change state (a ratchet step, a consumed prekey, a trust change):
   * in this manager's queue, then inside the storage's exclusive lock when it has one
   * (storage contract invariant 11), so two tabs or processes sharing the store never both
   * read one session state and write two successors (SECURITY.md D26; docs/protocol.md
   * §7.1). Nothing cached survives another writer: session records are re-read and
   * compared byte for byte on every load (`loadSessions`), and the identity never changes
   * once created.
   */
  const exclusive = storage.exclusive?.bind(storage);
  const locked =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      queue(() => (exclusive === undefined ? fn(...args) : exclusive(() => fn(...args))));

  return {
    crypto,
    createIdentity: locked(createIdentity),
    // A copy, like every certificate handed out: core's own must never change (its
    // encoding is memoised with it, device-certificate.ts).
    certificate: serial(async () => copyCertificate((await identity()).certificate)),
    generatePrekeys: locked(generatePrekeys),
    processBundle: locked(processBundle),
    hasSession: serial(async (peer: Address) => (await loadSessions(peer)) !== undefined),
    devices: serial(async (userId: string) => {
      const user = toUserId(userId);
      const entries = await storage.range(storageKeys.sessionsOf(user), { limit: 10_000 });
      return entries.map((e) => ({ userId: user, deviceId: toDeviceId(e.key[2] as string) }));
    }),
    encrypt: locked(encrypt),
    peerCertificates: serial(async (userId: string) => {
      const user = toUserId(userId);
      const out: DeviceCertificate[] = [];
      for (const e of await storage.range(storageKeys.sessionsOf(user), { limit: 10_000 })) {
        const active = (await loadSessions({ userId: user, deviceId: toDeviceId(e.key[2] as string) }))?.sessions[0];
        if (active) out.push(copyCertificate(active.remoteCertificate));
      }
      return out;
    }),
    decrypt: locked(decrypt),
    trust: serial(async (userId: string) => {
      // A copy: the record may be the cached one (loadTrust), which must not change.
      const t = await loadTrust(userId);
      return t === undefined ? undefined : { ...t, accountKey: t.accountKey.slice() as Ed25519PublicKey, ...(t.pendingKey ? { pendingKey: t.pendingKey.slice() as Ed25519PublicKey } : {}) };
    }),
    acceptIdentity: locked(acceptIdentity),
    rejectIdentity: locked(rejectIdentity),
    setVerified: locked(async (userId: string, verified: boolean) => {
      const t = await loadTrust(userId);
      if (!t) throw new UsageError('NOT_INITIALIZED', { message: 'no key known for this contact', details: { what: 'contact key' } });
      await commit([putTrust(userId, { ...t, verified })]);
    }),
    safetyNumber: serial(safetyNumberWith),
    deviceList: serial(async (userId: string) => loadDeviceList(toUserId(userId))),
    applyDeviceList: locked(applyDeviceList),
    signDeviceList: serial(signOwnDeviceList),
    approveLink: serial(approveLink),
    signRelayChallenge: serial(async (relayId: string, challenge: Uint8Array) => {
      if (!(challenge instanceof Uint8Array) || challenge.length !== 32) {
        throw new UsageError('INVALID_ARGUMENT', { message: 'challenge must be 32 bytes', details: { field: 'challenge', expected: '32 bytes' } });
      }
      return crypto.ed25519Sign((await identity()).signingSecret, relayAuthSignatureInput(relayId, challenge));
    }),
  };
}
