/**
 * Multiple devices per user at the session layer (docs/protocol.md §3.3, §3.4): signed
 * device lists, revocation, and linking. The client flows (publishing, refreshing on a
 * relay's DEVICE_MISMATCH) are tested against the real relay in e2e.
 */
import { describe, expect, test } from 'vitest';
import { rejectionOf } from '@deadbolt/test-kit';
import { isDeadboltError, type StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import {
  createDeviceLinkRequest,
  createSessionManager,
  decodeDeviceList,
  decodeLinkRequest,
  linkCode,
  parseLinkCode,
  signDeviceList,
  verifyDeviceList,
  type DeviceListEntry,
} from '../../src/index.js';
import type { Ed25519SecretKey } from '@deadbolt/spec';
import { openRecord, RecordType } from '../../src/session/record-envelope.js';
import { readIdentityRecord } from '../../src/session/stored-records.js';
import { createParty, createSiblingDevice, nodeCrypto, str, takeBundle, text, type Party } from '../helpers/parties.js';
import { expectFailsWithoutMutation } from '../helpers/no-mutation.js';


async function accountSecretOf(p: Party): Promise<Ed25519SecretKey> {
  return openRecord(nodeCrypto, ['identity'], RecordType.IDENTITY, (await p.storage.get(['identity']))!, readIdentityRecord).accountSecret!;
}

const entryOf = async (p: Party): Promise<DeviceListEntry> => {
  const c = await p.sessions.certificate();
  return { deviceId: c.deviceId, signingKey: c.signingKey, identityKey: c.identityKey };
};

describe('device lists (§3.3)', () => {
  test('a new identity signs its first list (version 1, itself); the list round-trips and verifies', async () => {
    const alice = await createParty('alice', 'phone');
    const list = (await alice.sessions.deviceList('alice'))!;
    expect(list.listVersion).toBe(1);
    expect(list.devices.map((d) => d.deviceId)).toEqual(['phone']);
    const again = decodeDeviceList(list.encoded);
    await verifyDeviceList(nodeCrypto, again);
    expect(again.encoded).toEqual(list.encoded);
  });

  test('decoding refuses unsorted or duplicated entries, 0 or 33 devices, version 0, trailing bytes; a flipped bit fails the signature', async () => {
    const alice = await createParty('alice', 'phone');
    const secret = await accountSecretOf(alice);
    const cert = await alice.sessions.certificate();
    const entry = (id: string): DeviceListEntry => ({ deviceId: id as DeviceListEntry['deviceId'], signingKey: cert.signingKey, identityKey: cert.identityKey });
    const base = { userId: cert.userId, accountKey: cert.accountKey, listVersion: 2, issuedAt: 1 };
    const good = await signDeviceList(nodeCrypto, secret, { ...base, devices: [entry('b'), entry('a')] });
    expect(good.devices.map((d) => d.deviceId)).toEqual(['a', 'b']); // sorted on signing
    // Swap the two entries in the encoding: out of order.
    const bytes = good.encoded.slice();
    const start = 1 + 1 + 5 + 32 + 4 + 8 + 1;
    const size = 1 + 1 + 64;
    const a = bytes.slice(start, start + size);
    bytes.set(bytes.slice(start + size, start + 2 * size), start);
    bytes.set(a, start + size);
    expect(() => decodeDeviceList(bytes)).toThrow(/out of order/);
    await expect(signDeviceList(nodeCrypto, secret, { ...base, devices: [entry('a'), entry('a')] })).rejects.toThrow(/twice/);
    await expect(signDeviceList(nodeCrypto, secret, { ...base, devices: [] })).rejects.toThrow(/1 to 32/);
    await expect(signDeviceList(nodeCrypto, secret, { ...base, devices: Array.from({ length: 33 }, (_, i) => entry(`d${i}`)) })).rejects.toThrow(/1 to 32/);
    await expect(signDeviceList(nodeCrypto, secret, { ...base, listVersion: 0, devices: [entry('a')] })).rejects.toThrow(/listVersion/);
    expect(() => decodeDeviceList(Uint8Array.of(...good.encoded, 0))).toThrow(/trailing/);
    const flipped = good.encoded.slice();
    flipped[10]! ^= 1;
    const e = await rejectionOf(verifyDeviceList(nodeCrypto, decodeDeviceList(flipped)));
    expect(isDeadboltError(e, 'BAD_SIGNATURE')).toBe(true);
  });

  test('a contact\'s list: trusted on first use like a bundle; a rollback is ignored; another list with the same version is DEVICE_LIST_CONFLICT', async () => {
    const alice = await createParty('alice', 'phone');
    const tablet = await createSiblingDevice(alice, 'tablet'); // alice's list is now version 2
    const bob = await createParty('bob', 'laptop');
    const v1 = (await bob.sessions.applyDeviceList('alice', (await tablet.sessions.deviceList('alice'))!.encoded)).list;
    expect(v1.listVersion).toBe(2);
    expect((await bob.sessions.trust('alice'))?.accountKey).toEqual((await alice.sessions.certificate()).accountKey);
    // Version 3 without the tablet, then the old version 2 again: ignored.
    const v3 = await alice.sessions.signDeviceList([await entryOf(alice)]);
    await alice.sessions.applyDeviceList('alice', v3.encoded);
    expect((await bob.sessions.applyDeviceList('alice', v3.encoded)).changed).toBe(true);
    const rollback = await bob.sessions.applyDeviceList('alice', v1.encoded);
    expect(rollback.changed).toBe(false);
    expect(rollback.list.listVersion).toBe(3);
    // A different version-3 list (the tablet back in): equivocation.
    const secret = await accountSecretOf(alice);
    const cert = await alice.sessions.certificate();
    const other = await signDeviceList(nodeCrypto, secret, { userId: cert.userId, accountKey: cert.accountKey, listVersion: 3, issuedAt: 5, devices: [await entryOf(alice), await entryOf(tablet)] });
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.applyDeviceList('alice', other.encoded), 'DEVICE_LIST_CONFLICT');
  });

  test('a list signed by another account key is not trusted (pending key raised, nothing else), and a list of another user is refused', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await bob.sessions.applyDeviceList('alice', (await alice.sessions.deviceList('alice'))!.encoded);
    const impostor = await createParty('alice', 'phone'); // the relay's own account key
    const e = await rejectionOf(bob.sessions.applyDeviceList('alice', (await impostor.sessions.deviceList('alice'))!.encoded));
    expect(isDeadboltError(e, 'UNTRUSTED_IDENTITY')).toBe(true);
    expect((await bob.sessions.deviceList('alice'))!.accountKey).toEqual((await alice.sessions.certificate()).accountKey);
    const wrongUser = await rejectionOf(bob.sessions.applyDeviceList('carol', (await alice.sessions.deviceList('alice'))!.encoded));
    expect(isDeadboltError(wrongUser, 'SENDER_MISMATCH')).toBe(true);
    // Our own user's list under a foreign key is never trusted either.
    const own = await rejectionOf(alice.sessions.applyDeviceList('alice', (await impostor.sessions.deviceList('alice'))!.encoded));
    expect(isDeadboltError(own, 'UNTRUSTED_IDENTITY')).toBe(true);
  });

  test('revocation: a peer that applies the new list drops its session with the revoked device, refuses its bundle and its initial messages', async () => {
    const alice = await createParty('alice', 'phone');
    const tablet = await createSiblingDevice(alice, 'tablet');
    const bob = await createParty('bob', 'laptop');
    await bob.sessions.applyDeviceList('alice', (await alice.sessions.deviceList('alice'))!.encoded);
    await bob.sessions.processBundle(takeBundle(tablet));
    const hello = await bob.sessions.encrypt(tablet.address, text('hi tablet'));
    expect(str((await tablet.sessions.decrypt(bob.address, hello)).plaintext)).toBe('hi tablet');

    const revoked = await alice.sessions.signDeviceList([await entryOf(alice)]);
    const applied = await bob.sessions.applyDeviceList('alice', revoked.encoded);
    expect(applied.removed).toEqual([tablet.address]);
    expect(await bob.sessions.hasSession(tablet.address)).toBe(false);
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.processBundle(takeBundle(tablet)), 'DEVICE_NOT_CURRENT');
    // The tablet (which has not seen the new list) starts a fresh session towards Bob: refused.
    await tablet.sessions.processBundle(takeBundle(bob));
    const initial = await tablet.sessions.encrypt(bob.address, text('still here'));
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(tablet.address, initial), 'DEVICE_NOT_CURRENT');
    // Alice's phone still works.
    await bob.sessions.processBundle(takeBundle(alice));
    const toAlice = await bob.sessions.encrypt(alice.address, text('hi alice'));
    expect(str((await alice.sessions.decrypt(bob.address, toAlice)).plaintext)).toBe('hi alice');
  });

  test('a device with a certificate from the right account key but missing from the list gets no session (the relay cannot add one)', async () => {
    const alice = await createParty('alice', 'phone');
    const tablet = await createSiblingDevice(alice, 'tablet');
    // Alice's list goes back to the phone alone before Bob ever hears of the tablet.
    const list = await alice.sessions.signDeviceList([await entryOf(alice)]);
    await alice.sessions.applyDeviceList('alice', list.encoded);
    const bob = await createParty('bob', 'laptop');
    await bob.sessions.applyDeviceList('alice', list.encoded);
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.processBundle(takeBundle(tablet)), 'DEVICE_NOT_CURRENT');
  });
});

