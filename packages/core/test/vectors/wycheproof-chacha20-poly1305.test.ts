/**
 * Wycheproof `chacha20_poly1305_test.json` (RFC 8439) through each of Deadbolt's providers.
 *
 * - `valid` vectors: sealing gives the vector's ciphertext || tag, and opening it gives the
 *   message back.
 * - `invalid` vectors with Deadbolt's parameters (modified tags): opening fails with
 *   `DECRYPT_FAILED`.
 * - vectors outside Deadbolt's API (`InvalidNonceSize`: nonces of 0-32 bytes other than 12)
 *   are not skipped: both seal and open must refuse them with `INVALID_ARGUMENT` on `nonce`,
 *   and the test counts them (9).
 *
 * No `acceptable` vectors. The provider tests are the shared AEAD runner (`wycheproof-aead.ts`).
 */
import { describe, expect, it } from 'vitest';
import { hex } from '../helpers/hex.js';
import { describeAeadVectors, loadAeadVectors } from './wycheproof-aead.js';

const cases = loadAeadVectors('chacha20_poly1305_test.json');
const inApi = cases.filter((t) => t.refusedField === undefined);
const outOfApi = cases.filter((t) => t.refusedField !== undefined);

describe('Wycheproof chacha20_poly1305_test.json', () => {
  it('has the expected vectors: 325, of which 9 use a nonce Deadbolt does not support', () => {
    expect(cases.length).toBe(325);
    expect(inApi.filter((t) => t.result === 'valid').length).toBe(256);
    expect(inApi.filter((t) => t.result === 'invalid').length).toBe(60);
    expect(outOfApi.length).toBe(9);
    expect(outOfApi.every((t) => t.flags.includes('InvalidNonceSize') && hex(t.iv).length !== 12 && t.refusedField === 'nonce')).toBe(true);
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
  });

  describeAeadVectors({
    aead: 'chacha20Poly1305',
    vectors: cases,
    outOfApi: 'nonce not 96 bits',
    counts: { valid: 256, invalid: 60, outOfApi: 9 },
  });
});
