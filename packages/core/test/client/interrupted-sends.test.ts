/**
 * Sends a crash interrupted (docs/protocol.md §11.2; src/client/interrupted-sends.ts), at
 * the module's level: two tabs sharing one store, where the resolution at one tab's start
 * and the other tab's outcome must not interleave (storage invariant 11), and markers
 * whose key a tampered store made unusable. The interleavings are forced by storage
 * wrappers that pause at one call and wait on the other tab, never on time. The crash
 * itself, through whole clients and a relay, is e2e/test/interrupted-sends.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { deviceId, StorageError, userId, type StorageAdapter, type StorageKey, type StorageOp } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking } from '@deadbolt/storage-memory';
import { toHex } from '../../src/codec/bytes.js';
import {
  ClientRecordType,
  encodeStoredMessage,
  historyKeys,
  outgoingMessage,
  readStoredMessage,
  type DeliveryStatus,
  type StoredMessage,
} from '../../src/client/history.js';
import { failInterruptedSends, pendingSendMarker, settleSend } from '../../src/client/interrupted-sends.js';
import { openRecord, sealRecord } from '../../src/session/record-envelope.js';
import { nodeCrypto as crypto } from '../helpers/parties.js';

const bob = userId('bob');
const alice = { userId: userId('alice'), deviceId: deviceId('phone') };

/** One outgoing message to Bob, its history write in any status, and its record read back. */
function messageToBob(conversation: string = bob) {
  const messageId = crypto.randomBytes(16);
  const id = toHex(messageId);
  const sortKey = historyKeys.sortKey(1_700_000_000_000, 'outgoing', id);
  const key = historyKeys.message(conversation, sortKey);
  const record = (status: DeliveryStatus): StoredMessage => ({ ...outgoingMessage({ id, sender: alice, sentAt: 1, sortKey, body: new Uint8Array([1]) }, status), conversation: bob });
  const write = (m: StoredMessage): StorageOp => ({ type: 'put', key, value: sealRecord(crypto, ClientRecordType.MESSAGE, encodeStoredMessage(m, messageId)) });
  /** What `client.send` writes before handing the frames over (§11.2). */
  const pending: StorageOp[] = [write(record('pending')), pendingSendMarker(crypto, 'd', conversation, sortKey)];
  const status = async (storage: StorageAdapter) => openRecord(crypto, key, ClientRecordType.MESSAGE, (await storage.get(key))!, (r) => readStoredMessage(r, bob, sortKey)).status;
  return { sortKey, key, record, write, pending, status };
}

/** `inner` with `hooks` in front of some of its calls; the rest, `exclusive` included, passed through. */
function hooked(inner: StorageAdapter, hooks: Partial<Pick<StorageAdapter, 'get' | 'range' | 'batch' | 'exclusive'>>): StorageAdapter {
  return {
    specificationVersion: inner.specificationVersion,
    get: hooks.get ?? ((key) => inner.get(key)),
    range: hooks.range ?? ((prefix, options) => inner.range(prefix, options)),
    batch: hooks.batch ?? ((ops) => inner.batch(ops)),
    ...(inner.exclusive ? { exclusive: hooks.exclusive ?? (<T>(fn: () => Promise<T>) => inner.exclusive!(fn)) } : {}),
    close: () => inner.close(),
  };
}

/** A promise and its resolver, to hand a turn from one tab to the other. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

const markers = (storage: StorageAdapter) => storage.range(['pending-send']);

/**
 * Tab A has recorded a message `pending` (with its marker) and is sending it: its
 * `settleSend` waits on `delivered`. `settling` fires once A goes to record the outcome:
 * when it asks for the lock, or (without one) once its batch is written.
 */
async function tabASending(backing: ReturnType<typeof createMemoryStorageBacking>) {
  const raw = createMemoryStorage({ backing });
  const message = messageToBob();
  await raw.batch(message.pending);
  const delivered = signal();
  const settling = signal();
  const tabA = hooked(raw, {
    batch: async (ops) => {
      await raw.batch(ops);
      settling.fire();
    },
    exclusive: (fn) => {
      settling.fire();
      return raw.exclusive!(fn);
    },
  });
  const sending = settleSend(tabA, { kind: 'd', conversation: bob, sortKey: message.sortKey }, message.record, message.write, () => delivered.promise);
  return { raw, message, delivered, settling, sending };
}

