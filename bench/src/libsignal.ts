/**
 * The libsignal-client side of the benchmark: Signal's official native library (Rust,
 * through Node-API), with in-memory stores implemented in JS over its abstract store
 * classes.
 *
 * Two session stores:
 * - {@link ObjectSessionStore} keeps the `SessionRecord` objects themselves (the
 *   protocol-level comparison: state held in memory between messages);
 * - {@link SerializedSessionStore} serialises the record on every save and deserialises it
 *   on every load (the comparison with Deadbolt's session API, which persists after every
 *   message).
 *
 * @module
 */
import {
  Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
  CiphertextMessageType,
} from '@signalapp/libsignal-client';

type Bytes = Uint8Array<ArrayBuffer>;

function key(address: ProtocolAddress): string {
  return `${address.name()}.${address.deviceId()}`;
}

/** Keeps `SessionRecord` objects as they are: no serialisation. */
export class ObjectSessionStore extends SessionStore {
  private readonly records = new Map<string, SessionRecord>();
  async saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.records.set(key(name), record);
  }
  async getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    return this.records.get(key(name)) ?? null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    return addresses.map((a) => {
      const r = this.records.get(key(a));
      if (!r) throw new Error(`no session for ${key(a)}`);
      return r;
    });
  }
}

/** Serialises the record on every save and deserialises it on every load. */
export class SerializedSessionStore extends SessionStore {
  private readonly records = new Map<string, Bytes>();
  async saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.records.set(key(name), record.serialize());
  }
  async getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    const bytes = this.records.get(key(name));
    return bytes ? SessionRecord.deserialize(bytes) : null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    return Promise.all(
      addresses.map(async (a) => {
        const r = await this.getSession(a);
        if (!r) throw new Error(`no session for ${key(a)}`);
        return r;
      }),
    );
  }
}

/** The local identity and trust on first use for remote identities. */
export class MemoryIdentityStore extends IdentityKeyStore {
  private readonly pair: IdentityKeyPair;
  private readonly known = new Map<string, PublicKey>();
  constructor(
    private readonly privateKey: PrivateKey,
    private readonly registrationId: number,
  ) {
    super();
    this.pair = new IdentityKeyPair(privateKey.getPublicKey(), privateKey);
  }
  async getIdentityKey(): Promise<PrivateKey> {
    return this.privateKey;
  }
  // The base class derives the public key (a native call) on every use; a store keeps it.
  override async getIdentityKeyPair(): Promise<IdentityKeyPair> {
    return this.pair;
  }
  async getLocalRegistrationId(): Promise<number> {
    return this.registrationId;
  }
  async saveIdentity(name: ProtocolAddress, identity: PublicKey): Promise<IdentityChange> {
    const k = key(name);
    const old = this.known.get(k);
    this.known.set(k, identity);
    return old && !old.equals(identity) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(name: ProtocolAddress, identity: PublicKey, _direction: Direction): Promise<boolean> {
    const old = this.known.get(key(name));
    return !old || old.equals(identity);
  }
  async getIdentity(name: ProtocolAddress): Promise<PublicKey | null> {
    return this.known.get(key(name)) ?? null;
  }
}

/** The record stored under `id`; throws (naming `what`) if there is none. */
function stored<R>(records: ReadonlyMap<number, R>, id: number, what: string): R {
  const r = records.get(id);
  if (!r) throw new Error(`no ${what} ${id}`);
  return r;
}

export class MemoryPreKeyStore extends PreKeyStore {
  readonly records = new Map<number, PreKeyRecord>();
  async savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    this.records.set(id, record);
  }
  async getPreKey(id: number): Promise<PreKeyRecord> {
    return stored(this.records, id, 'prekey');
  }
  async removePreKey(id: number): Promise<void> {
    this.records.delete(id);
  }
}

export class MemorySignedPreKeyStore extends SignedPreKeyStore {
  readonly records = new Map<number, SignedPreKeyRecord>();
  async saveSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    this.records.set(id, record);
  }
  async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    return stored(this.records, id, 'signed prekey');
  }
}

