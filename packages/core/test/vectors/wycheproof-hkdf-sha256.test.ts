/**
 * Wycheproof `hkdf_sha256_test.json` (RFC 5869) through each of Deadbolt's providers.
 * `valid` vectors give the vector's output, including empty salts (an empty salt means
 * HashLen zero bytes, §2.2) and the maximal 255·32 = 8160 bytes; the `invalid` ones ask for
 * 8161 bytes (beyond §2.3's limit) and must be refused with `INVALID_ARGUMENT` on `length`.
 * No `acceptable` vectors.
 */
import { describe, expect, it } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { hex, toHex } from '../helpers/hex.js';
import { eachProvider } from '../helpers/providers.js';
import { wycheproofCases, type WycheproofCase } from './checksums.js';

interface HkdfCase extends WycheproofCase {
  readonly ikm: string;
  readonly salt: string;
  readonly info: string;
  readonly size: number;
  readonly okm: string;
}

const cases = wycheproofCases<{ readonly tests: readonly HkdfCase[] }>('hkdf_sha256_test.json');

describe('Wycheproof hkdf_sha256_test.json', () => {
  it('has the expected vectors', () => {
    expect(cases.length).toBe(86);
    expect(cases.filter((t) => t.result === 'valid').length).toBe(83);
    expect(cases.filter((t) => t.result === 'invalid').length).toBe(3);
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
    expect(cases.filter((t) => t.result === 'invalid').every((t) => t.size > 8160)).toBe(true);
  });

  describe.each(eachProvider())('$name provider', (crypto) => {
    it('valid vectors give the vector output', () => {
      const failures: string[] = [];
      for (const t of cases.filter((c) => c.result === 'valid')) {
        const okm = toHex(crypto.hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size));
        if (okm !== t.okm) failures.push(`tcId ${t.tcId}`);
      }
      expect(failures).toEqual([]);
    });

    it('invalid vectors (output longer than 8160 bytes) are refused with INVALID_ARGUMENT', () => {
      let refused = 0;
      for (const t of cases.filter((c) => c.result === 'invalid')) {
        let error: unknown;
        try {
          crypto.hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size);
        } catch (e) {
          error = e;
        }
        expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field === 'length', `tcId ${t.tcId}`).toBe(true);
        refused++;
      }
      expect(refused).toBe(3);
    });
  });
});
