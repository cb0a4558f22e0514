import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { pad, paddedLength, unpad } from '../../src/index.js';

describe('padding (protocol §6.2)', () => {
  test('small messages share the 256-byte bucket', () => {
    for (const n of [0, 1, 100, 255]) expect(pad(new Uint8Array(n)).length).toBe(256);
  });

  test('Padmé buckets: overhead at most 12% and lengths a multiple of the bucket step', () => {
    for (let n = 256; n < 300_000 && n <= 262_144; n = Math.floor(n * 1.07) + 1) {
      const p = paddedLength(n);
      expect(p).toBeGreaterThan(n);
      expect((p - n - 1) / (n + 1)).toBeLessThanOrEqual(0.12);
    }
    expect(paddedLength(1024)).toBe(1088);
  });

  test('round trip keeps trailing zeros and 0x80 bytes of the plaintext', () => {
    for (const m of [new Uint8Array([0, 0, 0]), new Uint8Array([0x80]), new Uint8Array([1, 0x80, 0])]) {
      expect(unpad(pad(m))).toEqual(m);
    }
  });

  test('a padded block without a marker is a decode error', () => {
    expect(() => unpad(new Uint8Array(256))).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
    const bad = pad(new Uint8Array([1]));
    bad[1] = 0x7f;
    expect(() => unpad(bad)).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
  });

  test('plaintexts over the limit are a usage error', () => {
    let caught: unknown;
    try {
      pad(new Uint8Array(256 * 1024 + 1));
    } catch (e) {
      caught = e;
    }
    expect(isDeadboltError(caught, 'INVALID_ARGUMENT')).toBe(true);
  });
});