/** One-time Kyber prekeys: deleted when used. */
export class MemoryKyberPreKeyStore extends KyberPreKeyStore {
  readonly records = new Map<number, KyberPreKeyRecord>();
  async saveKyberPreKey(id: number, record: KyberPreKeyRecord): Promise<void> {
    this.records.set(id, record);
  }
  async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    return stored(this.records, id, 'kyber prekey');
  }
  async markKyberPreKeyUsed(id: number, _signedPreKeyId: number, _baseKey: PublicKey): Promise<void> {
    this.records.delete(id);
  }
}

/** A device: identity, registration id, and its stores. */
export class Party {
  readonly identity: MemoryIdentityStore;
  readonly preKeys = new MemoryPreKeyStore();
  readonly signedPreKeys = new MemorySignedPreKeyStore();
  readonly kyberPreKeys = new MemoryKyberPreKeyStore();
  private nextId = 1;
  private signed: { id: number; key: PrivateKey; signature: Bytes } | undefined;

  constructor(
    readonly address: ProtocolAddress,
    readonly sessions: SessionStore,
    private readonly identityKey: PrivateKey = PrivateKey.generate(),
    readonly registrationId: number = 1 + Math.floor(Math.random() * 16000),
  ) {
    this.identity = new MemoryIdentityStore(identityKey, registrationId);
  }

  /**
   * `n` bundles, each with its own one-time EC prekey and one-time Kyber (ML-KEM-1024)
   * prekey, stored on this side; one signed prekey shared by all.
   */
  bundles(n: number): PreKeyBundle[] {
    if (!this.signed) {
      const id = this.nextId++;
      const k = PrivateKey.generate();
      const signature = this.identityKey.sign(k.getPublicKey().serialize());
      this.signedPreKeys.records.set(id, SignedPreKeyRecord.new(id, Date.now(), k.getPublicKey(), k, signature));
      this.signed = { id, key: k, signature };
    }
    const spk = this.signed;
    const out: PreKeyBundle[] = [];
    for (let i = 0; i < n; i++) {
      const preKeyId = this.nextId++;
      const preKey = PrivateKey.generate();
      this.preKeys.records.set(preKeyId, PreKeyRecord.new(preKeyId, preKey.getPublicKey(), preKey));
      const kyberId = this.nextId++;
      const kem = KEMKeyPair.generate();
      const kyberSignature = this.identityKey.sign(kem.getPublicKey().serialize());
      this.kyberPreKeys.records.set(kyberId, KyberPreKeyRecord.new(kyberId, Date.now(), kem, kyberSignature));
      out.push(
        PreKeyBundle.new(
          this.registrationId,
          this.address.deviceId(),
          preKeyId,
          preKey.getPublicKey(),
          spk.id,
          spk.key.getPublicKey(),
          spk.signature,
          this.identityKey.getPublicKey(),
          kyberId,
          kem.getPublicKey(),
          kyberSignature,
        ),
      );
    }
    return out;
  }
}

/** Encrypts from `from` to `to` and returns the serialised ciphertext and its type. */
async function encrypt(from: Party, to: Party, plaintext: Bytes): Promise<{ type: number; bytes: Bytes }> {
  const ct = await signalEncrypt(plaintext, to.address, from.address, from.sessions, from.identity);
  return { type: ct.type(), bytes: ct.serialize() };
}

/** Deserialises and decrypts at `to` a message from `from`. */
async function decrypt(to: Party, from: Party, message: { type: number; bytes: Bytes }): Promise<Bytes> {
  if (message.type === CiphertextMessageType.PreKey) {
    return signalDecryptPreKey(
      PreKeySignalMessage.deserialize(message.bytes),
      from.address,
      to.address,
      to.sessions,
      to.identity,
      to.preKeys,
      to.signedPreKeys,
      to.kyberPreKeys,
    );
  }
  return signalDecrypt(SignalMessage.deserialize(message.bytes), from.address, to.address, to.sessions, to.identity);
}

/**
 * Two established parties. Each message: `signalEncrypt` and `serialize()` on the
 * sender, `SignalMessage.deserialize` and `signalDecrypt` on the receiver, with the
 * session store given at construction.
 */
export class LibsignalPair {
  private turn = 0;

  private constructor(
    readonly alice: Party,
    readonly bob: Party,
  ) {}

