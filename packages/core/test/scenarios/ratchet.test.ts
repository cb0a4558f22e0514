/**
 * The Double Ratchet through the session manager (SECURITY.md B12–B14): out-of-order and
 * lost messages, duplicates, the forward-skip limit and the skipped-key cap.
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { createNodeCryptoProvider, decodeRatchetMessage, Limits, type CryptoProvider } from '../../src/index.js';
import { encodeRatchetMessage, encodeRatchetHeader } from '../../src/protocol/ratchet-message.js';
import { createParty, establishedPair, str, takeBundle, text, type Party } from '../helpers/parties.js';
import { expectFailsWithoutMutation } from '../helpers/no-mutation.js';

async function send(from: Party, to: Party, count: number, tag: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(await from.sessions.encrypt(to.address, text(`${tag}${i}`)));
  return out;
}

describe('ordering, loss and duplicates (B12)', () => {
  test('messages delivered in reverse order all decrypt', async () => {
    const { alice, bob } = await establishedPair();
    const wires = await send(alice, bob, 10, 'm');
    const got: string[] = [];
    for (const w of wires.slice().reverse()) got.push(str((await bob.sessions.decrypt(alice.address, w)).plaintext));
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${9 - i}`));
  });

  test('out of order across DH ratchet steps, with some messages lost', async () => {
    const { alice, bob } = await establishedPair();
    const a1 = await send(alice, bob, 3, 'a1-');
    await bob.sessions.decrypt(alice.address, a1[1]!);
    const b1 = await send(bob, alice, 2, 'b1-');
    await alice.sessions.decrypt(bob.address, b1[1]!); // a DH ratchet step for Alice
    const a2 = await send(alice, bob, 3, 'a2-');
    // a2 arrives before the rest of a1; a1[2] is lost forever.
    expect(str((await bob.sessions.decrypt(alice.address, a2[2]!)).plaintext)).toBe('a2-2');
    expect(str((await bob.sessions.decrypt(alice.address, a1[0]!)).plaintext)).toBe('a1-0');
    expect(str((await bob.sessions.decrypt(alice.address, a2[0]!)).plaintext)).toBe('a2-0');
    expect(str((await alice.sessions.decrypt(bob.address, b1[0]!)).plaintext)).toBe('b1-0');
    // The session still works both ways.
    const x = await alice.sessions.encrypt(bob.address, text('still'));
    expect(str((await bob.sessions.decrypt(alice.address, x)).plaintext)).toBe('still');
    const y = await bob.sessions.encrypt(alice.address, text('fine'));
    expect(str((await alice.sessions.decrypt(bob.address, y)).plaintext)).toBe('fine');
  });

  test('a duplicate on the current chain, a duplicate of a skipped message, and an old-chain duplicate are typed duplicates', async () => {
    const { alice, bob } = await establishedPair();
    const w = await send(alice, bob, 3, 'd');
    await bob.sessions.decrypt(alice.address, w[2]!); // skips 0 and 1
    await bob.sessions.decrypt(alice.address, w[0]!); // uses a skipped key
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, w[2]!), 'DUPLICATE_MESSAGE');
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, w[0]!), 'DUPLICATE_MESSAGE');
    // Move both sides to new chains, then replay the old chain's message.
    await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text('r')));
    await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text('s')));
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, w[2]!), 'DUPLICATE_MESSAGE');
    // The skipped key for w[1] survived all of that.
    expect(str((await bob.sessions.decrypt(alice.address, w[1]!)).plaintext)).toBe('d1');
  });

  test('a tampered message fails without changing state, and the genuine one then decrypts', async () => {
    const { alice, bob } = await establishedPair();
    const w = await alice.sessions.encrypt(bob.address, text('genuine'));
    for (const index of [2, 20, 40, 45, w.length - 20, w.length - 1]) {
      const bad = w.slice();
      bad[index] = (bad[index] as number) ^ 0x80;
      const before = await bob.storage.get(['session', 'alice', 'phone']);
      await expect(bob.sessions.decrypt(alice.address, bad)).rejects.toSatisfy((e) => isDeadboltError(e));
      expect(await bob.storage.get(['session', 'alice', 'phone'])).toEqual(before);
    }
    expect(str((await bob.sessions.decrypt(alice.address, w)).plaintext)).toBe('genuine');
  });
});

/** A provider that counts HMAC and X25519 calls, to prove limits are checked before work. */
function countingProvider(): { crypto: CryptoProvider; counts: { hmac: number; x25519: number } } {
  const base = createNodeCryptoProvider();
  const counts = { hmac: 0, x25519: 0 };
  const crypto: CryptoProvider = {
    ...base,
    hmacSha256: (k, d) => {
      counts.hmac++;
      return base.hmacSha256(k, d);
    },
    x25519: (s, p) => {
      counts.x25519++;
      return base.x25519(s, p);
    },
  };
  return { crypto, counts };
}

