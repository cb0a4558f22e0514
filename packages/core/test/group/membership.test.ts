/**
 * Membership through the group manager (docs/protocol.md §12.3–§12.6): the life of
 * a group, the rules of §12.4 on every member, welcomes, and a 100-member group under a
 * stream of interleaved changes.
 */
import { describe, expect, test } from 'vitest';
import type { UserId } from '@deadbolt/spec';
import { toHex } from '../../src/codec/bytes.js';
import { decodeGroupWelcome, encodeGroupWelcome } from '../../src/group/group-welcome.js';
import { encodeGroupState, groupDevices } from '../../src/group/group-state.js';
import { signGroupChange, genesisGroupId, type GroupOp } from '../../src/group/group-change.js';
import { groupIdHex, type GroupId } from '../../src/group/group-id.js';
import type { DeviceCertificate } from '../../src/protocol/device-certificate.js';
import { certify, countingCrypto, createDevice, expectFailsWithoutMutation, groupOf, newAccount, send, str, type Device, Net } from './helpers.js';

async function headHash(d: Device, groupId: GroupId): Promise<string> {
  return toHex((await d.groups.store.meta(groupIdHex(groupId)))!.stateHash);
}

async function expectConverged(devices: readonly Device[], groupId: GroupId): Promise<string> {
  const hashes = await Promise.all(devices.map((d) => headHash(d, groupId)));
  for (const h of hashes) expect(h).toBe(hashes[0]);
  return hashes[0]!;
}

describe('the life of a group', () => {
  test('create, add, promote, rename, demote, remove and leave: every member holds the same state', async () => {
    const alice = await createDevice('alice', 'phone');
    const alicePc = await createDevice('alice', 'pc', { account: alice.account });
    const bob = await createDevice('bob', 'laptop');
    const carol = await createDevice('carol', 'tablet');
    const { groupId, net } = await groupOf(alice, [alicePc, bob], 'first name');
    net.add(carol);
    const step = async (by: Device, run: () => Promise<{ deliveries: readonly never[] } | { deliveries: readonly import('../../src/group/group-manager.js').GroupDelivery[] }>) => {
      const out = await run();
      await net.deliver(by, out.deliveries);
    };
    await step(alice, () => alice.groups.addMember(groupId, { devices: [carol.certificate] }));
    await step(alice, () => alice.groups.promote(groupId, 'bob'));
    await step(bob, () => bob.groups.rename(groupId, 'second name'));
    await step(bob, () => bob.groups.demote(groupId, 'alice'));
    await step(bob, () => bob.groups.removeMember(groupId, 'carol'));
    const state = (await bob.groups.state(groupId))!;
    expect(state.name).toBe('second name');
    expect(state.epoch).toBe(5);
    expect(state.members.map((m) => `${m.userId}:${m.role}:${m.devices.map((d) => d.deviceId).join(',')}`)).toEqual(['alice:member:pc,phone', 'bob:admin:laptop']);
    await expectConverged([alice, alicePc, bob], groupId);
    // Carol learned of her removal and holds no key of the group any more.
    expect(await carol.groups.isMember(groupId)).toBe(false);
    const kinds = new Set((await carol.storage.range(['group', groupIdHex(groupId)])).map((e) => e.key[2]));
    for (const k of ['own', 'recipients', 'sender']) expect(kinds.has(k)).toBe(false);
    // Messages flow among the rest, on both of Alice's devices.
    const m = await send(net, bob, groupId, 'still here');
    const got = await net.fanOut(bob, groupId, m);
    expect([...got.values()]).toEqual(['still here', 'still here']);
  });

  test('when the last admin leaves, the member with the smallest user id becomes admin everywhere', async () => {
    const zoe = await createDevice('zoe', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const carl = await createDevice('carl', 'pc');
    const { groupId, net } = await groupOf(zoe, [bob, carl]);
    await net.deliver(zoe, (await zoe.groups.leave(groupId)).deliveries);
    for (const d of [bob, carl]) {
      const s = (await d.groups.state(groupId))!;
      expect(s.members.map((m) => `${m.userId}:${m.role}`)).toEqual(['bob:admin', 'carl:member']);
    }
    await expectConverged([bob, carl], groupId);
  });

  test('the last admin cannot demote itself, and a member’s last device cannot be removed alone', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId } = await groupOf(alice, [bob]);
    await expectFailsWithoutMutation([alice.storage], () => alice.groups.demote(groupId, 'alice'), 'INVALID_ARGUMENT');
    await expectFailsWithoutMutation([alice.storage], () => alice.groups.removeDevice(groupId, 'bob', 'laptop'), 'INVALID_ARGUMENT');
    await expectFailsWithoutMutation([alice.storage], () => alice.groups.addMember(groupId, { devices: [bob.certificate] }), 'INVALID_ARGUMENT');
  });

  test('a member links a new device: it joins by welcome and reads what follows', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    await send(net, alice, groupId, 'before the new device');
    const bobPhone = await createDevice('bob', 'phone', { account: bob.account });
    net.add(bobPhone);
    const out = await bob.groups.addDevice(groupId, bobPhone.certificate);
    expect(out.deliveries.map((d) => `${d.to.userId}/${d.to.deviceId}:${d.kind}`).sort()).toEqual(['alice/phone:change', 'bob/phone:welcome']);
    await net.deliver(bob, out.deliveries);
    expect(await bobPhone.groups.isMember(groupId)).toBe(true);
    await expectConverged([alice, bob, bobPhone], groupId);
    const m = await send(net, alice, groupId, 'for all of bob');
    expect(str((await bobPhone.groups.decrypt(m)).plaintext)).toBe('for all of bob');
    expect(str((await bob.groups.decrypt(m)).plaintext)).toBe('for all of bob');
  });
});

