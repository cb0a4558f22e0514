/**
 * Concurrent changes (docs/protocol.md §12.5): every member converges on the same
 * head whatever the delivery order; removals beat concurrent additions; held changes wait
 * for their parent; the window bounds the log; a reorganisation makes senders rotate.
 */
import { describe, expect, test } from 'vitest';
import { toHex } from '../../src/codec/bytes.js';
import { groupChangeHash, signGroupChange } from '../../src/group/group-change.js';
import { groupIdHex, type GroupId } from '../../src/group/group-id.js';
import type { GroupChangeOutcome } from '../../src/group/group-manager.js';
import { Limits } from '../../src/index.js';
import { createDevice, deliverOne, groupOf, send, type Device, Net } from './helpers.js';

async function headHash(d: Device, groupId: GroupId): Promise<string> {
  return toHex((await d.groups.store.meta(groupIdHex(groupId)))!.stateHash);
}

/** Delivers a change made by `by` to `to` only (as the pairwise session would). */
async function deliverTo(by: Device, to: Device, out: GroupChangeOutcome): Promise<unknown> {
  const d = out.deliveries.find((x) => x.to.userId === to.address.userId && x.to.deviceId === to.address.deviceId);
  if (!d) throw new Error(`no delivery for ${to.address.userId}`);
  return deliverOne(by, to, d);
}

async function setup(): Promise<{ alice: Device; bob: Device; carol: Device; dave: Device; groupId: GroupId; net: Net }> {
  const alice = await createDevice('alice', 'phone');
  const bob = await createDevice('bob', 'laptop');
  const carol = await createDevice('carol', 'tablet');
  const dave = await createDevice('dave', 'pc');
  const { groupId, net } = await groupOf(alice, [bob, carol, dave]);
  await net.deliver(alice, (await alice.groups.promote(groupId, 'bob')).deliveries);
  return { alice, bob, carol, dave, groupId, net };
}

describe('resolution of concurrent changes', () => {
  test('two admins rename at once: the smaller change hash wins on every member, whatever the order', async () => {
    const { alice, bob, carol, dave, groupId } = await setup();
    const a = await alice.groups.rename(groupId, 'by alice');
    const b = await bob.groups.rename(groupId, 'by bob');
    await deliverTo(alice, carol, a);
    await deliverTo(bob, carol, b);
    await deliverTo(bob, dave, b);
    await deliverTo(alice, dave, a);
    await deliverTo(bob, alice, b);
    await deliverTo(alice, bob, a);
    const winner = toHex(groupChangeHash(alice.groups.crypto, a.change)) < toHex(groupChangeHash(alice.groups.crypto, b.change)) ? 'by alice' : 'by bob';
    for (const d of [alice, bob, carol, dave]) expect((await d.groups.state(groupId))!.name).toBe(winner);
    const hashes = await Promise.all([alice, bob, carol, dave].map((d) => headHash(d, groupId)));
    expect(new Set(hashes).size).toBe(1);
  });

  test('a removal beats a concurrent addition whatever the hashes; the adder sees its change orphaned and rebases it', async () => {
    const { alice, bob, carol, dave, groupId, net } = await setup();
    const erin = await createDevice('erin', 'phone');
    net.add(erin);
    const removal = await alice.groups.removeMember(groupId, 'carol');
    const addition = await bob.groups.addMember(groupId, { devices: [erin.certificate] });
    await deliverTo(bob, dave, addition);
    await deliverTo(alice, dave, removal);
    await deliverTo(alice, bob, removal).then((r) => {
      expect((r as { orphaned: { ops: unknown[] }[] }).orphaned.map((c) => c.ops)).toEqual([addition.change.ops]);
    });
    await deliverTo(bob, alice, addition);
    for (const d of [alice, bob, dave]) expect((await d.groups.state(groupId))!.members.map((m) => m.userId)).toEqual(['alice', 'bob', 'dave']);
    // Bob re-issues his addition on the new head; everyone (Erin too) converges.
    expect(await bob.groups.canApply(groupId, addition.change.ops)).toBe(true);
    const again = await bob.groups.change(groupId, addition.change.ops);
    await net.deliver(bob, again.deliveries);
    for (const d of [alice, bob, dave, erin]) expect((await d.groups.state(groupId))!.members.map((m) => m.userId)).toEqual(['alice', 'bob', 'dave', 'erin']);
    expect(new Set(await Promise.all([alice, bob, dave, erin].map((d) => headHash(d, groupId)))).size).toBe(1);
  });

  test('a change that arrives before its parent is held, then applied with it', async () => {
    const { alice, bob, dave, groupId } = await setup();
    const first = await alice.groups.rename(groupId, 'one');
    const second = await alice.groups.rename(groupId, 'two');
    expect(((await deliverTo(alice, dave, second)) as { outcome: string }).outcome).toBe('pending');
    expect((await dave.groups.state(groupId))!.name).toBe('g');
    await deliverTo(alice, dave, first);
    expect((await dave.groups.state(groupId))!.name).toBe('two');
    expect(await dave.storage.range(['group', groupIdHex(groupId), 'pending'])).toEqual([]);
    void bob;
  });

  test('the window: the base follows the head, and a change on a parent that fell out of it is stale', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    await net.deliver(alice, (await alice.groups.promote(groupId, 'bob')).deliveries);
    const meta1 = (await bob.groups.store.meta(groupIdHex(groupId)))!;
    const late = await signGroupChange(bob.groups.crypto, bob.signingSecret, { groupId, epoch: meta1.epoch + 1, parentHash: meta1.stateHash, signer: bob.address, createdAt: 1, ops: [{ type: 'rename', name: 'late' }] });
    for (let i = 0; i < Limits.maxGroupReorgDepth + 3; i++) {
      const out = await alice.groups.rename(groupId, `n${i}`);
      const r = (await deliverTo(alice, bob, out)) as { orphaned: unknown[]; headChanged: boolean };
      // Moving the base along a single chain orphans nothing.
      expect(r.orphaned).toEqual([]);
      expect(r.headChanged).toBe(true);
    }
    const changes = await bob.storage.range(['group', groupIdHex(groupId), 'change']);
    expect(changes).toHaveLength(Limits.maxGroupReorgDepth);
    expect(((await alice.groups.processChange(bob.certificate, late.bytes)) as { outcome: string }).outcome).toBe('stale');
    expect((await alice.groups.state(groupId))!.name).toBe(`n${Limits.maxGroupReorgDepth + 2}`);
  });

  test('a reorganisation that drops a device makes a sender that gave it its key rotate', async () => {
    const { alice, bob, carol, dave, groupId, net } = await setup();
    const erin = await createDevice('erin', 'phone');
    net.add(erin);
    const addErin = await alice.groups.addMember(groupId, { devices: [erin.certificate] });
    const removeDave = await bob.groups.removeMember(groupId, 'dave'); // revoking: wins
    await deliverTo(alice, carol, addErin);
    // Carol sends while Erin is in her head: Erin gets Carol's key.
    const m1 = await carol.groups.encrypt(groupId, new TextEncoder().encode('erin can read this'));
    expect(m1.distributions.map((d) => d.to.userId)).toContain('erin');
    await deliverTo(bob, carol, removeDave);
    expect((await carol.groups.state(groupId))!.members.map((m) => m.userId)).toEqual(['alice', 'bob', 'carol']);
    const m2 = await carol.groups.encrypt(groupId, new TextEncoder().encode('erin cannot'));
    expect(m2.keyId).toBe(m1.keyId + 1);
    expect(m2.distributions.map((d) => d.to.userId).sort()).toEqual(['alice', 'bob']);
    void send;
  });
});