describe('limits (B13)', () => {
  test('a jump past the forward-skip limit is refused before any key is derived', async () => {
    const { crypto, counts } = countingProvider();
    const { alice, bob } = await establishedPair({ crypto, limits: { maxForwardSkip: 100 } });
    const genuine = decodeRatchetMessage(await alice.sessions.encrypt(bob.address, text('x')));
    // Same chain, n far ahead.
    const far = encodeRatchetMessage(encodeRatchetHeader({ ...genuine.header, n: genuine.header.n + 101 }), genuine.body);
    counts.hmac = 0;
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, far), 'LIMIT_EXCEEDED');
    expect(counts.hmac).toBe(0);
    // A new chain (unknown ratchet key) far ahead: refused before the DH ratchet step.
    const newChain = encodeRatchetMessage(
      encodeRatchetHeader({ dh: (await crypto.x25519GenerateKeyPair()).publicKey, pn: 0, n: 101 }),
      genuine.body,
    );
    counts.hmac = 0;
    counts.x25519 = 0;
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, newChain), 'LIMIT_EXCEEDED');
    expect(counts.hmac).toBe(0);
    expect(counts.x25519).toBe(0);
    // Exactly at the limit is allowed: Bob's Nr is genuine.n (never delivered), and
    // w[99] is numbered genuine.n + 100.
    const w = [];
    for (let i = 0; i < 100; i++) w.push(await alice.sessions.encrypt(bob.address, text(`n${i}`)));
    expect(decodeRatchetMessage(w[99]!).header.n - genuine.header.n).toBe(100);
    expect(str((await bob.sessions.decrypt(alice.address, w[99]!)).plaintext)).toBe('n99');
  });

  test('the default limits are libsignal\'s and cannot be raised', async () => {
    await expect(establishedPair({ limits: { maxForwardSkip: 25_001 } })).rejects.toSatisfy((e) => isDeadboltError(e, 'INVALID_ARGUMENT'));
    await expect(establishedPair({ limits: { maxSkippedKeys: 2_001 } })).rejects.toSatisfy((e) => isDeadboltError(e, 'INVALID_ARGUMENT'));
  });

  test('the stored skipped keys are capped and the oldest are evicted', async () => {
    const { alice, bob } = await establishedPair({ limits: { maxSkippedKeys: 10 } });
    const w = await send(alice, bob, 16, 'k');
    await bob.sessions.decrypt(alice.address, w[15]!); // skips 0..14: only 5..14 are kept
    const record = await bob.storage.get(['session', 'alice', 'phone']);
    // Evicted: 0..4 can no longer be decrypted.
    for (let i = 0; i < 5; i++) {
      await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, w[i]!), 'DUPLICATE_MESSAGE');
    }
    expect(await bob.storage.get(['session', 'alice', 'phone'])).toEqual(record);
    for (let i = 5; i < 15; i++) expect(str((await bob.sessions.decrypt(alice.address, w[i]!)).plaintext)).toBe(`k${i}`);
    // Further skips on a new chain evict the oldest stored ones first.
    const more = await send(alice, bob, 3, 'z');
    await bob.sessions.decrypt(alice.address, more[2]!);
    expect(str((await bob.sessions.decrypt(alice.address, more[0]!)).plaintext)).toBe('z0');
  });

  test('consumed skipped keys are deleted from the stored record (D31)', async () => {
    const { alice, bob } = await establishedPair();
    const w = await send(alice, bob, 3, 'c');
    await bob.sessions.decrypt(alice.address, w[2]!);
    const withSkipped = (await bob.storage.get(['session', 'alice', 'phone']))!.length;
    await bob.sessions.decrypt(alice.address, w[0]!);
    await bob.sessions.decrypt(alice.address, w[1]!);
    const without = (await bob.storage.get(['session', 'alice', 'phone']))!.length;
    // Each stored skipped key is dh(32) + n(4) + mk(32) = 68 bytes.
    expect(withSkipped - without).toBe(2 * 68);
  });
});

