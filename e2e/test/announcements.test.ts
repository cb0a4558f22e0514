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
import type { FrameHandler, InboundFrame, StorageAdapter } from '@deadbolt/spec';
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

test('start() retried while offline announces a left-over message once per run, and a failed marker deletion does not fail start', async () => {
  const path = join(dir, 'bob.db');
  let bob = await startBob(createSqliteStorage({ path }), () => new Promise<void>(() => undefined)); // still handling at close
  await alice.client.send('bob', 'one');
  await bob.events(1);
  await stop(bob);

  // Offline (nothing listens on the port), and the marker deletion fails: three start()
  // attempts, one event.
  const storage = refusingMarkerDeletes(createSqliteStorage({ path }));
  storage.refuse = true;
  const { createWebSocketTransport } = await import('@deadbolt/transport-websocket');
  const WebSocket = (await import('ws')).default;
  const client = await createClient({
    userId: 'bob',
    deviceId: 'laptop',
    storage,
    transport: createWebSocketTransport({ url: 'ws://127.0.0.1:9/v1/ws', WebSocket: WebSocket as never, connectTimeoutMs: 300 }),
  });
  open.push(client);
  const got: ReceivedMessage[] = [];
  const errors: unknown[] = [];
  client.on('message-received', (m) => void got.push(m));
  client.on('error', (e) => void errors.push(e));
  const results: string[] = [];
  for (let i = 0; i < 3; i++) results.push(await client.start().then(() => 'ok', (e: unknown) => (e as { code?: string }).code ?? String(e)));
  expect(results).toEqual(['TRANSPORT_FAILED', 'TRANSPORT_FAILED', 'TRANSPORT_FAILED']);
  expect(got.map((m) => [text(m), m.redelivered])).toEqual([['one', true]]);
  expect(storage.refused).toBeGreaterThan(0); // the deletion was attempted, failed, and was reported
  expect(errors.some((e) => (e as Error).message === 'killed before the marker was deleted')).toBe(true);
});

/** Bob started again on the store at `path`: what it announces and reports at start. */
async function restartBob(path: string): Promise<{ client: Client; got: ReceivedMessage[]; errors: unknown[] }> {
  const errors: unknown[] = [];
  const client = await createClient({ userId: 'bob', deviceId: 'laptop', storage: createSqliteStorage({ path }), transport: makeTransport('websocket', relay) });
  open.push(client);
  const got: ReceivedMessage[] = [];
  client.on('message-received', (m) => void got.push(m));
  client.on('error', (e) => void errors.push(e));
  await client.start();
  return { client, got, errors };
}

test('a corrupted marker or history record is reported and skipped; the client starts and goes on', async () => {
  const path = join(dir, 'bob.db');
  let bob = await startBob(createSqliteStorage({ path }), () => new Promise<void>(() => undefined));
  await alice.client.send('bob', 'one');
  await alice.client.send('bob', 'two');
  await alice.client.send('bob', 'three');
  await bob.events(3);
  await stop(bob);
  // Flip one byte: the checksum of the first marker, and the body of the second message's record.
  const raw = createSqliteStorage({ path });
  const markers = await raw.range(['announce']);
  expect(markers).toHaveLength(3);
  const [m1, m2] = markers as [{ key: string[]; value: Uint8Array }, { key: string[]; value: Uint8Array }];
  const flip = async (key: readonly string[], at: (v: Uint8Array) => number): Promise<void> => {
    const v = (await raw.get(key))!.slice();
    v[at(v)]! ^= 1;
    await raw.batch([{ type: 'put', key, value: v }]);
  };
  await flip(m1.key, (v) => v.length - 1);
  await flip(['msg', 'alice', m2.key[1]!], (v) => v.length - 12);
  await raw.close();

  const { client, got, errors } = await restartBob(path);
  // `three` is announced; the other two are reported (CORRUPTED_RECORD), not trusted.
  expect(got.map((m) => [text(m), m.redelivered])).toEqual([['three', true]]);
  expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['CORRUPTED_RECORD', 'CORRUPTED_RECORD']);
  await client.send('alice', 'still working');
  await alice.waitForMessages(1);
});

