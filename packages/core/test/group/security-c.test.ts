/**
 * SECURITY.md section C (lines 18–23), one named test per behaviour, each failing operation
 * wrapped in a no-mutation check (docs/protocol.md §12.14).
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError, type UserId } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { ByteWriter } from '../../src/codec/writer.js';
import { createGroupManager } from '../../src/group/group-manager.js';
import { decodeGroupMessage, encodeGroupMessageHeader, openGroupMessage, verifyGroupMessageSignature, type GroupMessageHeader } from '../../src/group/group-message.js';
import { chainStep } from '../../src/group/sender-key.js';
import { signGroupChange, type GroupOp } from '../../src/group/group-change.js';
import { encodeSenderKeyDistribution, decodeSenderKeyDistribution } from '../../src/group/sender-key-distribution.js';
import { groupIdHex, type GroupId } from '../../src/group/group-id.js';
import { groupKeys } from '../../src/group/group-records.js';
import { Limits } from '../../src/index.js';
import { createParty, establishedPair } from '../helpers/parties.js';
import { certify, countingCrypto, createDevice, expectFailsWithoutMutation, groupOf, send, str, text, type Device, Net } from './helpers.js';

/** Re-encodes a group message with some header fields changed (body and signature kept). */
function rewrite(message: Uint8Array, patch: Partial<GroupMessageHeader>): Uint8Array {
  const m = decodeGroupMessage(message);
  const header = encodeGroupMessageHeader({ ...m.header, ...patch });
  return new ByteWriter(message.length + 64).fixed(header, header.length).bytes32(m.body).fixed(m.signature, 64).finish();
}

/** A change on `device`'s current head, signed by `signer` with `secret` (both may be forged). */
async function handSigned(device: Device, groupId: GroupId, ops: GroupOp[], signer: Device | { address: Device['address']; signingSecret: Device['signingSecret'] }) {
  const head = (await device.groups.state(groupId))!;
  const meta = (await device.groups.store.meta(groupIdHex(groupId)))!;
  return signGroupChange(device.groups.crypto, signer.signingSecret, {
    groupId,
    epoch: head.epoch + 1,
    parentHash: meta.stateHash,
    signer: signer.address,
    createdAt: 1,
    ops,
  });
}

async function trio(): Promise<{ alice: Device; bob: Device; carol: Device; groupId: GroupId; net: Net }> {
  const alice = await createDevice('alice', 'phone');
  const bob = await createDevice('bob', 'laptop');
  const carol = await createDevice('carol', 'tablet');
  const { groupId, net } = await groupOf(alice, [bob, carol]);
  return { alice, bob, carol, groupId, net };
}

