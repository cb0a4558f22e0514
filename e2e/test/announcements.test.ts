/**
 * Announcements (docs/protocol.md §11.4) over the real relay, with Bob on SQLite: a
 * committed message whose event was not handled when Bob's process stopped is emitted
 * again at his next start, flagged `redelivered`, once; a handled one never is.
 *
 * "Not handled" is made two ways, both of which a real app meets: a listener whose
 * promise had not settled when the client closed, and a client that stopped before the
 * handled marker's deletion reached the disk (a storage that refuses that deletion, as a
 * process killed at that instant would). The SIGKILL test (crash-consistency.test.ts)
 * covers the same gap with real kills.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createClient, type Client, type ReceivedGroupMessage, type ReceivedMessage } from '@deadbolt/core';
import type { Relay } from '@deadbolt/relay';
import type { StorageAdapter } from '@deadbolt/spec';
import { createSqliteStorage } from '@deadbolt/storage-sqlite';
import { makeTransport, startClient, startRelay, type TestClient } from './stack.js';

const text = (m: { readonly body: Uint8Array }): string => new TextDecoder().decode(m.body);

let relay: Relay;
let alice: TestClient;
let dir: string;
const open: Client[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'deadbolt-announce-'));
  relay = await startRelay();
  alice = await startClient('websocket', relay, 'alice', 'phone');
});

afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
  await alice.client.close();
  await relay.close();
  rmSync(dir, { recursive: true, force: true });
});

type Refusing = StorageAdapter & { refuse: boolean; refused: number; deleted: number; markersDeleted(n: number): Promise<void> };

/**
 * A storage whose batches that only delete announcement markers fail while `refuse` is
 * set; `markersDeleted(n)` resolves once `n` markers were deleted.
 */
