/**
 * Wycheproof `x25519_test.json` (RFC 7748 X25519) through each of Deadbolt's providers.
 *
 * Deadbolt's decision on the `acceptable` vectors (SECURITY.md A2), by Wycheproof flag:
 *
 * - `LowOrderPublic`, `SmallPublicKey`, `ZeroSharedSecret`: **refused** (`INVALID_KEY`). A
 *   low-order public key forces the all-zero shared secret whatever our secret key is, so it
 *   contributes nothing and lets a peer fix the output (RFC 7748 §6.1 recommends the check;
 *   SECURITY.md A2 requires it).
 * - `NonCanonicalPublic` (u >= p, or the unused top bit set): **refused** (`INVALID_KEY`).
 *   RFC 7748 §5 says to mask the top bit and reduce u, and §7 recommends accepting; but
 *   honest keys are never encoded so, several encodings of one key make "is this the same
 *   key?" ambiguous, and the three underlying libraries are exactly where implementations
 *   used to differ. SECURITY.md A2 refuses them.
 * - everything else that is `acceptable` (`Twist`, `EdgeCaseShared`, `EdgeCaseMultiplication`,
 *   canonical `SpecialPublicKey`, a `Ktv` on the twist): **accepted**, and the shared secret
 *   must equal the vector's. X25519 is defined on the twist (RFC 7748 §5) and Curve25519's
 *   twist is secure, so such a key leaks nothing; refusing would cost a square root per key.
 */
import { describe, expect, it } from 'vitest';
import { isDeadboltError, type X25519PublicKey, type X25519SecretKey } from '@deadbolt/spec';
import { hex, toHex } from '../helpers/hex.js';
import { eachProvider } from '../helpers/providers.js';
import { wycheproofCases, type WycheproofCase } from './checksums.js';

interface XdhCase extends WycheproofCase {
  readonly public: string;
  readonly private: string;
  readonly shared: string;
}
interface XdhGroup {
  readonly curve: string;
  readonly tests: readonly XdhCase[];
}

const cases = wycheproofCases<XdhGroup>('x25519_test.json', (g) => expect(g.curve).toBe('curve25519'));

/** The flags on which Deadbolt refuses an `acceptable` vector (see the module comment). */
const REFUSED_FLAGS = new Set(['LowOrderPublic', 'SmallPublicKey', 'ZeroSharedSecret', 'NonCanonicalPublic']);

function deadboltAccepts(t: XdhCase): boolean {
  if (t.result === 'valid') return true;
  if (t.result === 'invalid') return false;
  return !t.flags.some((f) => REFUSED_FLAGS.has(f));
}

describe('Wycheproof x25519_test.json', () => {
  it('has the expected vectors, and Deadbolt accepts every valid one', () => {
    expect(cases.length).toBe(518);
    const count = (pred: (t: XdhCase) => boolean): number => cases.filter(pred).length;
    expect(count((t) => t.result === 'valid')).toBe(264);
    expect(count((t) => t.result === 'invalid')).toBe(0);
    expect(count((t) => t.result === 'acceptable')).toBe(254);
    expect(count((t) => t.result === 'acceptable' && deadboltAccepts(t))).toBe(210);
    expect(count((t) => t.result === 'acceptable' && !deadboltAccepts(t))).toBe(44);
    // Every refused vector is one whose shared secret is zero or whose key is non-canonical.
    for (const t of cases.filter((c) => !deadboltAccepts(c))) {
      const key = hex(t.public);
      const nonCanonical = (key[31]! & 0x80) !== 0 || t.flags.includes('NonCanonicalPublic');
      expect(nonCanonical || t.shared === '00'.repeat(32), `tcId ${t.tcId}`).toBe(true);
    }
    // No vector Deadbolt accepts has a zero shared secret.
    expect(count((t) => deadboltAccepts(t) && t.shared === '00'.repeat(32))).toBe(0);
  });

  describe.each(eachProvider())('$name provider', (crypto) => {
    it.each(['valid', 'acceptable'] as const)('%s vectors: accepted ones give the vector shared secret, refused ones INVALID_KEY', async (result) => {
      const failures: string[] = [];
      let accepted = 0;
      let refused = 0;
      for (const t of cases.filter((c) => c.result === result)) {
        const run = crypto.x25519(hex(t.private) as X25519SecretKey, hex(t.public) as X25519PublicKey);
        if (deadboltAccepts(t)) {
          try {
            const shared = toHex(await run);
            if (shared !== t.shared) failures.push(`tcId ${t.tcId}: wrong shared secret`);
            accepted++;
          } catch (e) {
            failures.push(`tcId ${t.tcId}: refused (${String(e)}) but Deadbolt's policy accepts it`);
          }
        } else {
          try {
            await run;
            failures.push(`tcId ${t.tcId} [${t.flags.join(',')}]: accepted but Deadbolt's policy refuses it`);
          } catch (e) {
            if (!isDeadboltError(e, 'INVALID_KEY') || e.details.what !== 'x25519 public key') {
              failures.push(`tcId ${t.tcId}: wrong error ${String(e)}`);
            }
            refused++;
          }
        }
      }
      expect(failures).toEqual([]);
      expect([accepted, refused]).toEqual(result === 'valid' ? [264, 0] : [210, 44]);
    });
  });
});
