/**
 * The Deadbolt side of the group benchmark (docs/protocol.md §12): devices with the real
 * stack below the group layer (a session manager's identity record in
 * `@deadbolt/storage-memory`, a group manager and a group engine on the same store), an
 * in-process "network" that carries the engine's `sendPairwise` payloads and counts them,
 * and the three fixtures the figures are measured on:
 *
 * - {@link SenderFixture}: one real sender in a group of N members whose other members are
 *   certificates only (they never run code; the sender's cost does not involve them).
 * - {@link PairFixture}: one sender and one receiver, both real, for encrypt + decrypt.
 * - {@link removalCost}: a 100-device group where every device is real, one member is
 *   removed, and every pairwise payload that follows is counted.
 *
 * Rotation: a sender key rotates after at most maxGroupMessagesPerKey (10,000) messages
 * (§12.7.3), fewer than one timed run of the fastest figures takes. The steady-state
 * figures must not include a rotation, so before every timed run {@link SenderFixture.ensureHeadroom}
 * checks that the current key has room for the whole run and, if not, rotates it untimed
 * (the injected clock is moved past the key's maximum age, and one message is sent and,
 * for a pair, received). The timed loop itself then never calls `sendPairwise`, and checks
 * that it does not.
 *
 * @module
 */
import { createNodeCryptoProvider, createSessionManager, type CryptoProvider, type DeviceCertificate, type SessionManager } from '@deadbolt/core';
import { address, type Address, type StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { makeDevice } from './deadbolt.js';
import { Limits } from './core-internals.js';
import { createGroupEngine, createGroupManager, groupIdHex, type GroupEngine, type GroupId, type GroupManager } from './group-internals.js';

/** The sender-key message limit (§12.7.3): a key rotates at this generation at the latest. */
export const MESSAGES_PER_KEY: number = Limits.maxGroupMessagesPerKey;

/** A clock the bench can move forward (to make a key old enough to rotate, untimed). */
export class Clock {
  private offset = 0;
  readonly now = (): number => Date.now() + this.offset;
  advance(ms: number): void {
    this.offset += ms;
  }
}

/** A device running the group layer over its own memory store. */
export interface GroupDevice {
  readonly address: Address;
  readonly certificate: DeviceCertificate;
  readonly storage: StorageAdapter;
  readonly sessions: SessionManager;
  readonly groups: GroupManager;
  readonly engine: GroupEngine;
}

/** One `sendPairwise` call: from, to and the group payload (what the pairwise session would carry). */
export interface PairwiseSend {
  readonly from: GroupDevice;
  readonly to: DeviceCertificate;
  readonly payload: Uint8Array;
}

const key = (a: { readonly userId: string; readonly deviceId: string }): string => `${a.userId}\n${a.deviceId}`;

/**
 * The devices and the engine's pairwise channel between them. Every `sendPairwise` is
 * counted and queued for its recipient; {@link flush} hands queued payloads to the
 * recipients' engines (`receivePairwise`), as a client does after its pairwise decrypt.
 * Payloads for devices that are not on the network (certificate-only members) are counted
 * and dropped.
 */
export class Network {
  readonly devices = new Map<string, GroupDevice>();
  private queue: PairwiseSend[] = [];
  /** Every `sendPairwise` call so far. */
  calls = 0;
  /** Called for every `sendPairwise` (to count payloads by kind). */
  tap: ((send: PairwiseSend) => void) | undefined;

  constructor(
    readonly crypto: CryptoProvider,
    readonly clock: Clock,
  ) {}

  /** A device with an identity (created by its session manager), a group manager and an engine. */
  async device(user: string, deviceName: string): Promise<GroupDevice> {
    const storage = createMemoryStorage();
    const sessions = createSessionManager({ storage, crypto: this.crypto });
    const certificate = await sessions.createIdentity({ userId: user, deviceId: deviceName });
    const groups = createGroupManager({ storage, crypto: this.crypto, now: this.clock.now });
    const self: { device?: GroupDevice } = {};
    const engine = createGroupEngine({
      groups,
      now: this.clock.now,
      sendPairwise: async (to, payload) => {
        const send = { from: self.device!, to, payload };
        this.calls++;
        this.tap?.(send);
        this.queue.push(send);
      },
    });
    const device: GroupDevice = { address: address(user, deviceName), certificate, storage, sessions, groups, engine };
    self.device = device;
    this.devices.set(key(device.address), device);
    return device;
  }

  /** Drops everything queued (payloads for members that never run code). */
  discard(): void {
    this.queue = [];
  }

  /**
   * Delivers every queued payload (and whatever processing them sends) to its recipient's
   * engine, until nothing is queued. `only`, if given, restricts delivery to those
   * recipients (the rest is dropped). Throws on any refused payload.
   */
  async flush(only?: (to: DeviceCertificate) => boolean): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const s of batch) {
        const to = this.devices.get(key(s.to));
        if (!to || (only && !only(s.to))) continue;
        const events = await to.engine.receivePairwise(s.from.certificate, s.payload);
        for (const e of events) {
          if (e.type === 'payload-rejected' || e.type === 'send-failed') throw new Error(`bench: ${key(to.address)} reported ${e.type}: ${JSON.stringify(e)}`);
        }
      }
    }
  }
}