describe('C18: membership changes take effect only when signed by a member allowed to make them', () => {
  test('C18: a change signed by a device outside the group (the relay, a stranger) is refused and changes nothing', async () => {
    const { bob, groupId } = await trio();
    const mallory = await createDevice('mallory', 'pc');
    const addMallory: GroupOp = { type: 'add-member', member: { userId: 'mallory' as UserId, accountKey: mallory.account.publicKey, role: 'admin', devices: [mallory.certificate] } };
    const outsider = await handSigned(bob, groupId, [addMallory], mallory);
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(mallory.certificate, outsider.bytes), 'BAD_SIGNATURE');
    // Claiming to be the admin's device without its signing key does not help either.
    const impostor = await handSigned(bob, groupId, [addMallory], { address: { userId: 'alice' as UserId, deviceId: 'phone' as never }, signingSecret: mallory.signingSecret });
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(mallory.certificate, impostor.bytes), 'BAD_SIGNATURE');
    expect((await bob.groups.state(groupId))!.members.map((m) => m.userId)).toEqual(['alice', 'bob', 'carol']);
  });

  test('C18: a non-admin cannot add a member, neither locally nor by a hand-signed change', async () => {
    const { bob, carol, groupId } = await trio();
    const mallory = await createDevice('mallory', 'pc');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.addMember(groupId, { devices: [mallory.certificate] }), 'INVALID_ARGUMENT');
    const change = await handSigned(bob, groupId, [{ type: 'add-member', member: { userId: 'mallory' as UserId, accountKey: mallory.account.publicKey, role: 'member', devices: [mallory.certificate] } }], bob);
    await expectFailsWithoutMutation([carol.storage], () => carol.groups.processChange(bob.certificate, change.bytes), 'BAD_SIGNATURE');
  });

  test('C18: a non-admin cannot add a device to another member; nobody can add a device its account key did not certify', async () => {
    const { alice, bob, carol, groupId, net } = await trio();
    const carolsNew = await certify('carol', 'phone', carol.account);
    const entry = { deviceId: carolsNew.certificate.deviceId, signingKey: carolsNew.certificate.signingKey, identityKey: carolsNew.certificate.identityKey, capabilities: 1, signature: carolsNew.certificate.signature };
    // Bob is not an admin and not Carol.
    const byBob = await handSigned(alice, groupId, [{ type: 'add-device', userId: 'carol' as UserId, device: entry }], bob);
    await expectFailsWithoutMutation([alice.storage], () => alice.groups.processChange(bob.certificate, byBob.bytes), 'BAD_SIGNATURE');
    // The admin cannot add a "carol" device certified by another account key (Mallory's).
    const mallory = await createDevice('mallory', 'pc');
    const forged = await certify('carol', 'evil', mallory.account);
    await expectFailsWithoutMutation([alice.storage], () => alice.groups.addDevice(groupId, forged.certificate), 'INVALID_ARGUMENT');
    const forgedEntry = { deviceId: forged.certificate.deviceId, signingKey: forged.certificate.signingKey, identityKey: forged.certificate.identityKey, capabilities: 1, signature: forged.certificate.signature };
    const byAdmin = await handSigned(bob, groupId, [{ type: 'add-device', userId: 'carol' as UserId, device: forgedEntry }], alice);
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(alice.certificate, byAdmin.bytes), 'BAD_SIGNATURE');
    // Control: Carol may add her own device, certified by her own account key.
    const out = await carol.groups.addDevice(groupId, carolsNew.certificate);
    await net.deliver(carol, out.deliveries);
    expect((await bob.groups.state(groupId))!.members.find((m) => m.userId === 'carol')!.devices.map((d) => d.deviceId)).toEqual(['phone', 'tablet']);
  });

  test('C18: promote, demote, rename and removing others need an admin; a member may always remove itself', async () => {
    const { alice, bob, carol, groupId, net } = await trio();
    for (const op of [
      () => bob.groups.promote(groupId, 'carol'),
      () => bob.groups.demote(groupId, 'alice'),
      () => bob.groups.rename(groupId, 'bob rules'),
      () => bob.groups.removeMember(groupId, 'carol'),
      () => bob.groups.removeDevice(groupId, 'carol', 'tablet'),
    ]) {
      await expectFailsWithoutMutation([bob.storage], op, 'INVALID_ARGUMENT');
    }
    const left = await bob.groups.leave(groupId);
    await net.deliver(bob, left.deliveries);
    for (const d of [alice, carol]) expect((await d.groups.state(groupId))!.members.map((m) => m.userId)).toEqual(['alice', 'carol']);
    expect(await bob.groups.isMember(groupId)).toBe(false);
  });

  test('C18: a change with any signed byte altered is refused; one naming another group or parent is never applied', async () => {
    const { alice, bob, groupId } = await trio();
    const change = await handSigned(bob, groupId, [{ type: 'rename', name: 'renamed' }], alice);
    const body = change.bytes.length - 64;
    // createdAt, the op's name, the signature's R and S.
    for (const at of [85, body - 2, body + 1, change.bytes.length - 1]) {
      const bad = change.bytes.slice();
      bad[at]! ^= 0x01;
      await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(alice.certificate, bad), 'BAD_SIGNATURE');
    }
    // The group id routes the change: another id is an unknown group.
    const otherGroup = change.bytes.slice();
    otherGroup[2]! ^= 0x01;
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(alice.certificate, otherGroup), 'UNKNOWN_KEY');
    // Another parent is a state Bob does not know: held unverified, never applied.
    const otherParent = change.bytes.slice();
    otherParent[40]! ^= 0x01;
    expect((await bob.groups.processChange(alice.certificate, otherParent)).outcome).toBe('pending');
    expect((await bob.groups.state(groupId))!.name).toBe('g');
    await bob.groups.processChange(alice.certificate, change.bytes);
    expect((await bob.groups.state(groupId))!.name).toBe('renamed');
  });

  test('C18: a device removed from the group can no longer sign changes', async () => {
    const { alice, bob, carol, groupId, net } = await trio();
    await net.deliver(alice, (await alice.groups.promote(groupId, 'carol')).deliveries);
    const removed = await alice.groups.removeMember(groupId, 'carol');
    const stale = await handSigned(bob, groupId, [{ type: 'rename', name: 'x' }], carol);
    await net.deliver(alice, removed.deliveries);
    // Carol's change names the state before her removal: it may compete there, but it is
    // ordered after the revoking change, so the head keeps her removed.
    const r = await bob.groups.processChange(carol.certificate, stale.bytes);
    expect(r.outcome).toBe('applied');
    expect(r.headChanged).toBe(false);
    expect((await bob.groups.state(groupId))!.members.map((m) => m.userId)).toEqual(['alice', 'bob']);
    expect((await bob.groups.state(groupId))!.name).toBe('g');
    const late = await handSigned(bob, groupId, [{ type: 'rename', name: 'y' }], carol);
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(carol.certificate, late.bytes), 'BAD_SIGNATURE');
  });
});

