/**
 * The Wycheproof AEAD runner shared by `wycheproof-aes-gcm.test.ts` and
 * `wycheproof-chacha20-poly1305.test.ts`: both files have the same schema
 * (`aead_test_schema.json`) and Deadbolt's two AEADs the same API (256-bit key, 96-bit
 * nonce, 128-bit tag, output ciphertext || tag), so every provider is held to the same
 * three rules:
 *
 * - `valid` vectors inside the API: seal gives ciphertext || tag, open gives the message.
 * - `invalid` vectors inside the API (modified tags): open fails with `DECRYPT_FAILED`.
 * - every vector outside the API, valid or not, is not skipped: seal and open must both
 *   refuse it with `INVALID_ARGUMENT` naming the field Deadbolt checks first (`key`, then
 *   `nonce`).
 *
 * Each test file keeps its own inventory of the vectors (how many, which parameters), so a
 * changed vector file fails there by name.
 */
import { describe, expect, it } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import type { CryptoProvider } from '../../src/crypto/index.js';
import { errorOf } from '../helpers/errors.js';
import { hex, toHex } from '../helpers/hex.js';
import { eachProvider } from '../helpers/providers.js';
import { loadWycheproof, type WycheproofCase } from './checksums.js';

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

/** One AEAD vector, with the field Deadbolt refuses first, or undefined when the vector is inside the API. */
export interface AeadVector extends AeadCase {
  readonly refusedField: 'key' | 'nonce' | undefined;
}

/** The cases of a verified Wycheproof AEAD file, each classified against Deadbolt's API. */
export function loadAeadVectors(name: string): AeadVector[] {
  return loadWycheproof<AeadGroup>(name).testGroups.flatMap((g) =>
    g.tests.map((t) => ({
      ...t,
      refusedField: g.keySize !== 256 ? ('key' as const) : g.ivSize !== 96 || g.tagSize !== 128 ? ('nonce' as const) : undefined,
    })),
  );
}

/** The provider method pair under test: `aes256GcmSeal`/`aes256GcmOpen` or `chacha20Poly1305Seal`/`chacha20Poly1305Open`. */
export type AeadName = 'aes256Gcm' | 'chacha20Poly1305';

/** What {@link describeAeadVectors} runs. */
export interface AeadVectorSuite {
  readonly aead: AeadName;
  readonly vectors: readonly AeadVector[];
  /** What puts a vector outside the API, for the test title. */
  readonly outOfApi: string;
  /** How many vectors each test goes through, so that none can pass by running nothing. */
  readonly counts: { readonly valid: number; readonly invalid: number; readonly outOfApi: number };
}

/** Runs the suite's vectors through its AEAD in every provider (the rules in the module comment). */
export function describeAeadVectors({ aead, vectors, outOfApi, counts }: AeadVectorSuite): void {
  const inApi = vectors.filter((t) => t.refusedField === undefined);
  const refused = vectors.filter((t) => t.refusedField !== undefined);

  describe.each(eachProvider())('$name provider', (crypto: CryptoProvider) => {
    const seal = (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array => crypto[`${aead}Seal`](key, nonce, plaintext, aad);
    const open = (key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array => crypto[`${aead}Open`](key, nonce, ciphertext, aad);

    it('valid vectors: seal gives ciphertext || tag, open gives the message', () => {
      const failures: string[] = [];
      const subset = inApi.filter((c) => c.result === 'valid');
      for (const t of subset) {
        const [key, iv, aad, msg] = [hex(t.key), hex(t.iv), hex(t.aad), hex(t.msg)];
        if (toHex(seal(key, iv, msg, aad)) !== t.ct + t.tag) failures.push(`tcId ${t.tcId}: seal`);
        if (toHex(open(key, iv, hex(t.ct + t.tag), aad)) !== t.msg) failures.push(`tcId ${t.tcId}: open`);
      }
      expect(failures).toEqual([]);
      expect(subset.length).toBe(counts.valid);
    });

    it('invalid vectors: open fails with DECRYPT_FAILED', () => {
      const failures: string[] = [];
      const subset = inApi.filter((c) => c.result === 'invalid');
      for (const t of subset) {
        const e = errorOf(() => open(hex(t.key), hex(t.iv), hex(t.ct + t.tag), hex(t.aad)));
        if (!isDeadboltError(e, 'DECRYPT_FAILED')) failures.push(`tcId ${t.tcId}: ${String(e)}`);
      }
      expect(failures).toEqual([]);
      expect(subset.length).toBe(counts.invalid);
    });

    it(`vectors outside the API (${outOfApi}) are refused by seal and open with INVALID_ARGUMENT`, () => {
      const failures: string[] = [];
      for (const t of refused) {
        const [key, iv, aad] = [hex(t.key), hex(t.iv), hex(t.aad)];
        for (const e of [errorOf(() => seal(key, iv, hex(t.msg), aad)), errorOf(() => open(key, iv, hex(t.ct + t.tag), aad))]) {
          if (!isDeadboltError(e, 'INVALID_ARGUMENT') || e.details.field !== t.refusedField) failures.push(`tcId ${t.tcId}: ${String(e)}`);
        }
      }
      expect(failures).toEqual([]);
      expect(refused.length).toBe(counts.outOfApi);
    });
  });
}
