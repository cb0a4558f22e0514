/**
 * The libsignal-client side of the group benchmark: Signal's Sender Keys
 * (`SenderKeyDistributionMessage.create`, `processSenderKeyDistributionMessage`,
 * `groupEncrypt`, `groupDecrypt`) with in-memory `SenderKeyStore`s implemented in JS over
 * its abstract store class, as the 1:1 bench does for sessions (libsignal.ts).
 *
 * Two stores:
 * - {@link ObjectSenderKeyStore} keeps the `SenderKeyRecord` objects themselves;
 * - {@link SerializedSenderKeyStore} serialises the record on every save and deserialises
 *   it on every load (what a store that persists does; Deadbolt's group manager persists
 *   the chain after every encrypt and decrypt).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import {
  ProtocolAddress,
  SenderKeyDistributionMessage,
  SenderKeyRecord,
  SenderKeyStore,
  groupDecrypt,
  groupEncrypt,
  processSenderKeyDistributionMessage,
  type Uuid,
} from '@signalapp/libsignal-client';

type Bytes = Uint8Array<ArrayBuffer>;

function key(address: ProtocolAddress, distributionId: Uuid): string {
  return `${address.name()}.${address.deviceId()}\n${distributionId}`;
}

/** Keeps `SenderKeyRecord` objects as they are: no serialisation. */
export class ObjectSenderKeyStore extends SenderKeyStore {
  private readonly records = new Map<string, SenderKeyRecord>();
  async saveSenderKey(sender: ProtocolAddress, distributionId: Uuid, record: SenderKeyRecord): Promise<void> {
    this.records.set(key(sender, distributionId), record);
  }
  async getSenderKey(sender: ProtocolAddress, distributionId: Uuid): Promise<SenderKeyRecord | null> {
    return this.records.get(key(sender, distributionId)) ?? null;
  }
}

/** Serialises the record on every save and deserialises it on every load. */
export class SerializedSenderKeyStore extends SenderKeyStore {
  private readonly records = new Map<string, Bytes>();
  async saveSenderKey(sender: ProtocolAddress, distributionId: Uuid, record: SenderKeyRecord): Promise<void> {
    this.records.set(key(sender, distributionId), record.serialize());
  }
  async getSenderKey(sender: ProtocolAddress, distributionId: Uuid): Promise<SenderKeyRecord | null> {
    const bytes = this.records.get(key(sender, distributionId));
    return bytes ? SenderKeyRecord.deserialize(bytes) : null;
  }
}

/**
 * One sender and one receiver with the sender's key distributed: the sender creates a
 * `SenderKeyDistributionMessage` for a fresh distribution id (serialised, as it would
 * travel), the receiver deserialises and processes it. Each message: `groupEncrypt` and
 * `serialize()` on the sender, `groupDecrypt` of the bytes on the receiver.
 */
export class LibsignalGroupPair {
  private constructor(
    private readonly sender: ProtocolAddress,
    private readonly distributionId: Uuid,
    private readonly senderStore: SenderKeyStore,
    private readonly receiverStore: SenderKeyStore,
    /** The serialised distribution message the receiver processed. */
    readonly distributionLength: number,
  ) {}

  static async establish(makeStore: () => SenderKeyStore): Promise<LibsignalGroupPair> {
    const sender = ProtocolAddress.new('alice', 1);
    const distributionId = randomUUID();
    const senderStore = makeStore();
    const receiverStore = makeStore();
    const skdm = (await SenderKeyDistributionMessage.create(sender, distributionId, senderStore)).serialize();
    await processSenderKeyDistributionMessage(sender, SenderKeyDistributionMessage.deserialize(skdm), receiverStore);
    return new LibsignalGroupPair(sender, distributionId, senderStore, receiverStore, skdm.length);
  }

  /** One message, encrypted and decrypted. Returns the plaintext length. */
  async roundTrip(plaintext: Bytes): Promise<number> {
    return (await this.decrypt(await this.encrypt(plaintext))).length;
  }

  async encrypt(plaintext: Bytes): Promise<Bytes> {
    return (await groupEncrypt(this.sender, this.distributionId, this.senderStore, plaintext)).serialize();
  }

  async decrypt(message: Bytes): Promise<Bytes> {
    return groupDecrypt(this.sender, this.receiverStore, message);
  }

  /** A steady message's serialised length (advances the chain by one). */
  async messageLength(plaintext: Bytes): Promise<number> {
    const m = await this.encrypt(plaintext);
    await this.decrypt(m);
    return m.length;
  }
}