/** Certificates of members that never run code (their devices never receive anything). */
export async function passiveMembers(crypto: CryptoProvider, count: number): Promise<DeviceCertificate[]> {
  const out: DeviceCertificate[] = [];
  for (let i = 0; i < count; i++) out.push((await makeDevice(crypto, `m${String(i).padStart(4, '0')}`, 'phone')).cert);
  return out;
}

/** The generation the device's own key for `groupId` is at (0 if it has none). */
async function ownGeneration(d: GroupDevice, groupId: GroupId): Promise<number | undefined> {
  return (await d.groups.store.own(groupIdHex(groupId)))?.generation;
}

/**
 * Makes sure `sender`'s current key in `groupId` has room for `n` more messages (a timed
 * run never crosses a rotation, §12.7.3); otherwise rotates it now with `rotate`, untimed.
 */
async function ensureKeyHeadroom(sender: GroupDevice, groupId: GroupId, n: number, rotate: () => Promise<void>): Promise<void> {
  if (n > MESSAGES_PER_KEY - 1) throw new Error(`bench: ${n} messages do not fit in one sender key`);
  const g = await ownGeneration(sender, groupId);
  if (g === undefined || g + n > MESSAGES_PER_KEY) await rotate();
}

/**
 * Ages `sender`'s key past its maximum (§12.7.3) and sends once through the engine, untimed:
 * a new key, distributed. Returns the send and how many pairwise sends (distributions) it made.
 */
async function sendWithNewKey(net: Network, sender: GroupDevice, groupId: GroupId, plaintext: Uint8Array) {
  net.clock.advance(Limits.maxGroupKeyAgeMs);
  const calls = net.calls;
  const out = await sender.engine.send(groupId, plaintext);
  return { out, distributions: net.calls - calls };
}

/**
 * One real sender in a group of `members` members (one device each): the sender and
 * `members - 1` certificate-only members. Created with the group manager (the genesis
 * welcomes would go to devices that never run code), then one message is sent through the
 * engine so that the sender key exists and is distributed (the distributions go to the
 * certificate-only members and are dropped). After that, every send is steady state.
 */
export class SenderFixture {
  private constructor(
    readonly net: Network,
    readonly sender: GroupDevice,
    readonly groupId: GroupId,
    readonly members: number,
    private readonly plaintext: Uint8Array,
  ) {}

