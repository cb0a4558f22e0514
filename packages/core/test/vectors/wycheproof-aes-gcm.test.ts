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

const file = loadWycheproof<AeadGroup>('aes_gcm_test.json');
const cases = file.testGroups.flatMap((g) =>
  g.tests.map((t) => ({
    ...t,
    // The field Deadbolt refuses first, or undefined when the vector is inside the API.
    refusedField: g.keySize !== 256 ? 'key' : g.ivSize !== 96 || g.tagSize !== 128 ? 'nonce' : undefined,
  })),
);
const inApi = cases.filter((t) => t.refusedField === undefined);
const outOfApi = cases.filter((t) => t.refusedField !== undefined);

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

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

  describe.each([createNodeCryptoProvider(), createWebCryptoProvider(), createNobleCryptoProvider()])('$name provider', (crypto) => {
    it('valid vectors: seal gives ciphertext || tag, open gives the message', () => {
      const failures: string[] = [];
      for (const t of inApi.filter((c) => c.result === 'valid')) {
        const [key, iv, aad, msg] = [hex(t.key), hex(t.iv), hex(t.aad), hex(t.msg)];
        if (toHex(crypto.aes256GcmSeal(key, iv, msg, aad)) !== t.ct + t.tag) failures.push(`tcId ${t.tcId}: seal`);
        if (toHex(crypto.aes256GcmOpen(key, iv, hex(t.ct + t.tag), aad)) !== t.msg) failures.push(`tcId ${t.tcId}: open`);
      }
      expect(failures).toEqual([]);
    });

    it('invalid vectors: open fails with DECRYPT_FAILED', () => {
      const failures: string[] = [];
      for (const t of inApi.filter((c) => c.result === 'invalid')) {
        const e = errorOf(() => crypto.aes256GcmOpen(hex(t.key), hex(t.iv), hex(t.ct + t.tag), hex(t.aad)));
        if (!isDeadboltError(e, 'DECRYPT_FAILED')) failures.push(`tcId ${t.tcId}: ${String(e)}`);
      }
      expect(failures).toEqual([]);
    });

    it('vectors outside the API (128/192-bit keys, IVs other than 96 bits) are refused by seal and open with INVALID_ARGUMENT', () => {
      const failures: string[] = [];
      for (const t of outOfApi) {
        const [key, iv, aad] = [hex(t.key), hex(t.iv), hex(t.aad)];
        for (const e of [
          errorOf(() => crypto.aes256GcmSeal(key, iv, hex(t.msg), aad)),
          errorOf(() => crypto.aes256GcmOpen(key, iv, hex(t.ct + t.tag), aad)),
        ]) {
          if (!isDeadboltError(e, 'INVALID_ARGUMENT') || e.details.field !== t.refusedField) failures.push(`tcId ${t.tcId}: ${String(e)}`);
        }
      }
      expect(failures).toEqual([]);
    });
  });
});
