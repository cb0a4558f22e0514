/**
 * Simultaneous initiation (SECURITY.md B15, docs/protocol.md §7.3): both devices start a
 * session at once; with loss, repeats and reordering they converge on one session.
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { openRecord, RecordType } from '../../src/session/record-envelope.js';
import { readSessionRecord } from '../../src/session/session-state.js';
import { toHex } from '../../src/index.js';
import { createParty, nodeCrypto, str, takeBundle, text, type Party } from '../helpers/parties.js';

async function activeBaseKey(owner: Party, peer: Party): Promise<string> {
  const key = ['session', peer.address.userId, peer.address.deviceId];
  const bytes = await owner.storage.get(key);
  const record = openRecord(nodeCrypto, key, RecordType.SESSION, bytes!, readSessionRecord);
  return toHex(record.sessions[0]!.baseKey);
}

/** A deterministic PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Packet {
  from: Party;
  to: Party;
  wire: Uint8Array;
  label: string;
}

describe('simultaneous initiation (B15)', () => {
  test('both start at once, clean delivery: they converge on one session', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    await bob.sessions.processBundle(takeBundle(alice));
    const a = await alice.sessions.encrypt(bob.address, text('a'));
    const b = await bob.sessions.encrypt(alice.address, text('b'));
    expect(str((await bob.sessions.decrypt(alice.address, a)).plaintext)).toBe('a');
    expect(str((await alice.sessions.decrypt(bob.address, b)).plaintext)).toBe('b');
    expect(await activeBaseKey(alice, bob)).toBe(await activeBaseKey(bob, alice));
    const x = await bob.sessions.encrypt(alice.address, text('x'));
    expect(str((await alice.sessions.decrypt(bob.address, x)).plaintext)).toBe('x');
    expect(await activeBaseKey(alice, bob)).toBe(await activeBaseKey(bob, alice));
  });

  test.each([1, 2, 3, 4, 5, 6])('with loss, repeats and reordering (seed %i), every later message arrives and both agree', async (seed) => {
    const rand = prng(seed);
    const alice = await createParty('alice', 'phone', { oneTime: 5, pqOneTime: 5 });
    const bob = await createParty('bob', 'laptop', { oneTime: 5, pqOneTime: 5 });
    await alice.sessions.processBundle(takeBundle(bob));
    await bob.sessions.processBundle(takeBundle(alice));

    let counter = 0;
    const delivered = new Set<string>();
    const deliver = async (packets: Packet[], lossy: boolean): Promise<void> => {
      const queue: Packet[] = [];
      for (const p of packets) {
        if (lossy && rand() < 0.3) continue; // lost
        queue.push(p);
        if (lossy && rand() < 0.3) queue.push(p); // repeated
      }
      for (let i = queue.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [queue[i], queue[j]] = [queue[j]!, queue[i]!];
      }
      for (const p of queue) {
        try {
          const got = await p.to.sessions.decrypt(p.from.address, p.wire);
          expect(str(got.plaintext)).toBe(p.label);
          expect(delivered.has(p.label)).toBe(false); // each message once
          delivered.add(p.label);
        } catch (e) {
          expect(isDeadboltError(e, 'DUPLICATE_MESSAGE')).toBe(true);
        }
      }
    };
    const round = async (lossy: boolean): Promise<string[]> => {
      const packets: Packet[] = [];
      for (const [from, to] of [[alice, bob], [bob, alice]] as const) {
        const n = 1 + Math.floor(rand() * 3);
        for (let i = 0; i < n; i++) {
          const label = `${from.address.userId}-${counter++}`;
          packets.push({ from, to, wire: await from.sessions.encrypt(to.address, text(label)), label });
        }
      }
      await deliver(packets, lossy);
      return packets.map((p) => p.label);
    };

    for (let r = 0; r < 4; r++) await round(true);
    // Then a clean network: two rounds to settle, then every message must arrive.
    await round(false);
    await round(false);
    expect(await activeBaseKey(alice, bob)).toBe(await activeBaseKey(bob, alice));
    const last = await round(false);
    for (const label of last) expect(delivered.has(label)).toBe(true);
    expect(await activeBaseKey(alice, bob)).toBe(await activeBaseKey(bob, alice));
  });
});

describe('delayed initial messages (review M2)', () => {
  test('an initial message held back until after the other session is confirmed does not split the pair', async () => {
    const alice = await createParty('alice', 'phone'); // 'alice' sorts before 'bob'
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    await bob.sessions.processBundle(takeBundle(alice));
    const a1 = await alice.sessions.encrypt(bob.address, text('a1'));
    const b1 = await bob.sessions.encrypt(alice.address, text('b1')); // the relay holds this back
    await bob.sessions.decrypt(alice.address, a1);
    await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text('b2')));
    expect(str((await alice.sessions.decrypt(bob.address, b1)).plaintext)).toBe('b1');
    expect(await activeBaseKey(alice, bob)).toBe(await activeBaseKey(bob, alice));
    for (let i = 0; i < 3; i++) {
      // Concurrent sends each round: the preference is deterministic, so no flip-flop.
      const x = await alice.sessions.encrypt(bob.address, text(`x${i}`));
      const y = await bob.sessions.encrypt(alice.address, text(`y${i}`));
      expect(str((await bob.sessions.decrypt(alice.address, x)).plaintext)).toBe(`x${i}`);
      expect(str((await alice.sessions.decrypt(bob.address, y)).plaintext)).toBe(`y${i}`);
      expect(await activeBaseKey(alice, bob)).toBe(await activeBaseKey(bob, alice));
    }
  });

  test('with one session kept per device, simultaneous initiation still ends working both ways', async () => {
    const limits = { maxSessionsPerDevice: 1 };
    const alice = await createParty('alice', 'phone', { limits });
    const bob = await createParty('bob', 'laptop', { limits });
    await alice.sessions.processBundle(takeBundle(bob));
    await bob.sessions.processBundle(takeBundle(alice));
    const a1 = await alice.sessions.encrypt(bob.address, text('a1'));
    await bob.sessions.decrypt(alice.address, a1); // Bob drops his own session for Alice's
    const b = await bob.sessions.encrypt(alice.address, text('b'));
    expect(str((await alice.sessions.decrypt(bob.address, b)).plaintext)).toBe('b');
    const a = await alice.sessions.encrypt(bob.address, text('a'));
    expect(str((await bob.sessions.decrypt(alice.address, a)).plaintext)).toBe('a');
  });
});
