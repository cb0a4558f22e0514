import { describe, expect, test } from 'vitest';
import { isDeadboltError, address } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createSessionManager, decodeRatchetMessage } from '../../src/index.js';
import { openRecord, RecordType } from '../../src/session/record-envelope.js';
import { readSessionRecord } from '../../src/session/session-state.js';
import { toHex } from '../../src/codec/bytes.js';
import { createParty, createSiblingDevice, establishedPair, nodeCrypto, str, takeBundle, text, type Party } from '../helpers/parties.js';
import { snapshot } from '../helpers/no-mutation.js';

async function sessionsOf(owner: Party, peer: Party) {
  const key = ['session', peer.address.userId, peer.address.deviceId];
  return openRecord(nodeCrypto, key, RecordType.SESSION, (await owner.storage.get(key))!, readSessionRecord).sessions;
}

describe('review', () => {
  test('F1: relay-minted device for MY OWN user id is trusted on first use and sent to', async () => {
    const alice = await createParty('alice', 'phone');
    // The relay mints "alice/tablet" under its own account key (createParty makes a fresh account key).
    const fakeTablet = await createParty('alice', 'tablet');
    await alice.sessions.processBundle(takeBundle(fakeTablet)); // no UNTRUSTED_IDENTITY
    const wire = await alice.sessions.encrypt(fakeTablet.address, text('my own secret note'));
    expect(str((await fakeTablet.sessions.decrypt(alice.address, wire)).plaintext)).toBe('my own secret note');
    // ...and the genuine sibling, certified by Alice's real account key, is now the "changed identity".
    const realTablet = await createSiblingDevice(alice, 'tablet2');
    await expect(alice.sessions.processBundle(takeBundle(realTablet))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
  });

  test('F1b: same through an incoming initial message claiming my own user id', async () => {
    const alice = await createParty('alice', 'phone');
    const fake = await createParty('alice', 'laptop');
    await fake.sessions.processBundle(takeBundle(alice));
    const got = await alice.sessions.decrypt(fake.address, await fake.sessions.encrypt(alice.address, text('hi, it is your laptop')));
    expect(got.identityChanged).toBe(false);
    expect((await alice.sessions.trust('alice'))!.accountKey).toEqual((await fake.sessions.certificate()).accountKey);
  });

  test('F2: pendingKey is overwritten by whoever shows a key last; acceptIdentity accepts it blindly; safety number shows the OLD key', async () => {
    const { alice, bob } = await establishedPair();
    const newBob = await createParty('bob', 'laptop'); // genuine re-install
    await newBob.sessions.processBundle(takeBundle(alice));
    const got = await alice.sessions.decrypt(newBob.address, await newBob.sessions.encrypt(alice.address, text('new phone')));
    expect(got.identityChanged).toBe(true);
    const snBefore = await alice.sessions.safetyNumber('bob'); // what the user would compare: still the OLD key
    const mallory = await createParty('bob', 'laptop'); // relay-minted
    await expect(alice.sessions.processBundle(takeBundle(mallory))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
    expect((await alice.sessions.trust('bob'))!.pendingKey).toEqual((await mallory.sessions.certificate()).accountKey);
    expect((await alice.sessions.safetyNumber('bob')).digits).toBe(snBefore.digits); // no way to see the pending key's number
    await alice.sessions.acceptIdentity('bob'); // user "accepts Bob's new phone"
    expect((await alice.sessions.trust('bob'))!.accountKey).toEqual((await mallory.sessions.certificate()).accountKey);
    await alice.sessions.processBundle(takeBundle(mallory));
    const w = await alice.sessions.encrypt(mallory.address, text('for bob'));
    expect(str((await mallory.sessions.decrypt(alice.address, w)).plaintext)).toBe('for bob');
    void bob;
  });

  test('F3: a relay-forged initial message becomes the ACTIVE session; sending to the genuine peer is blocked until the forged key is accepted', async () => {
    const { alice, bob } = await establishedPair();
    const mallory = await createParty('bob', 'laptop');
    await mallory.sessions.processBundle(takeBundle(alice));
    const r = await alice.sessions.decrypt(bob.address, await mallory.sessions.encrypt(alice.address, text('x')));
    expect(r.identityChanged).toBe(true);
    const s = await sessionsOf(alice, bob);
    expect(toHex(s[0]!.remoteCertificate.accountKey)).toBe(toHex((await mallory.sessions.certificate()).accountKey));
    // Genuine Bob keeps talking on the genuine session: it decrypts, but Alice can never answer.
    const g = await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text('real bob')));
    expect(str(g.plaintext)).toBe('real bob');
    expect(g.identityChanged).toBe(false);
    await expect(alice.sessions.encrypt(bob.address, text('reply'))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
  });

  test('F4: only the FIRST message of a changed-identity session is flagged identityChanged', async () => {
    const { alice } = await establishedPair();
    const newBob = await createParty('bob', 'laptop');
    await newBob.sessions.processBundle(takeBundle(alice));
    const m1 = await newBob.sessions.encrypt(alice.address, text('1'));
    const m2 = await newBob.sessions.encrypt(alice.address, text('2'));
    expect((await alice.sessions.decrypt(newBob.address, m1)).identityChanged).toBe(true);
    const r2 = await alice.sessions.decrypt(newBob.address, m2);
    expect((await alice.sessions.trust('bob'))!.pendingKey).toBeDefined();
    expect(r2.identityChanged).toBe(false); // BUG: spec §7.4 says flagged
  });

  test('F5: the maximum documented plaintext (262,144 bytes) encrypts, advances state, and can never be decoded', async () => {
    const { alice, bob } = await establishedPair();
    const before = await alice.storage.get(['session', 'bob', 'laptop']);
    const wire = await alice.sessions.encrypt(bob.address, new Uint8Array(262_144));
    expect(await alice.storage.get(['session', 'bob', 'laptop'])).not.toEqual(before); // chain advanced & persisted
    expect(wire.length).toBeGreaterThan(266_240);
    await expect(bob.sessions.decrypt(alice.address, wire)).rejects.toSatisfy((e) => isDeadboltError(e, 'DECODE_FAILED'));
    // one byte less is fine
    const ok = await alice.sessions.encrypt(bob.address, new Uint8Array(262_143));
    expect((await bob.sessions.decrypt(alice.address, ok)).plaintext.length).toBe(262_143);
  });

  test('F5b: same for an initial (prekey) message', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const wire = await alice.sessions.encrypt(bob.address, new Uint8Array(262_144));
    expect(wire.length).toBeGreaterThan(270_336);
    await expect(bob.sessions.decrypt(alice.address, wire)).rejects.toSatisfy((e) => isDeadboltError(e, 'DECODE_FAILED'));
  });

  test('F6: simultaneous initiation never converges when the losing initial message is delayed past the first reply', async () => {
    const alice = await createParty('alice', 'phone'); // 'alice' < 'bob': Alice's session should win
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    await bob.sessions.processBundle(takeBundle(alice));
    const a1 = await alice.sessions.encrypt(bob.address, text('a1')); // on S_A
    const b1 = await bob.sessions.encrypt(alice.address, text('b1')); // on S_B, held back by the relay
    await bob.sessions.decrypt(alice.address, a1); // Bob: S_A active (rule)
    const b2 = await bob.sessions.encrypt(alice.address, text('b2')); // on S_A
    await alice.sessions.decrypt(bob.address, b2); // Alice: S_A confirmed
    await alice.sessions.decrypt(bob.address, b1); // delayed: Alice now makes S_B active
    const aKey = toHex((await sessionsOf(alice, bob))[0]!.baseKey);
    const bKey = toHex((await sessionsOf(bob, alice))[0]!.baseKey);
    expect(aKey).not.toBe(bKey);
    // and it stays split after any amount of clean traffic both ways
    for (let i = 0; i < 5; i++) {
      await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text(`a${i}`)));
      await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text(`b${i}`)));
    }
    expect(toHex((await sessionsOf(alice, bob))[0]!.baseKey)).not.toBe(toHex((await sessionsOf(bob, alice))[0]!.baseKey));
  });

  test('F7: processBundle that fails with UNTRUSTED_IDENTITY writes the store', async () => {
    const { alice } = await establishedPair();
    const mallory = await createParty('bob', 'laptop');
    const before = await snapshot(alice.storage);
    await expect(alice.sessions.processBundle(takeBundle(mallory))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
    expect(await snapshot(alice.storage)).not.toBe(before);
  });
});