  static async create(crypto: CryptoProvider, members: number, plaintext: Uint8Array): Promise<SenderFixture> {
    const net = new Network(crypto, new Clock());
    const sender = await net.device('sender', 'phone');
    const others = await passiveMembers(crypto, members - 1);
    const created = await sender.groups.create({ name: `bench ${members}`, members: others.map((c) => ({ devices: [c] })) });
    const f = new SenderFixture(net, sender, created.groupId, members, plaintext);
    await f.rotateUntimed();
    return f;
  }

  /** One steady-state send through the engine. Throws if it sent anything pairwise or addressed the wrong devices. */
  async send(): Promise<Uint8Array> {
    const calls = this.net.calls;
    const out = await this.sender.engine.send(this.groupId, this.plaintext);
    if (this.net.calls !== calls || out.recipients.length !== this.members - 1) throw new Error('bench: not a steady-state send');
    return out.message;
  }

  /** Makes sure the current key has room for `n` more messages: otherwise rotates it now, untimed. */
  ensureHeadroom(n: number): Promise<void> {
    return ensureKeyHeadroom(this.sender, this.groupId, n, () => this.rotateUntimed());
  }

  /** Ages the key past its maximum and sends once: a new key, distributed to every member. */
  private async rotateUntimed(): Promise<void> {
    const { out, distributions } = await sendWithNewKey(this.net, this.sender, this.groupId, this.plaintext);
    if (distributions !== this.members - 1 || out.undelivered.length > 0) throw new Error('bench: rotation did not distribute to every member');
    this.net.discard();
  }
}

/**
 * One sender and one receiver, both real, in a two-member group, with the sender key
 * distributed and installed. {@link engineRoundTrip}: `engine.send` and the receiver's
 * `engine.receiveGroupMessage`; {@link managerRoundTrip}: `groups.encrypt` and
 * `groups.decrypt`, the layer below (no engine queue, no fan-out addressing). Each layer
 * is measured on a fixture of its own (its own devices and clock), so the two never share
 * a chain.
 */
export class PairFixture {
  private constructor(
    readonly net: Network,
    readonly sender: GroupDevice,
    readonly receiver: GroupDevice,
    readonly groupId: GroupId,
    private readonly plaintext: Uint8Array,
  ) {}

  static async create(crypto: CryptoProvider, plaintext: Uint8Array): Promise<PairFixture> {
    const net = new Network(crypto, new Clock());
    const sender = await net.device('alice', 'phone');
    const receiver = await net.device('bob', 'laptop');
    const groupId = await sender.engine.create({ name: 'pair', members: [{ devices: [receiver.certificate] }] });
    await net.flush(); // the welcome
    const f = new PairFixture(net, sender, receiver, groupId, plaintext);
    await f.rotateUntimed();
    return f;
  }

  /** Encrypt (engine.send) and decrypt (engine.receiveGroupMessage). Returns the plaintext length. */
  async engineRoundTrip(): Promise<number> {
    const calls = this.net.calls;
    const out = await this.sender.engine.send(this.groupId, this.plaintext);
    const events = await this.receiver.engine.receiveGroupMessage(out.message);
    const e = events[0];
    if (this.net.calls !== calls || events.length !== 1 || e?.type !== 'message-received') throw new Error('bench: not a steady-state message');
    return e.plaintext.length;
  }

  /** Encrypt (groups.encrypt) and decrypt (groups.decrypt). Returns the plaintext length. */
  async managerRoundTrip(): Promise<number> {
    const out = await this.sender.groups.encrypt(this.groupId, this.plaintext);
    if (out.distributions.length !== 0) throw new Error('bench: not a steady-state message');
    return (await this.receiver.groups.decrypt(out.message)).plaintext.length;
  }

  /** A steady group message (sent and received). */
  async message(): Promise<Uint8Array> {
    const out = await this.sender.engine.send(this.groupId, this.plaintext);
    const events = await this.receiver.engine.receiveGroupMessage(out.message);
    if (events[0]?.type !== 'message-received') throw new Error('bench: not a steady-state message');
    return out.message;
  }

