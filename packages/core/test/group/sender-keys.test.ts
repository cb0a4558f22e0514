/**
 * Sender keys through the group manager (docs/protocol.md §12.7–§12.8): ordering,
 * loss, duplicates, rotation on count, time and membership, distribution bookkeeping, and
 * a sender cost that does not depend on the group's size.
 */
import { describe, expect, test } from 'vitest';
import { groupIdHex } from '../../src/group/group-id.js';
import { countingCrypto, countingStorage, createDevice, expectFailsWithoutMutation, groupOf, send, str, text, type Device } from './helpers.js';

describe('ordering, loss and duplicates', () => {
  test('out of order within the skip window: every message decrypts exactly once', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const ms: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) ms.push(await send(net, alice, groupId, `m${i}`));
    const order = [5, 0, 7, 2, 1, 6, 3, 4];
    for (const i of order) expect(str((await bob.groups.decrypt(ms[i]!)).plaintext)).toBe(`m${i}`);
    for (const i of order) await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(ms[i]!), 'DUPLICATE_MESSAGE');
    // Every skipped key was used and deleted.
    expect((await bob.groups.store.sender(groupIdHex(groupId), alice.address))!.keys[0]!.skipped).toEqual([]);
  });

  test('a replayed message is a typed duplicate and changes nothing, also after the key rotated', async () => {
    const alice = await createDevice('alice', 'phone', { rotateAfterMessages: 2 });
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const m0 = await send(net, alice, groupId, 'a');
    await bob.groups.decrypt(m0);
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(m0), 'DUPLICATE_MESSAGE');
    for (let i = 0; i < 4; i++) await bob.groups.decrypt(await send(net, alice, groupId, `b${i}`));
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(m0), 'DUPLICATE_MESSAGE');
  });

  test('messages lost forever do not stop later ones', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    for (let i = 0; i < 3; i++) await send(net, alice, groupId, `lost${i}`);
    expect(str((await bob.groups.decrypt(await send(net, alice, groupId, 'kept'))).plaintext)).toBe('kept');
  });
});

describe('rotation (§12.7.3)', () => {
  test('on count: a new key every N messages; messages of the old key still in flight decrypt', async () => {
    const alice = await createDevice('alice', 'phone', { rotateAfterMessages: 3 });
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const keyIds: number[] = [];
    const held: Uint8Array[] = [];
    for (let i = 0; i < 7; i++) {
      const out = await alice.groups.encrypt(groupId, text(`c${i}`));
      keyIds.push(out.keyId);
      await net.deliver(alice, out.distributions);
      await alice.groups.confirmDistribution(groupId, out.keyId, out.distributions.map((d) => d.to));
      held.push(out.message);
    }
    expect(keyIds).toEqual([1, 1, 1, 2, 2, 2, 3]);
    // Delivered after the rotations, newest first.
    for (let i = 6; i >= 0; i--) expect(str((await bob.groups.decrypt(held[i]!)).plaintext)).toBe(`c${i}`);
  });

  test('on time: a key older than the rotation age is replaced before the next send', async () => {
    let clock = 1_000_000;
    const alice = await createDevice('alice', 'phone', { rotateAfterMs: 60_000, now: () => clock });
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const a = await alice.groups.encrypt(groupId, text('t0'));
    await net.deliver(alice, a.distributions);
    await alice.groups.confirmDistribution(groupId, a.keyId, a.distributions.map((d) => d.to));
    clock += 59_999;
    const b = await alice.groups.encrypt(groupId, text('t1'));
    expect(b.keyId).toBe(a.keyId);
    expect(b.distributions).toEqual([]);
    clock += 1;
    const c = await alice.groups.encrypt(groupId, text('t2'));
    expect(c.keyId).toBe(a.keyId + 1);
    expect(c.distributions.map((d) => d.to.userId)).toEqual(['bob']);
    await net.deliver(alice, c.distributions);
    for (const m of [a, b, c]) await bob.groups.decrypt(m.message);
  });

  test('adding a member does not rotate: the newcomer gets the current chain and cannot read earlier messages', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const dave = await createDevice('dave', 'pc');
    const { groupId, net } = await groupOf(alice, [bob]);
    const before = await send(net, alice, groupId, 'before dave');
    net.add(dave);
    await net.deliver(alice, (await alice.groups.addMember(groupId, { devices: [dave.certificate] })).deliveries);
    const out = await alice.groups.encrypt(groupId, text('welcome dave'));
    expect(out.keyId).toBe(1);
    expect(out.distributions.map((d) => d.to.userId)).toEqual(['dave']);
    await net.deliver(alice, out.distributions);
    expect(str((await dave.groups.decrypt(out.message)).plaintext)).toBe('welcome dave');
    await expectFailsWithoutMutation([dave.storage], () => dave.groups.decrypt(before), 'DUPLICATE_MESSAGE');
  });

  test('distributions stay pending until confirmed; a repeated distribution never rewinds a chain', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId } = await groupOf(alice, [bob]);
    const first = await alice.groups.encrypt(groupId, text('1'));
    const second = await alice.groups.encrypt(groupId, text('2')); // the first distribution was never confirmed
    expect(second.distributions.map((d) => d.to.userId)).toEqual(['bob']);
    await alice.groups.confirmDistribution(groupId, second.keyId, [bob.address]);
    expect((await alice.groups.encrypt(groupId, text('3'))).distributions).toEqual([]);
    // Bob installs the first distribution (generation 0), decrypts both, then gets the second
    // distribution (generation 1): known, ignored, so message 2 stays a duplicate.
    await bob.groups.processSenderKey(alice.certificate, first.distributions[0]!.payload);
    await bob.groups.decrypt(first.message);
    await bob.groups.decrypt(second.message);
    expect((await bob.groups.processSenderKey(alice.certificate, second.distributions[0]!.payload)).outcome).toBe('known');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(second.message), 'DUPLICATE_MESSAGE');
  });
});

describe('sender cost does not depend on the group size (speed target)', () => {
  async function sendCost(members: number): Promise<{ calls: Record<string, number>; reads: number; writes: number }> {
    const c = countingCrypto();
    const counted = countingStorage();
    const alice = await createDevice('alice', 'phone', { crypto: c.crypto, storage: counted.storage });
    const others: Device[] = [];
    for (let i = 0; i < members - 1; i++) others.push(await createDevice(`m${String(i).padStart(3, '0')}`, 'd'));
    const { groupId, net } = await groupOf(alice, others);
    await send(net, alice, groupId, 'warm up'); // distributes the key
    c.reset();
    counted.reset();
    await alice.groups.encrypt(groupId, new Uint8Array(1024));
    return { calls: Object.fromEntries(c.counts), reads: counted.reads(), writes: counted.writes() };
  }

  test('a send in a 2-member and a 60-member group does the same work: one signature, one chain step', async () => {
    const small = await sendCost(2);
    const large = await sendCost(60);
    expect(large).toEqual(small);
    expect(small.calls.ed25519Sign).toBe(1);
    expect(small.calls.hmacSha256).toBe(2);
    expect(small.calls.chacha20Poly1305Seal).toBe(1);
    expect(small.reads).toBe(2); // meta and own
    expect(small.writes).toBe(1); // own
  });
});