describe('C19: a removed member cannot read anything sent after the removal', () => {
  test('C19: even keeping every key it ever had and ignoring its removal', async () => {
    const { alice, bob, carol, groupId, net } = await trio();
    for (const d of [alice, bob, carol]) {
      const m = await send(net, d, groupId, `before from ${d.address.userId}`);
      const got = await net.fanOut(d, groupId, m);
      for (const v of got.values()) expect(v).toBe(`before from ${d.address.userId}`);
    }
    const removal = await alice.groups.removeMember(groupId, 'carol');
    await net.deliver(alice, removal.deliveries, [carol]); // Carol never processes her removal
    for (const sender of [alice, bob]) {
      const out = await sender.groups.encrypt(groupId, text(`after from ${sender.address.userId}`));
      // A new chain, given to the remaining devices only.
      expect(out.keyId).toBe(2);
      expect(out.distributions.map((d) => d.to.userId).sort()).toEqual([sender === alice ? 'bob' : 'alice']);
      await net.deliver(sender, out.distributions);
      const err = await expectFailsWithoutMutation([carol.storage], () => carol.groups.decrypt(out.message), 'UNKNOWN_KEY');
      expect((err as { details: { what: string } }).details.what).toBe('sender key');
      const other = sender === alice ? bob : alice;
      expect(str((await other.groups.decrypt(out.message)).plaintext)).toBe(`after from ${sender.address.userId}`);
    }
  });

  test('C19: removing one device of a member also makes every sender rotate', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const bobPhone = await createDevice('bob', 'phone', { account: bob.account });
    const { groupId, net } = await groupOf(alice, [bob, bobPhone]);
    const first = await alice.groups.encrypt(groupId, text('1'));
    await net.deliver(alice, first.distributions);
    await alice.groups.confirmDistribution(groupId, first.keyId, first.distributions.map((d) => d.to));
    await net.deliver(bob, (await bob.groups.removeDevice(groupId, 'bob', 'phone')).deliveries, [bobPhone]);
    const second = await alice.groups.encrypt(groupId, text('2'));
    expect(second.keyId).toBe(first.keyId + 1);
    expect(second.distributions.map((d) => `${d.to.userId}/${d.to.deviceId}`)).toEqual(['bob/laptop']);
    await expectFailsWithoutMutation([bobPhone.storage], () => bobPhone.groups.decrypt(second.message), 'UNKNOWN_KEY');
  });

  test('C19: a receiver refuses a pre-removal key used for a message sent after the removal', async () => {
    const { alice, bob, carol, groupId, net } = await trio();
    const before = await send(net, bob, groupId, 'b0');
    expect(str((await alice.groups.decrypt(before)).plaintext)).toBe('b0');
    // Bob's device is stale: it never learns of Carol's removal, so it sends on its old key
    // with its old epoch; Alice still accepts that (it was in flight)...
    const inFlight = await bob.groups.encrypt(groupId, text('in flight'));
    await net.deliver(alice, (await alice.groups.removeMember(groupId, 'carol')).deliveries, [bob]);
    expect(str((await alice.groups.decrypt(inFlight.message)).plaintext)).toBe('in flight');
    // ...but the same old key claiming the new epoch (a sender that saw the removal and did
    // not rotate) is refused. Simulated by re-signing: Bob's chain state is rewound in a copy.
    const epoch = (await alice.groups.state(groupId))!.epoch;
    const bobCopy = createMemoryStorage();
    await bobCopy.batch((await bob.storage.range(['identity'])).concat(await bob.storage.range(['group'])).map((e) => ({ type: 'put', key: e.key, value: e.value })));
    const meta = (await bob.groups.store.meta(groupIdHex(groupId)))!;
    await bobCopy.batch([bob.groups.store.putMeta(groupIdHex(groupId), { ...meta, epoch })]);
    const cheater = createGroupManager({ storage: bobCopy, crypto: bob.groups.crypto });
    const bad = await cheater.encrypt(groupId, text('no rotation'));
    expect(bad.keyId).toBe(inFlight.keyId);
    const err = await expectFailsWithoutMutation([alice.storage], () => alice.groups.decrypt(bad.message), 'UNKNOWN_KEY');
    expect((err as { details: { what: string } }).details.what).toBe('retired sender key');
  });
});

