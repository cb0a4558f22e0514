/**
 * Groups through the whole stack (docs/protocol.md §11.5, §12; docs/groups.md): clients on
 * the WebSocket transport through the reference relay on loopback (memory stores). Every
 * wait is on an event, with a deadline only as a guard.
 */
import { afterEach, describe, expect, test } from 'vitest';
import {
  concatBytes,
  createClient,
  linkDevice,
  createNodeCryptoProvider,
  decodePrekeyBundle,
  Label,
  utf8,
  type Client,
  type ClientEvents,
  type DeviceCertificate,
  type Group,
  type GroupInfo,
  type StoredGroupMessage,
} from '@deadbolt/core';
import { createGroupManager, encodeGroupState, type GroupId } from '@deadbolt/core/group';
import type { Relay } from '@deadbolt/relay';
import { createMemoryStorage, createMemoryStorageBacking, type MemoryStorageBacking } from '@deadbolt/storage-memory';
import type { StorageAdapter } from '@deadbolt/spec';
import { isDeadboltError, StorageError, type Address, type DeviceDirectoryEntry, type InboundFrame, type OutboundMessage, type SharedRecipient, type TransportAdapter } from '@deadbolt/spec';
import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
import { makeTransport, startRelay } from './stack.js';

let relay: Relay | undefined;
const running = new Set<Client>();
afterEach(async () => {
  for (const c of [...running]) await c.close();
  running.clear();
  await relay?.close();
  relay = undefined;
});

const text = (m: StoredGroupMessage): string => new TextDecoder().decode(m.body);
const GROUP_EVENTS = ['group-message-received', 'group-changed', 'group-invited', 'group-rejected', 'group-delivery-failed'] as const;

/**
 * What a test can do to the frames between one client and the relay (a relay, or a
 * network, that misbehaves towards this client).
 */
interface Tap {
  /** Frames the client finished handling, in order. */
  readonly frames: InboundFrame[];
  /** Hands a frame to the client as if the relay delivered it; resolves once handled. */
  inject(frame: InboundFrame): Promise<void>;
  /** While set, deliveries wait for it. */
  gate: Promise<void> | undefined;
  /** Frames for which it returns true are lost on the way (acknowledged, never handled). */
  lose: ((frame: InboundFrame) => boolean) | undefined;
  /** Rewrites the recipients of each group message upload (it sees the message too). */
  shared: ((recipients: readonly SharedRecipient[], frame: Uint8Array) => SharedRecipient[]) | undefined;
  /** Drops pairwise messages (the relay "loses" them) when it returns true. */
  drop: ((message: OutboundMessage) => boolean) | undefined;
  /** Rewrites directory answers (a relay serving devices a user does not list). */
  bundles: ((userId: string, entry: DeviceDirectoryEntry) => DeviceDirectoryEntry) | undefined;
}

/** A started client and everything it reported. */
interface Member {
  readonly user: string;
  readonly device: string;
  client: Client;
  readonly backing: MemoryStorageBacking;
  readonly messages: StoredGroupMessage[];
  readonly rejected: ClientEvents['group-rejected'][];
  readonly invited: GroupInfo[];
  readonly failed: ClientEvents['group-delivery-failed'][];
  readonly tap: Tap;
  /** The transport as the client uses it (for hand-made frames). */
  readonly transport: TransportAdapter;
}

interface MemberOptions {
  readonly backing?: MemoryStorageBacking;
  /** HTTP polling instead of the WebSocket (it fetches unacknowledged frames again at once). */
  readonly polling?: boolean;
  /** A store an identity was already put in (a linked device). */
  readonly storage?: StorageAdapter;
  readonly prekeys?: { oneTime: number; pqOneTime: number };
}

