/**
 * A send that a crash interrupts (docs/protocol.md §11.2; core client/interrupted-sends.ts):
 * the message was recorded `pending` and its frames were handed to the transport, and the
 * process died before the answer. At the next start the message is `failed` (it may or may
 * not have reached the relay: the user decides whether to send it again), for a 1:1 and a
 * group message alike, and sends that finished leave nothing to resolve.
 */
import { afterEach, expect, test } from 'vitest';
import { createClient, type Client } from '@deadbolt/core';
import type { Relay } from '@deadbolt/relay';
import type { SharedRecipient, StorageAdapter, TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking, type MemoryStorageBacking } from '@deadbolt/storage-memory';
import { makeTransport, startClient, startRelay, type TestClient } from './stack.js';

let relay: Relay | undefined;
const clients: TestClient[] = [];
const others: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.client.close();
  for (const c of others.splice(0)) await c.close().catch(() => undefined);
  await relay?.close();
  relay = undefined;
});

/**
 * A transport that hangs for ever once `hang` is set: the frames are handed over and no
 * answer ever comes, as when the process dies right after writing them. `handedOver`
 * resolves at that moment.
 */
function hangingTransport(inner: TransportAdapter): { transport: TransportAdapter; hang: () => Promise<void> } {
  let hanging = false;
  let handedOver: () => void = () => {};
  const never = new Promise<void>(() => {});
  const transport = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'send' && hanging) return () => (handedOver(), never);
      if (prop === 'sendShared' && hanging) return (_recipients: readonly SharedRecipient[], _frame: Uint8Array) => (handedOver(), never);
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    transport,
    hang: () => {
      hanging = true;
      return new Promise<void>((resolve) => (handedOver = resolve));
    },
  };
}

async function aliceOn(backing: MemoryStorageBacking, transport: TransportAdapter): Promise<Client> {
  const client = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage({ backing }), transport });
  others.push(client);
  await client.start();
  return client;
}

const markers = (storage: StorageAdapter) => storage.range(['pending-send']);

/** A relay; Bob; Alice over a backing that outlives her, on a transport that can hang. */
async function aliceAndBob() {
  const r = await startRelay();
  relay = r;
  const bob = await startClient('websocket', r, 'bob', 'laptop');
  clients.push(bob);
  const backing = createMemoryStorageBacking();
  const first = hangingTransport(makeTransport('websocket', r));
  const alice = await aliceOn(backing, first.transport);
  return { bob, backing, first, alice, relay: r };
}

test('a 1:1 and a group send left pending by a crash are failed at the next start; finished sends leave no marker', async () => {
  const { bob, backing, first, alice, relay: r } = await aliceAndBob();
  const view = createMemoryStorage({ backing });

  // Finished sends, either way, settle their marker in the same batch as their outcome.
  await alice.send('bob', 'delivered');
  const group = await alice.createGroup({ name: 'crash', members: ['bob'] });
  await group.send('group delivered');
  expect(await markers(view)).toEqual([]);

  // The process "dies" with one message of each kind handed to the transport.
  let handed = first.hang();
  void alice.send('bob', 'interrupted').catch(() => undefined);
  await handed;
  handed = first.hang();
  void group.send('group interrupted').catch(() => undefined);
  await handed;
  expect((await alice.history('bob')).map((m) => m.status)).toEqual(['sent', 'pending']);
  expect((await group.history()).map((m) => m.status)).toEqual(['sent', 'pending']);
  expect((await markers(view)).map((e) => e.key[1])).toEqual(['d', 'g']);

  // The next run over the same store: both are failed before it even connects.
  const again = await aliceOn(backing, makeTransport('websocket', r));
  expect((await again.history('bob')).map((m) => [new TextDecoder().decode(m.body), m.status])).toEqual([
    ['delivered', 'sent'],
    ['interrupted', 'failed'],
  ]);
  const regroup = (await again.group(group.id))!;
  expect((await regroup.history()).map((m) => [new TextDecoder().decode(m.body), m.status])).toEqual([
    ['group delivered', 'sent'],
    ['group interrupted', 'failed'],
  ]);
  expect(await markers(view)).toEqual([]);
  // And the conversation goes on.
  await again.send('bob', 'after the crash');
  await bob.waitForMessages(2);
  expect(bob.received.map((m) => new TextDecoder().decode(m.body))).toContain('after the crash');
});

/** Alice's process "dies" with one 1:1 send handed over; the store it left, and its marker. */
async function interruptedOnce() {
  const { backing, first, alice, relay: r } = await aliceAndBob();
  const handed = first.hang();
  void alice.send('bob', 'interrupted').catch(() => undefined);
  await handed;
  const view = createMemoryStorage({ backing });
  const [marker] = await markers(view);
  return { backing, view, marker: marker!, relay: r };
}

/** The next run over the same store, started, with the `error` events it emitted. */
async function restart(backing: MemoryStorageBacking, r: Relay) {
  const errors: unknown[] = [];
  const again = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage({ backing }), transport: makeTransport('websocket', r) });
  others.push(again);
  again.on('error', (e) => errors.push(e));
  await again.start();
  return { again, codes: errors.map((e) => (e as { code?: string }).code) };
}

test('a marker whose record is corrupted is reported and dropped; start goes on', async () => {
  const { backing, view, marker, relay: r } = await interruptedOnce();
  const key = ['msg', 'bob', marker.key[3]!];
  const record = (await view.get(key))!;
  record[record.length - 1]! ^= 1;
  await view.batch([{ type: 'put', key, value: record }]);

  const { codes } = await restart(backing, r);
  expect(codes).toEqual(['CORRUPTED_RECORD']);
  expect(await markers(view)).toEqual([]);
});

test('a marker whose key is not a user id (a tampered store) is reported and dropped; start goes on, and resolves the others', async () => {
  const { backing, view, marker, relay: r } = await interruptedOnce();
  // A copy of the marker and of its pending record under a conversation no user id names.
  const sortKey = marker.key[3]!;
  await view.batch([
    { type: 'put', key: ['pending-send', 'd', 'not a user id!', sortKey], value: marker.value },
    { type: 'put', key: ['msg', 'not a user id!', sortKey], value: (await view.get(['msg', 'bob', sortKey]))! },
  ]);

  const { again, codes } = await restart(backing, r);
  expect(codes).toEqual(['CORRUPTED_RECORD']);
  expect((await again.history('bob')).map((m) => m.status)).toEqual(['failed']);
  expect(await markers(view)).toEqual([]);
});
