/**
 * Session set-up (SECURITY.md B7–B11): bundles, initial messages, one-time prekeys and
 * sender binding. Every failing transition is checked to leave all stores byte-identical.
 */
import { describe, expect, test } from 'vitest';
import { address, isDeadboltError } from '@deadbolt/spec';
import {
  decodePrekeyMessage,
  encodeDeviceCertificate,
  encodePrekeyBundle,
  decodePrekeyBundle,
  type PrekeyBundle,
} from '../../src/index.js';
import { encodePrekeyMessage } from '../../src/protocol/prekey-message.js';
import { createParty, createSiblingDevice, establishedPair, str, takeBundle, text } from '../helpers/parties.js';
import { expectFailsWithoutMutation, snapshot } from '../helpers/no-mutation.js';

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index] = (out[index] as number) ^ 0x01;
  return out;
}

describe('bundles (B7, B8)', () => {
  test('a valid bundle starts a session; the first message decrypts', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(encodePrekeyBundle(takeBundle(bob)));
    const wire = await alice.sessions.encrypt(bob.address, text('hi'));
    const got = await bob.sessions.decrypt(alice.address, wire);
    expect(str(got.plaintext)).toBe('hi');
    expect(got.sessionCreated).toBe(true);
    expect(got.sender).toEqual(alice.address);
  });

  test.each([
    ['signed prekey signature', (b: PrekeyBundle): PrekeyBundle => ({ ...b, signedPrekey: { ...b.signedPrekey, signature: flip(b.signedPrekey.signature, 3) } })],
    ['signed prekey public key', (b: PrekeyBundle): PrekeyBundle => ({ ...b, signedPrekey: { ...b.signedPrekey, publicKey: flip(b.signedPrekey.publicKey, 0) as never } })],
    ['PQ prekey signature', (b: PrekeyBundle): PrekeyBundle => ({ ...b, pqPrekey: { ...b.pqPrekey!, signature: flip(b.pqPrekey!.signature, 10) } })],
    ['PQ prekey public key', (b: PrekeyBundle): PrekeyBundle => ({ ...b, pqPrekey: { ...b.pqPrekey!, publicKey: flip(b.pqPrekey!.publicKey, 100) as never } })],
    ['PQ prekey kind', (b: PrekeyBundle): PrekeyBundle => ({ ...b, pqPrekey: { ...b.pqPrekey!, kind: 2 } })],
    ['certificate signature', (b: PrekeyBundle): PrekeyBundle => ({ ...b, certificate: { ...b.certificate, signature: flip(b.certificate.signature, 0) } })],
    ['certificate identity key', (b: PrekeyBundle): PrekeyBundle => ({ ...b, certificate: { ...b.certificate, identityKey: flip(b.certificate.identityKey, 5) as never } })],
  ])('a bundle with a bad %s is refused and nothing is stored', async (_name, tamper) => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    const bad = tamper(takeBundle(bob));
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.processBundle(bad), 'BAD_SIGNATURE');
    expect(await alice.sessions.hasSession(bob.address)).toBe(false);
    expect(await alice.sessions.trust('bob')).toBeUndefined();
  });

  test('a bundle without its PQ prekey is a downgrade, and nothing is stored', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    const bundle = takeBundle(bob, { pq: 'none' });
    // Also through the wire encoding: the decoder accepts the shape, the check refuses it.
    const bytes = encodePrekeyBundle(bundle);
    expect(decodePrekeyBundle(bytes).pqPrekey).toBeUndefined();
    await expectFailsWithoutMutation([alice.storage], () => alice.sessions.processBundle(bytes), 'DOWNGRADE');
  });

  test('an initial message stripped of its PQ part is a downgrade, and nothing is stored', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const wire = await alice.sessions.encrypt(bob.address, text('hi'));
    const { pq: _pq, ...stripped } = decodePrekeyMessage(wire);
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, encodePrekeyMessage(stripped)), 'DOWNGRADE');
    // The genuine message still works afterwards.
    expect(str((await bob.sessions.decrypt(alice.address, wire)).plaintext)).toBe('hi');
  });
});