describe('C20: group id, sender, epoch and key generation are bound into every group ciphertext', () => {
  test('C20: a message moved to another group fails', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const g1 = await groupOf(alice, [bob], 'one');
    const g2 = await groupOf(alice, [bob], 'two');
    await bob.groups.decrypt(await send(g2.net, alice, g2.groupId, 'in two'));
    await bob.groups.decrypt(await send(g1.net, alice, g1.groupId, 'first in one'));
    // Generation 1 under key 1 in group one; Bob's chain for Alice in group two is also at 1.
    const m = await send(g1.net, alice, g1.groupId, 'in one');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(rewrite(m, { groupId: g2.groupId })), 'DECRYPT_FAILED');
    expect(str((await bob.groups.decrypt(m)).plaintext)).toBe('in one');
  });

  test('C20: a message re-attributed to another sender, or given another epoch, key id or generation, fails', async () => {
    const { alice, bob, carol, groupId, net } = await trio();
    await send(net, carol, groupId, 'carol speaks'); // Bob holds Carol's key, at generation 0
    const m = await send(net, alice, groupId, 'alice speaks');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(rewrite(m, { sender: carol.address })), 'DECRYPT_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(rewrite(m, { epoch: 1 })), 'DECRYPT_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(rewrite(m, { generation: 1 })), 'DECRYPT_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(rewrite(m, { keyId: 7 })), 'UNKNOWN_KEY');
    expect(str((await bob.groups.decrypt(m)).plaintext)).toBe('alice speaks');
  });

  test('C20: a body flipped anywhere fails', async () => {
    const { alice, bob, groupId, net } = await trio();
    const m = await send(net, alice, groupId, 'intact');
    for (const at of [m.length - 100, m.length - 65, m.length - 1]) {
      const bad = m.slice();
      bad[at]! ^= 0x80;
      await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(bad), 'DECRYPT_FAILED');
    }
  });
});