/** Wraps a transport with a {@link Tap}. */
function tapped(inner: TransportAdapter, onHandled: () => void): { transport: TransportAdapter; tap: Tap } {
  let handler: ((f: InboundFrame) => Promise<void> | void) | undefined;
  const tap: Tap = {
    frames: [],
    gate: undefined,
    lose: undefined,
    shared: undefined,
    drop: undefined,
    bundles: undefined,
    async inject(frame) {
      await handler?.(frame);
      onHandled();
    },
  };
  const transport = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'onFrame') {
        return (h: (f: InboundFrame) => Promise<void> | void) => {
          handler = h;
          return target.onFrame(async (f) => {
            while (tap.gate) await tap.gate;
            if (tap.lose?.(f)) return;
            await h(f);
            tap.frames.push(f);
            onHandled();
          });
        };
      }
      if (prop === 'sendShared') return (recipients: readonly SharedRecipient[], frame: Uint8Array) => target.sendShared(tap.shared ? tap.shared(recipients, frame) : recipients, frame);
      if (prop === 'fetchBundles') return async (userId: string) => (tap.bundles ? tap.bundles(userId, await target.fetchBundles(userId)) : target.fetchBundles(userId));
      if (prop === 'send') {
        return async (messages: readonly OutboundMessage[]) => {
          const kept = tap.drop ? messages.filter((m) => !tap.drop!(m)) : messages;
          if (kept.length > 0) await target.send(kept);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { transport, tap };
}

const listeners = new Map<Member, Set<() => void>>();
function notify(m: Member): void {
  for (const l of [...(listeners.get(m) ?? [])]) l();
}

async function startMember(user: string, device = 'd', options: MemberOptions = {}): Promise<Member> {
  const backing = options.backing ?? createMemoryStorageBacking();
  let self: Member | undefined;
  const base = options.polling ? createHttpPollingTransport({ url: relay!.url, backoff: { initialMs: 20, maxMs: 200 } }) : makeTransport('websocket', relay!);
  const { transport, tap } = tapped(base, () => self && notify(self));
  const client = await createClient({
    userId: user,
    deviceId: device,
    storage: options.storage ?? createMemoryStorage({ backing }),
    transport,
    prekeyBatch: options.prekeys ?? { oneTime: 20, pqOneTime: 4 },
  });
  const m: Member = { user, device, client, backing, messages: [], rejected: [], invited: [], failed: [], tap, transport };
  self = m;
  client.on('group-message-received', (msg) => m.messages.push(msg));
  client.on('group-rejected', (r) => m.rejected.push(r));
  client.on('group-invited', (g) => m.invited.push(g));
  client.on('group-delivery-failed', (f) => m.failed.push(f));
  for (const e of GROUP_EVENTS) client.on(e, () => notify(m));
  await client.start();
  running.add(client);
  return m;
}

/** Stops a member (its store survives in its backing). */
async function stop(m: Member): Promise<void> {
  await m.client.close();
  running.delete(m.client);
}

/** Resolves once `check` holds for `m`, re-checked after each of its group events and handled frames. */
function until(m: Member, label: string, check: () => boolean | Promise<boolean>, deadlineMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    let running = false;
    let again = false;
    const set = listeners.get(m) ?? new Set();
    listeners.set(m, set);
    const finish = (e?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      set.delete(probe);
      if (e === undefined) resolve();
      else reject(e instanceof Error ? e : new Error(String(e)));
    };
    const probe = (): void => {
      if (done) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      Promise.resolve()
        .then(check)
        .then(
          (ok) => {
            running = false;
            if (ok) finish();
            else if (again) {
              again = false;
              probe();
            }
          },
          (e: unknown) => finish(e),
        );
    };
    const timer = setTimeout(() => finish(new Error(`${m.user}/${m.device}: timed out waiting for ${label}`)), deadlineMs);
    set.add(probe);
    probe();
  });
}

const bodies = (m: Member, groupId: string): string[] => m.messages.filter((x) => x.groupId === groupId).map(text);
const memberIds = (g: GroupInfo): string[] => g.members.map((x) => x.userId);

async function infoOf(m: Member, groupId: string): Promise<GroupInfo | undefined> {
  return (await m.client.group(groupId))?.info();
}

/** Waits until `m` holds the group at `epoch` (or later) with exactly `users` as members. */
function untilMembers(m: Member, groupId: string, users: readonly string[]): Promise<void> {
  return until(m, `members ${users.join(',')}`, async () => {
    const info = await infoOf(m, groupId);
    return info !== undefined && JSON.stringify(memberIds(info)) === JSON.stringify([...users].sort());
  });
}

/** `admin` creates a group with `others`; resolves once every one of them was invited. */
async function groupOf(admin: Member, others: readonly Member[], name = 'g'): Promise<Group> {
  const group = await admin.client.createGroup({ name, members: others.map((m) => m.user) });
  await Promise.all(others.map((m) => until(m, 'invite', () => m.invited.some((g) => g.groupId === group.id))));
  return group;
}

/** Sends `body` from `from`, and waits until each of `to` has it. */
async function say(from: Member, groupId: string, body: string, to: readonly Member[]): Promise<void> {
  await (await from.client.group(groupId))!.send(body);
  await Promise.all(to.map((m) => until(m, body, () => bodies(m, groupId).includes(body))));
}

