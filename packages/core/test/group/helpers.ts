/**
 * Group test parties: devices with an identity record in their own memory store (what the
 * session manager would have created) and a group manager on it, passive certificates for
 * members that never run code, an in-test "network" that carries deliveries as the client
 * would over pairwise sessions, the no-mutation check (it covers the group records), and a
 * crypto provider that counts calls.
 */
import { address, isDeadboltError, type Address, type Ed25519PublicKey, type Ed25519SecretKey, type StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { Capability, createNodeCryptoProvider, type CryptoProvider } from '../../src/index.js';
import { signDeviceCertificate, type DeviceCertificate } from '../../src/protocol/device-certificate.js';
import { RecordType, sealRecord } from '../../src/session/record-envelope.js';
import { encodeIdentityRecord } from '../../src/session/stored-records.js';
import { createGroupManager, type GroupDelivery, type GroupManager, type GroupManagerOptions } from '../../src/group/group-manager.js';
import type { GroupId } from '../../src/group/group-id.js';

export const crypto = createNodeCryptoProvider();

export interface Account {
  readonly publicKey: Ed25519PublicKey;
  readonly secretKey: Ed25519SecretKey;
}

export interface Device {
  readonly address: Address;
  readonly certificate: DeviceCertificate;
  readonly signingSecret: Ed25519SecretKey;
  readonly account: Account;
  readonly storage: StorageAdapter;
  readonly groups: GroupManager;
}

export async function newAccount(c: CryptoProvider = crypto): Promise<Account> {
  const kp = await c.ed25519GenerateKeyPair();
  return { publicKey: kp.publicKey, secretKey: kp.secretKey };
}

/** A device certificate (and its signing secret) under `account`, with no store. */
export async function certify(user: string, device: string, account: Account, c: CryptoProvider = crypto): Promise<{ certificate: DeviceCertificate; signingSecret: Ed25519SecretKey }> {
  const signing = await c.ed25519GenerateKeyPair();
  const dh = await c.x25519GenerateKeyPair();
  const a = address(user, device);
  const certificate = await signDeviceCertificate(c, account.secretKey, {
    userId: a.userId,
    deviceId: a.deviceId,
    accountKey: account.publicKey,
    signingKey: signing.publicKey,
    identityKey: dh.publicKey,
    capabilities: Capability.PQXDH_MLKEM768,
  });
  return { certificate, signingSecret: signing.secretKey };
}

export interface DeviceOptions extends Partial<Omit<GroupManagerOptions, 'storage'>> {
  readonly account?: Account;
  readonly storage?: StorageAdapter;
}

/** A device with an identity record and a group manager. */
export async function createDevice(user: string, device: string, options: DeviceOptions = {}): Promise<Device> {
  const c = options.crypto ?? crypto;
  const account = options.account ?? (await newAccount(c));
  const { certificate, signingSecret } = await certify(user, device, account, c);
  const dh = await c.x25519GenerateKeyPair();
  const storage = options.storage ?? createMemoryStorage();
  await storage.batch([
    {
      type: 'put',
      key: ['identity'],
      value: sealRecord(c, RecordType.IDENTITY, encodeIdentityRecord({ accountSecret: account.secretKey, signingSecret, identitySecret: dh.secretKey, certificate })),
    },
  ]);
  const { account: _a, storage: _s, ...rest } = options;
  const groups = createGroupManager({ storage, crypto: c, ...rest });
  return { address: address(user, device), certificate, signingSecret, account, storage, groups };
}

const key = (a: { userId: string; deviceId: string }): string => `${a.userId}/${a.deviceId}`;

/**
 * Carries deliveries as the client would over pairwise sessions: each to the device the
 * group state names, authenticated as `from`. Devices not on the network (passive members)
 * are skipped.
 */
export class Net {
  readonly devices = new Map<string, Device>();
  constructor(devices: readonly Device[]) {
    for (const d of devices) this.devices.set(key(d.address), d);
  }
  add(d: Device): void {
    this.devices.set(key(d.address), d);
  }
  get(a: { userId: string; deviceId: string }): Device | undefined {
    return this.devices.get(key(a));
  }
  /** Delivers each payload to its device (skipping `except`), in order. */
  async deliver(from: Device, deliveries: readonly GroupDelivery[], except: readonly Device[] = []): Promise<void> {
    for (const d of deliveries) {
      const to = this.get(d.to);
      if (!to || except.includes(to)) continue;
      await deliverOne(from, to, d);
    }
  }
  /** Fans a group message out to every network device in the sender's group state except the sender. */
  async fanOut(from: Device, groupId: GroupId, message: Uint8Array): Promise<Map<Device, string>> {
    const out = new Map<Device, string>();
    const state = await from.groups.state(groupId);
    for (const m of state?.members ?? []) {
      for (const dev of m.devices) {
        const to = this.get(dev);
        if (!to || to === from) continue;
        try {
          out.set(to, new TextDecoder().decode((await to.groups.decrypt(message)).plaintext));
        } catch (e) {
          out.set(to, `error:${isDeadboltError(e) ? e.code : String(e)}`);
        }
      }
    }
    return out;
  }
}

export async function deliverOne(from: Device, to: Device, d: GroupDelivery): Promise<unknown> {
  if (d.kind === 'change') return to.groups.processChange(from.certificate, d.payload);
  if (d.kind === 'welcome') return to.groups.processWelcome(from.certificate, d.payload);
  return to.groups.processSenderKey(from.certificate, d.payload);
}

/** Sends a group message: distributions over the "pairwise" network, confirmed, then the message. */
export async function send(net: Net, from: Device, groupId: GroupId, text: string): Promise<Uint8Array> {
  const out = await from.groups.encrypt(groupId, new TextEncoder().encode(text));
  await net.deliver(from, out.distributions);
  await from.groups.confirmDistribution(groupId, out.keyId, out.distributions.map((d) => d.to));
  return out.message;
}

export function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function str(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

// --- no mutation --------------------------------------------------------------------------------

/** The snapshot covers the group records too (docs/protocol.md §12.11). */
export { expectFailsWithoutMutation, snapshot } from '../helpers/no-mutation.js';

// --- counting provider --------------------------------------------------------------------------

/** A provider that counts every call by method name (to prove no derivation storm). */
export function countingCrypto(inner: CryptoProvider = crypto): { crypto: CryptoProvider; counts: Map<string, number>; reset(): void } {
  const counts = new Map<string, number>();
  const wrapped = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        counts.set(String(prop), (counts.get(String(prop)) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { crypto: wrapped, counts, reset: () => counts.clear() };
}

/** A group of devices on one network: `admin` creates it with the others as members. */
export async function groupOf(admin: Device, others: readonly Device[], name = 'g'): Promise<{ groupId: GroupId; net: Net }> {
  const net = new Net([admin, ...others]);
  const byUser = new Map<string, DeviceCertificate[]>();
  const siblings: DeviceCertificate[] = [];
  for (const d of others) {
    if (d.certificate.userId === admin.certificate.userId) siblings.push(d.certificate);
    else byUser.set(d.certificate.userId, [...(byUser.get(d.certificate.userId) ?? []), d.certificate]);
  }
  const out = await admin.groups.create({ name, members: [...byUser.values()].map((devices) => ({ devices })), ownDevices: siblings });
  await net.deliver(admin, out.deliveries);
  return { groupId: out.groupId, net };
}

/** A memory store that counts reads and written operations. */
export function countingStorage(): { storage: StorageAdapter; reads: () => number; writes: () => number; reset(): void } {
  const inner = createMemoryStorage();
  let reads = 0;
  let writes = 0;
  const storage: StorageAdapter = {
    specificationVersion: inner.specificationVersion,
    get: (k) => (reads++, inner.get(k)),
    range: (p, o) => (reads++, inner.range(p, o)),
    batch: (ops) => ((writes += ops.length), inner.batch(ops)),
    close: () => inner.close(),
  };
  return { storage, reads: () => reads, writes: () => writes, reset: () => ((reads = 0), (writes = 0)) };
}