describe('initial messages (B9, B10)', () => {
  test('a first message that fails to decrypt consumes no prekey and changes no store', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const wire = await alice.sessions.encrypt(bob.address, text('hi'));
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, flip(wire, wire.length - 1)), 'DECRYPT_FAILED');
    // A corrupted KEM ciphertext yields a different SS (implicit rejection): also a clean failure.
    const m = decodePrekeyMessage(wire);
    const badKem = encodePrekeyMessage({ ...m, pq: { ...m.pq!, ciphertext: flip(m.pq!.ciphertext, 7) } });
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, badKem), 'DECRYPT_FAILED');
    // The one-time prekeys were not consumed: the genuine message decrypts.
    expect(str((await bob.sessions.decrypt(alice.address, wire)).plaintext)).toBe('hi');
  });

  test('a one-time prekey is used once; a second initial message naming it fails', async () => {
    const bob = await createParty('bob', 'laptop');
    const alice = await createParty('alice', 'phone');
    const carol = await createParty('carol', 'tablet');
    const bundle = takeBundle(bob);
    // The directory misbehaves and hands the same one-time keys to two initiators.
    await alice.sessions.processBundle(bundle);
    await carol.sessions.processBundle(bundle);
    const fromAlice = await alice.sessions.encrypt(bob.address, text('a'));
    const fromCarol = await carol.sessions.encrypt(bob.address, text('c'));
    await bob.sessions.decrypt(alice.address, fromAlice);
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(carol.address, fromCarol), 'UNKNOWN_KEY');
  });

  test('a one-time PQ prekey is used once, even without a curve one-time prekey', async () => {
    const bob = await createParty('bob', 'laptop');
    const alice = await createParty('alice', 'phone');
    const carol = await createParty('carol', 'tablet');
    const bundle = takeBundle(bob, { oneTime: false });
    await alice.sessions.processBundle(bundle);
    await carol.sessions.processBundle(bundle);
    await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text('a')));
    const fromCarol = await carol.sessions.encrypt(bob.address, text('c'));
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(carol.address, fromCarol), 'UNKNOWN_KEY');
  });

  test('with only the last-resort key, a replayed initial message is refused once its session is gone', async () => {
    const bob = await createParty('bob', 'laptop', { limits: { maxSessionsPerDevice: 1 } });
    const alice = await createParty('alice', 'phone');
    await alice.sessions.processBundle(takeBundle(bob, { oneTime: false, pq: 'last-resort' }));
    const first = await alice.sessions.encrypt(bob.address, text('first'));
    await bob.sessions.decrypt(alice.address, first);
    // Alice starts a second session; with one session kept, Bob drops the first one.
    await alice.sessions.processBundle(takeBundle(bob, { oneTime: false, pq: 'last-resort' }));
    await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text('second')));
    // Replaying the first initial message cannot recreate the dropped session.
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, first), 'DUPLICATE_MESSAGE');
  });

  test('a repeated initial message of a live session is a duplicate', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob, { oneTime: false, pq: 'last-resort' }));
    const wire = await alice.sessions.encrypt(bob.address, text('once'));
    await bob.sessions.decrypt(alice.address, wire);
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, wire), 'DUPLICATE_MESSAGE');
  });
});

describe('sender binding (B11)', () => {
  test('a first message replayed from a different claimed sender is refused', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const wire = await alice.sessions.encrypt(bob.address, text('hi'));
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(address('mallory', 'phone'), wire), 'SENDER_MISMATCH');
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(address('alice', 'laptop'), wire), 'SENDER_MISMATCH');
  });

  test('an initial message with another user\'s certificate swapped in fails', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    const mallory = await createParty('mallory', 'phone');
    await alice.sessions.processBundle(takeBundle(bob));
    const m = decodePrekeyMessage(await alice.sessions.encrypt(bob.address, text('hi')));
    const forged = encodePrekeyMessage({ ...m, certificate: await mallory.sessions.certificate() });
    // Mallory's certificate is genuine, but the DHs and the AD were computed for Alice's keys.
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(mallory.address, forged), 'DECRYPT_FAILED');
  });

  test('a message re-addressed to another device of the same user fails', async () => {
    const alice = await createParty('alice', 'phone');
    const laptop = await createParty('bob', 'laptop');
    const phone = await createSiblingDevice(laptop, 'phone');
    await alice.sessions.processBundle(takeBundle(laptop));
    await alice.sessions.processBundle(takeBundle(phone));
    // Both of Bob's devices have confirmed sessions with Alice.
    for (const device of [laptop, phone]) {
      await device.sessions.decrypt(alice.address, await alice.sessions.encrypt(device.address, text('hi')));
      await alice.sessions.decrypt(device.address, await device.sessions.encrypt(alice.address, text('hello')));
    }
    // A ratchet message: the phone's session with Alice has other keys, and the AD names the laptop.
    const forLaptop = await alice.sessions.encrypt(laptop.address, text('for the laptop only'));
    await expectFailsWithoutMutation([phone.storage], () => phone.sessions.decrypt(alice.address, forLaptop), 'DECRYPT_FAILED');
  });

  test('a message from one contact presented as from another contact fails', async () => {
    const { alice, bob } = await establishedPair();
    const carol = await createParty('carol', 'tablet');
    await carol.sessions.processBundle(takeBundle(bob));
    await bob.sessions.decrypt(carol.address, await carol.sessions.encrypt(bob.address, text('c')));
    const fromAlice = await alice.sessions.encrypt(bob.address, text('from alice'));
    const before = await snapshot(bob.storage);
    await expect(bob.sessions.decrypt(carol.address, fromAlice)).rejects.toSatisfy((e) => isDeadboltError(e));
    expect(await snapshot(bob.storage)).toBe(before);
    expect(str((await bob.sessions.decrypt(alice.address, fromAlice)).plaintext)).toBe('from alice');
  });

  test('a message reflected back to its sender fails', async () => {
    const { alice, bob } = await establishedPair();
    const wire = await alice.sessions.encrypt(bob.address, text('to bob'));
    const before = await snapshot(alice.storage);
    await expect(alice.sessions.decrypt(bob.address, wire)).rejects.toSatisfy((e) => isDeadboltError(e));
    expect(await snapshot(alice.storage)).toBe(before);
  });

  test('certificates are bound: the encoded certificate in a message is the sender\'s', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const m = decodePrekeyMessage(await alice.sessions.encrypt(bob.address, text('x')));
    expect(encodeDeviceCertificate(m.certificate)).toEqual(encodeDeviceCertificate(await alice.sessions.certificate()));
  });
});