describe('groups through the relay', () => {
  test('create, send, add, remove, promote, demote, rename, leave; history and events on every member', async () => {
    relay = await startRelay();
    const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((u) => startMember(u)));

    const group = await alice!.client.createGroup({ name: 'team', members: ['bob', 'carol'] });
    expect(group.id).toMatch(/^[0-9a-f]{64}$/);
    await Promise.all([bob, carol].map((m) => until(m!, 'invite', () => m!.invited.length === 1)));
    expect(bob!.invited[0]).toMatchObject({ groupId: group.id, name: 'team', member: true });
    expect(memberIds(bob!.invited[0]!)).toEqual(['alice', 'bob', 'carol']);
    expect(bob!.invited[0]!.members.find((x) => x.userId === 'alice')?.role).toBe('admin');

    const sent = await group.send('hello team');
    expect(sent).toMatchObject({ groupId: group.id, direction: 'outgoing', status: 'sent' });
    await Promise.all([bob, carol].map((m) => until(m!, 'hello', () => bodies(m!, group.id).includes('hello team'))));
    expect(bob!.messages[0]).toMatchObject({ groupId: group.id, direction: 'incoming', sender: { userId: 'alice', deviceId: 'd' }, untrusted: false, id: sent.id });

    // Bob answers through his own handle of the group.
    const bobGroup = (await bob!.client.group(group.id))!;
    await bobGroup.send('hi from bob');
    await Promise.all([alice, carol].map((m) => until(m!, 'bob', () => bodies(m!, group.id).includes('hi from bob'))));

    // Add Dave: he is invited, sees the group, and reads what comes next (not what came before).
    await group.addMembers(['dave']);
    await until(dave!, 'invite', () => dave!.invited.length === 1);
    await Promise.all([bob, carol].map((m) => untilMembers(m!, group.id, ['alice', 'bob', 'carol', 'dave'])));
    await group.send('welcome dave');
    await until(dave!, 'welcome', () => bodies(dave!, group.id).includes('welcome dave'));
    expect(bodies(dave!, group.id)).toEqual(['welcome dave']);

    // Promote Bob; Bob renames the group; everyone sees both.
    await group.promote('bob');
    await until(bob!, 'promoted', async () => (await infoOf(bob!, group.id))?.members.find((x) => x.userId === 'bob')?.role === 'admin');
    await bobGroup.rename('team (renamed)');
    await Promise.all([alice, carol, dave].map((m) => until(m!, 'renamed', async () => (await infoOf(m!, group.id))?.name === 'team (renamed)')));
    // Bob removes Carol; then Alice demotes Bob.
    await bobGroup.removeMembers(['carol']);
    await Promise.all([alice, dave].map((m) => untilMembers(m!, group.id, ['alice', 'bob', 'dave'])));
    await until(carol!, 'removed', async () => (await infoOf(carol!, group.id))?.member === false);
    await group.demote('bob');
    await until(bob!, 'demoted', async () => (await infoOf(bob!, group.id))?.members.find((x) => x.userId === 'bob')?.role === 'member');
    // A non-admin cannot rename: refused locally, nothing sent.
    await expect(bobGroup.rename('nope')).rejects.toSatisfy((e) => isDeadboltError(e, 'INVALID_ARGUMENT'));

    // Dave leaves; the rest keep talking.
    const daveGroup = (await dave!.client.group(group.id))!;
    await daveGroup.leave();
    await Promise.all([alice, bob].map((m) => untilMembers(m!, group.id, ['alice', 'bob'])));
    await expect(daveGroup.send('still here?')).rejects.toSatisfy((e) => isDeadboltError(e, 'NOT_INITIALIZED'));
    await group.send('just us');
    await until(bob!, 'just us', () => bodies(bob!, group.id).includes('just us'));

    // History: one conversation per group, in order, on every member, outgoing included.
    expect((await group.history()).map(text)).toEqual(['hello team', 'hi from bob', 'welcome dave', 'just us']);
    expect((await bobGroup.history()).map((m) => [text(m), m.direction])).toEqual([
      ['hello team', 'incoming'],
      ['hi from bob', 'outgoing'],
      ['welcome dave', 'incoming'],
      ['just us', 'incoming'],
    ]);
    expect((await (await carol!.client.group(group.id))!.history()).map(text)).toEqual(['hello team', 'hi from bob', 'welcome dave']);
    const listed = await alice!.client.groups();
    expect(listed.map((g) => [g.groupId, g.name, g.member])).toEqual([[group.id, 'team (renamed)', true]]);
    expect((await dave!.client.groups()).map((g) => g.member)).toEqual([false]);
    // Nothing was refused along the way.
    for (const m of [alice, bob, carol, dave]) expect(m!.rejected).toEqual([]);
  });

  test('a removed member reads nothing sent after its removal, even when the relay keeps feeding it and hides the removal', async () => {
    relay = await startRelay();
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((u) => startMember(u)));
    const group = await groupOf(alice!, [bob!, carol!]);
    await say(alice!, group.id, 'before', [bob!, carol!]);
    await say(bob!, group.id, 'before, from bob', [alice!, carol!]);

    // From now on the relay hides everything pairwise from Carol (she never learns she was
    // removed, and keeps her old sender keys) and copies every group message to her.
    const carolAddress = { userId: 'carol', deviceId: 'd' } as Address;
    const listVersion = (await alice!.client.sessions.deviceList('carol'))!.listVersion;
    for (const m of [alice!, bob!]) {
      m.tap.drop = (msg) => msg.to.userId === 'carol';
      m.tap.shared = (recipients) => (recipients.some((r) => r.to.userId === 'carol') ? [...recipients] : [...recipients, { to: carolAddress, listVersion }]);
    }
    await group.removeMembers(['carol']);
    await untilMembers(bob!, group.id, ['alice', 'bob']);
    const seen = carol!.tap.frames.length;
    await say(alice!, group.id, 'after, from alice', [bob!]);
    await say(bob!, group.id, 'after, from bob', [alice!]);
    // Both messages reached Carol's device, and she could not read them: the senders
    // replaced their keys before sending, and gave the new ones only to Alice and Bob.
    await until(carol!, 'two more frames', () => carol!.tap.frames.length >= seen + 2);
    expect(bodies(carol!, group.id)).toEqual(['before', 'before, from bob']);
    expect((await (await carol!.client.group(group.id))!.history()).map(text)).toEqual(['before', 'before, from bob']);
    // Carol's device then asks the senders for their keys (§12.9.1); they refuse her (she
    // is not in their group), and tell their users.
    await Promise.all([alice, bob].map((m) => until(m!, 'refused key request', () => m!.rejected.some((r) => r.from?.userId === 'carol' && r.code === 'SENDER_MISMATCH'))));
    expect(bodies(carol!, group.id)).toEqual(['before', 'before, from bob']);
  });

  test('an offline member catches up on every change and message, in order, exactly once', async () => {
    relay = await startRelay();
    const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((u) => startMember(u)));
    const group = await groupOf(alice!, [bob!, carol!]);
    await say(alice!, group.id, 'm0', [bob!, carol!]);
    const backing = carol!.backing;
    await stop(carol!);

    await say(alice!, group.id, 'm1', [bob!]);
    await say(bob!, group.id, 'm2', [alice!]);
    await group.addMembers(['dave']);
    await until(dave!, 'invite', () => dave!.invited.length === 1);
    await say(dave!, group.id, 'm3', [alice!, bob!]);
    await group.rename('renamed while carol was away');
    await group.promote('dave');
    await say(alice!, group.id, 'm4', [bob!, dave!]);
    await (await dave!.client.group(group.id))!.removeMembers(['bob']);
    await untilMembers(alice!, group.id, ['alice', 'carol', 'dave']);
    await say(dave!, group.id, 'm5', [alice!]);
    const expected = await group.info();

    const back = await startMember('carol', 'd', { backing });
    await until(back, 'caught up', async () => bodies(back, group.id).length >= 5 && JSON.stringify(await infoOf(back, group.id)) === JSON.stringify(expected));
    expect(bodies(back, group.id)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    expect((await (await back.client.group(group.id))!.history()).map(text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    // And the group goes on, with nothing delivered twice.
    await say(back, group.id, 'carol is back', [alice!, dave!]);
    await say(alice!, group.id, 'm6', [back]);
    expect(bodies(back, group.id)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    for (const m of [alice!, bob!, back, dave!]) expect(m.rejected).toEqual([]);
  });

  test('concurrent changes by two admins converge on every member; a removal beats a concurrent addition', async () => {
    relay = await startRelay();
    const [alice, bob, carol, dave, eve] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'eve'].map((u) => startMember(u)));
    const group = await groupOf(alice!, [bob!, carol!, dave!]);
    await group.promote('bob');
    await until(bob!, 'promoted', async () => (await infoOf(bob!, group.id))?.members.find((x) => x.userId === 'bob')?.role === 'admin');
    await Promise.all([carol, dave].map((m) => until(m!, 'promoted', async () => (await infoOf(m!, group.id))?.epoch === 1)));

    // Neither admin hears from the other before both changed the group: both changes name epoch 1.
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    for (const m of [alice!, bob!]) m.tap.gate = gate;
    await Promise.all([group.addMembers(['eve']), (await bob!.client.group(group.id))!.removeMembers(['carol'])]);
    expect((await group.info()).epoch).toBe(2);
    expect((await infoOf(bob!, group.id))!.epoch).toBe(2);
    for (const m of [alice!, bob!]) m.tap.gate = undefined;
    open();

    // Everyone ends with the same group: Carol removed (revoking wins), Eve added again on
    // top of it by Alice (her change was orphaned, then rebased).
    const final = ['alice', 'bob', 'dave', 'eve'];
    await Promise.all([alice, bob, dave, eve].map((m) => untilMembers(m!, group.id, final)));
    await until(carol!, 'removed', async () => (await infoOf(carol!, group.id))?.member === false);
    const infos = await Promise.all([alice, bob, dave, eve].map((m) => infoOf(m!, group.id)));
    for (const info of infos) expect(info).toEqual(infos[0]);
    expect(infos[0]!.epoch).toBe(3);
    // And the converged group works for everyone in it.
    await say(eve!, group.id, 'eve here', [alice!, bob!, dave!]);
    await say(bob!, group.id, 'welcome eve', [alice!, dave!, eve!]);
    expect(bodies(carol!, group.id)).toEqual([]);
  });

  test('forged group traffic gets nowhere and members are told: a non-admin adding a member, messages moved, re-attributed, tampered or replayed', async () => {
    relay = await startRelay();
    const [alice, bob, mallory, dave, eve] = await Promise.all(['alice', 'bob', 'mallory', 'dave', 'eve'].map((u) => startMember(u)));
    const group = await groupOf(alice!, [bob!, mallory!]);
    const other = await groupOf(alice!, [bob!], 'other');
    await say(alice!, group.id, 'first', [bob!, mallory!]);
    await say(alice!, other.id, 'other first', [bob!]);
    await say(mallory!, group.id, 'hi from mallory', [alice!, bob!]);

    // Mallory, a plain member, signs a change adding Eve (a valid signature by a device of
    // the group, but not an admin's) and sends it to every member over her sessions.
    const forged = await forgeAddMember(mallory!, group.id, (await eve!.client.sessions.certificate()));
    for (const to of [alice!, bob!]) await sendGroupPayload(mallory!, to, forged);
    await Promise.all([alice, bob].map((m) => until(m!, 'refused change', () => m!.rejected.some((r) => r.from?.userId === 'mallory' && r.code === 'BAD_SIGNATURE'))));
    for (const m of [alice!, bob!]) expect(memberIds((await infoOf(m, group.id))!)).toEqual(['alice', 'bob', 'mallory']);
    expect(eve!.invited).toEqual([]);

    // The relay holds Bob's mail and tries variants of Alice's next message on him.
    let captured: Uint8Array | undefined;
    alice!.tap.shared = (recipients, frame) => ((captured = frame.slice()), [...recipients]);
    let release: () => void = () => {};
    bob!.tap.gate = new Promise<void>((resolve) => (release = resolve));
    await (await alice!.client.group(group.id))!.send('the real one');
    const real = captured!;
    const from = { userId: 'alice', deviceId: 'd' } as Address;
    const frame = (bytes: Uint8Array, sender: Address = from): InboundFrame => ({ id: `forged-${Math.random()}`, from: sender, receivedAt: Date.now(), bytes });
    const tampered = real.slice();
    tampered[tampered.length - 70] = tampered[tampered.length - 70]! ^ 1; // a body byte: the signature no longer verifies
    const moved = real.slice();
    moved.set(hexBytes(other.id), 2); // the same message named as one of the other group
    const rejected = (code: string): number => bob!.rejected.filter((r) => r.code === code).length;
    await bob!.tap.inject(frame(tampered));
    await bob!.tap.inject(frame(moved));
    await bob!.tap.inject(frame(real, { userId: 'mallory', deviceId: 'd' } as Address)); // re-attributed
    expect(rejected('DECRYPT_FAILED')).toBe(2);
    expect(rejected('SENDER_MISMATCH')).toBe(1);
    await dave!.tap.inject(frame(real)); // to a device outside the group: kept aside, unreadable
    expect(dave!.messages).toEqual([]);
    expect(await dave!.client.group(group.id)).toBeUndefined();
    // None of it left a trace: the real message, delivered now, decrypts, once.
    bob!.tap.gate = undefined;
    release();
    await until(bob!, 'the real one', () => bodies(bob!, group.id).includes('the real one'));
    const before = bob!.rejected.length;
    await bob!.tap.inject(frame(real)); // replayed: dropped silently
    expect(bodies(bob!, group.id)).toEqual(['first', 'hi from mallory', 'the real one']);
    expect(bob!.rejected.length).toBe(before);
    expect(bodies(bob!, other.id)).toEqual(['other first']);

    // Control: the same hand-made change, once Mallory is an admin, is applied by everyone
    // (so the refusal above was the authorization rule, not a malformed change).
    await (await alice!.client.group(group.id))!.promote('mallory');
    await until(mallory!, 'promoted', async () => (await infoOf(mallory!, group.id))?.members.find((x) => x.userId === 'mallory')?.role === 'admin');
    const allowed = await forgeAddMember(mallory!, group.id, await eve!.client.sessions.certificate());
    for (const to of [alice!, bob!]) await sendGroupPayload(mallory!, to, allowed);
    await Promise.all([alice, bob].map((m) => untilMembers(m!, group.id, ['alice', 'bob', 'eve', 'mallory'])));
  });

  test('a 100-member group: adds and removes interleaved with sends, ten members offline; everyone ends with exactly what was sent while they were in', async () => {
    relay = await startRelay();
    const name = (i: number): string => `u${String(i).padStart(3, '0')}`;
    const all = await Promise.all(Array.from({ length: 100 }, (_, i) => startMember(name(i), 'd', { prekeys: { oneTime: 8, pqOneTime: 2 } })));
    const at = (i: number): Member => all[i]!;
    const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);
    const admin = at(0);

    // 81 members; then ten of them go offline.
    const group = await groupOf(admin, range(1, 81).map(at), 'hundred');
    const offline = range(10, 20);
    const backings = new Map(offline.map((i) => [i, at(i).backing]));
    await Promise.all(offline.map((i) => stop(at(i))));

    const expected = new Map<number, string[]>(range(0, 100).map((i) => [i, []]));
    const inGroup = new Set(range(0, 81));
    const send = async (from: number, body: string): Promise<void> => {
      await (await at(from).client.group(group.id))!.send(body);
      for (const i of inGroup) if (i !== from) expected.get(i)!.push(body);
    };

    await send(0, 'A1');
    await send(1, 'A2');
    await group.addMembers(range(81, 91).map(name)); // ten new members in one change
    for (const i of range(81, 91)) inGroup.add(i);
    await send(2, 'B1');
    await group.removeMembers(range(70, 80).map(name)); // ten removed in one change
    for (const i of range(70, 80)) inGroup.delete(i);
    await send(0, 'B2');
    await send(81, 'C1'); // a newcomer, who starts sessions with everyone
    await group.addMembers([name(95)]);
    inGroup.add(95);
    await send(3, 'C2');

    // The offline members come back and catch up.
    for (const i of offline) all[i] = await startMember(name(i), 'd', { backing: backings.get(i)! });
    const online = range(0, 100).filter((i) => expected.get(i)!.length > 0);
    await Promise.all(online.map((i) => until(at(i), `${name(i)} messages`, () => bodies(at(i), group.id).length >= expected.get(i)!.length)));
    const final = [...inGroup].sort((a, b) => a - b).map(name);
    await Promise.all([...inGroup].map((i) => untilMembers(at(i), group.id, final)));
    for (const i of range(0, 100)) {
      // Per sender, in sending order, each exactly once; nothing from before joining or after leaving.
      expect(bodies(at(i), group.id), name(i)).toEqual(expected.get(i));
    }
    for (const i of range(70, 80)) expect((await infoOf(at(i), group.id))?.member, name(i)).toBe(false);
    for (const i of range(91, 100).filter((i) => i !== 95)) expect(await at(i).client.group(group.id)).toBeUndefined();
    for (const m of all) expect(m.rejected, m.user).toEqual([]);
  }, 120_000);

  test("a member's linked device joins its groups, a revoked one leaves them, and a relay re-serving the revoked one gets it nowhere", async () => {
    relay = await startRelay();
    const [phone, bob, carol] = await Promise.all([startMember('alice', 'phone'), startMember('bob'), startMember('carol')]);
    const group = await groupOf(phone, [bob]);
    await say(bob, group.id, 'before the laptop', [phone]);

    // Alice links her laptop: once it says hello, her phone adds it to the group.
    const linkBacking = createMemoryStorageBacking();
    const link = await linkDevice({ userId: 'alice', deviceId: 'laptop', storage: createMemoryStorage({ backing: linkBacking }), transport: makeTransport('websocket', relay) });
    await phone.client.approveDevice(link.code);
    await link.completed;
    await link.transport.close();
    const laptop = await startMember('alice', 'laptop', { backing: linkBacking });
    await until(laptop, 'invite', () => laptop.invited.some((g) => g.groupId === group.id));
    // (What Carol's relay sees of Alice's devices now; it will keep serving it.)
    const laptopBundle = (await carol.transport.fetchBundles('alice')).bundles.filter((b) => decodePrekeyBundle(b).certificate.deviceId === 'laptop');
    expect(laptopBundle).toHaveLength(1);
    await until(bob, 'laptop added', async () => (await infoOf(bob, group.id))?.members.find((x) => x.userId === 'alice')?.devices.length === 2);
    await say(bob, group.id, 'hello laptop', [phone, laptop]);
    await say(laptop, group.id, 'from the laptop', [bob]);
    await until(phone, 'own copy', () => bodies(phone, group.id).includes('from the laptop'));
    expect(phone.messages.find((m) => text(m) === 'from the laptop')).toMatchObject({ direction: 'outgoing', sender: { userId: 'alice', deviceId: 'laptop' } });

    // The phone revokes the laptop: it takes it out of the group, and Bob's next message
    // is under a new key the laptop never gets.
    await phone.client.revokeDevice('laptop');
    await until(bob, 'laptop removed', async () => (await infoOf(bob, group.id))?.members.find((x) => x.userId === 'alice')?.devices.join() === 'phone');
    await say(bob, group.id, 'after the laptop', [phone]);
    expect(bodies(laptop, group.id)).toEqual(['hello laptop']);

    // Carol's relay keeps serving the revoked laptop's bundle. Her new group with Alice
    // gets only the phone; she is told about the device she refused.
    carol.tap.bundles = (userId, entry) => (userId === 'alice' ? { ...entry, bundles: [...entry.bundles, ...laptopBundle] } : entry);
    const rejected: ClientEvents['device-rejected'][] = [];
    carol.client.on('device-rejected', (e) => rejected.push(e));
    const withAlice = await carol.client.createGroup({ name: 'carol and alice', members: ['alice'] });
    expect((await withAlice.info()).members.find((x) => x.userId === 'alice')?.devices).toEqual(['phone']);
    expect(rejected).toEqual([{ userId: 'alice', deviceId: 'laptop', reason: 'DEVICE_NOT_CURRENT' }]);
    await until(phone, 'invite', () => phone.invited.some((g) => g.groupId === withAlice.id));
  });

  test('group and 1:1 messages coexist: separate histories, events and conversations', async () => {
    relay = await startRelay();
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((u) => startMember(u)));
    const direct: string[] = [];
    bob!.client.on('message-received', (m) => direct.push(new TextDecoder().decode(m.body)));
    const group = await groupOf(alice!, [bob!]);
    for (let i = 0; i < 5; i++) {
      await alice!.client.send('bob', `direct ${i}`);
      await group.send(`group ${i}`);
    }
    await until(bob!, 'group messages', () => bodies(bob!, group.id).length === 5);
    await until(bob!, 'direct messages', () => direct.length === 5);
    expect(bodies(bob!, group.id)).toEqual([0, 1, 2, 3, 4].map((i) => `group ${i}`));
    expect(direct).toEqual([0, 1, 2, 3, 4].map((i) => `direct ${i}`));
    expect((await bob!.client.history('alice')).map((m) => new TextDecoder().decode(m.body))).toEqual(direct);
    expect((await (await bob!.client.group(group.id))!.history()).map(text)).toEqual(bodies(bob!, group.id));
    expect((await bob!.client.conversations()).map((c) => c.userId)).toEqual(['alice']);
    expect((await bob!.client.groups()).map((g) => g.groupId)).toEqual([group.id]);
    await bob!.client.send('alice', 'a direct answer');
    await (await bob!.client.group(group.id))!.send('a group answer');
    await until(alice!, 'group answer', () => bodies(alice!, group.id).includes('a group answer'));
    expect((await alice!.client.history('bob')).map((m) => new TextDecoder().decode(m.body)).at(-1)).toBe('a direct answer');
  });

  test('a member whose account key is not the trusted one is sent nothing until the change is accepted and it is added again', async () => {
    // A relay whose product login lets a user re-install (a new account key, same address).
    relay = await startRelay({ verifyRegistration: async () => true });
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((u) => startMember(u)));
    const group = await groupOf(alice!, [bob!, carol!]);
    await say(alice!, group.id, 'before', [bob!, carol!]);

    // Bob re-installs and writes to Alice: she learns of his new key (pending, not accepted).
    await stop(bob!);
    const newBob = await startMember('bob');
    const changed = new Promise<Uint8Array>((resolve) => alice!.client.on('identity-changed', (e) => resolve(e.accountKey)));
    await newBob.client.send('alice', 'new phone, same bob');
    const newKey = await changed;
    const aliceGroup = (await alice!.client.group(group.id))!;
    expect((await aliceGroup.members()).map((m) => [m.userId, m.untrusted])).toEqual([
      ['alice', false],
      ['bob', true],
      ['carol', false],
    ]);
    // Alice's message goes to Carol only: no key for either Bob, nothing uploaded for Bob.
    const uploads: string[][] = [];
    alice!.tap.shared = (recipients) => (uploads.push(recipients.map((r) => r.to.userId)), [...recipients]);
    await say(alice!, group.id, 'while bob is unverified', [carol!]);
    expect(uploads).toEqual([['carol']]);
    expect(bodies(newBob, group.id)).toEqual([]);
    // Nor can Alice add him again under a key she has not accepted.
    await aliceGroup.removeMembers(['bob']);
    await expect(aliceGroup.addMembers(['bob'])).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));

    // Once accepted, the admin adds the new Bob, and he reads what comes next.
    await alice!.client.acceptIdentity('bob', newKey);
    await aliceGroup.addMembers(['bob']);
    await until(newBob, 'invite', () => newBob.invited.some((g) => g.groupId === group.id));
    expect((await aliceGroup.members()).every((m) => !m.untrusted)).toBe(true);
    await say(alice!, group.id, 'welcome back bob', [newBob, carol!]);
    expect(bodies(newBob, group.id)).toEqual(['welcome back bob']);
  });

  test('a message that overtakes its welcome is kept until the welcome comes, once; messages for invented groups cannot fill the store', async () => {
    relay = await startRelay();
    const [alice, bob, dave] = await Promise.all(['alice', 'bob', 'dave'].map((u) => startMember(u)));
    let release: () => void = () => {};
    bob!.tap.gate = new Promise<void>((resolve) => (release = resolve));
    let captured: Uint8Array | undefined;
    alice!.tap.shared = (recipients, frame) => ((captured = frame.slice()), [...recipients]);
    const group = await alice!.client.createGroup({ name: 'g', members: ['bob'] });
    await group.send('early');
    // The relay hands Bob the message before the welcome (held at the gate).
    const from = { userId: 'alice', deviceId: 'd' } as Address;
    const frame = (bytes: Uint8Array): InboundFrame => ({ id: `x-${Math.random()}`, from, receivedAt: Date.now(), bytes });
    await bob!.tap.inject(frame(captured!));
    const early = captured!;
    bob!.tap.lose = (f) => f.bytes.length === early.length && f.bytes.every((b, i) => b === early[i]); // the relay's own copy never comes
    expect(bob!.messages).toEqual([]);
    expect(bob!.rejected).toEqual([]);
    bob!.tap.gate = undefined;
    release();
    await until(bob!, 'early', () => bodies(bob!, group.id).length === 1);
    await say(alice!, group.id, 'next', [bob!]);
    expect(bodies(bob!, group.id)).toEqual(['early', 'next']);
    expect((await (await bob!.client.group(group.id))!.history()).map(text)).toEqual(['early', 'next']);

    // A relay inventing groups: Dave keeps at most 64 such messages, and says so beyond.
    for (let i = 0; i < 70; i++) {
      const invented = captured!.slice();
      invented.set(Uint8Array.from({ length: 32 }, () => Math.floor(Math.random() * 256)), 2);
      await dave!.tap.inject(frame(invented));
    }
    expect(dave!.rejected.map((r) => r.code)).toEqual(Array(6).fill('LIMIT_EXCEEDED'));
    expect(dave!.messages).toEqual([]);
  });

  test.each([7, 11, 23])('storage failures while receiving group traffic (before and after the commit): every change and message lands exactly once (seed %i)', async (seed) => {
    relay = await startRelay();
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((u) => startMember(u)));
    // Carol's store fails a quarter of its writes, half of them after applying them (what a
    // crash between the commit and the acknowledgement looks like); her transport fetches
    // whatever was not acknowledged again.
    const backing = createMemoryStorageBacking();
    const faults = { on: false, injected: 0, random: seeded(seed) };
    const inner = createMemoryStorage({ backing });
    const storage: StorageAdapter = {
      specificationVersion: inner.specificationVersion,
      get: (k) => inner.get(k),
      range: (p, o) => inner.range(p, o),
      exclusive: (fn) => inner.exclusive!(fn),
      close: () => inner.close(),
      async batch(ops) {
        if (!faults.on || faults.injected >= 12 || faults.random() >= 0.25) return inner.batch(ops);
        faults.injected++;
        if (faults.random() < 0.5) await inner.batch(ops);
        throw new StorageError('STORAGE_FAILED', { message: 'injected failure', details: { operation: 'batch' } });
      },
    };
    const carol = await startMember('carol', 'd', { storage, backing, polling: true });
    const group = await groupOf(alice!, [bob!, carol]);
    faults.on = true;
    const expected: string[] = [];
    for (let i = 0; i < 6; i++) {
      await (await alice!.client.group(group.id))!.send(`a${i}`);
      await (await bob!.client.group(group.id))!.send(`b${i}`);
      expected.push(`a${i}`, `b${i}`);
      if (i === 2) await group.rename('renamed under failures');
      if (i === 4) await group.promote('carol');
    }
    const final = await group.info();
    await until(carol, 'everything', async () => {
      const history = await (await carol.client.group(group.id))!.history();
      return history.length >= expected.length && JSON.stringify(await infoOf(carol, group.id)) === JSON.stringify(final);
    });
    faults.on = false;
    expect(faults.injected).toBeGreaterThan(0);
    const history = (await (await carol.client.group(group.id))!.history()).map(text);
    expect([...history].sort()).toEqual([...expected].sort()); // each exactly once
    expect(new Set(bodies(carol, group.id)).size).toBe(bodies(carol, group.id).length); // no event twice
    await say(alice!, group.id, 'after the failures', [carol]);
    expect((await (await carol.client.group(group.id))!.history()).length).toBe(expected.length + 1);
  });
});