describe('C21: sender key material from outside an authenticated pairwise session, or from a non-member, is ignored', () => {
  test('C21: a distribution from a device that is not in the group is refused and stores nothing', async () => {
    const { bob, groupId } = await trio();
    const mallory = await createDevice('mallory', 'pc');
    const skdm = encodeSenderKeyDistribution({ groupId, sender: mallory.address, keyId: 1, createdEpoch: 0, generation: 0, chainKey: new Uint8Array(32), signingKey: mallory.certificate.signingKey });
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processSenderKey(mallory.certificate, skdm), 'SENDER_MISMATCH');
    expect(await bob.storage.get(groupKeys.sender(groupIdHex(groupId), mallory.address))).toBeUndefined();
  });

  test('C21: a distribution naming another sender than the session it arrived on is refused', async () => {
    const { alice, bob, carol, groupId } = await trio();
    const out = await alice.groups.encrypt(groupId, text('x'));
    const toBob = out.distributions.find((d) => d.to.userId === 'bob')!;
    // Carol (a member) forwards Alice's distribution: the session says Carol, the payload says Alice.
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processSenderKey(carol.certificate, toBob.payload), 'SENDER_MISMATCH');
    // A device re-installed under Alice's address (new keys, same ids) is not the group's device.
    const reinstalled = await certify('alice', 'phone', alice.account);
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processSenderKey(reinstalled.certificate, toBob.payload), 'SENDER_MISMATCH');
    await bob.groups.processSenderKey(alice.certificate, toBob.payload);
    expect(str((await bob.groups.decrypt(out.message)).plaintext)).toBe('x');
  });

  test('C21: a removed member’s distribution is refused', async () => {
    const { alice, bob, carol, groupId, net } = await trio();
    await net.deliver(alice, (await alice.groups.removeMember(groupId, 'carol')).deliveries, [carol]);
    const out = await carol.groups.encrypt(groupId, text('still here?'));
    const toBob = out.distributions.find((d) => d.to.userId === 'bob')!;
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processSenderKey(carol.certificate, toBob.payload), 'SENDER_MISMATCH');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(out.message), 'UNKNOWN_KEY');
  });

  test('C21: sender keys only count when carried by a real pairwise session, whose certificate names the sender', async () => {
    // Real sessions: Alice and Bob (and Mallory, who also has a session with Bob).
    const { alice, bob } = await establishedPair();
    const mallory = await createParty('mallory', 'pc');
    await mallory.sessions.processBundle((await import('../helpers/parties.js')).takeBundle(bob));
    const aliceGroups = createGroupManager({ storage: alice.storage, crypto: alice.sessions.crypto });
    const bobGroups = createGroupManager({ storage: bob.storage, crypto: bob.sessions.crypto });
    const created = await aliceGroups.create({ name: 'real', members: [{ devices: [await bob.sessions.certificate()] }] });
    const aliceCert = await alice.sessions.certificate();
    // Every group payload rides a pairwise message; the receiver takes the sender from the session.
    const viaPairwise = async (from: typeof alice, payload: Uint8Array) => (await bob.sessions.decrypt(from.address, await from.sessions.encrypt(bob.address, payload))).plaintext;
    await bobGroups.processWelcome(aliceCert, await viaPairwise(alice, created.deliveries[0]!.payload));
    const out = await aliceGroups.encrypt(created.groupId, text('over pairwise'));
    const skdm = await viaPairwise(alice, out.distributions[0]!.payload);
    // Mallory relays Alice's distribution over her own session: refused.
    const relayed = await viaPairwise(mallory, out.distributions[0]!.payload);
    await expectFailsWithoutMutation([bob.storage], () => bobGroups.processSenderKey(mallory.prekeys.certificate, relayed), 'SENDER_MISMATCH');
    expect(decodeSenderKeyDistribution(skdm).sender).toEqual(alice.address);
    await bobGroups.processSenderKey(aliceCert, skdm);
    expect(str((await bobGroups.decrypt(out.message)).plaintext)).toBe('over pairwise');
  });

  test('C21: a distribution is refused by the group message path (it never arrives outside a pairwise session)', async () => {
    const { alice, bob, groupId } = await trio();
    const out = await alice.groups.encrypt(groupId, text('x'));
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(out.distributions[0]!.payload), 'DECODE_FAILED');
  });
});

