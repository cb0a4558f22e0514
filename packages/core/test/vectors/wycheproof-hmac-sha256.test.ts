/**
 * Wycheproof `hmac_sha256_test.json` (RFC 2104 HMAC-SHA256) through each of Deadbolt's
 * providers, compared with Deadbolt's constant-time `equalBytes` (SECURITY.md A3).
 *
 * Half the groups use tags truncated to 128 bits. Deadbolt's own MACs are never truncated,
 * but a truncated tag is the leading bytes of the full one (RFC 2104 §5), so the test
 * compares the first tagSize/8 bytes. It also checks that the full 32-byte MAC never
 * `equalBytes`-matches a 16-byte tag, valid or not: lengths are compared first.
 * `valid` tags match; `invalid` ones (modified tags) do not. No `acceptable` vectors.
 */
import { describe, expect, it } from 'vitest';
import { equalBytes } from '../../src/crypto/index.js';
import { hex } from '../helpers/hex.js';
import { eachProvider } from '../helpers/providers.js';
import { loadWycheproof, type WycheproofCase } from './checksums.js';

interface MacCase extends WycheproofCase {
  readonly key: string;
  readonly msg: string;
  readonly tag: string;
}
interface MacGroup {
  readonly tagSize: number;
  readonly tests: readonly MacCase[];
}

const file = loadWycheproof<MacGroup>('hmac_sha256_test.json');
const cases = file.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, tagBytes: g.tagSize / 8 })));

describe('Wycheproof hmac_sha256_test.json', () => {
  it('has the expected vectors', () => {
    expect(cases.length).toBe(174);
    expect(cases.filter((t) => t.result === 'valid').length).toBe(66);
    expect(cases.filter((t) => t.result === 'invalid').length).toBe(108);
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
    expect(cases.filter((t) => t.tagBytes === 16).length).toBe(87);
  });

  describe.each(eachProvider())('$name provider', (crypto) => {
    it('valid tags match and invalid ones do not; a truncated tag never equals the full MAC', () => {
      const failures: string[] = [];
      for (const t of cases) {
        const tag = hex(t.tag);
        const mac = crypto.hmacSha256(hex(t.key), hex(t.msg));
        expect(mac.length).toBe(32);
        const matches = equalBytes(mac.subarray(0, t.tagBytes), tag);
        if (matches !== (t.result === 'valid')) failures.push(`tcId ${t.tcId} (${t.result}): matches=${matches}`);
        if (equalBytes(mac, tag) !== (t.result === 'valid' && t.tagBytes === 32)) failures.push(`tcId ${t.tcId}: full-MAC compare`);
      }
      expect(failures).toEqual([]);
    });
  });
});
