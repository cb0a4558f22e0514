/**
 * History paging over the real stack (docs/protocol.md §11.2; storage invariant 12):
 * `history({ limit, before })` reads one page at a time, newest page first, each page
 * oldest first, for 1:1 conversations (both directions) and group conversations, and over
 * encryption at rest.
 */
import { expect, test } from 'vitest';
import { createClient, createEncryptedStorage, type StoredGroupMessage, type StoredMessage } from '@deadbolt/core';
import { isDeadboltError, type StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { makeTransport, perTestRelay, startClient } from './stack.js';

const scope = perTestRelay();

const bodyOf = (m: { readonly body: Uint8Array }): string => new TextDecoder().decode(m.body);

/** Every page of `size`, newest first, by following `before` from each page's oldest message. */
async function pages<M extends StoredMessage | StoredGroupMessage>(read: (options: { limit: number; before?: string }) => Promise<M[]>, size: number): Promise<string[][]> {
  const out: string[][] = [];
  let before: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await read({ limit: size, ...(before !== undefined ? { before } : {}) });
    if (page.length === 0) return out;
    out.push(page.map(bodyOf));
    before = page[0]!.sortKey;
  }
  throw new Error('paging did not end');
}

test('1:1 history pages back from the newest message, both on the sending and on the receiving side, also under encryption at rest', async () => {
  const relay = await scope.start();
  const alice = await startClient('websocket', relay, 'alice', 'phone');
  const bob = await startClient('http-polling', relay, 'bob', 'laptop', createEncryptedStorage(createMemoryStorage(), { key: new Uint8Array(32).fill(7) }));
  scope.open.push(alice.client, bob.client);
  const bodies = Array.from({ length: 25 }, (_, i) => `m${String(i).padStart(2, '0')}`);
  for (const body of bodies) await alice.client.send('bob', body);
  await bob.waitForMessages(25);

  for (const side of [alice.client.history.bind(alice.client, 'bob'), bob.client.history.bind(bob.client, 'alice')]) {
    // Each device orders its history by its own clock (the relay may deliver out of order).
    const all = await side({ limit: 1000 });
    const order = all.map(bodyOf);
    expect([...order].sort()).toEqual(bodies);
    const keys = all.map((m) => m.sortKey);
    expect([...keys].sort()).toEqual(keys); // sortKey order is history order
    // The default page is the newest 100: everything here, oldest first.
    expect((await side()).map(bodyOf)).toEqual(order);
    expect(await pages(side, 10)).toEqual([order.slice(15), order.slice(5, 15), order.slice(0, 5)]);
    // `before` is a bound, not a lookup: a key between two messages pages from there.
    expect((await side({ limit: 3, before: `${keys[7]!}~` })).map(bodyOf)).toEqual(order.slice(5, 8));
    expect(await side({ before: keys[0]! })).toEqual([]);
  }

  for (const before of [42, '', 'x'.repeat(513)] as unknown[]) {
    const caught = await alice.client.history('bob', { before: before as string }).catch((e: unknown) => e);
    if (before === '') expect(caught).toEqual([]); // an empty string sorts before every key
    else expect(isDeadboltError(caught, 'INVALID_ARGUMENT')).toBe(true);
  }
  expect(isDeadboltError(await alice.client.history('bob', { limit: 2.5 }).catch((e: unknown) => e), 'INVALID_ARGUMENT')).toBe(true);
});

test('group history pages back the same way', async () => {
  const relay = await scope.start();
  const alice = await startClient('websocket', relay, 'alice', 'phone');
  const bob = await startClient('websocket', relay, 'bob', 'laptop');
  scope.open.push(alice.client, bob.client);
  const group = await alice.client.createGroup({ name: 'paging', members: ['bob'] });
  const bodies = Array.from({ length: 12 }, (_, i) => `g${String(i).padStart(2, '0')}`);
  for (const body of bodies) await group.send(body);
  expect(await pages((options) => group.history(options), 5)).toEqual([bodies.slice(7), bodies.slice(2, 7), bodies.slice(0, 2)]);
  expect((await group.history({ limit: 1 })).map(bodyOf)).toEqual(['g11']);
});

test('createClient refuses a storage adapter of an older contract version, which would ignore range windows', async () => {
  const relay = await scope.start();
  const current = createMemoryStorage();
  const v1 = { ...current, specificationVersion: 'deadbolt.storage.v1' } as unknown as StorageAdapter;
  const caught = await createClient({ userId: 'alice', deviceId: 'phone', storage: v1, transport: makeTransport('websocket', relay) }).catch((e: unknown) => e);
  expect(isDeadboltError(caught, 'INVALID_ARGUMENT')).toBe(true);
  expect(isDeadboltError(caught, 'INVALID_ARGUMENT') && caught.details).toEqual({ field: 'storage', expected: 'a deadbolt.storage.v2 adapter' });
  // Through configuration, the adapter the package creates is checked the same way.
  const module = { createStorageAdapter: () => v1 };
  const viaConfig = await createClient({ userId: 'alice', deviceId: 'phone', storage: { adapter: 'legacy-storage' }, transport: makeTransport('websocket', relay), loadModule: async () => module }).catch((e: unknown) => e);
  expect(isDeadboltError(viaConfig, 'INVALID_ARGUMENT')).toBe(true);
  await current.close();
});
