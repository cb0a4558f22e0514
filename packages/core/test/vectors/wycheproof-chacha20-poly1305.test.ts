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
 * No `acceptable` vectors.
 */
import { describe, expect, it } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { createNobleCryptoProvider, createNodeCryptoProvider, createWebCryptoProvider } from '../../src/crypto/index.js';
import { hex, loadWycheproof, toHex, type WycheproofCase } from './checksums.js';

interface AeadCase extends WycheproofCase {
  readonly key: string;
  readonly iv: string;
  readonly aad: string;
  readonly msg: string;
  readonly ct: string;
  readonly tag: string;
}
interface AeadGroup {
  readonly keySize: number;
  readonly ivSize: number;
  readonly tagSize: number;
  readonly tests: readonly AeadCase[];
}

const file = loadWycheproof<AeadGroup>('chacha20_poly1305_test.json');
const cases = file.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, inApi: g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128 })));
const inApi = cases.filter((t) => t.inApi);
const outOfApi = cases.filter((t) => !t.inApi);

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('Wycheproof chacha20_poly1305_test.json', () => {
  it('has the expected vectors: 325, of which 9 use a nonce Deadbolt does not support', () => {
    expect(cases.length).toBe(325);
    expect(inApi.filter((t) => t.result === 'valid').length).toBe(256);
    expect(inApi.filter((t) => t.result === 'invalid').length).toBe(60);
    expect(outOfApi.length).toBe(9);
    expect(outOfApi.every((t) => t.flags.includes('InvalidNonceSize') && hex(t.iv).length !== 12)).toBe(true);
    expect(cases.filter((t) => t.result === 'acceptable').length).toBe(0);
  });

  describe.each([createNodeCryptoProvider(), createWebCryptoProvider(), createNobleCryptoProvider()])('$name provider', (crypto) => {
    it('valid vectors: seal gives ciphertext || tag, open gives the message', () => {
      const failures: string[] = [];
      for (const t of inApi.filter((c) => c.result === 'valid')) {
        const [key, iv, aad, msg] = [hex(t.key), hex(t.iv), hex(t.aad), hex(t.msg)];
        if (toHex(crypto.chacha20Poly1305Seal(key, iv, msg, aad)) !== t.ct + t.tag) failures.push(`tcId ${t.tcId}: seal`);
        if (toHex(crypto.chacha20Poly1305Open(key, iv, hex(t.ct + t.tag), aad)) !== t.msg) failures.push(`tcId ${t.tcId}: open`);
      }
      expect(failures).toEqual([]);
    });

    it('invalid vectors: open fails with DECRYPT_FAILED', () => {
      const failures: string[] = [];
      for (const t of inApi.filter((c) => c.result === 'invalid')) {
        const e = errorOf(() => crypto.chacha20Poly1305Open(hex(t.key), hex(t.iv), hex(t.ct + t.tag), hex(t.aad)));
        if (!isDeadboltError(e, 'DECRYPT_FAILED')) failures.push(`tcId ${t.tcId}: ${String(e)}`);
      }
      expect(failures).toEqual([]);
    });

    it('vectors outside the API (nonce not 96 bits) are refused by seal and open with INVALID_ARGUMENT', () => {
      let refused = 0;
      for (const t of outOfApi) {
        const [key, iv, aad] = [hex(t.key), hex(t.iv), hex(t.aad)];
        for (const e of [
          errorOf(() => crypto.chacha20Poly1305Seal(key, iv, hex(t.msg), aad)),
          errorOf(() => crypto.chacha20Poly1305Open(key, iv, hex(t.ct + t.tag), aad)),
        ]) {
          expect(isDeadboltError(e, 'INVALID_ARGUMENT') && e.details.field === 'nonce', `tcId ${t.tcId}: ${String(e)}`).toBe(true);
        }
        refused++;
      }
      expect(refused).toBe(9);
    });
  });
});