  /** The sender-key distribution of a fresh key (rotated untimed). */
  async distribution(): Promise<Uint8Array> {
    let payload: Uint8Array | undefined;
    this.net.tap = (s) => void (payload = s.payload);
    await this.rotateUntimed();
    this.net.tap = undefined;
    if (!payload) throw new Error('bench: no distribution');
    return payload;
  }

  /** Makes sure the key has room for `n` more messages; otherwise rotates it now, untimed. */
  ensureHeadroom(n: number): Promise<void> {
    return ensureKeyHeadroom(this.sender, this.groupId, n, () => this.rotateUntimed());
  }

  /** Ages the key, sends once (a new key, distributed), delivers the distribution and the message. */
  private async rotateUntimed(): Promise<void> {
    const { out, distributions } = await sendWithNewKey(this.net, this.sender, this.groupId, this.plaintext);
    if (distributions !== 1) throw new Error('bench: rotation did not distribute');
    await this.net.flush();
    const events = await this.receiver.engine.receiveGroupMessage(out.message);
    if (events[0]?.type !== 'message-received') throw new Error('bench: the receiver did not decrypt after a rotation');
  }
}

/** Pairwise traffic of one kind: messages, group payload bytes, pairwise ciphertext bytes. */
export interface Traffic {
  messages: number;
  payloadBytes: number;
  pairwiseBytes: number;
}

/** What removing one member cost, in pairwise traffic (see {@link removalCost}). */
export interface RemovalCost {
  readonly members: number;
  readonly devicesInformed: number;
  readonly rotatingSenders: number;
  readonly change: Traffic;
  readonly rotation: Traffic;
  /** The group messages whose sends triggered the rotations (fanned out by the relay, not pairwise). */
  readonly triggerMessages: number;
  readonly triggerMessageBytes: number;
  readonly fanOutCopies: number;
}

/**
 * Measures pairwise ciphertext sizes through a real session: two session managers over
 * memory storage with an established, confirmed session (PQXDH, first message and a
 * reply). Each payload is encrypted with `sessions.encrypt` as a steady RatchetMessage.
 * One session stands in for every pair: a steady message's length depends only on its
 * plaintext's length (fixed header, padding buckets of §6.2).
 */
export class PairwiseSizer {
  private constructor(
    private readonly alice: SessionManager,
    private readonly bob: Address,
  ) {}

  static async create(crypto: CryptoProvider): Promise<PairwiseSizer> {
    const a = createSessionManager({ storage: createMemoryStorage(), crypto });
    const b = createSessionManager({ storage: createMemoryStorage(), crypto });
    await a.createIdentity({ userId: 'sizer-a', deviceId: 'd' });
    await b.createIdentity({ userId: 'sizer-b', deviceId: 'd' });
    const up = await b.generatePrekeys({ oneTime: 1, pqOneTime: 1 });
    await a.processBundle({ certificate: up.certificate, signedPrekey: up.signedPrekey, oneTimePrekey: up.oneTimePrekeys[0]!, pqPrekey: up.pqPrekeys[0]! });
    const aAddr = address('sizer-a', 'd');
    const bAddr = address('sizer-b', 'd');
    const hello = new Uint8Array(16);
    await b.decrypt(aAddr, await a.encrypt(bAddr, hello));
    await a.decrypt(bAddr, await b.encrypt(aAddr, hello));
    return new PairwiseSizer(a, bAddr);
  }

  /** The wire length of `payload` encrypted on the established session. */
  async wireLength(payload: Uint8Array): Promise<number> {
    return (await this.alice.encrypt(this.bob, payload)).length;
  }
}

/**
 * The cost of removing one member from a group of `members` members (one device each),
 * every device real. Steady state first: the group is created (welcomes delivered) and
 * every device sends one message, so every device holds a sender key that every other
 * device has installed. Then, counting every `sendPairwise` call:
 *
 * 1. the admin removes one member: `engine.removeMember` sends the signed change to every
 *    other device of the old state (the remaining ones and the removed one); every device
 *    processes it;
 * 2. every remaining device sends one group message: each rotates (§12.7.3: a device left
 *    since its key was made) and distributes its new key to every other remaining device.
 *
 * Checks: the change reaches everyone, no distribution goes to the removed device, a
 * remaining device decrypts every post-removal message once it has the new keys, and the
 * removed device cannot decrypt them.
 */