describe('linking a device (§3.4)', () => {
  async function link(owner: Party, deviceId: string, options: { canManageDevices?: boolean } = {}) {
    const storage: StorageAdapter = createMemoryStorage();
    const pending = await createDeviceLinkRequest({ storage, crypto: nodeCrypto, userId: owner.address.userId, deviceId });
    const approval = await owner.sessions.approveLink(pending.code, options);
    return { storage, pending, approval };
  }

  test('the code round-trips; the approval lists the new device; the new device stores its identity and the list only after checking them', async () => {
    const alice = await createParty('alice', 'phone');
    const { storage, pending, approval } = await link(alice, 'laptop');
    const parsed = parseLinkCode(`  ${pending.code}\n`);
    expect(parsed.request.deviceId).toBe('laptop');
    expect(linkCode(decodeLinkRequest(parsed.encoded))).toBe(pending.code);
    expect(approval.channel).toEqual(pending.channel);
    expect(approval.deviceList.listVersion).toBe(2);
    expect(approval.deviceList.devices.map((d) => d.deviceId)).toEqual(['laptop', 'phone']);
    expect(await storage.get(['identity'])).toBeUndefined();
    const certificate = await pending.complete(approval.sealed);
    expect(certificate.accountKey).toEqual((await alice.sessions.certificate()).accountKey);
    // The linked device works as a device of Alice: Alice applies the list and they talk.
    await alice.sessions.applyDeviceList('alice', approval.deviceList.encoded);
    const laptop = createSessionManager({ storage, crypto: nodeCrypto });
    expect((await laptop.deviceList('alice'))!.listVersion).toBe(2);
    const prekeys = await laptop.generatePrekeys({ oneTime: 1, pqOneTime: 1 });
    await alice.sessions.processBundle({ certificate: prekeys.certificate, signedPrekey: prekeys.signedPrekey, oneTimePrekey: prekeys.oneTimePrekeys[0]!, pqPrekey: prekeys.pqPrekeys[0]! });
    const note = await alice.sessions.encrypt({ userId: alice.address.userId, deviceId: certificate.deviceId }, text('note to self'));
    expect(str((await laptop.decrypt(alice.address, note)).plaintext)).toBe('note to self');
    // Without the account secret it can neither link nor revoke.
    const e = await rejectionOf(laptop.signDeviceList([]));
    expect(isDeadboltError(e, 'NOT_INITIALIZED')).toBe(true);
  });

  test('with canManageDevices the linked device holds the account secret and can sign the next list', async () => {
    const alice = await createParty('alice', 'phone');
    const { storage, pending, approval } = await link(alice, 'desktop', { canManageDevices: true });
    await pending.complete(approval.sealed);
    const desktop = createSessionManager({ storage, crypto: nodeCrypto });
    const next = await desktop.signDeviceList(approval.deviceList.devices.filter((d) => d.deviceId === 'desktop'));
    expect(next.listVersion).toBe(3);
    await verifyDeviceList(nodeCrypto, next);
  });

  test('an answer sealed for another request, tampered with, or replayed does not complete; nothing is stored', async () => {
    const alice = await createParty('alice', 'phone');
    const first = await link(alice, 'laptop');
    const second = await link(alice, 'tablet');
    const wrong = await rejectionOf(first.pending.complete(second.approval.sealed));
    expect(isDeadboltError(wrong, 'DECRYPT_FAILED')).toBe(true);
    const tampered = first.approval.sealed.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(isDeadboltError(await rejectionOf(first.pending.complete(tampered)), 'DECRYPT_FAILED')).toBe(true);
    expect(isDeadboltError(await rejectionOf(first.pending.complete(tampered.subarray(0, 20))), 'DECRYPT_FAILED')).toBe(true);
    expect(await first.storage.get(['identity'])).toBeUndefined();
    await first.pending.complete(first.approval.sealed);
    expect(isDeadboltError(await rejectionOf(first.pending.complete(first.approval.sealed)), 'INVALID_ARGUMENT')).toBe(true);
  });

  test('approving refuses a code of another user, an existing device id, and text that is not a code; a linked device without the secret cannot approve', async () => {
    const alice = await createParty('alice', 'phone');
    const bobPending = await createDeviceLinkRequest({ storage: createMemoryStorage(), crypto: nodeCrypto, userId: 'bob', deviceId: 'x' });
    expect(isDeadboltError(await rejectionOf(alice.sessions.approveLink(bobPending.code)), 'INVALID_ARGUMENT')).toBe(true);
    const samePending = await createDeviceLinkRequest({ storage: createMemoryStorage(), crypto: nodeCrypto, userId: 'alice', deviceId: 'phone' });
    expect(isDeadboltError(await rejectionOf(alice.sessions.approveLink(samePending.code)), 'INVALID_ARGUMENT')).toBe(true);
    expect(isDeadboltError(await rejectionOf(alice.sessions.approveLink('deadbolt-link:!!!')), 'DECODE_FAILED')).toBe(true);
    expect(isDeadboltError(await rejectionOf(alice.sessions.approveLink('hello')), 'DECODE_FAILED')).toBe(true);
    const { storage, pending, approval } = await link(alice, 'laptop');
    await pending.complete(approval.sealed);
    const laptop = createSessionManager({ storage, crypto: nodeCrypto });
    const another = await createDeviceLinkRequest({ storage: createMemoryStorage(), crypto: nodeCrypto, userId: 'alice', deviceId: 'watch' });
    expect(isDeadboltError(await rejectionOf(laptop.approveLink(another.code)), 'NOT_INITIALIZED')).toBe(true);
  });

  test('a store that already holds an identity cannot start a link request', async () => {
    const alice = await createParty('alice', 'phone');
    const e = await rejectionOf(createDeviceLinkRequest({ storage: alice.storage, crypto: nodeCrypto, userId: 'alice', deviceId: 'again' }));
    expect(isDeadboltError(e, 'INVALID_ARGUMENT')).toBe(true);
  });
});
