/**
 * Wycheproof `ed25519_test.json` (RFC 8032 Ed25519 verification) through each of
 * Deadbolt's providers. `valid` signatures verify; `invalid` ones (S >= L, bad encodings of
 * R, truncated or padded signatures, garbage) return `false` and never throw. The file has
 * no `acceptable` vectors; the test asserts that, so a future file that adds some forces a
 * decision here.
 */
import { describe, expect, it } from 'vitest';
import { hex } from '../helpers/hex.js';
import { eachProvider } from '../helpers/providers.js';
import { loadWycheproof, type WycheproofCase } from './checksums.js';

interface EddsaCase extends WycheproofCase {
  readonly msg: string;
  readonly sig: string;
}
interface EddsaGroup {
  readonly publicKey: { readonly curve: string; readonly pk: string };
  readonly tests: readonly EddsaCase[];
}

const file = loadWycheproof<EddsaGroup>('ed25519_test.json');
const cases = file.testGroups.flatMap((g) => {
  expect(g.publicKey.curve).toBe('edwards25519');
  return g.tests.map((t) => ({ ...t, pk: g.publicKey.pk }));
});

describe('Wycheproof ed25519_test.json', () => {
  it('has the expected vectors, none of them acceptable', () => {
    expect(cases.length).toBe(151);
    expect(cases.filter((t) => t.result === 'valid').length).toBe(88);
    expect(cases.filter((t) => t.result === 'invalid').length).toBe(63);
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
  });

  describe.each(eachProvider())('$name provider', (crypto) => {
    it.each(['valid', 'invalid'] as const)('%s vectors verify to %s', async (result) => {
      const failures: string[] = [];
      const subset = cases.filter((t) => t.result === result);
      for (const t of subset) {
        try {
          const ok = await crypto.ed25519Verify(hex(t.pk), hex(t.msg), hex(t.sig));
          if (ok !== (result === 'valid')) failures.push(`tcId ${t.tcId} [${t.flags.join(',')}] ${t.comment ?? ''}: ${ok}`);
        } catch (e) {
          failures.push(`tcId ${t.tcId}: threw ${String(e)} (ed25519Verify must return false, not throw)`);
        }
      }
      expect(failures).toEqual([]);
      expect(subset.length).toBe(result === 'valid' ? 88 : 63);
    });
  });
});
