/**
 * Identity changes and safety numbers (SECURITY.md B16, B17).
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { compareSafetyNumberQr, formatSafetyNumber } from '../../src/index.js';
import { createParty, establishedPair, str, takeBundle, text } from '../helpers/parties.js';
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

    // Accepting makes the new key the trusted one; sending works on the new session.
    await alice.sessions.acceptIdentity('bob');
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
    await alice.sessions.acceptIdentity('bob');
    expect((await alice.sessions.trust('bob'))?.verified).toBe(false);
  });

  test('another device claiming the user but certified by a different account key is not trusted', async () => {
    const { alice } = await establishedPair();
    // Trust is per account key, not per device: a device whose certificate is signed by
    // another account key is an identity change, however plausible its address.
    const other = await createParty('bob', 'tablet');
    await expect(alice.sessions.processBundle(takeBundle(other))).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
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

  test('any account key change changes the number', async () => {
    const { alice, bob } = await establishedPair();
    const before = await alice.sessions.safetyNumber('bob');
    const newBob = await createParty('bob', 'laptop');
    await newBob.sessions.processBundle(takeBundle(alice));
    await alice.sessions.decrypt(bob.address, await newBob.sessions.encrypt(alice.address, text('hi')));
    await alice.sessions.acceptIdentity('bob');
    const after = await alice.sessions.safetyNumber('bob');
    expect(after.digits).not.toBe(before.digits);
    expect(compareSafetyNumberQr(after.qr, before.qr)).toBe(false);
    expect(after.digits).toBe((await newBob.sessions.safetyNumber('alice')).digits);
    // And a change of Alice's key changes it too, from Bob's side.
    const newAlice = await createParty('alice', 'phone');
    await newAlice.sessions.processBundle(takeBundle(newBob));
    await newBob.sessions.decrypt(newAlice.address, await newAlice.sessions.encrypt(newBob.address, text('hi')));
    await newBob.sessions.acceptIdentity('alice');
    expect((await newBob.sessions.safetyNumber('alice')).digits).not.toBe(after.digits);
  });
});
