/**
 * `range` keeps each prefix's key order between calls and finds windows by binary search
 * (memory-storage.ts). This checks it against a plain model, a sort of every matching key
 * on every call, through random interleavings of puts, overwrites, deletes and windowed
 * ranges, over edge-case segments (keys that are prefixes of others, NUL, the highest
 * code unit, a lone surrogate) and bounds inside and outside the prefix: a cached order
 * that a write failed to drop, or a window edge off by one, shows up as a mismatch.
 */
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { compareStorageKeys, keyHasPrefix, type StorageKey } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking } from '../src/index.js';

const segment = fc.constantFrom('', 'a', 'a\u0000', 'ab', 'b', '\uffff', '\ud800', 'm');
// Few first segments and short keys, so that bounds often equal stored keys under the
// prefix read (the window's ends are exclusive) and prefixes often hold several keys.
const head = fc.constantFrom('a', 'b');
const key = fc.tuple(head, fc.array(segment, { maxLength: 1 })).map(([h, rest]) => [h, ...rest]);
const prefix = head.map((h) => [h]);
const op = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ type: fc.constant('delete' as const), key }),
  fc.record({
    type: fc.constant('range' as const),
    prefix,
    reverse: fc.boolean(),
    limit: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    after: fc.option(key, { nil: undefined }),
    before: fc.option(key, { nil: undefined }),
  }),
);

test('range windows match a full sort of the matches after any sequence of writes (two adapters on one backing too)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
      const backing = createMemoryStorageBacking();
      // Two adapters over one backing: a write through one must drop the order the other cached.
      const stores = [createMemoryStorage({ backing }), createMemoryStorage({ backing })];
      const model = new Map<string, { key: StorageKey; value: number }>();
      let turn = 0;
      for (const o of ops) {
        const store = stores[turn++ % 2]!;
        if (o.type === 'put') {
          await store.batch([{ type: 'put', key: o.key, value: Uint8Array.of(o.value) }]);
          model.set(JSON.stringify(o.key), { key: o.key, value: o.value });
        } else if (o.type === 'delete') {
          await store.batch([{ type: 'delete', key: o.key }]);
          model.delete(JSON.stringify(o.key));
        } else {
          const inWindow = (k: StorageKey): boolean =>
            keyHasPrefix(k, o.prefix) && (o.after === undefined || compareStorageKeys(k, o.after) > 0) && (o.before === undefined || compareStorageKeys(k, o.before) < 0);
          const expected = [...model.values()].filter((e) => inWindow(e.key)).sort((a, b) => compareStorageKeys(a.key, b.key));
          if (o.reverse) expected.reverse();
          const wanted = expected.slice(0, o.limit ?? expected.length).map((e) => ({ key: e.key, value: Uint8Array.of(e.value) }));
          const options = { reverse: o.reverse, ...(o.limit !== undefined ? { limit: o.limit } : {}), ...(o.after ? { after: o.after } : {}), ...(o.before ? { before: o.before } : {}) };
          expect(await store.range(o.prefix, options)).toEqual(wanted);
        }
      }
      // Leave the backing to the garbage collector: closing the shared adapters keeps it intact.
      for (const s of stores) await s.close();
    }),
    { numRuns: 300 },
  );
});

test('a delete under a prefix whose order is kept takes out that key, not another', async () => {
  const store = createMemoryStorage();
  const put = (k: string) => store.batch([{ type: 'put', key: ['p', k], value: Uint8Array.of(k.charCodeAt(0)) }]);
  for (const k of ['a', 'b', 'c', 'd']) await put(k);
  expect((await store.range(['p'])).map((e) => e.key[1])).toEqual(['a', 'b', 'c', 'd']); // the order is now kept
  await store.batch([{ type: 'delete', key: ['p', 'c'] }]);
  await put('bb');
  expect((await store.range(['p'])).map((e) => e.key[1])).toEqual(['a', 'b', 'bb', 'd']);
  expect((await store.range(['p'], { reverse: true, limit: 2 })).map((e) => e.key[1])).toEqual(['d', 'bb']);
});
