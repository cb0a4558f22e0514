/**
 * Property tests (fast-check): codec round trips, decrypt(encrypt(m)) = m under any
 * delivery order, and any tampering gives a typed error while changing nothing.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import {
  decodePrekeyBundle,
  decodePrekeyMessage,
  decodeRatchetMessage,
  encodePrekeyBundle,
  pad,
  unpad,
} from '../../src/index.js';
import { encodePrekeyMessage } from '../../src/protocol/prekey-message.js';
import { encodeRatchetHeader, encodeRatchetMessage } from '../../src/protocol/ratchet-message.js';
import { encodeSessionRecord, readSessionRecord } from '../../src/session/session-state.js';
import { ByteReader } from '../../src/codec/reader.js';
import { createParty, establishedPair, str, takeBundle, text } from '../helpers/parties.js';
import { snapshot } from '../helpers/no-mutation.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

describe('codec round trips', () => {
  test('ratchet messages', () => {
    fc.assert(
      fc.property(bytes(32), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.uint8Array({ minLength: 48, maxLength: 600 }), (dh, pn, n, body) => {
        const header = encodeRatchetHeader({ dh: dh as never, pn, n });
        const decoded = decodeRatchetMessage(encodeRatchetMessage(header, body));
        expect(decoded.header).toEqual({ dh, pn, n });
        expect(decoded.body).toEqual(body);
        expect(decoded.headerBytes).toEqual(header);
      }),
    );
  });

  test('bundles and prekey messages', async () => {
    const bob = await createParty('bob', 'laptop');
    const alice = await createParty('alice', 'phone');
    const base = takeBundle(bob);
    await alice.sessions.processBundle(base);
    const pm = decodePrekeyMessage(await alice.sessions.encrypt(bob.address, text('x')));
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.nat({ max: 0xffffffff }), fc.constantFrom(1, 2), (withOpk, withPq, id, kind) => {
        const { oneTimePrekey, pqPrekey, ...rest } = base;
        const b = {
          ...rest,
          ...(withOpk ? { oneTimePrekey: { ...oneTimePrekey!, id } } : {}),
          ...(withPq ? { pqPrekey: { ...pqPrekey!, kind } } : {}),
        };
        expect(decodePrekeyBundle(encodePrekeyBundle(b))).toEqual(b);
        const { oneTimePrekeyId: _o, pq, ...prest } = pm;
        const m = { ...prest, ...(withOpk ? { oneTimePrekeyId: id } : {}), ...(withPq ? { pq: { ...pq!, kind } } : {}) };
        expect(decodePrekeyMessage(encodePrekeyMessage(m))).toEqual(m);
      }),
      { numRuns: 40 },
    );
  });

  test('padding', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (m) => {
        expect(unpad(pad(m))).toEqual(m);
      }),
    );
  });
});

describe('sessions', () => {
  test('decrypt(encrypt(m)) = m for any messages in any delivery order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 12 }),
        fc.func(fc.integer()),
        fc.boolean(),
        async (messages, order, replyFirst) => {
          const { alice, bob } = await establishedPair();
          if (replyFirst) await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text('r')));
          const wires = [];
          for (const m of messages) wires.push(await alice.sessions.encrypt(bob.address, m));
          const indices = messages.map((_, i) => i).sort((a, b) => order(a) - order(b) || a - b);
          for (const i of indices) expect((await bob.sessions.decrypt(alice.address, wires[i]!)).plaintext).toEqual(messages[i]);
        },
      ),
      { numRuns: 15 },
    );
  });

  test('any single-byte tampering gives a typed error and changes nothing', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const initial = await alice.sessions.encrypt(bob.address, text('initial'));
    const { alice: a2, bob: b2 } = await establishedPair();
    const ratchet = await a2.sessions.encrypt(b2.address, text('steady'));
    const beforeBob = await snapshot(bob.storage);
    const beforeB2 = await snapshot(b2.storage);
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 255 }), async (useInitial, at, x) => {
        const [wire, receiver, sender] = useInitial ? [initial, bob, alice] : [ratchet, b2, a2];
        const bad = wire.slice();
        const i = at % bad.length;
        bad[i] = (bad[i] as number) ^ x;
        let caught: unknown;
        try {
          await receiver.sessions.decrypt(sender.address, bad);
        } catch (e) {
          caught = e;
        }
        expect(isDeadboltError(caught)).toBe(true);
      }),
      { numRuns: 150 },
    );
    expect(await snapshot(bob.storage)).toBe(beforeBob);
    expect(await snapshot(b2.storage)).toBe(beforeB2);
    expect(str((await bob.sessions.decrypt(alice.address, initial)).plaintext)).toBe('initial');
    expect(str((await b2.sessions.decrypt(a2.address, ratchet)).plaintext)).toBe('steady');
  });

  test('session records round trip through their codec', async () => {
    const { alice, bob } = await establishedPair();
    for (let i = 0; i < 5; i++) await alice.sessions.encrypt(bob.address, text(`${i}`));
    await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text('skip')));
    const raw = (await bob.storage.get(['session', 'alice', 'phone']))!;
    const body = raw.subarray(2, raw.length - 8);
    const record = readSessionRecord(new ByteReader(body, 'r', body.length));
    expect(encodeSessionRecord(record)).toEqual(body);
    expect(record.sessions[0]!.ratchet.MKSKIPPED.size).toBe(5);
  });
});
