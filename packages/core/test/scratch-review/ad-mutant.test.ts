// Mutant: the AD binds NOTHING. The B11 "re-addressed"/"other contact"/"reflected" scenarios still pass.
import { describe, expect, test, vi } from 'vitest';
vi.mock('../../src/protocol/associated-data.js', () => ({ pairwiseAdPrefix: () => new Uint8Array(0) }));
import { isDeadboltError } from '@deadbolt/spec';
import { createParty, createSiblingDevice, establishedPair, str, takeBundle, text } from '../helpers/parties.js';
import { expectFailsWithoutMutation, snapshot } from '../helpers/no-mutation.js';

describe('B11 tests with an empty AD (mutant)', () => {
  test('a message re-addressed to another device of the same user fails (still passes)', async () => {
    const alice = await createParty('alice', 'phone');
    const laptop = await createParty('bob', 'laptop');
    const phone = await createSiblingDevice(laptop, 'phone');
    await alice.sessions.processBundle(takeBundle(laptop));
    await alice.sessions.processBundle(takeBundle(phone));
    for (const device of [laptop, phone]) {
      await device.sessions.decrypt(alice.address, await alice.sessions.encrypt(device.address, text('hi')));
      await alice.sessions.decrypt(device.address, await device.sessions.encrypt(alice.address, text('hello')));
    }
    const forLaptop = await alice.sessions.encrypt(laptop.address, text('for the laptop only'));
    await expectFailsWithoutMutation([phone.storage], () => phone.sessions.decrypt(alice.address, forLaptop), 'DECRYPT_FAILED');
  });
  test('a message from one contact presented as from another contact fails (still passes)', async () => {
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
  test('a message reflected back to its sender fails (still passes)', async () => {
    const { alice, bob } = await establishedPair();
    const wire = await alice.sessions.encrypt(bob.address, text('to bob'));
    const before = await snapshot(alice.storage);
    await expect(alice.sessions.decrypt(bob.address, wire)).rejects.toSatisfy((e) => isDeadboltError(e));
    expect(await snapshot(alice.storage)).toBe(before);
  });
});
import { pairwiseAdPrefix } from '../../src/protocol/associated-data.js';
test('mock is active', () => { expect((pairwiseAdPrefix as any)().length).toBe(0); });
