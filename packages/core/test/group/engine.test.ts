/**
 * The group engine (docs/protocol.md §12.10): catch-up after being offline, held
 * messages, fragments, the crash-safe inbox, key requests and automatic rebase. Devices
 * exchange frames through in-memory mailboxes, as they would through a relay: pairwise
 * frames carry group payloads (authenticated as their sender), group frames are fanned out.
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { toHex } from '../../src/codec/bytes.js';
import { createGroupEngine, type GroupEngine, type GroupEvent } from '../../src/group/group-engine.js';
import { createGroupManager } from '../../src/group/group-manager.js';
import { groupIdHex, type GroupId } from '../../src/group/group-id.js';
import { Limits, MessageType } from '../../src/index.js';
import type { DeviceCertificate } from '../../src/protocol/device-certificate.js';
import { createDevice, str, text, type Device } from './helpers.js';

type Frame = { readonly kind: 'pairwise'; readonly from: DeviceCertificate; readonly payload: Uint8Array } | { readonly kind: 'group'; readonly message: Uint8Array };

interface Node {
  readonly device: Device;
  engine: GroupEngine;
  readonly inbox: Frame[];
  readonly received: string[];
  online: boolean;
}

class World {
  readonly nodes = new Map<string, Node>();
  /** Pairwise payloads dropped in transit when this returns true. */
  drop: (from: Device, to: DeviceCertificate, payload: Uint8Array) => boolean = () => false;
  chunk: number = Limits.maxGroupFragmentChunk;

  async join(user: string, device: string, account?: Device['account']): Promise<Node> {
    const d = await createDevice(user, device, account ? { account } : {});
    const node: Node = { device: d, engine: this.engineFor(d), inbox: [], received: [], online: true };
    this.nodes.set(`${user}/${device}`, node);
    return node;
  }

  engineFor(d: Device): GroupEngine {
    return createGroupEngine({
      groups: d.groups,
      maxPairwisePayload: this.chunk,
      sendPairwise: async (to, payload) => {
        if (this.drop(d, to, payload)) return;
        this.node(to).inbox.push({ kind: 'pairwise', from: d.certificate, payload });
      },
    });
  }

  node(a: { userId: string; deviceId: string }): Node {
    const n = this.nodes.get(`${a.userId}/${a.deviceId}`);
    if (!n) throw new Error(`no node ${a.userId}/${a.deviceId}`);
    return n;
  }

  async send(from: Node, groupId: GroupId, body: string): Promise<void> {
    const out = await from.engine.send(groupId, text(body));
    for (const r of out.recipients) this.node(r).inbox.push({ kind: 'group', message: out.message });
  }

  /** Processes a node's mailbox (in `order` if given), recording every message it delivers. */
  async flush(n: Node, order?: (frames: Frame[]) => Frame[]): Promise<GroupEvent[]> {
    const frames = n.inbox.splice(0);
    const events: GroupEvent[] = [];
    for (const f of order ? order(frames) : frames) {
      try {
        events.push(...(f.kind === 'pairwise' ? await n.engine.receivePairwise(f.from, f.payload) : await n.engine.receiveGroupMessage(f.message)));
      } catch (e) {
        if (!isDeadboltError(e)) throw e;
        events.push({ type: 'message-dropped', groupId: new Uint8Array(32) as GroupId, code: e.code });
      }
    }
    for (const e of events) if (e.type === 'message-received') n.received.push(`${e.sender.userId}:${str(e.plaintext)}`);
    return events;
  }

  /** Flushes every online node until all mailboxes are empty. */
  async settle(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      const busy = [...this.nodes.values()].filter((n) => n.online && n.inbox.length > 0);
      if (busy.length === 0) return;
      for (const n of busy) await this.flush(n);
    }
    throw new Error('mailboxes did not settle');
  }
}

async function head(n: Node, groupId: GroupId): Promise<string> {
  return toHex((await n.device.groups.store.meta(groupIdHex(groupId)))!.stateHash);
}

