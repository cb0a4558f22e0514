/**
 * Wycheproof `mlkem_768_encaps_test.json` (FIPS 203 ML-KEM-768 encapsulation and the §7.2
 * encapsulation-key checks) through each of Deadbolt's providers.
 *
 * Schema (`mlkem_encaps_test_schema.json`): `ek` the encapsulation key, `m` the 32 random
 * bytes of ML-KEM.Encaps (§7.2), `c` and `K` the expected ciphertext and shared secret.
 * Deadbolt's encapsulation draws m from the provider's random source, so the test injects
 * `m` through `unsafeRandomSource` (SECURITY.md A6).
 *
 * - `valid` (133): the ciphertext and shared secret are the vector's.
 * - `invalid` (132): `mlkem768Encapsulate` throws `ProtocolError` `INVALID_KEY`, as its
 *   contract says, both for keys failing the modulus check (coefficients >= q: 12 CCTV
 *   `ModulusOverflow` vectors and 100 "Public key not reduced") and for keys of the wrong
 *   length (20, the §7.2 type check).
 *
 * No `acceptable` vectors.
 */
import { describe, expect, it } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { hex, toHex } from '../helpers/hex.js';
import { CRYPTO_PROVIDERS } from '../helpers/providers.js';
import { wycheproofCases, type WycheproofCase } from './checksums.js';

interface EncapsCase extends WycheproofCase {
  readonly ek: string;
  readonly m: string;
  readonly c: string;
  readonly K: string;
}
interface EncapsGroup {
  readonly parameterSet: string;
  readonly tests: readonly EncapsCase[];
}

const cases = wycheproofCases<EncapsGroup>('mlkem_768_encaps_test.json', (g) => expect(g.parameterSet).toBe('ML-KEM-768'));
const invalid = cases.filter((t) => t.result === 'invalid');

describe('Wycheproof mlkem_768_encaps_test.json', () => {
  it('has the expected vectors', () => {
    expect(cases.length).toBe(265);
    expect(cases.filter((t) => t.result === 'valid').length).toBe(133);
    expect(invalid.length).toBe(132);
    expect(invalid.filter((t) => hex(t.ek).length === 1184).length).toBe(112); // modulus check
    expect(invalid.filter((t) => t.flags.includes('ModulusOverflow')).length).toBe(12);
    expect(invalid.filter((t) => hex(t.ek).length !== 1184).length).toBe(20); // type (length) check
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
  });

  describe.each(CRYPTO_PROVIDERS)('%s provider', (_name, create) => {
    it('valid vectors: encapsulation with the vector randomness gives c and K', () => {
      const failures: string[] = [];
      for (const t of cases.filter((c) => c.result === 'valid')) {
        const crypto = create({ unsafeRandomSource: () => hex(t.m) });
        const { ciphertext, sharedSecret } = crypto.mlkem768Encapsulate(hex(t.ek));
        if (toHex(ciphertext) !== t.c || toHex(sharedSecret) !== t.K) failures.push(`tcId ${t.tcId}`);
      }
      expect(failures).toEqual([]);
    });

    it('invalid vectors: keys failing the modulus or length check throw INVALID_KEY', () => {
      const failures: string[] = [];
      for (const t of invalid) {
        const crypto = create({ unsafeRandomSource: () => hex(t.m) });
        try {
          crypto.mlkem768Encapsulate(hex(t.ek));
          failures.push(`tcId ${t.tcId}: accepted`);
        } catch (e) {
          if (!isDeadboltError(e, 'INVALID_KEY') || e.kind !== 'protocol') failures.push(`tcId ${t.tcId}: ${String(e)}`);
        }
      }
      expect(failures).toEqual([]);
    });
  });
});
