import { describe, expect, test } from 'vitest';
import { address, compareStorageKeys, deviceId, isDeadboltError, keyHasPrefix, sameAddress, userId } from '../src/index.js';

describe('ids', () => {
  test('valid ids are branded unchanged', () => {
    expect(userId('alice@example.com')).toBe('alice@example.com');
    expect(deviceId('phone-1')).toBe('phone-1');
    expect(sameAddress(address('a', 'b'), address('a', 'b'))).toBe(true);
    expect(sameAddress(address('a', 'b'), address('a', 'c'))).toBe(false);
  });

  test.each(['', ' ', 'a b', 'a/b', 'é', 'x'.repeat(65), '\u0000'])('invalid id %j is a usage error', (bad) => {
    for (const make of [userId, deviceId]) {
      let caught: unknown;
      try {
        make(bad);
      } catch (e) {
        caught = e;
      }
      expect(isDeadboltError(caught, 'INVALID_ARGUMENT')).toBe(true);
    }
  });
});

describe('storage keys', () => {
  test('ordering is segment by segment, prefixes first', () => {
    const keys = [['b'], ['a', 'b'], ['a'], ['ab'], ['a', '']];
    expect(keys.sort(compareStorageKeys)).toEqual([['a'], ['a', ''], ['a', 'b'], ['ab'], ['b']]);
  });

  test('prefixes match whole segments only', () => {
    expect(keyHasPrefix(['a', 'b'], ['a'])).toBe(true);
    expect(keyHasPrefix(['ab'], ['a'])).toBe(false);
    expect(keyHasPrefix(['a'], ['a', 'b'])).toBe(false);
  });
});