/** A deterministic shuffle (mulberry32). */
function shuffled<T>(items: T[], seed: number): T[] {
  let a = seed;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

async function scenario(): Promise<{ world: World; alice: Node; bob: Node; carol: Node; dave: Node; erin: Node; groupId: GroupId; expected: string[] }> {
  const world = new World();
  const alice = await world.join('alice', 'phone');
  const bob = await world.join('bob', 'laptop');
  const carol = await world.join('carol', 'tablet');
  const dave = await world.join('dave', 'pc');
  const erin = await world.join('erin', 'phone');
  const groupId = await alice.engine.create({ name: 'team', members: [bob, carol, dave].map((n) => ({ devices: [n.device.certificate] })) });
  await world.settle();
  // Dave goes offline; the others keep talking and changing the group.
  dave.online = false;
  const expected: string[] = [];
  const say = async (n: Node, body: string, toDave = true) => {
    await world.send(n, groupId, body);
    if (toDave) expected.push(`${n.device.address.userId}:${body}`);
    await world.settle();
  };
  await say(alice, 'a1');
  await say(bob, 'b1');
  await alice.engine.addMember(groupId, { devices: [erin.device.certificate] });
  await world.settle();
  await say(erin, 'e1');
  await say(bob, 'b2');
  await alice.engine.removeMember(groupId, 'carol');
  await world.settle();
  await say(alice, 'a2'); // a new key, after Carol's removal
  await say(bob, 'b3');
  await alice.engine.rename(groupId, 'team 2');
  await world.settle();
  await say(erin, 'e2');
  await say(alice, 'a3');
  return { world, alice, bob, carol, dave, erin, groupId, expected };
}

describe('catch-up (§12.10)', () => {
  test('an offline member catches up on everything sent while away, in order, exactly once', async () => {
    const { world, alice, dave, groupId, expected, carol } = await scenario();
    dave.online = true;
    await world.flush(dave);
    expect(dave.received).toEqual(expected);
    expect(await head(dave, groupId)).toBe(await head(alice, groupId));
    // Carol, removed, read nothing sent after her removal.
    expect(carol.received.filter((r) => ['alice:a2', 'bob:b3', 'erin:e2', 'alice:a3'].includes(r))).toEqual([]);
  });

  test('the same mailbox in any order, delivered twice: every message once, each sender in order, same head', async () => {
    for (const seed of [1, 2, 3]) {
      const { world, alice, dave, groupId, expected } = await scenario();
      const frames = dave.inbox.slice();
      dave.online = true;
      await world.flush(dave, (f) => shuffled(f, seed));
      dave.inbox.push(...frames); // the relay delivers everything again
      await world.flush(dave, (f) => shuffled(f, seed + 100));
      expect([...dave.received].sort()).toEqual([...expected].sort());
      expect(await head(dave, groupId)).toBe(await head(alice, groupId));
      for (const sender of ['alice', 'bob', 'erin']) {
        const got = dave.received.filter((r) => r.startsWith(`${sender}:`));
        const want = expected.filter((r) => r.startsWith(`${sender}:`));
        // Messages that waited for a key come out in the sender's order; a message whose
        // key was already there is delivered on arrival (the display sorts by time).
        expect(new Set(got)).toEqual(new Set(want));
      }
      expect(await dave.device.storage.range(['group', groupIdHex(groupId), 'held'])).toEqual([]);
      expect(await dave.device.storage.range(['group', 'inbox'])).toEqual([]);
    }
  });
});

describe('held messages, fragments and the inbox', () => {
  test('a message that arrives before its sender key is held, survives a restart, and is released once', async () => {
    const world = new World();
    const alice = await world.join('alice', 'phone');
    const bob = await world.join('bob', 'laptop');
    const groupId = await alice.engine.create({ name: 'g', members: [{ devices: [bob.device.certificate] }] });
    await world.settle();
    await world.send(alice, groupId, 'early');
    // The group message overtakes the pairwise distribution.
    const frames = bob.inbox.splice(0);
    expect(frames.map((f) => f.kind)).toEqual(['pairwise', 'group']);
    expect(await bob.engine.receiveGroupMessage((frames[1] as { message: Uint8Array }).message)).toEqual([]);
    expect(await bob.device.storage.range(['group', groupIdHex(groupId), 'held'])).toHaveLength(1);
    // Restart: a new manager and engine over the same store.
    const restarted = createGroupEngine({ groups: createGroupManager({ storage: bob.device.storage, crypto: bob.device.groups.crypto }), sendPairwise: async () => {} });
    const f0 = frames[0] as { from: DeviceCertificate; payload: Uint8Array };
    const events = await restarted.receivePairwise(f0.from, f0.payload);
    expect(events.filter((e) => e.type === 'message-received').map((e) => str((e as { plaintext: Uint8Array }).plaintext))).toEqual(['early']);
    expect(await bob.device.storage.range(['group', groupIdHex(groupId), 'held'])).toEqual([]);
    expect(await restarted.drainInbox()).toEqual([]);
  });

  test('a welcome larger than one pairwise message travels as fragments, delivered in any order', async () => {
    const world = new World();
    world.chunk = 300;
    const alice = await world.join('alice', 'phone');
    const others: Node[] = [];
    for (const u of ['b', 'c', 'd', 'e']) others.push(await world.join(u, 'x'));
    const groupId = await alice.engine.create({ name: 'fragmented', members: others.slice(0, 3).map((n) => ({ devices: [n.device.certificate] })) });
    await world.settle();
    const newcomer = others[3]!;
    await alice.engine.addMember(groupId, { devices: [newcomer.device.certificate] });
    const frames = newcomer.inbox.slice();
    expect(frames.length).toBeGreaterThan(2);
    expect(frames.every((f) => f.kind === 'pairwise' && f.payload[1] === MessageType.GROUP_FRAGMENT)).toBe(true);
    await world.flush(newcomer, (f) => f.slice().reverse());
    await world.settle();
    expect(await head(newcomer, groupId)).toBe(await head(alice, groupId));
    await world.send(alice, groupId, 'hello newcomer');
    await world.settle();
    expect(newcomer.received).toEqual(['alice:hello newcomer']);
    expect(await newcomer.device.storage.range(['group', 'inbox'])).toEqual([]);
  });

  test('an inbox entry written in the pairwise batch is processed exactly once across a crash', async () => {
    const world = new World();
    const alice = await world.join('alice', 'phone');
    const bob = await world.join('bob', 'laptop');
    const groupId = await alice.engine.create({ name: 'g', members: [{ devices: [bob.device.certificate] }] });
    const welcome = bob.inbox.splice(0)[0] as { from: DeviceCertificate; payload: Uint8Array };
    // The client commits the inbox entry with its ratchet step, then crashes before draining.
    await bob.device.storage.batch([bob.engine.inboxOp(welcome.from, welcome.payload)]);
    const restarted = createGroupEngine({ groups: createGroupManager({ storage: bob.device.storage, crypto: bob.device.groups.crypto }), sendPairwise: async () => {} });
    const events = await restarted.drainInbox();
    expect(events.map((e) => e.type)).toEqual(['group-changed']);
    expect(await restarted.drainInbox()).toEqual([]);
    expect(await bob.device.groups.isMember(groupId)).toBe(true);
  });

  test('a payload that will never be valid is rejected and deleted; one that is only early waits', async () => {
    const world = new World();
    const alice = await world.join('alice', 'phone');
    const bob = await world.join('bob', 'laptop');
    const mallory = await world.join('mallory', 'pc');
    const groupId = await alice.engine.create({ name: 'g', members: [{ devices: [bob.device.certificate] }] });
    const welcome = bob.inbox.splice(0)[0] as { from: DeviceCertificate; payload: Uint8Array };
    // Alice's distribution arrives before the welcome: it waits in the inbox.
    await world.send(alice, groupId, 'm');
    const skdm = bob.inbox.splice(0).find((f) => f.kind === 'pairwise') as { from: DeviceCertificate; payload: Uint8Array };
    expect(await bob.engine.receivePairwise(skdm.from, skdm.payload)).toEqual([]);
    expect(await bob.device.storage.range(['group', 'inbox'])).toHaveLength(1);
    // Mallory's junk and her distribution for a group she is not in are refused for good.
    const junk = await bob.engine.receivePairwise(mallory.device.certificate, Uint8Array.of(1, 0x7f, 0));
    expect(junk).toEqual([{ type: 'payload-rejected', from: mallory.device.address, code: 'DECODE_FAILED' }]);
    await bob.engine.receivePairwise(welcome.from, welcome.payload);
    expect(await bob.device.storage.range(['group', 'inbox'])).toEqual([]);
    expect(await bob.device.groups.store.sender(groupIdHex(groupId), alice.device.address)).toBeDefined();
  });
});

describe('key requests and rebase', () => {
  test('a lost distribution is healed by a key request: later messages decrypt, earlier ones are reported lost', async () => {
    const world = new World();
    const alice = await world.join('alice', 'phone');
    const bob = await world.join('bob', 'laptop');
    const groupId = await alice.engine.create({ name: 'g', members: [{ devices: [bob.device.certificate] }] });
    await world.settle();
    world.drop = (_from, _to, payload) => payload[1] === MessageType.GROUP_SENDER_KEY;
    await world.send(alice, groupId, 'lost key');
    await world.settle();
    world.drop = () => false;
    expect(bob.received).toEqual([]);
    expect(await bob.engine.requestMissingKeys(groupId)).toBe(1);
    expect(await bob.engine.requestMissingKeys(groupId)).toBe(0); // once per sender and key
    await world.settle();
    await world.send(alice, groupId, 'after the request');
    await world.settle();
    expect(bob.received).toEqual(['alice:after the request']);
    expect(await bob.device.storage.range(['group', groupIdHex(groupId), 'held'])).toEqual([]);
  });

  test('an admin whose change lost a race re-issues it automatically; everyone converges', async () => {
    const world = new World();
    const alice = await world.join('alice', 'phone');
    const bob = await world.join('bob', 'laptop');
    const carol = await world.join('carol', 'tablet');
    const erin = await world.join('erin', 'pc');
    const groupId = await alice.engine.create({ name: 'g', members: [bob, carol].map((n) => ({ devices: [n.device.certificate] })) });
    await world.settle();
    await alice.engine.promote(groupId, 'bob');
    await world.settle();
    // Concurrent: Alice removes Carol (revoking, wins), Bob adds Erin.
    await alice.engine.removeMember(groupId, 'carol');
    await bob.engine.addMember(groupId, { devices: [erin.device.certificate] });
    await world.settle();
    const heads = await Promise.all([alice, bob, erin].map((n) => head(n, groupId)));
    expect(new Set(heads).size).toBe(1);
    expect((await alice.device.groups.state(groupId))!.members.map((m) => m.userId)).toEqual(['alice', 'bob', 'erin']);
    await world.send(erin, groupId, 'made it');
    await world.settle();
    expect(alice.received).toContain('erin:made it');
    expect(carol.received).not.toContain('erin:made it');
  });

  test('a device that cannot be reached does not block the group; it gets the key with a later send', async () => {
    const world = new World();
    const alice = await world.join('alice', 'phone');
    const bob = await world.join('bob', 'laptop');
    const carol = await world.join('carol', 'tablet');
    const groupId = await alice.engine.create({ name: 'g', members: [bob, carol].map((n) => ({ devices: [n.device.certificate] })) });
    await world.settle();
    const failing = alice.engine;
    alice.engine = createGroupEngine({
      groups: alice.device.groups,
      sendPairwise: async (to, payload) => {
        if (to.userId === 'carol') throw new Error('no session with carol yet');
        bob.inbox.push({ kind: 'pairwise', from: alice.device.certificate, payload });
      },
    });
    const first = await alice.engine.send(groupId, text('bob only'));
    expect(first.undelivered).toEqual([carol.device.address]);
    expect((first.error as Error).message).toBe('no session with carol yet');
    for (const r of first.recipients) world.node(r).inbox.push({ kind: 'group', message: first.message });
    alice.engine = failing;
    await world.send(alice, groupId, 'everyone');
    await world.settle();
    expect(bob.received).toEqual(['alice:bob only', 'alice:everyone']);
    expect(carol.received).toEqual(['alice:everyone']);
  });

  test('held messages are capped per group; the oldest is dropped', async () => {
    const world = new World();
    const alice = await world.join('alice', 'phone');
    const bob = await world.join('bob', 'laptop');
    const groupId = await alice.engine.create({ name: 'g', members: [{ devices: [bob.device.certificate] }] });
    await world.settle();
    world.drop = () => true;
    const messages: Uint8Array[] = [];
    for (let i = 0; i <= Limits.maxGroupHeldMessages; i++) messages.push((await alice.engine.send(groupId, text(`${i}`))).message);
    const events: GroupEvent[] = [];
    for (const m of messages) events.push(...(await bob.engine.receiveGroupMessage(m)));
    expect(events).toEqual([{ type: 'message-dropped', groupId, code: 'EVICTED' }]);
    expect(await bob.device.storage.range(['group', groupIdHex(groupId), 'held'])).toHaveLength(Limits.maxGroupHeldMessages);
  });
});