describe('C22: a group ciphertext in the pairwise path, or the reverse, is rejected (the message type is bound)', () => {
  test('C22: a group message fed into the pairwise decrypt path is refused before any crypto', async () => {
    const { alice, bob } = await establishedPair();
    const aliceGroups = createGroupManager({ storage: alice.storage, crypto: alice.sessions.crypto });
    const created = await aliceGroups.create({ name: 'g', members: [{ devices: [await bob.sessions.certificate()] }] });
    const out = await aliceGroups.encrypt(created.groupId, text('group only'));
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, out.message), 'DECODE_FAILED');
    for (const payload of [out.distributions[0]!.payload, created.deliveries[0]!.payload]) {
      await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, payload), 'DECODE_FAILED');
    }
  });

  test('C22: a pairwise message fed into the group path is refused', async () => {
    const { alice, bob } = await establishedPair();
    const bobGroups = createGroupManager({ storage: bob.storage, crypto: bob.sessions.crypto });
    const wire = await alice.sessions.encrypt(bob.address, text('pairwise only'));
    const aliceCert = await alice.sessions.certificate();
    await expectFailsWithoutMutation([bob.storage], () => bobGroups.decrypt(wire), 'DECODE_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bobGroups.processSenderKey(aliceCert, wire), 'DECODE_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bobGroups.processChange(aliceCert, wire), 'DECODE_FAILED');
  });

  test('C22: each group payload is refused by every other decoder, and the type byte is authenticated', async () => {
    const { alice, bob, groupId } = await trio();
    const out = await alice.groups.encrypt(groupId, text('typed'));
    const change = (await alice.groups.rename(groupId, 'n')).change.bytes;
    const skdm = out.distributions.find((d) => d.to.userId === 'bob')!.payload;
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processSenderKey(alice.certificate, out.message), 'DECODE_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(alice.certificate, skdm), 'DECODE_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processWelcome(alice.certificate, change), 'DECODE_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(change), 'DECODE_FAILED');
    // Beyond the decoders, the type byte is bound cryptographically: with the right message
    // key and signing key, a header whose type byte differs neither opens nor verifies.
    await bob.groups.processSenderKey(alice.certificate, skdm);
    const record = (await bob.groups.store.sender(groupIdHex(groupId), alice.address))!;
    const { mk } = chainStep(bob.groups.crypto, record.keys[0]!.chainKey);
    const m = decodeGroupMessage(out.message);
    expect(str(openGroupMessage(bob.groups.crypto, m, mk))).toBe('typed');
    expect(await verifyGroupMessageSignature(bob.groups.crypto, record.keys[0]!.signingKey, m)).toBe(true);
    const retyped = (b: Uint8Array): Uint8Array => Uint8Array.from(b, (x, i) => (i === 1 ? 0x11 : x));
    const forged = { ...m, headerBytes: retyped(m.headerBytes), signed: retyped(m.signed) };
    expect(() => openGroupMessage(bob.groups.crypto, forged, mk)).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
    expect(await verifyGroupMessageSignature(bob.groups.crypto, record.keys[0]!.signingKey, forged)).toBe(false);
  });
});

