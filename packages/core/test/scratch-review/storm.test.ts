import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { createNodeCryptoProvider, type CryptoProvider } from '../../src/index.js';
import { encodeRatchetHeader, encodeRatchetMessage } from '../../src/protocol/ratchet-message.js';
import { createParty, takeBundle, text } from '../helpers/parties.js';

function counting(): { crypto: CryptoProvider; c: { hmac: number } } {
  const base = createNodeCryptoProvider();
  const c = { hmac: 0 };
  return { c, crypto: { ...base, hmacSha256: (k, d) => { c.hmac++; return base.hmacSha256(k, d); } } };
}

describe('storm', () => {
  test('F8: one forged 94-byte ratchet message costs 5 x (25,000 + 25,000) chain steps before any authentication', async () => {
    const { crypto, c } = counting();
    const alice = await createParty('alice', 'phone', { crypto, oneTime: 6, pqOneTime: 6 });
    const bob = await createParty('bob', 'laptop', { crypto, oneTime: 6, pqOneTime: 6 });
    for (let i = 0; i < 5; i++) {
      await alice.sessions.processBundle(takeBundle(bob));
      await bob.sessions.decrypt(alice.address, await alice.sessions.encrypt(bob.address, text(`s${i}`)));
    }
    const dh = (await crypto.x25519GenerateKeyPair()).publicKey;
    const forged = encodeRatchetMessage(encodeRatchetHeader({ dh, pn: 1 + 25_000, n: 25_000 }), new Uint8Array(48));
    c.hmac = 0;
    const t0 = performance.now();
    await expect(bob.sessions.decrypt(alice.address, forged)).rejects.toSatisfy((e) => isDeadboltError(e, 'DECRYPT_FAILED'));
    const ms = performance.now() - t0;
    console.log(`forged message: ${c.hmac} HMAC calls, ${ms.toFixed(0)} ms`);
    expect(c.hmac).toBeGreaterThanOrEqual(5 * 2 * 50_000);
  });
});
