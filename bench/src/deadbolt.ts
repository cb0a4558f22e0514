/**
 * The Deadbolt side of the benchmark.
 *
 * - Protocol level: the pure functions (`ratchetEncrypt` / `ratchetDecrypt` with `pad` /
 *   `unpad`, the wire codecs and `pairwiseAdPrefix`; PQXDH and bundle verification for
 *   set-ups), with the ratchet states held in memory between messages.
 * - Session API: `createSessionManager` over `@deadbolt/storage-memory`, which persists the
 *   session record (encoded and checksummed) after every message and loads it before.
 *
 * @module
 */
import {
  Capability,
  Limits,
  PqPrekeyKind,
  createSessionManager,
  decodePrekeyMessage,
  decodeRatchetMessage,
  pad,
  unpad,
  verifyDeviceCertificate,
  verifyPrekeyBundle,
  type CryptoProvider,
  type DeviceCertificate,
  type PrekeyBundle,
  type SessionManager,
} from '@deadbolt/core';
import {
  address,
  deviceId,
  userId,
  type Address,
  type Ed25519SecretKey,
  type KeyPair,
  type MlKemSecretKey,
  type StorageAdapter,
  type X25519PublicKey,
  type X25519SecretKey,
} from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import {
  encodePrekeyMessage,
  encodeRatchetMessage,
  pairwiseAdPrefix,
  pqxdhInitiate,
  pqxdhRespond,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetInitInitiator,
  ratchetInitResponder,
  signDeviceCertificate,
  signPqPrekey,
  signSignedPrekey,
  storageKeys,
  type RatchetLimits,
  type RatchetState,
} from './core-internals.js';

/** The default (and maximum) decrypt limits, as the session manager uses them. */
export const RATCHET_LIMITS: RatchetLimits = { maxForwardSkip: Limits.maxForwardSkip, maxSkippedKeys: Limits.maxSkippedKeys };

/** A device identity built directly (no session manager). */
export interface Device {
  readonly cert: DeviceCertificate;
  readonly identity: KeyPair<X25519PublicKey, X25519SecretKey>;
  readonly signingSecret: Ed25519SecretKey;
}

/** Creates an account key, a device signing key, an X25519 identity key and the certificate. */
export async function makeDevice(crypto: CryptoProvider, user: string, device: string): Promise<Device> {
  const account = await crypto.ed25519GenerateKeyPair();
  const signing = await crypto.ed25519GenerateKeyPair();
  const identity = await crypto.x25519GenerateKeyPair();
  const cert = await signDeviceCertificate(crypto, account.secretKey, {
    userId: userId(user),
    deviceId: deviceId(device),
    accountKey: account.publicKey,
    signingKey: signing.publicKey,
    identityKey: identity.publicKey,
    capabilities: Capability.PQXDH_MLKEM768,
  });
  return { cert, identity, signingSecret: signing.secretKey };
}

/**
 * A responder with a signed prekey and private halves of the one-time prekeys it has
 * handed out, in maps (what a key store would return), deleted on use.
 */
export class Responder {
  private nextId = 2;
  readonly oneTime = new Map<number, X25519SecretKey>();
  readonly pq = new Map<number, MlKemSecretKey>();

  private constructor(
    private readonly crypto: CryptoProvider,
    readonly device: Device,
    readonly signedPrekey: KeyPair<X25519PublicKey, X25519SecretKey> & { readonly id: number; readonly signature: Uint8Array },
  ) {}

  static async create(crypto: CryptoProvider, device: Device): Promise<Responder> {
    const kp = await crypto.x25519GenerateKeyPair();
    const pub = await signSignedPrekey(crypto, device.signingSecret, 1, kp.publicKey);
    return new Responder(crypto, device, { ...kp, id: 1, signature: pub.signature });
  }

  /** `n` bundles, each with its own one-time X25519 prekey and one-time ML-KEM-768 prekey. */
  async bundles(n: number): Promise<PrekeyBundle[]> {
    const out: PrekeyBundle[] = [];
    for (let i = 0; i < n; i++) {
      const opk = await this.crypto.x25519GenerateKeyPair();
      const opkId = this.nextId++;
      this.oneTime.set(opkId, opk.secretKey);
      const kem = this.crypto.mlkem768GenerateKeyPair();
      const pqPrekey = await signPqPrekey(this.crypto, this.device.signingSecret, this.nextId++, PqPrekeyKind.ONE_TIME, kem.publicKey);
      this.pq.set(pqPrekey.id, kem.secretKey);
      out.push({
        certificate: this.device.cert,
        signedPrekey: { id: this.signedPrekey.id, publicKey: this.signedPrekey.publicKey, signature: this.signedPrekey.signature },
        oneTimePrekey: { id: opkId, publicKey: opk.publicKey },
        pqPrekey,
      });
    }
    return out;
  }
}

