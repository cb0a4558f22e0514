/**
 * Byte helpers for tests.
 *
 * Deep equality (`toEqual`) walks a typed array element by element through a generic
 * comparator and, on failure, tries to print both arrays: far too slow and too noisy for
 * MiB values. These helpers compare with a plain loop and report only the first
 * difference. They do not import a test runner, so any runner can use them.
 *
 * @module
 */

function describeBytes(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength})`;
  return typeof value;
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Asserts that `actual` is a `Uint8Array` holding exactly the bytes of `expected`,
 * comparing with a byte loop. On failure it throws an `Error` naming the first differing
 * index (or the lengths), never the whole arrays.
 *
 * Only the bytes each view covers are compared: a `subarray` equals a compact copy of
 * its window.
 *
 * @param actual - the bytes under test (`undefined` and `null` fail with a clear message)
 * @param expected - the bytes wanted
 * @param label - what is being compared, for the failure message
 *
 * @example
 * ```ts
 * import { expectBytesEqual, patternBytes } from '@deadbolt/test-kit';
 *
 * const big = patternBytes(1024 * 1024, 7);
 * await storage.batch([{ type: 'put', key: ['big'], value: big }]);
 * expectBytesEqual(await storage.get(['big']), big, "get(['big'])");
 * ```
 */
export function expectBytesEqual(
  actual: Uint8Array | null | undefined,
  expected: Uint8Array,
  label = 'bytes',
): asserts actual is Uint8Array {
  if (!(actual instanceof Uint8Array)) {
    throw new Error(`${label}: expected a Uint8Array of ${expected.length} bytes, got ${describeBytes(actual)}`);
  }
  if (actual.length !== expected.length) {
    throw new Error(`${label}: expected ${expected.length} bytes, got ${actual.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      throw new Error(
        `${label}: bytes differ at index ${i} of ${expected.length}: ` +
          `${hex(actual[i] as number)} !== ${hex(expected[i] as number)}`,
      );
    }
  }
}

/**
 * Deterministic, non-repeating-looking test bytes: `length` bytes derived from `seed` by
 * a small xorshift generator. Different seeds give different contents, so a test can tell
 * two large values apart and detect a truncated, shifted or mixed-up copy. Not random and
 * not for key material.
 *
 * @param length - how many bytes
 * @param seed - any 32-bit integer; the same seed always gives the same bytes
 *
 * @example
 * ```ts
 * const a = patternBytes(16, 1);
 * const b = patternBytes(16, 1); // same bytes as `a`
 * const c = patternBytes(16, 2); // different bytes
 * ```
 */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  // xorshift32; the seed is mixed so that seeds 0, 1, 2... all start far apart.
  let x = (Math.imul(seed | 0, 0x9e3779b9) ^ 0x6d2b79f5) | 0;
  if (x === 0) x = 0x6d2b79f5;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