describe('C23: far-future generations are rejected without a derivation storm; caches are capped', () => {
  test('C23: a far-future generation is refused before any key derivation or signature check', async () => {
    const c = countingCrypto();
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop', { crypto: c.crypto });
    const { groupId, net } = await groupOf(alice, [bob]);
    const m = await send(net, alice, groupId, 'g0');
    c.reset();
    for (const generation of [Limits.maxGroupForwardSkip + 1, Limits.maxGroupMessagesPerKey - 1, Limits.maxGroupMessagesPerKey, 0xffffffff]) {
      await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(rewrite(m, { generation })), 'LIMIT_EXCEEDED');
    }
    expect(c.counts.get('hmacSha256') ?? 0).toBe(0);
    expect(c.counts.get('hkdfSha256') ?? 0).toBe(0);
    expect(c.counts.get('ed25519Verify') ?? 0).toBe(0);
    // A forged message within the window costs one signature check and no derivation.
    c.reset();
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(rewrite(m, { generation: Limits.maxGroupForwardSkip })), 'DECRYPT_FAILED');
    expect(c.counts.get('ed25519Verify')).toBe(1);
    expect(c.counts.get('hmacSha256') ?? 0).toBe(0);
    expect(str((await bob.groups.decrypt(m)).plaintext)).toBe('g0');
  });

  test('C23: skipped keys per sender device are capped and the oldest are evicted', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop', { maxSkippedKeys: 5 });
    const { groupId, net } = await groupOf(alice, [bob]);
    const ms: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) ms.push(await send(net, alice, groupId, `m${i}`));
    expect(str((await bob.groups.decrypt(ms[11]!)).plaintext)).toBe('m11'); // skips 0..10: keeps 6..10
    const record = (await bob.groups.store.sender(groupIdHex(groupId), alice.address))!;
    expect(record.keys[0]!.skipped.map((s) => s.generation)).toEqual([6, 7, 8, 9, 10]);
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(ms[5]!), 'DUPLICATE_MESSAGE');
    expect(str((await bob.groups.decrypt(ms[6]!)).plaintext)).toBe('m6');
  });

  test('C23: at most five sender keys are kept per sender device, and a deleted key is never re-installed', async () => {
    const alice = await createDevice('alice', 'phone', { rotateAfterMessages: 1 });
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const first = await alice.groups.encrypt(groupId, text('k1'));
    await net.deliver(alice, first.distributions);
    for (let i = 2; i <= 7; i++) await send(net, alice, groupId, `k${i}`);
    const record = (await bob.groups.store.sender(groupIdHex(groupId), alice.address))!;
    expect(record.keys.map((k) => k.keyId)).toEqual([7, 6, 5, 4, 3]);
    // Key 1 is gone: its message fails, and re-sending its distribution does not bring it back.
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(first.message), 'UNKNOWN_KEY');
    const again = await bob.groups.processSenderKey(alice.certificate, first.distributions[0]!.payload);
    expect(again.outcome).toBe('stale');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(first.message), 'UNKNOWN_KEY');
  });

  test('C23: changes waiting for their parent are capped', async () => {
    const { alice, bob, groupId } = await trio();
    const meta = (await alice.groups.store.meta(groupIdHex(groupId)))!;
    // Changes naming unknown parents (a far-future or forged history) are held, up to the cap.
    for (let i = 0; i < Limits.maxGroupPendingChanges; i++) {
      const parentHash = alice.groups.crypto.sha256(text(`unknown ${i}`));
      const c = await signGroupChange(alice.groups.crypto, alice.signingSecret, { groupId, epoch: meta.epoch + 5, parentHash, signer: alice.address, createdAt: i, ops: [{ type: 'rename', name: `n${i}` }] });
      expect((await bob.groups.processChange(alice.certificate, c.bytes)).outcome).toBe('pending');
    }
    const over = await signGroupChange(alice.groups.crypto, alice.signingSecret, { groupId, epoch: meta.epoch + 5, parentHash: new Uint8Array(32).fill(7), signer: alice.address, createdAt: 999, ops: [{ type: 'rename', name: 'over' }] });
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(alice.certificate, over.bytes), 'LIMIT_EXCEEDED');
    // A device outside the group cannot make anyone hold an unverifiable change at all.
    const carol = await createDevice('carol', 'elsewhere');
    const fresh = await createDevice('fresh', 'device');
    const { groupId: other } = await groupOf(fresh, [bob]);
    const otherMeta = (await fresh.groups.store.meta(groupIdHex(other)))!;
    const junk = await signGroupChange(carol.groups.crypto, carol.signingSecret, { groupId: other, epoch: otherMeta.epoch + 3, parentHash: new Uint8Array(32).fill(9), signer: carol.address, createdAt: 1, ops: [{ type: 'rename', name: 'junk' }] });
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.processChange(carol.certificate, junk.bytes), 'SENDER_MISMATCH');
  });
});

describe('error hygiene', () => {
  test('no error message or detail carries key material or plaintext', async () => {
    const { alice, bob, groupId, net } = await trio();
    const m = await send(net, alice, groupId, 'secret words');
    const record = (await bob.groups.store.sender(groupIdHex(groupId), alice.address))!;
    const secrets = [toHexStr(record.keys[0]!.chainKey), toHexStr(record.keys[0]!.signingKey), 'secret words'];
    const errors: unknown[] = [];
    for (const bad of [rewrite(m, { generation: 99999 }), rewrite(m, { epoch: 9 }), m.subarray(0, 40), rewrite(m, { keyId: 9 })]) {
      try {
        await bob.groups.decrypt(bad);
      } catch (e) {
        errors.push(e);
      }
    }
    expect(errors).toHaveLength(4);
    for (const e of errors) {
      expect(isDeadboltError(e)).toBe(true);
      const text = `${(e as Error).message} ${JSON.stringify((e as { details?: unknown }).details)}`;
      for (const s of secrets) expect(text.includes(s)).toBe(false);
    }
  });
});

function toHexStr(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