/** The result of one protocol-level session set-up. */
export interface SetupResult {
  readonly initiator: RatchetState;
  readonly responder: RatchetState;
  readonly plaintext: Uint8Array;
  /** The encoded PrekeyMessage. */
  readonly wire: Uint8Array;
}

/**
 * One complete session set-up at protocol level, both sides: the initiator verifies the
 * bundle (certificate, signed prekey, PQ prekey), runs PQXDH, initialises its ratchet and
 * encrypts the first message into a PrekeyMessage; the responder decodes it, verifies the
 * initiator's certificate, looks up and consumes its prekeys, runs PQXDH, initialises its
 * ratchet and decrypts the inner message.
 */
export async function setupOnce(
  crypto: CryptoProvider,
  initiator: Device,
  responder: Responder,
  bundle: PrekeyBundle,
  plaintext: Uint8Array,
): Promise<SetupResult> {
  // --- initiator ---
  await verifyPrekeyBundle(crypto, bundle);
  const pq = bundle.pqPrekey!;
  const otp = bundle.oneTimePrekey!;
  const init = await pqxdhInitiate(crypto, initiator.identity, {
    identityKey: bundle.certificate.identityKey,
    signedPrekey: bundle.signedPrekey.publicKey,
    oneTimePrekey: otp.publicKey,
    pqPrekey: pq.publicKey,
  });
  const aState = await ratchetInitInitiator(crypto, init.sharedKey, bundle.signedPrekey.publicKey);
  const enc = ratchetEncrypt(crypto, aState, pad(plaintext), pairwiseAdPrefix(initiator.cert, bundle.certificate));
  const wire = encodePrekeyMessage({
    certificate: initiator.cert,
    signedPrekeyId: bundle.signedPrekey.id,
    oneTimePrekeyId: otp.id,
    pq: { id: pq.id, kind: pq.kind, ciphertext: init.kemCiphertext },
    baseKey: init.baseKey.publicKey,
    message: encodeRatchetMessage(enc.headerBytes, enc.body),
  });

  // --- responder ---
  const msg = decodePrekeyMessage(wire);
  await verifyDeviceCertificate(crypto, msg.certificate);
  const opkSecret = responder.oneTime.get(msg.oneTimePrekeyId!);
  const pqSecret = responder.pq.get(msg.pq!.id);
  if (!opkSecret || !pqSecret) throw new Error('bench: unknown prekey');
  const sk = await pqxdhRespond(
    crypto,
    { identityKey: responder.device.identity.secretKey, signedPrekey: responder.signedPrekey.secretKey, oneTimePrekey: opkSecret, pqPrekey: pqSecret },
    msg.certificate.identityKey,
    msg.baseKey,
    msg.pq!.ciphertext,
  );
  const bState = ratchetInitResponder(sk, responder.signedPrekey);
  const dec = await ratchetDecrypt(crypto, bState, decodeRatchetMessage(msg.message), pairwiseAdPrefix(msg.certificate, responder.device.cert), RATCHET_LIMITS);
  const out = unpad(dec.paddedPlaintext);
  responder.oneTime.delete(msg.oneTimePrekeyId!);
  responder.pq.delete(msg.pq!.id);
  return { initiator: enc.state, responder: dec.state, plaintext: out, wire };
}

/** One side of a protocol-level conversation. */
interface Side {
  readonly device: Device;
  state: RatchetState;
}

/**
 * Two established parties at protocol level, with their ratchet states in memory. Each
 * message: `pad`, `ratchetEncrypt`, `encodeRatchetMessage` on the sender;
 * `decodeRatchetMessage`, `ratchetDecrypt`, `unpad` on the receiver. The AD prefixes
 * (`pairwiseAdPrefix`, docs/protocol.md §6.3) depend only on the two certificates, so
 * they are computed once per pair, as the session manager keeps them per session (its
 * `adCache`): per-message work is what is measured.
 */
export class ProtocolPair {
  private turn = 0;
  /** The AD prefix of each direction, by sender (computed once: see the class comment). */
  private readonly ad = new Map<Side, Uint8Array>();

  private constructor(
    private readonly crypto: CryptoProvider,
    private readonly alice: Side,
    private readonly bob: Side,
  ) {
    this.ad.set(alice, pairwiseAdPrefix(alice.device.cert, bob.device.cert));
    this.ad.set(bob, pairwiseAdPrefix(bob.device.cert, alice.device.cert));
  }

  /** Alice sets up a session with Bob (PQXDH), Bob replies, Alice decrypts the reply. */
  static async establish(crypto: CryptoProvider, plaintext: Uint8Array): Promise<ProtocolPair> {
    const aliceDevice = await makeDevice(crypto, 'alice', 'phone');
    const bob = await Responder.create(crypto, await makeDevice(crypto, 'bob', 'laptop'));
    const [bundle] = await bob.bundles(1);
    const s = await setupOnce(crypto, aliceDevice, bob, bundle!, plaintext);
    const pair = new ProtocolPair(crypto, { device: aliceDevice, state: s.initiator }, { device: bob.device, state: s.responder });
    await pair.receive(pair.alice, pair.bob, pair.send(pair.bob, pair.alice, plaintext));
    return pair;
  }

