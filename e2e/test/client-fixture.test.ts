/**
 * SECURITY.md D30 for the client layer: the whole store a client wrote with an earlier
 * release still loads and carries on. Each `fixtures/client-vN/state.json` was written by
 * `fixtures/generate-client.ts` with that release's code (its header says what is in it
 * and when to add the next one) and committed; this test loads every one into fresh
 * memory stores, starts clients over them with the current code, and checks:
 *
 * - history and conversations read back exactly as that release's API returned them
 *   (bodies, directions, senders, times, statuses, order), groups too (name after the
 *   rename, epoch, members, group history);
 * - the pending announcements (§11.4) are emitted again at start, flagged `redelivered`;
 * - the frames that were in flight decrypt once handed to the loaded clients: 1:1 and
 *   group messages to bob, and the welcome that a group message overtook at carol (whose
 *   orphan, §11.5, then decrypts);
 * - the 1:1 conversation goes on both ways, and the group still works for everyone;
 * - dave's pending prekey upload (§11.3) is published at start and answers a new session.
 *
 * The relay is fresh: its state is not part of a client fixture (it is another component
 * with its own store). The loaded clients register again and publish their device lists
 * again, as after a relay that lost its state; the in-flight frames are handed to their
 * frame handlers, as the relay that held them would have.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  createClient,
  fromHex,
  toHex,
  type Client,
  type GroupInfo,
  type ReceivedGroupMessage,
  type ReceivedMessage,
  type StoredGroupMessage,
  type StoredMessage,
} from '@deadbolt/core';
import { rejectionOf } from '@deadbolt/test-kit';
import type { Relay } from '@deadbolt/relay';
import { isDeadboltError, type Address, type InboundFrame, type StorageAdapter, type TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { makeTransport, startRelay } from './stack.js';

type Entries = { key: string[]; value: string }[];
type PartyName = 'alice' | 'bob' | 'carol' | 'dave';
interface ApiState {
  readonly conversations: unknown[];
  readonly history: Record<string, unknown[]>;
  readonly groups: unknown[];
  readonly groupHistory: Record<string, unknown[]>;
}
interface Fixture {
  readonly addresses: Record<PartyName, Address>;
  readonly groups: Record<string, string>;
  readonly parties: Record<PartyName, Entries>;
  readonly inFlight: { from: PartyName; to: PartyName; via: string; wire: string; note: string }[];
  readonly expected: {
    readonly state: Record<'alice' | 'bob' | 'carol', ApiState>;
    readonly redelivered: Record<'alice' | 'bob' | 'carol', { direct: string[]; group: string[] }>;
    readonly afterDelivery: {
      readonly bob: { direct: string[]; group: { group: string; body: string }[] };
      readonly carol: { invited: string[]; group: { group: string; body: string }[] };
    };
  };
}

const here = fileURLToPath(new URL('./fixtures/', import.meta.url));
const versions = existsSync(here)
  ? readdirSync(here)
      .filter((d) => /^client-v\d+$/.test(d))
      .sort((a, b) => Number(a.slice('client-v'.length)) - Number(b.slice('client-v'.length)))
  : [];
/** Record kinds every client fixture must hold (what it exists for). */
const REQUIRED = ['identity', 'prekey', 'prekey-meta', 'session', 'trust', 'device-list', 'msg', 'conv', 'msg-seen', 'announce', 'client', 'group', 'group-msg', 'group-conv', 'group-orphan'];
const DEADLINE_MS = 60_000;

const body = (m: { readonly body: Uint8Array }): string => new TextDecoder().decode(m.body);
/** A stored message as the generator wrote it into `expected` (body as hex). */
function messageJson(m: StoredMessage | StoredGroupMessage): Record<string, unknown> {
  const { body: bytes, ...rest } = m;
  return { ...rest, body: toHex(bytes) };
}
/** Only the fields a stored message has (the events add `redelivered` and more). */
function storedOf(m: ReceivedMessage | ReceivedGroupMessage): Record<string, unknown> {
  const { redelivered: _r, localId: _l, ...rest } = m as ReceivedMessage & { localId?: string };
  return messageJson(rest as StoredMessage);
}

