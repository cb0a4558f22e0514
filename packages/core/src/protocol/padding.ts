/**
 * Plaintext padding to length buckets (docs/protocol.md §6.2), so ciphertext lengths reveal
 * little about message lengths.
 *
 * `padded = plaintext | 0x80 | 0x00 * k`, with the total length `bucket(len + 1)`:
 * 256 bytes for anything that fits, above that Padmé (Nikitin et al., "Reducing Metadata
 * Leakage from Encrypted Files and Communication with PURBs", PETS 2019, §4), which leaks
 * O(log log n) bits of the length at most about 12% overhead.
 *
 * @module
 */
import { CodecError, UsageError } from '@deadbolt/spec';
import { Limits } from './constants.js';

/** The smallest bucket. */
export const MIN_PADDED_LENGTH = 256;

/** The padded length for content of `length` bytes (marker byte included). */
export function paddedLength(length: number): number {
  const l = length + 1;
  if (l <= MIN_PADDED_LENGTH) return MIN_PADDED_LENGTH;
  const e = Math.floor(Math.log2(l));
  const s = Math.floor(Math.log2(e)) + 1;
  const mask = 2 ** (e - s) - 1;
  // (l + mask) & ~mask, written without 32-bit bit operators
  return Math.ceil(l / (mask + 1)) * (mask + 1);
}

/** Pads a plaintext (ISO/IEC 7816-4 marker, then zeros) to its bucket. */
export function pad(plaintext: Uint8Array): Uint8Array {
  if (plaintext.length > Limits.maxPlaintext) {
    throw new UsageError('INVALID_ARGUMENT', {
      message: `plaintext larger than ${Limits.maxPlaintext} bytes`,
      details: { field: 'plaintext', expected: `at most ${Limits.maxPlaintext} bytes` },
    });
  }
  const out = new Uint8Array(paddedLength(plaintext.length));
  out.set(plaintext);
  out[plaintext.length] = 0x80;
  return out;
}

/** Removes padding. Throws `CodecError` if there is no 0x80 marker after the zeros. */
export function unpad(padded: Uint8Array): Uint8Array {
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  if (i < 0 || padded[i] !== 0x80) {
    throw new CodecError({ structure: 'PaddedPlaintext', field: 'marker', offset: Math.max(i, 0), reason: 'missing padding marker' });
  }
  return padded.slice(0, i);
}
