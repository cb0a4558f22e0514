import { isDeadboltError, type StorageAdapter } from '@deadbolt/spec';
import { expectBytesEqual } from '@deadbolt/test-kit';
import { describe, expect, it } from 'vitest';
import { createMemoryStorage, createMemoryStorageBacking, type MemoryStorageBacking } from '../src/index.js';

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('memory storage: backend-specific behaviour', () => {
  it('two open instances over one backing see each other’s writes; closing one leaves the other open', async () => {
    const backing = createMemoryStorageBacking();
    const a = createMemoryStorage({ backing });
    const b = createMemoryStorage({ backing });
    await a.batch([{ type: 'put', key: ['k'], value: Uint8Array.of(1) }]);
    expectBytesEqual(await b.get(['k']), Uint8Array.of(1));
    await a.close();
    await b.batch([{ type: 'put', key: ['k'], value: Uint8Array.of(2) }]);
    expectBytesEqual(await b.get(['k']), Uint8Array.of(2));
    expect(backing.size).toBe(1);
  });

  it('deletion removes the entry from the backing (invariant 6), overwrites do not add entries', async () => {
    const backing = createMemoryStorageBacking();
    const storage = createMemoryStorage({ backing });
    await storage.batch([
      { type: 'put', key: ['a'], value: Uint8Array.of(1) },
      { type: 'put', key: ['a', 'b'], value: Uint8Array.of(2) },
    ]);
    expect(backing.size).toBe(2);
    await storage.batch([{ type: 'put', key: ['a'], value: Uint8Array.of(3) }]);
    expect(backing.size).toBe(2);
    await storage.batch([{ type: 'delete', key: ['a'] }]);
    expect(backing.size).toBe(1);
    await storage.batch([{ type: 'delete', key: ['a', 'b'] }]);
    expect(backing.size).toBe(0);
  });

  it('closing an instance keeps a shared backing intact', async () => {
    const backing = createMemoryStorageBacking();
    const storage = createMemoryStorage({ backing });
    await storage.batch([{ type: 'put', key: ['kept'], value: Uint8Array.of(1) }]);
    await storage.close();
    expect(backing.size).toBe(1);
  });

  it('rejects a backing that createMemoryStorageBacking did not make', () => {
    const fake = { size: 0 } as MemoryStorageBacking;
    let error: unknown;
    try {
      createMemoryStorage({ backing: fake });
    } catch (e) {
      error = e;
    }
    expect(isDeadboltError(error, 'INVALID_ARGUMENT')).toBe(true);
  });

  it('rejects a limit that is not a non-negative integer', async () => {
    const storage = createMemoryStorage();
    await storage.batch([{ type: 'put', key: ['a'], value: Uint8Array.of(1) }]);
    for (const limit of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
      const error = await rejectionOf(storage.range(['a'], { limit }));
      expect(isDeadboltError(error, 'INVALID_ARGUMENT'), `limit ${String(limit)}`).toBe(true);
    }
    const error = await rejectionOf(storage.range(['a'], null as unknown as { limit: number }));
    expect(isDeadboltError(error, 'INVALID_ARGUMENT')).toBe(true);
  });

  it('copies inputs when batch is called, so mutating them before it resolves changes nothing', async () => {
    const storage = createMemoryStorage();
    const value = Uint8Array.of(1, 2, 3);
    const key = ['early'];
    const pending = storage.batch([{ type: 'put', key, value }]);
    value.fill(0);
    key[0] = 'late';
    await pending;
    expectBytesEqual(await storage.get(['early']), Uint8Array.of(1, 2, 3));
    expect(await storage.get(['late'])).toBeUndefined();
  });

  it('reads each key segment once, so a getter cannot pass validation with one value and store another', async () => {
    const storage = createMemoryStorage();
    let reads = 0;
    const key: string[] = [];
    Object.defineProperty(key, 0, { enumerable: true, get: () => (reads++ === 0 ? 'ok' : 42) });
    await storage.batch([{ type: 'put', key, value: Uint8Array.of(1) }]);
    const entries = await storage.range(['ok']);
    expect(entries.map((e) => [...e.key])).toEqual([['ok']]);
  });

  it('handles 20,000 entries written one batch at a time (a sanity check, not a benchmark)', async () => {
    const storage: StorageAdapter = createMemoryStorage();
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      await storage.batch([{ type: 'put', key: ['session', String(i)], value: Uint8Array.of(i & 0xff) }]);
    }
    for (let i = 0; i < n; i += 97) expectBytesEqual(await storage.get(['session', String(i)]), Uint8Array.of(i & 0xff));
    expect(await storage.range(['session'], { limit: 3 })).toHaveLength(3);
  });

  it('answers a range from its prefix index: exact matches by whole segments, kept right through overwrites and deletions', async () => {
    const backing = createMemoryStorageBacking();
    const storage = createMemoryStorage({ backing });
    const put = (key: string[]) => ({ type: 'put' as const, key, value: Uint8Array.of(key.length) });
    // Neighbours that a string-prefix index would confuse with ['a', 'b']: a segment that
    // only starts with 'b', a segment containing the separator, a key one segment shorter.
    await storage.batch([put(['a', 'b']), put(['a', 'b', 'c']), put(['a', 'bc']), put(['a/b']), put(['a']), put(['ab']), put(['a', 'b', 'c', 'd'])]);
    for (let i = 0; i < 500; i++) await storage.batch([put(['other', String(i)])]);
    const keys = async (prefix: string[]) => (await storage.range(prefix)).map((e) => e.key.join('|'));
    expect(await keys(['a', 'b'])).toEqual(['a|b', 'a|b|c', 'a|b|c|d']);
    expect(await keys(['a'])).toEqual(['a', 'a|b', 'a|b|c', 'a|b|c|d', 'a|bc']);
    expect(await keys(['a', 'b', 'c', 'd'])).toEqual(['a|b|c|d']);
    expect(await keys(['a', 'b', 'c', 'd', 'e'])).toEqual([]);
    expect(await keys(['a', 'b', 'x'])).toEqual([]);
    expect(await keys(['other'])).toHaveLength(500);
    expect(backing.size).toBe(507);
    // Overwriting a key keeps one entry; deleting removes it from every prefix it was under.
    await storage.batch([put(['a', 'b', 'c']), { type: 'delete', key: ['a', 'b'] }, { type: 'delete', key: ['a', 'b', 'c', 'd'] }]);
    expect(await keys(['a', 'b'])).toEqual(['a|b|c']);
    expect(await keys(['a'])).toEqual(['a', 'a|b|c', 'a|bc']);
    // A second adapter over the same backing sees the same index (a reopened store).
    await storage.close();
    const reopened = createMemoryStorage({ backing });
    expect((await reopened.range(['a'])).map((e) => e.key.join('|'))).toEqual(['a', 'a|b|c', 'a|bc']);
    for (const prefix of [['a'], ['a/b'], ['ab'], ['other']]) await reopened.batch((await reopened.range(prefix)).map((e) => ({ type: 'delete' as const, key: e.key })));
    expect(backing.size).toBe(0);
    expect(await reopened.range(['a'])).toEqual([]);
  });
});