test('a marker whose conversation is not a user id (a tampered store) is reported and dropped; start goes on and announces the others', async () => {
  const path = join(dir, 'bob.db');
  const bob = await startBob(createSqliteStorage({ path }), () => new Promise<void>(() => undefined));
  await alice.client.send('bob', 'one');
  await bob.events(1);
  await stop(bob);
  // A copy of the marker and of its message record under a conversation no user id names.
  const raw = createSqliteStorage({ path });
  const [marker] = (await raw.range(['announce'])) as [{ key: string[]; value: Uint8Array }];
  const sortKey = marker.key[1]!;
  await raw.batch([
    { type: 'put', key: ['announce', sortKey, 'd', 'not a user id!'], value: marker.value },
    { type: 'put', key: ['msg', 'not a user id!', sortKey], value: (await raw.get(['msg', 'alice', sortKey]))! },
  ]);
  await raw.close();

  const { client, got, errors } = await restartBob(path);
  expect(got.map((m) => [text(m), m.redelivered])).toEqual([['one', true]]);
  expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['CORRUPTED_RECORD']);
  const check = createSqliteStorage({ path });
  expect((await check.range(['announce'])).map((e) => e.key[3])).not.toContain('not a user id!');
  await check.close();
});

test('localId: unique on the device, stable across a redelivery; the sender-chosen id is not', async () => {
  const path = join(dir, 'bob.db');
  let bob = await startBob(createSqliteStorage({ path }), () => new Promise<void>(() => undefined));
  await alice.client.send('bob', 'one');
  await bob.events(1);
  const first = bob.direct[0]!;
  expect(first.localId).toBe(`d/alice/${first.sortKey}`);
  await stop(bob);
  bob = await startBob(createSqliteStorage({ path }));
  expect(bob.direct.map((m) => [m.localId, m.redelivered])).toEqual([[first.localId, true]]);
});

test('a group drain that fails part way announces the messages it committed at once, not at the next start (sweep)', async () => {
  const { WIRE_VERSION, MessageType } = await import('../../packages/core/src/protocol/constants.js');
  const isGroupFrame = (bytes: Uint8Array): boolean => bytes[0] === WIRE_VERSION && bytes[1] === MessageType.GROUP;
  const path = join(dir, 'bob.db');
  // Bob registers, then goes offline while Alice makes a group and sends two messages.
  let bob = await startBob(createSqliteStorage({ path }));
  await stop(bob);
  const g = await alice.client.createGroup({ name: 'sweep', members: ['bob'] });
  await g.send('held 1');
  await g.send('held 2');

  // Bob's pairwise frames (the welcome, the sender key) are kept back, so the group messages
  // are held for their key; then the pairwise frames are handed over, and the batch that
  // commits `held 2` fails once (a transient storage error) after `held 1` was committed.
  const inner = createSqliteStorage({ path });
  const needle = new TextEncoder().encode('held 2');
  const contains = (v: Uint8Array): boolean => {
    outer: for (let i = 0; i + needle.length <= v.length; i++) {
      for (let j = 0; j < needle.length; j++) if (v[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  let failOnce = true;
  const flaky: StorageAdapter = {
    specificationVersion: inner.specificationVersion,
    get: (k) => inner.get(k),
    range: (p, o) => inner.range(p, o),
    close: () => inner.close(),
    exclusive: (fn) => inner.exclusive!(fn),
    async batch(ops) {
      if (failOnce && ops.some((op) => op.type === 'put' && op.key[0] === 'group-msg' && contains(op.value))) {
        failOnce = false;
        throw new Error('transient storage failure');
      }
      return inner.batch(ops);
    },
  };
  const transport = makeTransport('websocket', relay);
  const kept: InboundFrame[] = [];
  let groupFramesHandled = 0;
  let groupFramesSeen!: () => void;
  const bothHeld = new Promise<void>((resolve) => (groupFramesSeen = resolve));
  let handler!: FrameHandler;
  const onFrame = transport.onFrame.bind(transport);
  transport.onFrame = (h) => {
    handler = h;
    return onFrame(async (frame) => {
      if (!isGroupFrame(frame.bytes)) return void kept.push(frame); // acknowledged, handed over below
      await h(frame);
      if (++groupFramesHandled === 2) groupFramesSeen();
    });
  };
  const client = await createClient({ userId: 'bob', deviceId: 'laptop', storage: flaky, transport });
  open.push(client);
  const got: ReceivedGroupMessage[] = [];
  client.on('group-message-received', (m) => void got.push(m));
  await client.start();
  await bothHeld;
  expect(got).toEqual([]); // held: no key yet
  const arrived = new Promise<void>((resolve) => client.on('group-message-received', () => resolve()));
  const outcomes: string[] = [];
  for (const frame of kept.splice(0)) outcomes.push(await Promise.resolve(handler(frame)).then(() => 'ok', (e: unknown) => (e as Error).message));
  expect(outcomes).toContain('transient storage failure');
  await arrived;
  expect(got.map((m) => [text(m), m.redelivered])).toContainEqual(['held 1', false]);
});
