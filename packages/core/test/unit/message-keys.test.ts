/**
 * Key commitment and domain separation (SECURITY.md A3, A4, A5).
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { Label } from '../../src/index.js';
import { deriveMessageKeys, openCommitted, sealCommitted } from '../../src/protocol/message-keys.js';
import { nobleCrypto, nodeCrypto } from '../helpers/parties.js';

const crypto = nodeCrypto;
const ad = new Uint8Array([1, 2, 3]);
const plaintext = new TextEncoder().encode('attack at dawn');

describe('key-committing encryption (A5)', () => {
  test('round trip', () => {
    const keys = deriveMessageKeys(crypto, crypto.randomBytes(32), Label.pairwiseMessageKeys);
    expect(openCommitted(crypto, keys, sealCommitted(crypto, keys, plaintext, ad), ad)).toEqual(plaintext);
  });

  test('a body whose AEAD part is valid under a second key still opens under the first key only', () => {
    // The invisible-salamanders attacker's goal: one body, valid under two keys. Give the
    // attacker the strongest position: a body whose ChaCha20-Poly1305 part verifies
    // under key 2 but whose commitment is key 1's.
    const k1 = deriveMessageKeys(crypto, crypto.randomBytes(32), Label.pairwiseMessageKeys);
    const k2 = deriveMessageKeys(crypto, crypto.randomBytes(32), Label.pairwiseMessageKeys);
    const aeadUnderK2 = crypto.chacha20Poly1305Seal(k2.key, k2.nonce, plaintext, ad);
    expect(crypto.chacha20Poly1305Open(k2.key, k2.nonce, aeadUnderK2, ad)).toEqual(plaintext); // the AEAD alone accepts it
    const body = new Uint8Array(32 + aeadUnderK2.length);
    body.set(k1.commitment);
    body.set(aeadUnderK2, 32);
    expect(() => openCommitted(crypto, k2, body, ad)).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
    expect(() => openCommitted(crypto, k1, body, ad)).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
  });

  test('commitments of 0, 1, 15, 31 bytes never match (A3)', () => {
    const keys = deriveMessageKeys(crypto, crypto.randomBytes(32), Label.pairwiseMessageKeys);
    const body = sealCommitted(crypto, keys, plaintext, ad);
    for (const n of [0, 1, 15, 31, 47]) {
      expect(() => openCommitted(crypto, keys, body.subarray(0, n), ad)).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
    }
  });

  test('every failure is the same opaque error', () => {
    const keys = deriveMessageKeys(crypto, crypto.randomBytes(32), Label.pairwiseMessageKeys);
    const body = sealCommitted(crypto, keys, plaintext, ad);
    const errors: unknown[] = [];
    for (const i of [0, 31, 32, body.length - 1]) {
      const bad = body.slice();
      bad[i] = (bad[i] as number) ^ 1;
      try {
        openCommitted(crypto, keys, bad, ad);
      } catch (e) {
        errors.push(e);
      }
    }
    expect(errors).toHaveLength(4);
    for (const e of errors) {
      expect(isDeadboltError(e, 'DECRYPT_FAILED')).toBe(true);
      expect((e as Error).message).toBe((errors[0] as Error).message);
      expect((e as { details?: unknown }).details).toBeUndefined();
    }
  });
});

describe('domain separation (A4)', () => {
  const purposes = [
    Label.pairwiseMessageKeys,
    Label.groupMessageKeys,
    Label.storageKeys,
    Label.attachmentKeys,
    Label.frankingKeys,
    Label.relayAuth,
  ];

  test('every label is distinct', () => {
    const all = Object.values(Label);
    expect(new Set(all).size).toBe(all.length);
  });

  test('a key derived for one purpose opens nothing made for another', () => {
    const mk = crypto.randomBytes(32);
    for (const made of purposes) {
      const body = sealCommitted(crypto, deriveMessageKeys(crypto, mk, made), plaintext, ad);
      for (const used of purposes) {
        const open = (): Uint8Array => openCommitted(crypto, deriveMessageKeys(crypto, mk, used), body, ad);
        if (used === made) expect(open()).toEqual(plaintext);
        else expect(open).toThrow(expect.objectContaining({ code: 'DECRYPT_FAILED' }));
      }
    }
  });

  test('providers derive identical message keys', () => {
    const mk = crypto.randomBytes(32);
    expect(deriveMessageKeys(nobleCrypto, mk, Label.pairwiseMessageKeys)).toEqual(deriveMessageKeys(nodeCrypto, mk, Label.pairwiseMessageKeys));
  });
});
