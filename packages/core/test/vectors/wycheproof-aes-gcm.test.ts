/**
 * Wycheproof `aes_gcm_test.json` through each of Deadbolt's providers.
 *
 * Deadbolt's AES-GCM is AES-256 with 96-bit nonces and 128-bit tags only (NIST SP 800-38D
 * §8.2.1; other IV lengths go through GHASH and are where implementations have broken).
 *
 * - `valid` vectors with those parameters: seal gives ciphertext || tag, open the message.
 * - `invalid` vectors with those parameters (modified tags): open fails with `DECRYPT_FAILED`.
 * - every other vector, valid or not, is outside Deadbolt's API and is not skipped: seal and
 *   open must refuse it with `INVALID_ARGUMENT`, on `key` for 128- and 192-bit keys (211
 *   vectors) and on `nonce` for 256-bit keys with IVs other than 96 bits (39 vectors,
 *   including the zero-length IVs of CVE-2017-7822). 250 in all.
 *
 * No `acceptable` vectors. The provider tests are the shared AEAD runner (`wycheproof-aead.ts`).
 */
import { describe, expect, it } from 'vitest';
import { hex } from '../helpers/hex.js';
import { describeAeadVectors, loadAeadVectors } from './wycheproof-aead.js';

const cases = loadAeadVectors('aes_gcm_test.json');
const inApi = cases.filter((t) => t.refusedField === undefined);
const outOfApi = cases.filter((t) => t.refusedField !== undefined);

describe('Wycheproof aes_gcm_test.json', () => {
  it('has the expected vectors: 316, of which 250 use parameters Deadbolt does not support', () => {
    expect(cases.length).toBe(316);
    expect(inApi.filter((t) => t.result === 'valid').length).toBe(39);
    expect(inApi.filter((t) => t.result === 'invalid').length).toBe(27);
    expect(outOfApi.length).toBe(250);
    expect(outOfApi.filter((t) => t.refusedField === 'key').length).toBe(211);
    expect(outOfApi.filter((t) => t.refusedField === 'nonce').length).toBe(39);
    // All tags in the file are 128 bits: the nonce group is only about IV lengths.
    expect(cases.every((t) => hex(t.tag).length === 16)).toBe(true);
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
  });

  describeAeadVectors({
    aead: 'aes256Gcm',
    vectors: cases,
    outOfApi: '128/192-bit keys, IVs other than 96 bits',
    counts: { valid: 39, invalid: 27, outOfApi: 250 },
  });
});
