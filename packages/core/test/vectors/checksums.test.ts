/**
 * Every stored vector file matches its SHA-256 in `SHA256SUMS` (SECURITY.md G47), every
 * vector file is listed there, and the verification really refuses an edited, truncated or
 * unlisted file. The vector tests also verify each file before parsing it
 * (`loadVerifiedJson`), so this file is the folder-wide inventory.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertChecksum, parseSha256Sums, readSha256Sums, readVerifiedVectorFile, VECTORS_DIR } from './checksums.js';

const FOLDER = 'wycheproof';
/** Files in the folder that are documentation, not vectors. */
const NOT_VECTORS = new Set(['README.md', 'LICENSE', 'SHA256SUMS']);

describe('test vector checksums', () => {
  const sums = readSha256Sums(FOLDER);

  it('lists exactly the vector files present, and each matches', () => {
    const present = readdirSync(join(VECTORS_DIR, FOLDER)).filter((f) => !NOT_VECTORS.has(f)).sort();
    expect([...sums.keys()].sort()).toEqual(present);
    expect(present).toEqual([
      'aes_gcm_test.json',
      'chacha20_poly1305_test.json',
      'ed25519_test.json',
      'hkdf_sha256_test.json',
      'hmac_sha256_test.json',
      'mlkem_768_encaps_test.json',
      'mlkem_768_test.json',
      'x25519_test.json',
    ]);
    for (const name of present) expect(() => readVerifiedVectorFile(FOLDER, name)).not.toThrow();
  });

  it('refuses an edited, truncated, extended or unlisted file', () => {
    const name = 'x25519_test.json';
    const original = new Uint8Array(readFileSync(join(VECTORS_DIR, FOLDER, name)));
    expect(() => assertChecksum(sums, name, original)).not.toThrow();
    const edited = original.slice();
    // Flip one digit of the first shared secret: still valid JSON, silently wrong.
    const at = new TextDecoder().decode(original).indexOf('"shared" : "') + 12;
    edited[at] = edited[at] === 0x30 ? 0x31 : 0x30;
    expect(() => assertChecksum(sums, name, edited)).toThrow(/does not match SHA256SUMS/);
    expect(() => assertChecksum(sums, name, original.subarray(0, original.length - 1))).toThrow(/does not match/);
    expect(() => assertChecksum(sums, name, new Uint8Array([...original, 0x0a]))).toThrow(/does not match/);
    expect(() => assertChecksum(sums, 'xchacha20_poly1305_test.json', original)).toThrow(/not listed/);
  });

  it('refuses a malformed SHA256SUMS', () => {
    expect(() => parseSha256Sums('abc  file.json\n')).toThrow(/malformed/);
    const line = `${'0'.repeat(64)}  a.json\n`;
    expect(() => parseSha256Sums(line + line)).toThrow(/twice/);
    expect(parseSha256Sums(`${'a'.repeat(64)} *b.json\n\n`).get('b.json')).toBe('a'.repeat(64));
  });
});
