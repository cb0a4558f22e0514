/**
 * Wycheproof `mlkem_768_test.json` (FIPS 203 ML-KEM-768 key generation and decapsulation)
 * through each of Deadbolt's providers.
 *
 * Schema (`mlkem_test_schema.json`): `seed` is the 64-byte d || z of ML-KEM.KeyGen (§7.1),
 * `ek` the resulting encapsulation key, `c` a ciphertext and `K` the shared secret that
 * decapsulating `c` gives (the real one, or the implicit-rejection K̄ for a bad `c`).
 * Deadbolt's key generation draws d || z from the provider's random source, so the test
 * injects `seed` through `unsafeRandomSource` (SECURITY.md A6) and checks the public key.
 *
 * - `valid` (153): key generation reproduces `ek`, and decapsulating `c` gives `K`.
 * - `invalid` "Private key too short/long" (20): the seed is not 64 bytes. Deadbolt's API has
 *   no seed argument; the only way such a seed can arrive is a random source returning the
 *   wrong length, which every provider refuses with `INVALID_ARGUMENT` on `unsafeRandomSource`.
 * - `invalid` "Ciphertext too short/long" (20): decapsulation refuses the ciphertext with
 *   `INVALID_ARGUMENT` on `ciphertext` (the FIPS 203 §7.3 type check).
 *
 * No `acceptable` vectors.
 */
import { describe, expect, it } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { errorOf } from '../helpers/errors.js';
import { hex, toHex } from '../helpers/hex.js';
import { CRYPTO_PROVIDERS } from '../helpers/providers.js';
import { wycheproofCases, type WycheproofCase } from './checksums.js';

interface MlKemCase extends WycheproofCase {
  readonly seed: string;
  readonly ek?: string;
  readonly c: string;
  readonly K: string;
}
interface MlKemGroup {
  readonly parameterSet: string;
  readonly tests: readonly MlKemCase[];
}

const cases = wycheproofCases<MlKemGroup>('mlkem_768_test.json', (g) => expect(g.parameterSet).toBe('ML-KEM-768'));
const badSeed = cases.filter((t) => t.result === 'invalid' && hex(t.seed).length !== 64);
const badCiphertext = cases.filter((t) => t.result === 'invalid' && hex(t.seed).length === 64);

describe('Wycheproof mlkem_768_test.json', () => {
  it('has the expected vectors', () => {
    expect(cases.length).toBe(193);
    expect(cases.filter((t) => t.result === 'valid').length).toBe(153);
    expect(badSeed.length).toBe(20);
    expect(badCiphertext.length).toBe(20);
    expect(badCiphertext.every((t) => hex(t.c).length !== 1088)).toBe(true);
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
  });

  describe.each(CRYPTO_PROVIDERS)('%s provider', (_name, create) => {
    it('valid vectors: key generation from the seed gives ek, and decapsulation gives K', () => {
      const failures: string[] = [];
      for (const t of cases.filter((c) => c.result === 'valid')) {
        const crypto = create({ unsafeRandomSource: () => hex(t.seed) });
        const { publicKey, secretKey } = crypto.mlkem768GenerateKeyPair();
        if (t.ek !== undefined && toHex(publicKey) !== t.ek) failures.push(`tcId ${t.tcId}: ek`);
        if (toHex(crypto.mlkem768Decapsulate(secretKey, hex(t.c))) !== t.K) failures.push(`tcId ${t.tcId}: K`);
      }
      expect(failures).toEqual([]);
    });

    it('invalid vectors: a seed of the wrong length is refused (INVALID_ARGUMENT on unsafeRandomSource)', () => {
      for (const t of badSeed) {
        const crypto = create({ unsafeRandomSource: () => hex(t.seed) });
        const e = errorOf(() => crypto.mlkem768GenerateKeyPair());
        expect(isDeadboltError(e, 'INVALID_ARGUMENT') && e.details.field === 'unsafeRandomSource', `tcId ${t.tcId}`).toBe(true);
      }
    });

    it('invalid vectors: a ciphertext of the wrong length is refused (INVALID_ARGUMENT on ciphertext)', () => {
      for (const t of badCiphertext) {
        const crypto = create({ unsafeRandomSource: () => hex(t.seed) });
        const { publicKey, secretKey } = crypto.mlkem768GenerateKeyPair();
        if (t.ek !== undefined) expect(toHex(publicKey)).toBe(t.ek);
        const e = errorOf(() => crypto.mlkem768Decapsulate(secretKey, hex(t.c)));
        expect(isDeadboltError(e, 'INVALID_ARGUMENT') && e.details.field === 'ciphertext', `tcId ${t.tcId}`).toBe(true);
      }
    });
  });
});