function readFixture(version: string): Fixture {
  return JSON.parse(readFileSync(join(here, version, 'state.json'), 'utf8')) as Fixture;
}

async function loadStorage(entries: Entries): Promise<StorageAdapter> {
  const storage = createMemoryStorage();
  for (let i = 0; i < entries.length; i += 1000) {
    await storage.batch(entries.slice(i, i + 1000).map((e) => ({ type: 'put' as const, key: e.key, value: fromHex(e.value) })));
  }
  return storage;
}

interface Loaded {
  readonly client: Client;
  readonly storage: StorageAdapter;
  readonly direct: ReceivedMessage[];
  readonly group: ReceivedGroupMessage[];
  readonly invited: GroupInfo[];
  readonly errors: unknown[];
  /** Hands a frame to the client's frame handler, as the relay delivers one. */
  inject(frame: InboundFrame): Promise<void>;
  /** Resolves once `condition` holds (re-checked after every event and handled frame). */
  until(condition: () => boolean, what: string): Promise<void>;
}

/** A client over a fresh memory store filled with a party's fixture entries (not started). */
async function loadParty(relay: Relay, address: Address, entries: Entries): Promise<Loaded> {
  const storage = await loadStorage(entries);
  let handler: ((f: InboundFrame) => Promise<void> | void) | undefined;
  const waiters: { check: () => boolean; resolve: () => void }[] = [];
  const poke = (): void => {
    for (const w of waiters.splice(0)) (w.check() ? w.resolve : () => waiters.push(w))();
  };
  const inner = makeTransport('websocket', relay);
  const transport = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'onFrame') {
        return (h: (f: InboundFrame) => Promise<void> | void) => {
          handler = h;
          return target.onFrame(async (f) => {
            await h(f);
            poke();
          });
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as TransportAdapter;
  const client = await createClient({ userId: address.userId, deviceId: address.deviceId, storage, transport, prekeyBatch: { oneTime: 4, pqOneTime: 2 } });
  const loaded: Loaded = {
    client,
    storage,
    direct: [],
    group: [],
    invited: [],
    errors: [],
    async inject(frame) {
      if (handler === undefined) throw new Error('not started');
      await handler(frame);
      poke();
    },
    until(check, what) {
      if (check()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${address.userId}: timed out waiting for ${what}`)), DEADLINE_MS);
        waiters.push({
          check,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
  // Listeners before start(): redeliveries are emitted by start (§11.4).
  client.on('message-received', (m) => (loaded.direct.push(m), poke()));
  client.on('group-message-received', (m) => (loaded.group.push(m), poke()));
  client.on('group-invited', (g) => (loaded.invited.push(g), poke()));
  client.on('error', (e) => loaded.errors.push(e));
  return loaded;
}

describe('SECURITY.md D30: client-layer state written by every earlier version still loads', () => {
  test('there is at least one committed fixture', () => {
    expect(versions).toContain('client-v1');
  });

  for (const version of versions) {
    test(`${version}: holds every client record kind, and a corrupted history record in it is CORRUPTED_RECORD`, async () => {
      const fixture = readFixture(version);
      const kinds = new Set(Object.values(fixture.parties).flatMap((entries) => entries.map((e) => e.key[0])));
      expect(REQUIRED.filter((k) => !kinds.has(k))).toEqual([]);
      // The history records are read and authenticated, not skipped: one flipped byte in
      // the body of the first one is refused.
      const entries = fixture.parties.bob.map((e) => ({ ...e }));
      const first = entries.find((e) => e.key[0] === 'msg')!;
      const bytes = fromHex(first.value);
      bytes[bytes.length - 10]! ^= 0x01;
      first.value = toHex(bytes);
      // Never started: a transport to nowhere, never connected.
      const transport = makeTransport('websocket', { url: 'http://127.0.0.1:9', wsUrl: 'ws://127.0.0.1:9/v1/ws' });
      const client = await createClient({ userId: 'bob', deviceId: 'laptop', storage: await loadStorage(entries), transport });
      try {
        const e = await rejectionOf(client.history(first.key[1]!));
        expect(isDeadboltError(e, 'CORRUPTED_RECORD')).toBe(true);
      } finally {
        await client.close();
      }
    });

    test(`${version}: history, conversations, groups and pending announcements load; frames in flight decrypt; every conversation and group carries on`, async () => {
      const fixture = readFixture(version);
      const { expected, addresses, groups: gid } = fixture;
      const relay = await startRelay();
      const parties: Partial<Record<PartyName, Loaded>> = {};
      try {
        for (const name of ['alice', 'bob', 'carol', 'dave'] as const) parties[name] = await loadParty(relay, addresses[name], fixture.parties[name]);
        const { alice, bob, carol, dave } = parties as Record<PartyName, Loaded>;
        const api = { alice, bob, carol };

        // 1. History and conversations as the earlier release showed them (before start).
        for (const [name, party] of Object.entries(api) as ['alice' | 'bob' | 'carol', Loaded][]) {
          const want = expected.state[name];
          expect(JSON.parse(JSON.stringify(await party.client.conversations())), `${name} conversations`).toEqual(want.conversations);
          for (const [user, messages] of Object.entries(want.history)) {
            expect((await party.client.history(user, { limit: 1000 })).map(messageJson), `${name} history with ${user}`).toEqual(messages);
          }
        }

        // 2. Start: the announcements left pending are emitted again, flagged (§11.4).
        for (const p of [alice, bob, carol, dave]) await p.client.start();
        for (const [name, party] of Object.entries(api) as ['alice' | 'bob' | 'carol', Loaded][]) {
          expect(party.direct.map((m) => [body(m), m.redelivered]), `${name} 1:1 redeliveries`).toEqual(expected.redelivered[name].direct.map((t) => [t, true]));
          expect(party.group.map((m) => [body(m), m.redelivered]), `${name} group redeliveries`).toEqual(expected.redelivered[name].group.map((t) => [t, true]));
        }
        // A redelivered event is the stored message itself.
        const bobHistory = expected.state.bob.history[addresses.alice.userId]!;
        for (const m of bob.direct) expect(bobHistory).toContainEqual(storedOf(m));
        const carolGroupHistory = expected.state.carol.groupHistory[gid.main!]!;
        for (const m of carol.group) expect(carolGroupHistory).toContainEqual({ ...storedOf(m), groupId: gid.main });

        // 3. Groups as stored: name after the rename, epoch, members; group history.
        for (const [name, party] of Object.entries(api) as ['alice' | 'bob' | 'carol', Loaded][]) {
          const want = expected.state[name];
          expect(JSON.parse(JSON.stringify(await party.client.groups())), `${name} groups`).toEqual(want.groups);
          for (const [group, messages] of Object.entries(want.groupHistory)) {
            const handle = await party.client.group(group);
            expect((await handle!.history({ limit: 1000 })).map(messageJson), `${name} history of ${group}`).toEqual(messages);
          }
        }

        // 4. The frames that were in flight, handed over in the order they were sent.
        const before = { bob: { direct: bob.direct.length, group: bob.group.length }, carol: { group: carol.group.length } };
        for (const [i, f] of fixture.inFlight.entries()) {
          await parties[f.to]!.inject({ id: `${version}-in-flight-${i}`, from: addresses[f.from], receivedAt: Date.now(), bytes: fromHex(f.wire) });
        }
        const after = expected.afterDelivery;
        await bob.until(() => bob.direct.length >= before.bob.direct + after.bob.direct.length && bob.group.length >= before.bob.group + after.bob.group.length, 'the in-flight messages');
        expect(bob.direct.slice(before.bob.direct).map((m) => [body(m), m.redelivered])).toEqual(after.bob.direct.map((t) => [t, false]));
        expect(bob.group.slice(before.bob.group).map((m) => [m.groupId, body(m), m.redelivered])).toEqual(after.bob.group.map((g) => [gid[g.group], g.body, false]));
        // The orphan waits for its welcome, then decrypts (§11.5).
        await carol.until(() => carol.invited.length >= after.carol.invited.length && carol.group.length >= before.carol.group + after.carol.group.length, 'the welcome and the orphan');
        expect(carol.invited.map((g) => g.groupId)).toEqual(after.carol.invited.map((g) => gid[g]));
        expect(carol.group.slice(before.carol.group).map((m) => [m.groupId, body(m), m.redelivered])).toEqual(after.carol.group.map((g) => [gid[g.group], g.body, false]));
        expect(await carol.storage.range(['group-orphan'])).toEqual([]);
        // Added to history after what was stored (two arriving in one millisecond are
        // ordered by message id, §11.2, so their mutual order is not checked).
        const bobNow = await bob.client.history(addresses.alice.userId, { limit: 1000 });
        expect(bobNow.slice(0, bobHistory.length).map(messageJson)).toEqual(bobHistory);
        expect(bobNow.slice(bobHistory.length).map((m) => `${m.direction} ${body(m)}`).sort()).toEqual(after.bob.direct.map((t) => `incoming ${t}`).sort());

        // 5. The 1:1 conversation goes on both ways.
        const n = { bob: bob.direct.length, alice: alice.direct.length };
        await alice.client.send('bob', `${version}: after loading`);
        await bob.until(() => bob.direct.length > n.bob, 'the first message after loading');
        await bob.client.send('alice', `${version}: and back`);
        await alice.until(() => alice.direct.length > n.alice, 'the reply after loading');
        expect(body(bob.direct.at(-1)!)).toBe(`${version}: after loading`);
        expect(body(alice.direct.at(-1)!)).toBe(`${version}: and back`);
        const aliceStored = expected.state.alice.history[addresses.bob.userId]!;
        const aliceNow = await alice.client.history(addresses.bob.userId, { limit: 1000 });
        expect(aliceNow.slice(0, aliceStored.length).map(messageJson)).toEqual(aliceStored);
        expect(aliceNow.slice(aliceStored.length).map((m) => `${m.direction} ${body(m)}`).sort()).toEqual([`incoming ${version}: and back`, `outgoing ${version}: after loading`]);

        // 6. The group works for everyone: a message from alice and one from bob.
        const g = { bob: bob.group.length, carol: carol.group.length, alice: alice.group.length };
        await (await alice.client.group(gid.main!))!.send(`${version}: group after loading`);
        await bob.until(() => bob.group.length > g.bob, 'the group message after loading (bob)');
        await carol.until(() => carol.group.length > g.carol, 'the group message after loading (carol)');
        for (const p of [bob, carol]) expect([p.group.at(-1)!.groupId, body(p.group.at(-1)!)]).toEqual([gid.main, `${version}: group after loading`]);
        await (await bob.client.group(gid.main!))!.send(`${version}: bob in the group after loading`);
        await alice.until(() => alice.group.length > g.alice, "bob's group message after loading (alice)");
        await carol.until(() => carol.group.length > g.carol + 1, "bob's group message after loading (carol)");
        for (const p of [alice, carol]) expect(body(p.group.at(-1)!)).toBe(`${version}: bob in the group after loading`);
        // And the group whose welcome was in flight.
        await (await alice.client.group(gid.second!))!.send(`${version}: second group after loading`);
        await carol.until(() => carol.group.length > g.carol + 2, 'the second group after loading');
        expect([carol.group.at(-1)!.groupId, body(carol.group.at(-1)!)]).toEqual([gid.second, `${version}: second group after loading`]);

        // 7. Dave's pending upload was published at start: a new session starts from it.
        expect(await dave.storage.get(['client', 'pending-upload'])).toBeUndefined();
        await alice.client.send(addresses.dave.userId, `${version}: hello dave`);
        await dave.until(() => dave.direct.length === 1, "alice's first message to dave");
        expect(body(dave.direct[0]!)).toBe(`${version}: hello dave`);
        await dave.client.send(addresses.alice.userId, `${version}: hello alice`);
        await alice.until(() => body(alice.direct.at(-1)!) === `${version}: hello alice`, "dave's answer");

        for (const [name, p] of Object.entries(parties)) expect(p.errors.map(String), `${name} reported errors`).toEqual([]);
      } finally {
        for (const p of Object.values(parties)) await p.client.close();
        await relay.close();
      }
    });
  }
});