export async function removalCost(crypto: CryptoProvider, members: number, plaintext: Uint8Array): Promise<RemovalCost> {
  const net = new Network(crypto, new Clock());
  const devices: GroupDevice[] = [];
  for (let i = 0; i < members; i++) devices.push(await net.device(`u${String(i).padStart(4, '0')}`, 'phone'));
  const [admin, ...rest] = devices as [GroupDevice, ...GroupDevice[]];
  const groupId = await admin.engine.create({ name: 'removal', members: rest.map((d) => ({ devices: [d.certificate] })) });
  await net.flush();
  // Steady state: every device has sent, every key is installed everywhere.
  for (const d of devices) {
    const out = await d.engine.send(groupId, plaintext);
    if (out.undelivered.length > 0) throw new Error('bench: undelivered distribution');
  }
  await net.flush();

  const sizer = await PairwiseSizer.create(crypto);
  const sends: PairwiseSend[] = [];
  net.tap = (s) => void sends.push(s);
  const victim = rest[rest.length >> 1]!;
  const remaining = devices.filter((d) => d !== victim);

  // 1. The signed change, to every other device; every device processes it.
  await admin.engine.removeMember(groupId, victim.address.userId);
  const changeSends = sends.splice(0);
  await net.flush();
  if (sends.length > 0) throw new Error('bench: processing the change sent something');
  for (const d of devices) {
    const member = await d.groups.isMember(groupId);
    if (member !== (d !== victim)) throw new Error(`bench: ${d.address.userId} did not process the removal`);
  }

  // 2. Every remaining device's next send rotates and distributes.
  const messages: Uint8Array[] = [];
  for (const d of remaining) messages.push((await d.engine.send(groupId, plaintext)).message);
  const rotationSends = sends.splice(0);
  net.tap = undefined;
  if (rotationSends.some((s) => key(s.to) === key(victim.address))) throw new Error('bench: a new key went to the removed device');

  // Checks: one remaining device gets its new keys and decrypts everything sent after the removal.
  const reader = remaining[remaining.length - 1]!;
  await net.flush((to) => key(to) === key(reader.address));
  for (const [i, m] of messages.entries()) {
    if (remaining[i] === reader) continue;
    const events = await reader.engine.receiveGroupMessage(m);
    if (events[0]?.type !== 'message-received' || events[0].plaintext.length !== plaintext.length) throw new Error('bench: a post-removal message did not decrypt');
  }
  let refused = false;
  try {
    const events = await victim.engine.receiveGroupMessage(messages[0]!);
    refused = events.every((e) => e.type !== 'message-received');
  } catch {
    refused = true;
  }
  if (!refused) throw new Error('bench: the removed device decrypted a post-removal message');

  const traffic = async (list: readonly PairwiseSend[]): Promise<Traffic> => {
    const t: Traffic = { messages: 0, payloadBytes: 0, pairwiseBytes: 0 };
    for (const s of list) {
      t.messages++;
      t.payloadBytes += s.payload.length;
      t.pairwiseBytes += await sizer.wireLength(s.payload);
    }
    return t;
  };
  return {
    members,
    devicesInformed: changeSends.length,
    rotatingSenders: remaining.length,
    change: await traffic(changeSends),
    rotation: await traffic(rotationSends),
    triggerMessages: messages.length,
    triggerMessageBytes: messages.reduce((s, m) => s + m.length, 0),
    fanOutCopies: messages.length * (remaining.length - 1),
  };
}

/** The node:crypto provider the whole Deadbolt process uses. */
export function benchCrypto(): CryptoProvider {
  return createNodeCryptoProvider();
}