// --- hand-made group payloads (docs/protocol.md §12.3, §11.1), as a malicious member would make them

/** A deterministic random source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hexBytes = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
const u32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
const u64 = (n: number): Uint8Array => concatBytes(u32(Math.floor(n / 2 ** 32)), u32(n >>> 0));
const string8 = (v: string): Uint8Array => concatBytes(Uint8Array.of(utf8(v).length), utf8(v));
const label8 = string8;

/** A GroupChange (§12.3.1) adding `newcomer`, signed by `signer`'s device signing key on its head. */
async function forgeAddMember(signer: Member, groupIdHex: string, newcomer: DeviceCertificate): Promise<Uint8Array> {
  const crypto = createNodeCryptoProvider();
  const storage = createMemoryStorage({ backing: signer.backing });
  const head = (await createGroupManager({ storage, crypto }).state(hexBytes(groupIdHex) as GroupId))!;
  const parentHash = crypto.sha256(concatBytes(label8(Label.groupStateHash), encodeGroupState(head)));
  // IdentityRecord (§7.2) inside the record envelope (§7.1): the device signing secret.
  const record = (await storage.get(['identity']))!;
  const body = record.subarray(2, record.length - 8);
  const signingSecret = body.subarray(1 + (body[0] === 1 ? 32 : 0), 1 + (body[0] === 1 ? 32 : 0) + 32);
  const device = concatBytes(string8(newcomer.deviceId), newcomer.signingKey, newcomer.identityKey, Uint8Array.of(newcomer.capabilities), newcomer.signature);
  const member = concatBytes(string8(newcomer.userId), newcomer.accountKey, Uint8Array.of(1, 1), device);
  const changeBody = concatBytes(
    Uint8Array.of(1, 0x12),
    hexBytes(groupIdHex),
    u32(head.epoch + 1),
    parentHash,
    string8(signer.user),
    string8(signer.device),
    u64(Date.now()),
    Uint8Array.of(1, 0x02),
    member,
  );
  const signature = await crypto.ed25519Sign(signingSecret as never, concatBytes(label8(Label.groupChange), changeBody));
  return concatBytes(changeBody, signature);
}

/** Sends a group payload as GROUP content (§11.1) over `from`'s pairwise session with `to`. */
async function sendGroupPayload(from: Member, to: Member, payload: Uint8Array): Promise<void> {
  const peer = { userId: to.user, deviceId: to.device } as Address;
  const content = concatBytes(Uint8Array.of(1, 0x05), new Uint8Array(16).fill(7), u64(Date.now()), u32(payload.length), payload);
  const frame = await from.client.sessions.encrypt(peer, content);
  const listVersion = (await from.client.sessions.deviceList(to.user))?.listVersion ?? 0;
  await from.transport.send([{ to: peer, frame, listVersion }]).catch((e: unknown) => {
    // This device never fetched the recipient's list: name the version the relay holds.
    if (!isDeadboltError(e, 'DEVICE_MISMATCH')) throw e;
    return from.transport.send([{ to: peer, frame, listVersion: e.details.users[0]!.listVersion }]);
  });
}