describe('recording the outcome when the lock cannot be had', () => {
  const busy = (): never => {
    throw new StorageError('STORAGE_BUSY', { message: 'another process holds the store', details: { operation: 'exclusive', waitedMs: 30_000 } });
  };

  test('a delivered message is recorded sent without the lock (STORAGE_BUSY), not turned into an error and a later failed', async () => {
    const raw = createMemoryStorage();
    const message = messageToBob();
    await raw.batch(message.pending);
    const locked = hooked(raw, { exclusive: async () => busy() });
    const sent = await settleSend(locked, { kind: 'd', conversation: bob, sortKey: message.sortKey }, message.record, message.write, async () => undefined);
    expect(sent.status).toBe('sent');
    expect(await message.status(raw)).toBe('sent');
    expect(await markers(raw)).toEqual([]);
  });

  test('a failed delivery rejects with its own error even when recording the outcome fails; the marker stays for the next start', async () => {
    const raw = createMemoryStorage();
    const message = messageToBob();
    await raw.batch(message.pending);
    const broken = hooked(raw, {
      exclusive: async () => busy(),
      batch: async () => {
        throw new StorageError('STORAGE_FAILED', { message: 'disk full', details: { operation: 'batch' } });
      },
    });
    const delivery = new Error('relay unreachable');
    await expect(settleSend(broken, { kind: 'd', conversation: bob, sortKey: message.sortKey }, message.record, message.write, async () => Promise.reject(delivery))).rejects.toBe(delivery);
    expect(await message.status(raw)).toBe('pending');
    expect(await markers(raw)).toHaveLength(1);
  });
});

describe('two tabs on one store: a resolution at start and the other tab\'s outcome', () => {
  test('the outcome recorded between the resolution\'s read and its write still has the last word (sent, no marker left)', async () => {
    const backing = createMemoryStorageBacking();
    const a = await tabASending(backing);
    // Tab B starts. Once its read of the record is answered (`pending`), A's send is
    // acknowledged and A goes to record `sent`; B's write comes after.
    const rawB = createMemoryStorage({ backing });
    let paused = false;
    const tabB = hooked(rawB, {
      get: async (key) => {
        const value = await rawB.get(key);
        if (key[0] === 'msg' && !paused) {
          paused = true;
          a.delivered.fire();
          await a.settling.promise;
        }
        return value;
      },
    });
    const failed = await failInterruptedSends(tabB, crypto, (e) => expect.unreachable(String(e)));
    expect(paused).toBe(true);
    expect((await a.sending).status).toBe('sent');
    // B did fail it for a moment (the limit the module documents: it cannot tell a live
    // send from an interrupted one), but A's outcome landed after it, under the lock.
    expect(failed).toBe(1);
    expect(await a.message.status(a.raw)).toBe('sent');
    expect(await markers(a.raw)).toEqual([]);
  });

  test('a marker the sender settles after the resolution listed it is skipped', async () => {
    const backing = createMemoryStorageBacking();
    const a = await tabASending(backing);
    // B lists A's marker; A then records `sent` before B resolves it.
    const rawB = createMemoryStorage({ backing });
    const tabB = hooked(rawB, {
      range: async (prefix, options) => {
        const listed = await rawB.range(prefix, options);
        a.delivered.fire();
        await a.sending;
        return listed;
      },
    });
    expect(await failInterruptedSends(tabB, crypto, (e) => expect.unreachable(String(e)))).toBe(0);
    expect(await a.message.status(a.raw)).toBe('sent');
    expect(await markers(a.raw)).toEqual([]);
  });

  test('an adapter without the lock (one client at a time): a marker left is resolved all the same', async () => {
    const raw = createMemoryStorage();
    const message = messageToBob();
    await raw.batch(message.pending);
    const { exclusive: _none, ...unlocked } = hooked(raw, {});
    expect(await failInterruptedSends(unlocked, crypto, (e) => expect.unreachable(String(e)))).toBe(1);
    expect(await message.status(raw)).toBe('failed');
    expect(await markers(raw)).toEqual([]);
  });
});

describe('a marker with an unusable key is corrupted: reported and deleted, never fatal', () => {
  // Each names the same sortKey as a pending message stored under the tampered conversation.
  const cases: [string, (sortKey: string) => StorageKey][] = [
    ['a conversation that is not a user id', (sortKey) => ['pending-send', 'd', 'not a user id!', sortKey]],
    ['a group conversation that is not a group id', (sortKey) => ['pending-send', 'g', 'not a user id!', sortKey]],
    ['an unknown kind', (sortKey) => ['pending-send', 'x', 'not a user id!', sortKey]],
    ['a key of the wrong length', () => ['pending-send', 'd', 'not a user id!']],
  ];
  test.each(cases)('%s', async (_name, keyOf) => {
    const storage = createMemoryStorage();
    // The tampered marker's record is well-formed, and so is the pending message it names;
    // a sound marker next to it is resolved as usual.
    const tampered = messageToBob('not a user id!');
    const key = keyOf(tampered.sortKey);
    const sound = messageToBob();
    await storage.batch([{ type: 'put', key, value: sealRecord(crypto, ClientRecordType.PENDING_SEND, new Uint8Array(0)) }, tampered.pending[0]!, ...sound.pending]);
    const reported: unknown[] = [];
    expect(await failInterruptedSends(storage, crypto, (e) => reported.push(e))).toBe(1);
    expect(reported).toEqual([expect.objectContaining({ code: 'CORRUPTED_RECORD', details: expect.objectContaining({ key: key.join('/') }) })]);
    expect(await sound.status(storage)).toBe('failed');
    expect(await markers(storage)).toEqual([]);
    // And the next start has nothing left to trip on.
    expect(await failInterruptedSends(storage, crypto, (e) => reported.push(e))).toBe(0);
    expect(reported).toHaveLength(1);
  });
});
