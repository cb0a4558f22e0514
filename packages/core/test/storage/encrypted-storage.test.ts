/**
 * Encryption at rest (docs/protocol.md §7.5): the wrapper is a full storage adapter, what
 * it writes is sealed, a wrong key and a plaintext store are clear errors, and a swapped,
 * truncated or tampered value is CORRUPTED_RECORD, never returned.
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError, STORAGE_LIMITS, type StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking, type MemoryStorageBacking } from '@deadbolt/storage-memory';
import { describeStorageConformance, rejectionOf } from '@deadbolt/test-kit';
import { AT_REST_CHECK_KEY, createEncryptedStorage, createSessionManager, encodeStoragePath, SEAL_OVERHEAD, utf8 } from '../../src/index.js';
import { nodeCrypto } from '../helpers/parties.js';

const KEY = new Uint8Array(32).fill(7);
const OTHER_KEY = new Uint8Array(32).fill(8);
const backingOf = new WeakMap<StorageAdapter, MemoryStorageBacking>();
const wrap = (backing: MemoryStorageBacking, key = KEY): StorageAdapter => {
  const storage = createEncryptedStorage(createMemoryStorage({ backing }), { key, crypto: nodeCrypto });
  backingOf.set(storage, backing);
  return storage;
};

describeStorageConformance('encrypted at rest (over memory)', {
  maxValueBytes: STORAGE_LIMITS.maxValueBytes - SEAL_OVERHEAD,
  async create() {
    return wrap(createMemoryStorageBacking());
  },
  async reopen(previous) {
    await previous.close();
    return wrap(backingOf.get(previous)!);
  },
  async openShared(first) {
    return wrap(backingOf.get(first)!);
  },
});


describe('encryption at rest (§7.5)', () => {
  test('the backend holds only sealed values: no plaintext byte pattern, 49 bytes of overhead, a fresh salt per write', async () => {
    const backing = createMemoryStorageBacking();
    const sealed = wrap(backing);
    const secret = utf8('a very recognisable plaintext marker');
    await sealed.batch([{ type: 'put', key: ['history', 'bob', 'm1'], value: secret }]);
    await sealed.batch([{ type: 'put', key: ['history', 'bob', 'm2'], value: secret }]);
    const raw = createMemoryStorage({ backing });
    const [a, b] = (await raw.range(['history'])).map((e) => e.value);
    expect(a!.length).toBe(secret.length + SEAL_OVERHEAD);
    expect(Buffer.from(a!).includes(Buffer.from(secret))).toBe(false);
    expect(Buffer.from(a!.subarray(1, 33)).equals(Buffer.from(b!.subarray(1, 33)))).toBe(false);
    expect(await sealed.get(['history', 'bob', 'm1'])).toEqual(secret);
  });

  test('a wrong key is STORAGE_ENCRYPTION wrong-key on the first operation, and nothing is returned or written', async () => {
    const backing = createMemoryStorageBacking();
    const right = wrap(backing);
    await right.batch([{ type: 'put', key: ['k'], value: utf8('v') }]);
    const wrong = wrap(backing, OTHER_KEY);
    for (const call of [() => wrong.get(['k']), () => wrong.range(['k']), () => wrong.batch([{ type: 'put', key: ['k'], value: utf8('x') }])]) {
      const e = await rejectionOf(call());
      expect(isDeadboltError(e, 'STORAGE_ENCRYPTION') && e.details.reason).toBe('wrong-key');
    }
    expect(await right.get(['k'])).toEqual(utf8('v'));
  });

  test('a store that already holds plaintext state is STORAGE_ENCRYPTION store-not-encrypted (never mixed)', async () => {
    const backing = createMemoryStorageBacking();
    const plain = createSessionManager({ storage: createMemoryStorage({ backing }), crypto: nodeCrypto });
    await plain.createIdentity({ userId: 'alice', deviceId: 'phone' });
    const e = await rejectionOf(wrap(backing).get(['identity']));
    expect(isDeadboltError(e, 'STORAGE_ENCRYPTION') && e.details.reason).toBe('store-not-encrypted');
  });

  test('core refuses a sealed store opened without its key (store-encrypted), for reading and for creating an identity', async () => {
    const backing = createMemoryStorageBacking();
    const sealed = createSessionManager({ storage: wrap(backing), crypto: nodeCrypto });
    await sealed.createIdentity({ userId: 'alice', deviceId: 'phone' });
    expect((await sealed.certificate()).userId).toBe('alice');
    const raw = createSessionManager({ storage: createMemoryStorage({ backing }), crypto: nodeCrypto });
    const read = await rejectionOf(raw.certificate());
    expect(isDeadboltError(read, 'STORAGE_ENCRYPTION') && read.details.reason).toBe('store-encrypted');
    const emptyLooking = createMemoryStorageBacking();
    await wrap(emptyLooking).batch([{ type: 'put', key: ['x'], value: utf8('y') }]); // writes the key check
    const create = await rejectionOf(createSessionManager({ storage: createMemoryStorage({ backing: emptyLooking }), crypto: nodeCrypto }).createIdentity({ userId: 'a', deviceId: 'b' }));
    expect(isDeadboltError(create, 'STORAGE_ENCRYPTION') && create.details.reason).toBe('store-encrypted');
  });

  test('a session manager works unchanged over the wrapper, and survives reopening with the key', async () => {
    const backing = createMemoryStorageBacking();
    const first = createSessionManager({ storage: wrap(backing), crypto: nodeCrypto });
    const certificate = await first.createIdentity({ userId: 'alice', deviceId: 'phone' });
    await first.generatePrekeys({ oneTime: 2, pqOneTime: 1 });
    const again = createSessionManager({ storage: wrap(backing), crypto: nodeCrypto });
    expect(await again.certificate()).toEqual(certificate);
  });

  test('a value moved to another key (swapped rows), truncated or with one bit flipped is CORRUPTED_RECORD', async () => {
    const backing = createMemoryStorageBacking();
    const sealed = wrap(backing);
    await sealed.batch([
      { type: 'put', key: ['s', 'a'], value: utf8('alpha') },
      { type: 'put', key: ['s', 'b'], value: utf8('beta') },
    ]);
    const raw = createMemoryStorage({ backing });
    const a = (await raw.get(['s', 'a']))!;
    const b = (await raw.get(['s', 'b']))!;
    const expectCorrupted = async (value: Uint8Array, what: string) => {
      await raw.batch([{ type: 'put', key: ['s', 'a'], value }]);
      const e = await rejectionOf(sealed.get(['s', 'a']));
      expect(isDeadboltError(e, 'CORRUPTED_RECORD'), what).toBe(true);
      expect(String((e as Error).message)).not.toContain('beta');
      const r = await rejectionOf(sealed.range(['s']));
      expect(isDeadboltError(r, 'CORRUPTED_RECORD'), `${what} (range)`).toBe(true);
    };
    await expectCorrupted(b, 'swapped');
    await expectCorrupted(a.subarray(0, a.length - 1), 'truncated');
    const flipped = a.slice();
    flipped[40]! ^= 1;
    await expectCorrupted(flipped, 'bit flipped');
    await expectCorrupted(a.subarray(0, 10), 'shorter than the overhead');
    await raw.batch([{ type: 'put', key: ['s', 'a'], value: a }]);
    expect(await sealed.get(['s', 'a'])).toEqual(utf8('alpha'));
  });

  test('the key-check entry is hidden from get and range, and cannot be written or deleted through the wrapper', async () => {
    const sealed = wrap(createMemoryStorageBacking());
    await sealed.batch([{ type: 'put', key: ['at-rest', 'x'], value: utf8('1') }]);
    expect(await sealed.get(AT_REST_CHECK_KEY)).toBeUndefined();
    expect((await sealed.range(['at-rest'])).map((e) => e.key)).toEqual([['at-rest', 'x']]);
    expect((await sealed.range(['at-rest'], { limit: 1 })).map((e) => e.key)).toEqual([['at-rest', 'x']]);
    for (const op of [{ type: 'put' as const, key: AT_REST_CHECK_KEY, value: utf8('x') }, { type: 'delete' as const, key: AT_REST_CHECK_KEY }]) {
      const e = await rejectionOf(sealed.batch([op]));
      expect(isDeadboltError(e, 'INVALID_ARGUMENT')).toBe(true);
    }
  });

  test('paths are encoded by UTF-16 code units, so keys differing only in lone surrogates get different associated data', () => {
    const a = encodeStoragePath(['x', '\ud800']);
    const b = encodeStoragePath(['x', '\udc00']);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect([...encodeStoragePath(['ab', ''])]).toEqual([2, 0, 2, 0, 0x61, 0, 0x62, 0, 0]);
    expect(Buffer.from(encodeStoragePath(['a', 'b'])).equals(Buffer.from(encodeStoragePath(['ab'])))).toBe(false);
  });

  test('a key that is not 32 bytes is refused', () => {
    expect(() => createEncryptedStorage(createMemoryStorage(), { key: new Uint8Array(16) })).toThrow(/32 bytes/);
  });

  test('an adapter of an older contract version is refused: the wrapper reports the current one, so it must not pass an old adapter off as current', () => {
    const current = createMemoryStorage();
    const v1 = { ...current, specificationVersion: 'deadbolt.storage.v1' } as unknown as StorageAdapter;
    const caught = (() => {
      try {
        createEncryptedStorage(v1, { key: new Uint8Array(32) });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isDeadboltError(caught, 'INVALID_ARGUMENT') && caught.details).toEqual({ field: 'storage', expected: 'a deadbolt.storage.v2 adapter' });
    expect(createEncryptedStorage(current, { key: new Uint8Array(32) }).specificationVersion).toBe('deadbolt.storage.v2');
  });
});