  /** Alice processes Bob's bundle and sends; Bob decrypts and replies; Alice decrypts. */
  static async establish(makeStore: () => SessionStore, plaintext: Bytes): Promise<LibsignalPair> {
    const alice = new Party(ProtocolAddress.new('alice', 1), makeStore());
    const bob = new Party(ProtocolAddress.new('bob', 1), makeStore());
    const [bundle] = bob.bundles(1);
    await processPreKeyBundle(bundle!, bob.address, alice.address, alice.sessions, alice.identity);
    await decrypt(bob, alice, await encrypt(alice, bob, plaintext));
    await decrypt(alice, bob, await encrypt(bob, alice, plaintext));
    return new LibsignalPair(alice, bob);
  }

  /** One message Alice to Bob (no DH ratchet step). Returns the plaintext length. */
  async steady(plaintext: Bytes): Promise<number> {
    return (await decrypt(this.bob, this.alice, await encrypt(this.alice, this.bob, plaintext))).length;
  }

  /** One message in alternating directions. */
  async pingPong(plaintext: Bytes): Promise<number> {
    const [from, to] = this.turn++ % 2 === 0 ? [this.alice, this.bob] : [this.bob, this.alice];
    return (await decrypt(to, from, await encrypt(from, to, plaintext))).length;
  }

  /** A steady Alice-to-Bob message's serialised length and type (advances the chain by one). */
  async steadyMessage(plaintext: Bytes): Promise<{ type: number; length: number }> {
    const m = await encrypt(this.alice, this.bob, plaintext);
    await decrypt(this.bob, this.alice, m);
    return { type: m.type, length: m.bytes.length };
  }

  /** `SessionRecord.serialize().length` of each side's record. */
  async recordSizes(): Promise<{ initiator: number; responder: number }> {
    const a = await this.alice.sessions.getSession(this.bob.address);
    const b = await this.bob.sessions.getSession(this.alice.address);
    if (!a || !b) throw new Error('bench: no libsignal session');
    return { initiator: a.serialize().length, responder: b.serialize().length };
  }
}

/** A pre-generated set-up: a bundle, and the addresses both sides know each other by. */
export interface SetupInput {
  readonly bundle: PreKeyBundle;
  /** How Alice knows this Bob. */
  readonly bobAddress: ProtocolAddress;
  /** How this Bob knows Alice. */
  readonly aliceAddress: ProtocolAddress;
}

/**
 * Session set-ups, both sides: Alice processes a bundle (verifying its signatures) and
 * encrypts the first message; Bob deserialises the PreKeySignalMessage and decrypts it.
 * Each set-up uses fresh addresses so that records never accumulate archived states.
 */
export class LibsignalSetups {
  private counter = 0;
  readonly alice: Party;
  readonly bob: Party;

  constructor() {
    this.alice = new Party(ProtocolAddress.new('alice', 1), new ObjectSessionStore());
    this.bob = new Party(ProtocolAddress.new('bob', 1), new ObjectSessionStore());
  }

  /** `n` inputs (key generation happens here, untimed). */
  inputs(n: number): SetupInput[] {
    return this.bob.bundles(n).map((bundle) => {
      const i = this.counter++;
      return { bundle, bobAddress: ProtocolAddress.new(`bob-${i}`, 1), aliceAddress: ProtocolAddress.new(`alice-${i}`, 1) };
    });
  }

  /** One set-up. Returns the decrypted length. */
  async run(input: SetupInput, plaintext: Bytes): Promise<number> {
    const { alice, bob } = this;
    await processPreKeyBundle(input.bundle, input.bobAddress, alice.address, alice.sessions, alice.identity);
    const ct = await signalEncrypt(plaintext, input.bobAddress, alice.address, alice.sessions, alice.identity);
    if (ct.type() !== CiphertextMessageType.PreKey) throw new Error('bench: expected a PreKey message');
    const pt = await signalDecryptPreKey(
      PreKeySignalMessage.deserialize(ct.serialize()),
      input.aliceAddress,
      bob.address,
      bob.sessions,
      bob.identity,
      bob.preKeys,
      bob.signedPreKeys,
      bob.kyberPreKeys,
    );
    return pt.length;
  }
}
