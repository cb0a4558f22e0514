/**
 * The hooks the client's group layer relies on (docs/protocol.md §11.5): the session's
 * certificate as the authenticated sender of a pairwise payload, encrypting only to the
 * device a group state names, devices excluded by the trust store (their keys replaced
 * before the next message), and history records committed in the same batch as a
 * group message's chain step, on arrival and from the held messages.
 */
import { describe, expect, test } from 'vitest';
import { CodecError } from '@deadbolt/spec';
import { createGroupEngine, type GroupEvent } from '../../src/group/group-engine.js';
import { groupIdHex } from '../../src/group/group-id.js';
import { decodeGroupMessage } from '../../src/group/group-message.js';
import { expectFailsWithoutMutation as expectNoMutation } from '../helpers/no-mutation.js';
import { establishedPair, createParty, takeBundle, text as ptext, str as pstr } from '../helpers/parties.js';
import { createDevice, deliverOne, expectFailsWithoutMutation, groupOf, send, str, text, type Device } from '../group/helpers.js';

describe('pairwise sessions for the group layer', () => {
  test('a decrypt names the session certificate as the sender, as a copy', async () => {
    const { alice, bob } = await establishedPair();
    const wire = await alice.sessions.encrypt(bob.address, ptext('payload'));
    const r = await bob.sessions.decrypt(alice.address, wire);
    const cert = await alice.sessions.certificate();
    expect(r.senderCertificate).toEqual(cert);
    r.senderCertificate.signingKey.fill(0); // the caller's copy: the stored session is untouched
    const again = await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, ptext('again')));
    expect(again.senderCertificate).toEqual(cert);
    expect((await bob.sessions.peerCertificates('alice'))).toEqual([cert]);
  });

  test('encrypt with an expected certificate: only on a session with exactly those keys, otherwise NO_SESSION and nothing changes', async () => {
    const { alice, bob } = await establishedPair();
    const bobCert = await bob.sessions.certificate();
    expect(pstr((await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, ptext('ok'), { remoteCertificate: bobCert }))).plaintext)).toBe('ok');
    // Bob re-installed (other keys, same address): a group state that names the old
    // device must not reach the new one, nor the reverse.
    const other = await createParty('bob', 'laptop');
    const otherCert = await other.sessions.certificate();
    await expectNoMutation([alice.storage], () => alice.sessions.encrypt(bob.address, ptext('x'), { remoteCertificate: otherCert }), 'NO_SESSION');
    await expectNoMutation([alice.storage], () => alice.sessions.encrypt(bob.address, ptext('x'), { remoteCertificate: { ...bobCert, identityKey: otherCert.identityKey } }), 'NO_SESSION');
    await expectNoMutation([alice.storage], () => alice.sessions.encrypt(bob.address, ptext('x'), { remoteCertificate: { ...bobCert, accountKey: otherCert.accountKey } }), 'NO_SESSION');
    const carol = await createParty('carol', 'x');
    await alice.sessions.processBundle(takeBundle(carol));
    await expectNoMutation([alice.storage], () => alice.sessions.encrypt(carol.address, ptext('x'), { remoteCertificate: bobCert }), 'NO_SESSION');
  });
});

describe('excluded devices (the trust store, §7.4, §3.3)', () => {
  test('an excluded device gets no key, the key it held is replaced before the message, and it gets the key again once the exclusion is lifted', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const carol = await createDevice('carol', 'tablet');
    const { groupId, net } = await groupOf(alice, [bob, carol]);
    const m1 = await send(net, alice, groupId, 'to everyone');
    expect(str((await carol.groups.decrypt(m1)).plaintext)).toBe('to everyone');

    const out = await alice.groups.encrypt(groupId, text('not for carol'), { excluded: [carol.certificate] });
    expect(out.distributions.map((d) => d.to.userId)).toEqual(['bob']);
    expect(decodeGroupMessage(out.message).header.keyId).toBe(decodeGroupMessage(m1).header.keyId + 1); // rotated
    await net.deliver(alice, out.distributions);
    await alice.groups.confirmDistribution(groupId, out.keyId, out.distributions.map((d) => d.to));
    expect(str((await bob.groups.decrypt(out.message)).plaintext)).toBe('not for carol');
    await expectFailsWithoutMutation([carol.storage], () => carol.groups.decrypt(out.message), 'UNKNOWN_KEY');

    // Still excluded: no distribution, and every send reconciles (the slow path).
    const m3 = await alice.groups.encrypt(groupId, text('still not'), { excluded: [carol.certificate] });
    expect(m3.distributions).toEqual([]);
    expect(decodeGroupMessage(m3.message).header.keyId).toBe(out.keyId);
    // Lifted: Carol gets the current key with the next message, and reads from there on.
    const m4 = await alice.groups.encrypt(groupId, text('carol again'));
    expect(m4.distributions.map((d) => d.to.userId)).toEqual(['carol']);
    await net.deliver(alice, m4.distributions);
    expect(str((await carol.groups.decrypt(m4.message)).plaintext)).toBe('carol again');
    // What was sent while she was excluded stays unreadable: her chain starts after it (§12.8.3 step 4).
    await expectFailsWithoutMutation([carol.storage], () => carol.groups.decrypt(m3.message), 'DUPLICATE_MESSAGE');
  });

  test('the engine leaves excluded devices out of the fan-out', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const carol = await createDevice('carol', 'tablet');
    const { groupId, net } = await groupOf(alice, [bob, carol]);
    const engine = createGroupEngine({ groups: alice.groups, sendPairwise: async (to, payload) => void (await deliverOne(alice, net.get(to)!, { to, kind: 'sender-key', payload })) });
    expect((await engine.send(groupId, text('all'))).recipients.map((r) => r.userId)).toEqual(['bob', 'carol']);
    const out = await engine.send(groupId, text('some'), { excluded: [carol.certificate] });
    expect(out.recipients.map((r) => r.userId)).toEqual(['bob']);
    expect(out.undelivered).toEqual([]);
  });
});

