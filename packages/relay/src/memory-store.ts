/**
 * The in-memory relay store: for tests, demos and relays whose mailboxes may be lost on
 * restart. Every method runs synchronously inside its promise, so each is atomic in one
 * process (invariant 1); nothing survives the process.
 *
 * @module
 */
import {
  RELAY_STORE_SPECIFICATION_VERSION,
  type EnqueueBatch,
  type KeptDevice,
  type PutDeviceListResult,
  type SharedEnqueueBatch,
  type EnqueueResult,
  type FetchOptions,
  type MailboxQuota,
  type MailboxStats,
  type PrekeyCounts,
  type PrekeyPut,
  type PrekeyQuota,
  type PutPrekeysResult,
  type RegisterDeviceResult,
  type RelayStore,
  type StoreAddress,
  type StoredDevice,
  type StoredMessage,
  type StoredPrekey,
  type TakenBundle,
} from './store.js';
import { addressKey, closedError, copyBytes, listMismatches, newMessageId, quotaRefusal, sameBytes } from './store-util.js';

interface DeviceEntry {
  certificate: Uint8Array;
  signedPrekey: Uint8Array | undefined;
  lastResortPrekey: Uint8Array | undefined;
  oneTime: Map<number, Uint8Array>;
  pq: Map<number, Uint8Array>;
  /** Handed-out ids, oldest first (a Set keeps insertion order). */
  consumedOneTime: Set<number>;
  consumedPq: Set<number>;
}

interface UserEntry {
  accountKey: Uint8Array;
  devices: Map<string, DeviceEntry>;
  list: { version: number; bytes: Uint8Array } | undefined;
}

interface Mailbox {
  /** Insertion order is arrival order. */
  messages: Map<string, StoredMessage>;
  bytes: number;
  perSender: Map<string, number>;
}

function copyMessage(m: StoredMessage): StoredMessage {
  return { id: m.id, from: { userId: m.from.userId, deviceId: m.from.deviceId }, receivedAt: m.receivedAt, frame: copyBytes(m.frame) };
}

function lowest(map: Map<number, Uint8Array>): StoredPrekey | undefined {
  let best: number | undefined;
  for (const id of map.keys()) if (best === undefined || id < best) best = id;
  if (best === undefined) return undefined;
  return { id: best, key: map.get(best) as Uint8Array };
}

function trim(set: Set<number>, keep: number): void {
  let excess = set.size - keep;
  if (excess <= 0) return;
  for (const id of set) {
    set.delete(id);
    if (--excess === 0) break;
  }
}

/**
 * Creates an in-memory relay store (the default store of `createRelay`).
 *
 * @example
 * ```ts
 * const relay = await createRelay({ store: createMemoryRelayStore() });
 * ```
 */