function refusingMarkerDeletes(inner: StorageAdapter): Refusing {
  const waiters: { n: number; resolve: () => void }[] = [];
  const wrapper: Refusing = {
    specificationVersion: inner.specificationVersion,
    refuse: false,
    refused: 0,
    deleted: 0,
    markersDeleted: (n) => (wrapper.deleted >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    get: (key) => inner.get(key),
    range: (prefix, options) => inner.range(prefix, options),
    close: () => inner.close(),
    exclusive: (fn) => inner.exclusive!(fn),
    async batch(ops) {
      if (wrapper.refuse && ops.length > 0 && ops.every((op) => op.type === 'delete' && op.key[0] === 'announce')) {
        wrapper.refused++;
        throw new Error('killed before the marker was deleted');
      }
      await inner.batch(ops);
      wrapper.deleted += ops.filter((op) => op.type === 'delete' && op.key[0] === 'announce').length;
      for (const w of waiters.splice(0)) (wrapper.deleted >= w.n ? w.resolve : () => waiters.push(w))();
    },
  };
  return wrapper;
}

interface Bob {
  client: Client;
  direct: ReceivedMessage[];
  group: ReceivedGroupMessage[];
  /** Resolves once `n` events (1:1 and group together) arrived. */
  events(n: number): Promise<void>;
}

async function startBob(storage: StorageAdapter, listener?: (m: ReceivedMessage) => void | Promise<void>): Promise<Bob> {
  const client = await createClient({ userId: 'bob', deviceId: 'laptop', storage, transport: makeTransport('websocket', relay), prekeyBatch: { oneTime: 5, pqOneTime: 2 } });
  open.push(client);
  const direct: ReceivedMessage[] = [];
  const group: ReceivedGroupMessage[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const arrived = (): void => {
    for (const w of waiters.splice(0)) (direct.length + group.length >= w.n ? w.resolve : () => waiters.push(w))();
  };
  // Listeners attached before start(): redeliveries are emitted by start.
  client.on('message-received', (m) => {
    direct.push(m);
    arrived();
    return listener?.(m);
  });
  client.on('group-message-received', (m) => {
    group.push(m);
    arrived();
  });
  await client.start();
  return {
    client,
    direct,
    group,
    events: (n) => (direct.length + group.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

async function stop(bob: Bob): Promise<void> {
  open.splice(open.indexOf(bob.client), 1);
  await bob.client.close();
}

test('a message whose listener had not finished when the client closed is announced again at the next start, flagged, once', async () => {
  const path = join(dir, 'bob.db');
  // First run: the listener of `one` never finishes (the app was still handling it).
  let bob = await startBob(createSqliteStorage({ path }), (m) => (text(m) === 'one' ? new Promise<void>(() => undefined) : undefined));
  await alice.client.send('bob', 'one');
  await alice.client.send('bob', 'two');
  await bob.events(2);
  expect(bob.direct.map((m) => [text(m), m.redelivered])).toEqual([
    ['one', false],
    ['two', false],
  ]);
  await stop(bob);

  // Second run: `one` again, flagged, with the same id; `two` was handled and is not.
  const firstId = bob.direct[0]!.id;
  bob = await startBob(createSqliteStorage({ path }));
  expect(bob.direct.map((m) => [text(m), m.redelivered])).toEqual([['one', true]]);
  expect(bob.direct[0]!.id).toBe(firstId);
  await alice.client.send('bob', 'three');
  await bob.events(2);
  expect(bob.direct.map((m) => [text(m), m.redelivered])).toEqual([
    ['one', true],
    ['three', false],
  ]);
  await stop(bob);

  // Third run: everything was handled; nothing comes again.
  bob = await startBob(createSqliteStorage({ path }));
  expect(bob.direct).toEqual([]);
  expect((await bob.client.history('alice')).map(text)).toEqual(['one', 'two', 'three']);
});

test('1:1 and group messages committed but not recorded as handled (stopped before the marker deletion) come again at start, in order', async () => {
  const path = join(dir, 'bob.db');
  let storage = refusingMarkerDeletes(createSqliteStorage({ path }));
  let bob = await startBob(storage);
  const g = await alice.client.createGroup({ name: 'announce', members: ['bob'] });
  await g.send('g-warmup');
  await bob.events(1);
  await storage.markersDeleted(1); // the warm-up was handled and recorded as such
  storage.refuse = true; // from here the process "dies" before any marker deletion lands
  await alice.client.send('bob', 'd-1');
  await g.send('g-1');
  await alice.client.send('bob', 'd-2');
  await bob.events(4);
  expect(bob.direct.every((m) => !m.redelivered) && bob.group.every((m) => !m.redelivered)).toBe(true);
  await stop(bob);
  expect(storage.refused).toBeGreaterThan(0);

  storage = refusingMarkerDeletes(createSqliteStorage({ path }));
  bob = await startBob(storage);
  // The three unrecorded ones, flagged, in the order they arrived; the warm-up was recorded.
  expect(bob.direct.map((m) => [text(m), m.redelivered])).toEqual([
    ['d-1', true],
    ['d-2', true],
  ]);
  expect(bob.group.map((m) => [text(m), m.redelivered])).toEqual([['g-1', true]]);
  expect(bob.direct[0]!.receivedAt).toBeLessThanOrEqual(bob.group[0]!.receivedAt);
  expect(bob.group[0]!.receivedAt).toBeLessThanOrEqual(bob.direct[1]!.receivedAt);
  await stop(bob);

  bob = await startBob(createSqliteStorage({ path }));
  expect([...bob.direct, ...bob.group]).toEqual([]);
  // And the conversations go on.
  await alice.client.send('bob', 'after');
  await bob.events(1);
  expect(bob.direct.map((m) => [text(m), m.redelivered])).toEqual([['after', false]]);
});

test('a listener that throws or rejects has handled the message (no redelivery loop); the failure is reported', async () => {
  const path = join(dir, 'bob.db');
  const client = await createClient({ userId: 'bob', deviceId: 'laptop', storage: createSqliteStorage({ path }), transport: makeTransport('websocket', relay), prekeyBatch: { oneTime: 5, pqOneTime: 2 } });
  const errors: unknown[] = [];
  const got: string[] = [];
  let reported!: () => void;
  const twoErrors = new Promise<void>((resolve) => (reported = resolve));
  client.on('error', (e) => {
    errors.push(e);
    if (errors.length === 2) reported();
  });
  client.on('message-received', (m) => {
    got.push(text(m));
    if (text(m) === 'throws') throw new Error('app bug');
    return Promise.reject(new Error('app failure'));
  });
  await client.start();
  await alice.client.send('bob', 'throws');
  await alice.client.send('bob', 'rejects');
  await twoErrors;
  await client.close();
  expect(got).toEqual(['throws', 'rejects']);
  expect(errors.map((e) => (e as Error).message)).toEqual(['app bug', 'app failure']);

  const bob = await startBob(createSqliteStorage({ path }));
  expect(bob.direct).toEqual([]);
});