describe('history in the chain step batch (§11.2)', () => {
  test('resultOps are committed with the chain step; a throwing one refuses the message and changes nothing', async () => {
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { groupId, net } = await groupOf(alice, [bob]);
    const message = await send(net, alice, groupId, 'hello');
    // What the client does with a group message whose content does not decode.
    const refuse = (): never => {
      throw new CodecError({ structure: 'GroupContent', field: 'kind', offset: 1, reason: 'not a message' });
    };
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(message, { resultOps: refuse }), 'DECODE_FAILED');
    await expectFailsWithoutMutation([bob.storage], () => bob.groups.decrypt(message, { resultOps: async () => refuse() }), 'DECODE_FAILED');
    const r = await bob.groups.decrypt(message, { resultOps: async (res) => [{ type: 'put', key: ['probe', str(res.plaintext)], value: Uint8Array.of(res.generation) }] });
    expect(str(r.plaintext)).toBe('hello');
    expect(await bob.storage.get(['probe', 'hello'])).toEqual(Uint8Array.of(0));
  });

  test('the engine runs messageOps for messages on arrival and for held messages once their key comes; joinOps with the batch that creates or joins a group', async () => {
    const devices: Device[] = [await createDevice('alice', 'phone'), await createDevice('bob', 'laptop')];
    const [alice, bob] = devices as [Device, Device];
    const joined: string[] = [];
    const recorded: string[] = [];
    const inboxes = new Map<Device, { from: Device; payload: Uint8Array }[]>(devices.map((d) => [d, []]));
    const engines = new Map(
      devices.map((d) => [
        d,
        createGroupEngine({
          groups: d.groups,
          sendPairwise: async (to, payload) => void inboxes.get(devices.find((x) => x.certificate.userId === to.userId)!)!.push({ from: d, payload }),
          messageOps: (r) => (recorded.push(`${d.certificate.userId}:${str(r.plaintext)}`), [{ type: 'put', key: ['probe', 'message', str(r.plaintext)], value: Uint8Array.of(1) }]),
          joinOps: (g) => (joined.push(`${d.certificate.userId}:${groupIdHex(g)}`), [{ type: 'put', key: ['probe', 'group', groupIdHex(g)], value: Uint8Array.of(1) }]),
        }),
      ]),
    );
    const groupId = await engines.get(alice)!.create({ name: 'g', members: [{ devices: [bob.certificate] }] });
    expect(await alice.storage.get(['probe', 'group', groupIdHex(groupId)])).toEqual(Uint8Array.of(1));
    const drain = async (d: Device): Promise<GroupEvent[]> => {
      const events: GroupEvent[] = [];
      for (const { from, payload } of inboxes.get(d)!.splice(0)) events.push(...(await engines.get(d)!.receivePairwise(from.certificate, payload)));
      return events;
    };
    expect((await drain(bob)).map((e) => e.type)).toEqual(['group-changed']);
    expect(await bob.storage.get(['probe', 'group', groupIdHex(groupId)])).toEqual(Uint8Array.of(1));
    expect(joined).toEqual([`alice:${groupIdHex(groupId)}`, `bob:${groupIdHex(groupId)}`]);

    // The message overtakes its key: held, then decrypted from the held messages with its record.
    const out = await engines.get(alice)!.send(groupId, text('held first'));
    expect(await engines.get(bob)!.receiveGroupMessage(out.message)).toEqual([]);
    expect(recorded).toEqual([]);
    expect((await drain(bob)).map((e) => e.type)).toEqual(['message-received']);
    expect(recorded).toEqual(['bob:held first']);
    expect(await bob.storage.get(['probe', 'message', 'held first'])).toEqual(Uint8Array.of(1));
    const next = await engines.get(alice)!.send(groupId, text('on arrival'));
    expect((await engines.get(bob)!.receiveGroupMessage(next.message)).map((e) => e.type)).toEqual(['message-received']);
    expect(recorded).toEqual(['bob:held first', 'bob:on arrival']);
  });
});