export function createMemoryRelayStore(): RelayStore {
  const users = new Map<string, UserEntry>();
  const mailboxes = new Map<string, Mailbox>();
  let closed = false;

  function open(): void {
    if (closed) throw closedError();
  }

  function device(a: StoreAddress): DeviceEntry | undefined {
    return users.get(a.userId)?.devices.get(a.deviceId);
  }

  function counts(d: DeviceEntry | undefined): PrekeyCounts {
    return { oneTime: d?.oneTime.size ?? 0, pq: d?.pq.size ?? 0 };
  }

  function deleteUserData(user: UserEntry, userId: string): void {
    for (const deviceId of user.devices.keys()) mailboxes.delete(addressKey({ userId, deviceId }));
    user.devices.clear();
    user.list = undefined;
  }

  /** The user's stored device list version (0: none). */
  function listVersionOf(userId: string): number {
    return users.get(userId)?.list?.version ?? 0;
  }

  /**
   * Checks a batch against the quotas (invariant 6) and, if it fits, stores it: one
   * synchronous step, so nothing else runs in between. `frameOf(i)` (called only once the
   * batch fits) goes to `to[i]`.
   */
  function store(
    from: StoreAddress,
    receivedAt: number,
    to: readonly StoreAddress[],
    sizeOf: (i: number) => number,
    frameOf: (i: number) => Uint8Array,
    quota: MailboxQuota,
  ): EnqueueResult {
    const refused = quotaRefusal(to, sizeOf, quota, (m) => {
      if (device(m) === undefined) return undefined;
      const box = mailboxes.get(addressKey(m));
      return { messages: box?.messages.size ?? 0, bytes: box?.bytes ?? 0, fromSender: box?.perSender.get(from.userId) ?? 0 };
    });
    if (refused !== undefined) return refused;
    const ids: string[] = [];
    for (let i = 0; i < to.length; i++) {
      const key = addressKey(to[i] as StoreAddress);
      let box = mailboxes.get(key);
      if (box === undefined) {
        box = { messages: new Map(), bytes: 0, perSender: new Map() };
        mailboxes.set(key, box);
      }
      let id = newMessageId();
      while (box.messages.has(id)) id = newMessageId();
      const frame = frameOf(i);
      box.messages.set(id, { id, from: { userId: from.userId, deviceId: from.deviceId }, receivedAt, frame });
      box.bytes += frame.byteLength;
      box.perSender.set(from.userId, (box.perSender.get(from.userId) ?? 0) + 1);
      ids.push(id);
    }
    return { ok: true, ids };
  }

  return {
    specificationVersion: RELAY_STORE_SPECIFICATION_VERSION,

    async getAccountKey(userId) {
      open();
      const u = users.get(userId);
      return u ? copyBytes(u.accountKey) : undefined;
    },

    async setAccountKey(userId, accountKey, expected) {
      open();
      const u = users.get(userId);
      if (u === undefined) {
        if (expected !== undefined) return false;
        users.set(userId, { accountKey: copyBytes(accountKey), devices: new Map(), list: undefined });
        return true;
      }
      if (expected === undefined || !sameBytes(u.accountKey, expected)) return false;
      if (sameBytes(u.accountKey, accountKey)) return true;
      deleteUserData(u, userId);
      u.accountKey = copyBytes(accountKey);
      return true;
    },

    async getDeviceList(userId) {
      open();
      const l = users.get(userId)?.list;
      return l ? { version: l.version, list: copyBytes(l.bytes) } : undefined;
    },

    async putDeviceList(userId, accountKey, version, list, keep: readonly KeptDevice[]): Promise<PutDeviceListResult> {
      open();
      const u = users.get(userId);
      if (u === undefined || !sameBytes(u.accountKey, accountKey)) return { ok: false, reason: 'account-mismatch' };
      if (u.list !== undefined) {
        if (version < u.list.version) return { ok: false, reason: 'stale' };
        if (version === u.list.version) return sameBytes(u.list.bytes, list) ? { ok: true, changed: false, removed: [] } : { ok: false, reason: 'conflict' };
      }
      // Invariant 11: the list and the deletions in one synchronous step.
      const removed: string[] = [];
      for (const [deviceId, d] of u.devices) {
        if (keep.some((k) => k.deviceId === deviceId && sameBytes(k.certificate, d.certificate))) continue;
        removed.push(deviceId);
      }
      for (const deviceId of removed) {
        u.devices.delete(deviceId);
        mailboxes.delete(addressKey({ userId, deviceId }));
      }
      u.list = { version, bytes: copyBytes(list) };
      return { ok: true, changed: true, removed: removed.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) };
    },

    async registerDevice(address, accountKey, certificate, maxDevices, listVersion): Promise<RegisterDeviceResult> {
      open();
      const u = users.get(address.userId);
      if (u === undefined || !sameBytes(u.accountKey, accountKey)) return 'account-mismatch';
      if ((u.list?.version ?? 0) !== listVersion) return 'list-mismatch';
      const existing = u.devices.get(address.deviceId);
      if (existing !== undefined) {
        if (sameBytes(existing.certificate, certificate)) return 'unchanged';
        existing.certificate = copyBytes(certificate);
        existing.signedPrekey = undefined;
        existing.lastResortPrekey = undefined;
        existing.oneTime.clear();
        existing.pq.clear();
        // A new device key numbers its prekeys afresh: the old ids mean nothing now.
        existing.consumedOneTime.clear();
        existing.consumedPq.clear();
        return 'replaced';
      }
      if (u.devices.size >= maxDevices) return 'too-many-devices';
      u.devices.set(address.deviceId, {
        certificate: copyBytes(certificate),
        signedPrekey: undefined,
        lastResortPrekey: undefined,
        oneTime: new Map(),
        pq: new Map(),
        consumedOneTime: new Set(),
        consumedPq: new Set(),
      });
      return 'registered';
    },

    async getDevice(address) {
      open();
      const d = device(address);
      return d ? copyBytes(d.certificate) : undefined;
    },

    async listDevices(userId): Promise<StoredDevice[]> {
      open();
      const u = users.get(userId);
      if (u === undefined) return [];
      return [...u.devices.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([deviceId, d]) => ({ deviceId, certificate: copyBytes(d.certificate) }));
    },

    async putPrekeys(address, put: PrekeyPut, quota: PrekeyQuota): Promise<PutPrekeysResult> {
      open();
      const d = device(address);
      if (d === undefined) return { ok: false, reason: 'unknown-device' };
      const newOneTime = put.oneTimePrekeys.filter((k) => !d.oneTime.has(k.id) && !d.consumedOneTime.has(k.id));
      const newPq = put.pqPrekeys.filter((k) => !d.pq.has(k.id) && !d.consumedPq.has(k.id));
      const oneTimeIds = new Set(newOneTime.map((k) => k.id));
      const pqIds = new Set(newPq.map((k) => k.id));
      if (d.oneTime.size + oneTimeIds.size > quota.maxOneTime || d.pq.size + pqIds.size > quota.maxPq) {
        return { ok: false, reason: 'quota' };
      }
      d.signedPrekey = copyBytes(put.signedPrekey);
      d.lastResortPrekey = copyBytes(put.lastResortPrekey);
      for (const k of newOneTime) if (!d.oneTime.has(k.id)) d.oneTime.set(k.id, copyBytes(k.key));
      for (const k of newPq) if (!d.pq.has(k.id)) d.pq.set(k.id, copyBytes(k.key));
      trim(d.consumedOneTime, quota.rememberConsumed);
      trim(d.consumedPq, quota.rememberConsumed);
      return { ok: true, counts: counts(d) };
    },

    async takeBundle(address): Promise<TakenBundle | undefined> {
      open();
      const d = device(address);
      if (d === undefined || d.signedPrekey === undefined || d.lastResortPrekey === undefined) return undefined;
      // Invariant 5: both removals happen here, with no await in between.
      const oneTime = lowest(d.oneTime);
      const pq = lowest(d.pq);
      if (oneTime) {
        d.oneTime.delete(oneTime.id);
        d.consumedOneTime.add(oneTime.id);
      }
      if (pq) {
        d.pq.delete(pq.id);
        d.consumedPq.add(pq.id);
      }
      return {
        signedPrekey: copyBytes(d.signedPrekey),
        lastResortPrekey: copyBytes(d.lastResortPrekey),
        ...(oneTime ? { oneTimePrekey: { id: oneTime.id, key: copyBytes(oneTime.key) } } : {}),
        ...(pq ? { pqPrekey: { id: pq.id, key: copyBytes(pq.key) } } : {}),
        remaining: counts(d),
      };
    },

    async prekeyCounts(address) {
      open();
      return counts(device(address));
    },

    async enqueue(batch: EnqueueBatch, quota: MailboxQuota): Promise<EnqueueResult> {
      open();
      // Check the whole batch first (invariant 6), then apply it: nothing between awaits.
      const mismatched = listMismatches(batch.expectedLists, listVersionOf);
      if (mismatched.length > 0) return { ok: false, reason: 'list-mismatch', users: mismatched };
      const messages = batch.messages;
      return store(
        batch.from,
        batch.receivedAt,
        messages.map((m) => m.to),
        (i) => (messages[i] as EnqueueBatch['messages'][number]).frame.byteLength,
        (i) => copyBytes((messages[i] as EnqueueBatch['messages'][number]).frame),
        quota,
      );
    },

    async enqueueShared(batch: SharedEnqueueBatch, quota: MailboxQuota): Promise<EnqueueResult> {
      open();
      const mismatched = listMismatches(batch.expectedLists, listVersionOf);
      if (mismatched.length > 0) return { ok: false, reason: 'list-mismatch', users: mismatched };
      // One private copy shared by every mailbox: stored frames are never mutated, and
      // fetch hands out copies (invariant 9).
      let frame: Uint8Array | undefined;
      return store(batch.from, batch.receivedAt, batch.to, () => batch.frame.byteLength, () => (frame ??= copyBytes(batch.frame)), quota);
    },

    async fetch(mailbox, options: FetchOptions) {
      open();
      const box = mailboxes.get(addressKey(mailbox));
      const out: StoredMessage[] = [];
      if (box === undefined) return out;
      let bytes = 0;
      for (const m of box.messages.values()) {
        if (out.length >= options.limit) break;
        if (options.exclude?.has(m.id)) continue;
        if (options.maxBytes !== undefined && out.length > 0 && bytes + m.frame.byteLength > options.maxBytes) break;
        bytes += m.frame.byteLength;
        out.push(copyMessage(m));
      }
      return out;
    },

    async ack(mailbox, ids) {
      open();
      const key = addressKey(mailbox);
      const box = mailboxes.get(key);
      if (box === undefined) return 0;
      let deleted = 0;
      for (const id of ids) {
        const m = box.messages.get(id);
        if (m === undefined) continue;
        box.messages.delete(id);
        box.bytes -= m.frame.byteLength;
        const n = (box.perSender.get(m.from.userId) ?? 1) - 1;
        if (n === 0) box.perSender.delete(m.from.userId);
        else box.perSender.set(m.from.userId, n);
        deleted++;
      }
      if (box.messages.size === 0) mailboxes.delete(key);
      return deleted;
    },

    async stats(mailbox): Promise<MailboxStats> {
      open();
      const box = mailboxes.get(addressKey(mailbox));
      return { messages: box?.messages.size ?? 0, bytes: box?.bytes ?? 0 };
    },

    async close() {
      if (closed) return;
      closed = true;
      users.clear();
      mailboxes.clear();
    },
  };
}