  send(from: Side, to: Side, plaintext: Uint8Array): Uint8Array {
    const out = ratchetEncrypt(this.crypto, from.state, pad(plaintext), this.ad.get(from)!);
    from.state = out.state;
    return encodeRatchetMessage(out.headerBytes, out.body);
  }

  async receive(to: Side, from: Side, wire: Uint8Array): Promise<Uint8Array> {
    const message = decodeRatchetMessage(wire);
    const out = await ratchetDecrypt(this.crypto, to.state, message, this.ad.get(from)!, RATCHET_LIMITS);
    to.state = out.state;
    return unpad(out.paddedPlaintext);
  }

  /** One message Alice to Bob, encrypted and decrypted (no DH ratchet step). Returns the plaintext length. */
  async steady(plaintext: Uint8Array): Promise<number> {
    return (await this.receive(this.bob, this.alice, this.send(this.alice, this.bob, plaintext))).length;
  }

  /** One message in alternating directions: every message makes its receiver take a DH ratchet step. */
  async pingPong(plaintext: Uint8Array): Promise<number> {
    const [from, to] = this.turn++ % 2 === 0 ? [this.alice, this.bob] : [this.bob, this.alice];
    return (await this.receive(to, from, this.send(from, to, plaintext))).length;
  }

  /** The wire length of a steady Alice-to-Bob message (advances the chain by one). */
  async steadyWireLength(plaintext: Uint8Array): Promise<number> {
    const wire = this.send(this.alice, this.bob, plaintext);
    await this.receive(this.bob, this.alice, wire);
    return wire.length;
  }

  /** The AD prefix length of this pair (for the primitive baseline's AEAD inputs). */
  adPrefixLength(): number {
    return pairwiseAdPrefix(this.alice.device.cert, this.bob.device.cert).length;
  }
}

/** A device with its own session manager over a memory store. */
interface ApiParty {
  readonly address: Address;
  readonly storage: StorageAdapter;
  readonly sessions: SessionManager;
}

async function apiParty(crypto: CryptoProvider, user: string, device: string): Promise<ApiParty> {
  const storage = createMemoryStorage();
  const sessions = createSessionManager({ storage, crypto });
  await sessions.createIdentity({ userId: user, deviceId: device });
  return { address: address(user, device), storage, sessions };
}

/**
 * Two established parties through the session API: every encrypt and decrypt loads the
 * session record from the memory store and writes the new one back.
 */
export class SessionApiPair {
  private turn = 0;

  private constructor(
    private readonly alice: ApiParty,
    private readonly bob: ApiParty,
  ) {}

  /** Alice processes Bob's bundle, sends, Bob decrypts and replies, Alice decrypts. */
  static async establish(crypto: CryptoProvider, plaintext: Uint8Array): Promise<SessionApiPair> {
    const alice = await apiParty(crypto, 'alice', 'phone');
    const bob = await apiParty(crypto, 'bob', 'laptop');
    const up = await bob.sessions.generatePrekeys({ oneTime: 1, pqOneTime: 1 });
    await alice.sessions.processBundle({
      certificate: up.certificate,
      signedPrekey: up.signedPrekey,
      oneTimePrekey: up.oneTimePrekeys[0]!,
      pqPrekey: up.pqPrekeys[0]!,
    });
    await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, plaintext));
    await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, plaintext));
    return new SessionApiPair(alice, bob);
  }

  /** One message Alice to Bob. Returns the plaintext length. */
  async steady(plaintext: Uint8Array): Promise<number> {
    const wire = await this.alice.sessions.encrypt(this.bob.address, plaintext);
    return (await this.bob.sessions.decrypt(this.alice.address, wire)).plaintext.length;
  }

  /** One message in alternating directions. */
  async pingPong(plaintext: Uint8Array): Promise<number> {
    const [from, to] = this.turn++ % 2 === 0 ? [this.alice, this.bob] : [this.bob, this.alice];
    const wire = await from.sessions.encrypt(to.address, plaintext);
    return (await to.sessions.decrypt(from.address, wire)).plaintext.length;
  }

  /** The stored session record (the value under ['session', user, device]) of each side. */
  async recordSizes(): Promise<{ initiator: number; responder: number }> {
    const a = await this.alice.storage.get(storageKeys.session(this.bob.address));
    const b = await this.bob.storage.get(storageKeys.session(this.alice.address));
    if (!a || !b) throw new Error('bench: no stored session record');
    return { initiator: a.length, responder: b.length };
  }
}