describe('genesis and welcomes (§12.3.3, §12.6)', () => {
  test('the group id commits to the genesis: another id, or a genesis with a changed member list, is refused', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const created = await alice.groups.create({ name: 'g', members: [{ devices: [bob.certificate] }] });
    const genesis = created.change;
    expect(toHex(genesisGroupId(alice.groups.crypto, genesis))).toBe(groupIdHex(created.groupId));
    // Re-signed by Alice with Mallory added but the old id: refused.
    const mallory = await createDevice('mallory', 'pc');
    const op = genesis.ops[0] as Extract<GroupOp, { type: 'create' }>;
    const forged = await signGroupChange(alice.groups.crypto, alice.signingSecret, {
      ...genesis,
      ops: [{ ...op, members: [...op.members, { userId: 'mallory' as UserId, accountKey: mallory.account.publicKey, role: 'member', devices: [mallory.certificate] }] }],
    });
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processWelcome(alice.certificate, encodeGroupWelcome(undefined, forged)), 'BAD_SIGNATURE');
    await bob.groups.processWelcome(alice.certificate, created.deliveries[0]!.payload);
    expect(await bob.groups.isMember(created.groupId)).toBe(true);
  });

  test('a welcome that does not add this device, or comes from a device outside the group, is refused', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const carol = await createDevice('carol', 'tablet');
    const mallory = await createDevice('mallory', 'pc');
    const created = await alice.groups.create({ name: 'g', members: [{ devices: [bob.certificate] }] });
    const welcome = created.deliveries[0]!.payload;
    await expectFailsWithoutMutation([carol.storage], () => carol.groups.processWelcome(alice.certificate, welcome), 'BAD_SIGNATURE');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processWelcome(mallory.certificate, welcome), 'SENDER_MISMATCH');
  });

  test('a welcome whose parent state holds a device its account did not certify is refused', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const dave = await createDevice('dave', 'pc');
    const { groupId } = await groupOf(alice, [bob]);
    const out = await alice.groups.addMember(groupId, { devices: [dave.certificate] });
    const welcome = decodeGroupWelcome(out.deliveries.find((d) => d.kind === 'welcome')!.payload);
    // A lying welcomer slips a "bob" device certified by Mallory's account into the parent.
    const mallory = await newAccount();
    const fake = await certify('bob', 'evil', mallory);
    const parent = welcome.parent!.state;
    // (Sorted, so that it decodes: only the certificate check can catch it.)
    const members = parent.members.map((m) => (m.userId === 'bob' ? { ...m, devices: [{ ...fake.certificate, accountKey: m.accountKey }, ...m.devices] } : m));
    const bad = encodeGroupWelcome(encodeGroupState({ ...parent, members }), welcome.change);
    await expectFailsWithoutMutation([dave.storage], () => dave.groups.processWelcome(alice.certificate, bad), 'BAD_SIGNATURE');
  });
});

describe('scale', () => {
  test('a 100-member group under interleaved removes and adds (some re-adding removed users) validates with linear work', async () => {
    const c = countingCrypto();
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop', { crypto: c.crypto });
    const pool: { certs: DeviceCertificate[] }[] = [];
    for (let i = 0; i < 150; i++) {
      const account = await newAccount();
      const n = (i % 3) + 1; // 1 to 3 devices
      const certs: DeviceCertificate[] = [];
      for (let j = 0; j < n; j++) certs.push((await certify(`u${String(i).padStart(3, '0')}`, `d${j}`, account)).certificate);
      pool.push({ certs });
    }
    const started = performance.now();
    const created = await alice.groups.create({ name: 'big', members: [{ devices: [bob.certificate] }, ...pool.slice(0, 98).map((p) => ({ devices: p.certs }))] });
    const net = new Net([alice, bob]);
    await net.deliver(alice, created.deliveries);
    const groupId = created.groupId;
    expect((await bob.groups.state(groupId))!.members).toHaveLength(100);
    c.reset();
    let certsAdded = 0;
    let next = 98;
    for (let k = 0; k < 60; k++) {
      // Remove one of the current pool members, then add a new one: the size stays at 100.
      const state = (await alice.groups.state(groupId))!;
      const candidates = state.members.filter((m) => m.userId.startsWith('u'));
      const victim = candidates[(k * 37) % candidates.length]!;
      await net.deliver(alice, (await alice.groups.removeMember(groupId, victim.userId)).deliveries);
      const p = pool[next++ % pool.length]!;
      if (state.members.some((m) => m.userId === p.certs[0]!.userId)) continue;
      await net.deliver(alice, (await alice.groups.addMember(groupId, { devices: p.certs })).deliveries);
      certsAdded += p.certs.length;
    }
    const changes = (await bob.groups.state(groupId))!.epoch;
    // One signature check per change, one per added certificate: no replay of history.
    expect(c.counts.get('ed25519Verify')).toBe(changes + certsAdded);
    await expectConverged([alice, bob], groupId);
    // A late joiner validates the state it is welcomed into (every certificate once) and agrees.
    const zed = await createDevice('zed', 'pc');
    net.add(zed);
    await net.deliver(alice, (await alice.groups.addMember(groupId, { devices: [zed.certificate] })).deliveries);
    const final = await expectConverged([alice, bob, zed], groupId);
    expect(final).toHaveLength(64);
    expect(groupDevices((await zed.groups.state(groupId))!).length).toBeGreaterThan(100);
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});