describe('review follow-ups', () => {
  test('the largest allowed plaintext round-trips, both as an initial and as a ratchet message (M3)', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const big = new Uint8Array(Limits.maxPlaintext).fill(7);
    const initial = await alice.sessions.encrypt(bob.address, big);
    expect((await bob.sessions.decrypt(alice.address, initial)).plaintext.length).toBe(Limits.maxPlaintext);
    const reply = await bob.sessions.encrypt(alice.address, big);
    expect((await alice.sessions.decrypt(bob.address, reply)).plaintext.length).toBe(Limits.maxPlaintext);
  });

  test('one forged header costs at most one skip budget across all sessions (M4)', async () => {
    const { crypto, counts } = countingProvider();
    const alice = await createParty('alice', 'phone', { crypto, limits: { maxForwardSkip: 1000 } });
    const bob = await createParty('bob', 'laptop', { crypto, limits: { maxForwardSkip: 1000 } });
    // Five sessions between them.
    for (let i = 0; i < 5; i++) {
      await alice.sessions.processBundle(takeBundle(bob, { oneTime: false, pq: 'last-resort' }));
      await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text(`s${i}`)));
      await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text(`r${i}`)));
    }
    const genuine = decodeRatchetMessage(await alice.sessions.encrypt(bob.address, text('g')));
    const forged = encodeRatchetMessage(encodeRatchetHeader({ dh: (await crypto.x25519GenerateKeyPair()).publicKey, pn: 500, n: 500 }), genuine.body);
    counts.hmac = 0;
    await expect(bob.sessions.decrypt(alice.address, forged)).rejects.toSatisfy((e) => isDeadboltError(e));
    // Each chain step is 2 HMACs (plus a handful for KDF_RK and message keys).
    expect(counts.hmac).toBeLessThanOrEqual(2 * 1000 + 50);
  });

  test('skips on a new chain evict the oldest stored keys first (T2)', async () => {
    const { alice, bob } = await establishedPair({ limits: { maxSkippedKeys: 4 } });
    const first = await send(alice, bob, 4, 'f');
    await bob.sessions.decrypt(alice.address, first[3]!); // stores f0, f1, f2
    await alice.sessions.decrypt(bob.address, await bob.sessions.encrypt(alice.address, text('turn')));
    const second = await send(alice, bob, 3, 's');
    await bob.sessions.decrypt(alice.address, second[2]!); // stores s0, s1: f0 is evicted
    await expectFailsWithoutMutation([bob.storage], () => bob.sessions.decrypt(alice.address, first[0]!), 'DUPLICATE_MESSAGE');
    for (const [w, t] of [[first[1], 'f1'], [first[2], 'f2'], [second[0], 's0'], [second[1], 's1']] as const) {
      expect(str((await bob.sessions.decrypt(alice.address, w!)).plaintext)).toBe(t);
    }
  });
});
