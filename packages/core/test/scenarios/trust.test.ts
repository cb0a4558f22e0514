/**
 * Identity changes and safety numbers (SECURITY.md B16, B17).
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { compareSafetyNumberQr, createSessionManager, decodePrekeyMessage, formatSafetyNumber } from '../../src/index.js';
import { encodePrekeyMessage } from '../../src/protocol/prekey-message.js';
import { createParty, createSiblingDevice, establishedPair, nodeCrypto, str, takeBundle, text } from '../helpers/parties.js';
import { expectFailsWithoutMutation } from '../helpers/no-mutation.js';

describe('identity changes (B16)', () => {
  test('a contact who re-installs: sending stops until the application accepts the new key', async () => {
    const { alice } = await establishedPair();
    const newBob = await createParty('bob', 'laptop'); // same address, new account key

    // Through a bundle: refused, and the new key is remembered as pending.
    await expect(alice.sessions.processBundle(takeBundle(newBob))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
    const trust = await alice.sessions.trust('bob');
    expect(trust?.pendingKey).toEqual((await newBob.sessions.certificate()).accountKey);
    // Even the old, still-working session may not be used any more.
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.encrypt(newBob.address, text('x')), 'UNTRUSTED_IDENTITY');

    // Through an incoming message: it decrypts, flagged, and sending stays blocked.
    await newBob.sessions.processBundle(takeBundle(alice));
    const got = await alice.sessions.decrypt(newBob.address, await newBob.sessions.encrypt(alice.address, text('it is me, new phone')));
    expect(got.identityChanged).toBe(true);
    expect(str(got.plaintext)).toBe('it is me, new phone');
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.encrypt(newBob.address, text('x')), 'UNTRUSTED_IDENTITY');

    // Accepting (with the key the user was shown) makes it the trusted one; sending works on the new session.
    await alice.sessions.acceptIdentity('bob', (await newBob.sessions.certificate()).accountKey);
    expect((await alice.sessions.trust('bob'))?.pendingKey).toBeUndefined();
    const reply = await alice.sessions.encrypt(newBob.address, text('welcome back'));
    expect(str((await newBob.sessions.decrypt(alice.address, reply)).plaintext)).toBe('welcome back');
  });

  test('a verified contact never re-keys silently: accepting clears verification', async () => {
    const { alice, bob } = await establishedPair();
    await alice.sessions.setVerified('bob', true);
    expect((await alice.sessions.trust('bob'))?.verified).toBe(true);
    const newBob = await createParty('bob', 'laptop');
    await newBob.sessions.processBundle(takeBundle(alice));
    const got = await alice.sessions.decrypt(bob.address, await newBob.sessions.encrypt(alice.address, text('hi')));
    expect(got.identityChanged).toBe(true);
    const t = await alice.sessions.trust('bob');
    expect(t?.verified).toBe(true); // still the old, verified key until the user decides
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.encrypt(bob.address, text('x')), 'UNTRUSTED_IDENTITY');
    await alice.sessions.acceptIdentity('bob', got.senderAccountKey);
    expect((await alice.sessions.trust('bob'))?.verified).toBe(false);
  });

  test('trust() hands out a copy: changing it changes nothing the session manager decides on', async () => {
    const { alice, bob } = await establishedPair();
    const trust = await alice.sessions.trust('bob');
    trust!.accountKey.fill(0);
    expect((await alice.sessions.trust('bob'))?.accountKey).toEqual((await bob.sessions.certificate()).accountKey);
    const wire = await alice.sessions.encrypt(bob.address, text('still trusted'));
    expect(str((await bob.sessions.decrypt(alice.address, wire)).plaintext)).toBe('still trusted');
  });

  test('certificate() and createIdentity() hand out copies: changing one changes nothing this device sends', async () => {
    const { alice, bob } = await establishedPair();
    const mine = await alice.sessions.certificate();
    mine.identityKey.fill(0);
    expect(await alice.sessions.certificate()).not.toEqual(mine);
    const carol = await createParty('carol', 'phone');
    await alice.sessions.processBundle(takeBundle(carol));
    const wire = await alice.sessions.encrypt(carol.address, text('to carol'));
    expect(str((await carol.sessions.decrypt(alice.address, wire)).plaintext)).toBe('to carol');
    expect(str((await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text('to bob')))).plaintext)).toBe('to bob');
  });

  test('a trust record changed in the store by another writer is read afresh: a pending key written there blocks sending at once', async () => {
    const { alice, bob } = await establishedPair();
    await alice.sessions.encrypt(bob.address, text('reads the trust record once'));
    // Another manager on the same store (another tab) learns of a new key for Bob.
    const other = createSessionManager({ storage: alice.storage, crypto: nodeCrypto });
    const newBob = await createParty('bob', 'laptop');
    await expect(other.processBundle(takeBundle(newBob))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
    await expect(alice.sessions.encrypt(bob.address, text('x'))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
  });

  test('another device claiming the user but certified by a different account key is not trusted', async () => {
    const { alice } = await establishedPair();
    // Trust is per account key, not per device: a device whose certificate is signed by
    // another account key is an identity change, however plausible its address.
    const other = await createParty('bob', 'tablet');
    await expect(alice.sessions.processBundle(takeBundle(other))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
  });
});

describe('identity changes under an active attacker (B16, review H1/H2/M1)', () => {
  test('a device claiming this user but certified by another account key is never trusted', async () => {
    const alice = await createParty('alice', 'phone');
    const fakeTablet = await createParty('alice', 'tablet'); // the relay's own account key
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.processBundle(takeBundle(fakeTablet)), 'UNTRUSTED_IDENTITY');
    // Nor through an initial message pushed at us: an initial message carrying the forged
    // certificate (the fake device's own API refuses to make one, so splice it in).
    const mallory = await createParty('mallory', 'phone');
    await mallory.sessions.processBundle(takeBundle(alice));
    const initial = decodePrekeyMessage(await mallory.sessions.encrypt(alice.address, text('hi')));
    const forged = encodePrekeyMessage({ ...initial, certificate: await fakeTablet.sessions.certificate() });
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.decrypt(fakeTablet.address, forged), 'UNTRUSTED_IDENTITY');
    expect(await alice.sessions.trust('alice')).toBeUndefined();
    // A genuine sibling device (certified by Alice's account key) works.
    const realTablet = await createSiblingDevice(alice, 'tablet2');
    await alice.sessions.processBundle(takeBundle(realTablet));
    const note = await alice.sessions.encrypt(realTablet.address, text('note to self'));
    expect(str((await realTablet.sessions.decrypt(alice.address, note)).plaintext)).toBe('note to self');
  });

  test('accepting needs the key the user was shown: a swapped pending key is not accepted', async () => {
    const { alice } = await establishedPair();
    const newBob = await createParty('bob', 'laptop');
    await newBob.sessions.processBundle(takeBundle(alice));
    const shown = (await alice.sessions.decrypt(newBob.address, await newBob.sessions.encrypt(alice.address, text('new phone')))).senderAccountKey;
    const pendingNumber = await alice.sessions.safetyNumber('bob', { pending: true });
    expect(pendingNumber.digits).toBe((await newBob.sessions.safetyNumber('alice')).digits); // verifiable before accepting
    // The relay now swaps in its own key.
    const mallory = await createParty('bob', 'laptop');
    await expect(alice.sessions.processBundle(takeBundle(mallory))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.acceptIdentity('bob', shown), 'UNTRUSTED_IDENTITY');
    // Rejecting forgets the pending key and its sessions; the old key stays trusted.
    await alice.sessions.rejectIdentity('bob');
    expect((await alice.sessions.trust('bob'))?.pendingKey).toBeUndefined();
  });

  test('a forged session never displaces the trusted one; rejecting restores sending', async () => {
    const { alice, bob } = await establishedPair();
    const mallory = await createParty('bob', 'laptop');
    await mallory.sessions.processBundle(takeBundle(alice));
    const forged = await alice.sessions.decrypt(bob.address, await mallory.sessions.encrypt(alice.address, text('x')));
    expect(forged.identityChanged).toBe(true);
    // Every later message on the forged session is flagged too, not just the first.
    expect((await alice.sessions.decrypt(bob.address, await mallory.sessions.encrypt(alice.address, text('y')))).identityChanged).toBe(true);
    // Genuine Bob still decrypts, unflagged.
    expect((await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text('real')))).identityChanged).toBe(false);
    await alice.sessions.rejectIdentity('bob');
    const reply = await alice.sessions.encrypt(bob.address, text('reply'));
    expect(str((await bob.sessions.decrypt(alice.address, reply)).plaintext)).toBe('reply');
  });
});

describe('forged sessions are cleaned up (review 2, H2)', () => {
  test('accepting a key drops sessions certified by every other key; rejecting always cleans', async () => {
    const { alice, bob } = await establishedPair();
    const mallory = await createParty('bob', 'laptop'); // the relay's own key K2
    await mallory.sessions.processBundle(takeBundle(alice));
    await alice.sessions.decrypt(bob.address, await mallory.sessions.encrypt(alice.address, text('forged')));
    const newBob = await createParty('bob', 'laptop'); // Bob genuinely re-keys: K3 replaces K2 as pending
    await newBob.sessions.processBundle(takeBundle(alice));
    const real = await alice.sessions.decrypt(bob.address, await newBob.sessions.encrypt(alice.address, text('new phone')));
    await alice.sessions.acceptIdentity('bob', real.senderAccountKey);
    // Mallory's session is gone with the old key's: her next message (still an initial
    // message naming one-time keys Alice consumed) recreates nothing and changes nothing.
    const next = await mallory.sessions.encrypt(alice.address, text('still here?'));
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.decrypt(bob.address, next), 'UNKNOWN_KEY');
    // Sending to Bob works and reaches the new Bob.
    expect(str((await newBob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text('hi')))).plaintext)).toBe('hi');
  });

  test('a message on an untrusted session raises its key as pending again; reject then removes it', async () => {
    const { alice, bob } = await establishedPair();
    const mallory = await createParty('bob', 'laptop');
    await mallory.sessions.processBundle(takeBundle(alice));
    await alice.sessions.decrypt(bob.address, await mallory.sessions.encrypt(alice.address, text('forged')));
    await alice.sessions.rejectIdentity('bob'); // clears pending, deletes the forged session
    expect((await alice.sessions.trust('bob'))?.pendingKey).toBeUndefined();
    await expect(alice.sessions.decrypt(bob.address, await mallory.sessions.encrypt(alice.address, text('again')))).rejects.toSatisfy((e) => isDeadboltError(e));
    const reply = await alice.sessions.encrypt(bob.address, text('only to real bob'));
    expect(str((await bob.sessions.decrypt(alice.address, reply)).plaintext)).toBe('only to real bob');
  });
});

describe('safety numbers (B17)', () => {
  test('both sides compute the same number and QR payload', async () => {
    const { alice, bob } = await establishedPair();
    const a = await alice.sessions.safetyNumber('bob');
    const b = await bob.sessions.safetyNumber('alice');
    expect(a.digits).toMatch(/^\d{60}$/);
    expect(a.digits).toBe(b.digits);
    expect(compareSafetyNumberQr(a.qr, b.qr)).toBe(true);
    expect(formatSafetyNumber(a.digits)).toMatch(/^(\d{5} ){11}\d{5}$/);
  });

  test('adding a device changes no safety number (they are made from account keys only)', async () => {
    const { alice, bob } = await establishedPair();
    const before = await alice.sessions.safetyNumber('bob');
    const bobTablet = await createSiblingDevice(bob, 'tablet');
    await alice.sessions.processBundle(takeBundle(bobTablet)); // trusted silently: same account key
    await bobTablet.sessions.decrypt(alice.address, await alice.sessions.encrypt(bobTablet.address, text('hi tablet')));
    expect((await alice.sessions.safetyNumber('bob')).digits).toBe(before.digits);
    expect((await bobTablet.sessions.safetyNumber('alice')).digits).toBe(before.digits);
  });

  test('any account key change changes the number', async () => {
    const { alice, bob } = await establishedPair();
    const before = await alice.sessions.safetyNumber('bob');
    const newBob = await createParty('bob', 'laptop');
    await newBob.sessions.processBundle(takeBundle(alice));
    await alice.sessions.decrypt(bob.address, await newBob.sessions.encrypt(alice.address, text('hi')));
    await alice.sessions.acceptIdentity('bob', (await newBob.sessions.certificate()).accountKey);
    const after = await alice.sessions.safetyNumber('bob');
    expect(after.digits).not.toBe(before.digits);
    expect(compareSafetyNumberQr(after.qr, before.qr)).toBe(false);
    expect(after.digits).toBe((await newBob.sessions.safetyNumber('alice')).digits);
    // And a change of Alice's key changes it too, from Bob's side.
    const newAlice = await createParty('alice', 'phone');
    await newAlice.sessions.processBundle(takeBundle(newBob));
    await newBob.sessions.decrypt(newAlice.address, await newAlice.sessions.encrypt(newBob.address, text('hi')));
    await newBob.sessions.acceptIdentity('alice', (await newAlice.sessions.certificate()).accountKey);
    expect((await newBob.sessions.safetyNumber('alice')).digits).not.toBe(after.digits);
  });
});
