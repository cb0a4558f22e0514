import { describe, expect, test } from 'vitest';
import {
  assertStorageBatch,
  assertStorageKey,
  inRangeWindow,
  isDeadboltError,
  readRangeLimit,
  readRangeOptions,
  snapshotStorageBatch,
  snapshotStorageKey,
  STORAGE_LIMITS,
  type StorageOp,
} from '../src/index.js';

/** The error `fn` throws; fails if it returns. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('snapshotStorageKey', () => {
  test('a frozen copy, independent of the caller’s array', () => {
    const key = ['session', 'bob'];
    const copy = snapshotStorageKey(key) as string[];
    expect(copy).toEqual(['session', 'bob']);
    expect(copy).not.toBe(key);
    expect(Object.isFrozen(copy)).toBe(true);
    key[1] = 'mallory';
    expect(copy).toEqual(['session', 'bob']);
  });

  test('each element is read once: a getter cannot show the check one key and the backend another', () => {
    let reads = 0;
    const key = ['a'];
    Object.defineProperty(key, 0, {
      get: () => (reads++ === 0 ? 'checked' : 'used'),
      enumerable: true,
    });
    const copy = snapshotStorageKey(key);
    assertStorageKey(copy);
    expect([...copy, ...copy]).toEqual(['checked', 'checked']);
    expect(reads).toBe(1);
  });

  test('anything but an array of at most maxKeySegments elements is returned as is, for the check to reject', () => {
    const long = Array.from({ length: STORAGE_LIMITS.maxKeySegments + 1 }, () => 'k');
    for (const value of [long, 'a', null, undefined, 1, { 0: 'a', length: 1 }]) expect(snapshotStorageKey(value)).toBe(value);
    expect(isDeadboltError(thrown(() => assertStorageKey(snapshotStorageKey(long))), 'INVALID_ARGUMENT')).toBe(true);
    // Invalid segments are copied as they are; the check rejects them.
    expect(snapshotStorageKey([1, 'a'])).toEqual([1, 'a']);
  });
});

describe('snapshotStorageBatch', () => {
  test('new operation objects with snapshotted keys; values are passed on, not copied', () => {
    const value = Uint8Array.of(1, 2);
    const key = ['k'];
    const ops: StorageOp[] = [
      { type: 'put', key, value },
      { type: 'delete', key: ['d'] },
    ];
    const copy = snapshotStorageBatch(ops) as StorageOp[];
    assertStorageBatch(copy);
    expect(copy).not.toBe(ops);
    expect(copy[0]).not.toBe(ops[0]);
    expect(copy[0]!.key).not.toBe(key);
    expect(Object.isFrozen(copy[0]!.key)).toBe(true);
    expect(copy[0]).toEqual({ type: 'put', key: ['k'], value });
    expect((copy[0] as { value: Uint8Array }).value).toBe(value);
    expect(copy[1]).toEqual({ type: 'delete', key: ['d'], value: undefined });
    key[0] = 'changed';
    (ops[1] as { type: string }).type = 'put';
    expect(copy.map((op) => [op.type, op.key[0]])).toEqual([
      ['put', 'k'],
      ['delete', 'd'],
    ]);
  });

  test('each operation’s fields are read exactly once', () => {
    const reads = { type: 0, key: 0, value: 0 };
    const op = {
      get type() {
        return reads.type++ === 0 ? 'put' : 'delete';
      },
      get key() {
        return reads.key++ === 0 ? ['k'] : 'not a key';
      },
      get value() {
        return reads.value++ === 0 ? Uint8Array.of(1) : 'not bytes';
      },
    };
    const copy = snapshotStorageBatch([op]);
    assertStorageBatch(copy);
    expect(copy[0]).toEqual({ type: 'put', key: ['k'], value: Uint8Array.of(1) });
    expect(reads).toEqual({ type: 1, key: 1, value: 1 });
  });

  test('holes become undefined (rejected); non-arrays, oversize batches and non-object operations are returned as they are', () => {
    const sparse = [{ type: 'delete', key: ['a'] }, , { type: 'delete', key: ['b'] }];
    const copy = snapshotStorageBatch(sparse) as unknown[];
    expect(copy).toHaveLength(3);
    expect(1 in copy).toBe(true);
    expect(copy[1]).toBeUndefined();
    expect(isDeadboltError(thrown(() => assertStorageBatch(copy)), 'INVALID_ARGUMENT')).toBe(true);

    const oversize = Array.from({ length: STORAGE_LIMITS.maxBatchOps + 1 }, () => ({ type: 'delete', key: ['k'] }));
    for (const value of [oversize, 'ops', null, undefined]) expect(snapshotStorageBatch(value)).toBe(value);
    const notObjects = snapshotStorageBatch([null, 7, 'op']);
    expect(notObjects).toEqual([null, 7, 'op']);
  });
});

describe('readRangeLimit', () => {
  test('absent options or limit: no limit (Infinity); otherwise the limit, 0 included', () => {
    expect(readRangeLimit(undefined)).toBe(Infinity);
    expect(readRangeLimit({})).toBe(Infinity);
    expect(readRangeLimit({ limit: undefined })).toBe(Infinity);
    expect(readRangeLimit({ limit: 0 })).toBe(0);
    expect(readRangeLimit({ limit: 3 })).toBe(3);
    expect(readRangeLimit({ limit: Number.MAX_SAFE_INTEGER })).toBe(Number.MAX_SAFE_INTEGER);
  });

  test('options that are not an object: INVALID_ARGUMENT naming options', () => {
    for (const options of [null, 5, 'limit']) {
      const error = thrown(() => readRangeLimit(options));
      expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details).toEqual({ field: 'options', expected: 'an object' });
      expect((error as Error).message).toBe('options: expected an object');
    }
  });

  test('a limit that is not a non-negative safe integer: INVALID_ARGUMENT naming options.limit', () => {
    for (const limit of [-1, 1.5, NaN, Infinity, 2 ** 53, '3', null, 3n]) {
      const error = thrown(() => readRangeLimit({ limit }));
      expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details, String(limit)).toEqual({
        field: 'options.limit',
        expected: 'a non-negative integer',
      });
      expect((error as Error).message).toBe('options.limit: expected a non-negative integer');
    }
  });
});

describe('readRangeOptions and inRangeWindow (storage invariant 12)', () => {
  test('defaults, and each option read once and the bounds copied', () => {
    expect(readRangeOptions(undefined)).toEqual({ limit: Infinity, reverse: false, after: undefined, before: undefined });
    let reads = 0;
    const options = {
      get reverse() {
        reads++;
        return true;
      },
      after: ['m', '1'],
      before: ['m', '9'],
      limit: 2,
    };
    const checked = readRangeOptions(options);
    expect(reads).toBe(1);
    expect(checked).toEqual({ limit: 2, reverse: true, after: ['m', '1'], before: ['m', '9'] });
    options.after[1] = '5';
    expect(checked.after).toEqual(['m', '1']);
    expect(Object.isFrozen(checked.before)).toBe(true);
  });

  test('invalid options: INVALID_ARGUMENT naming the option', () => {
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [{ reverse: 'true' }, 'options.reverse'],
      [{ after: [] }, 'options.after'],
      [{ after: 'm' }, 'options.after'],
      [{ before: [7] }, 'options.before'],
      [{ before: null }, 'options.before'],
      [{ limit: -1 }, 'options.limit'],
    ];
    for (const [options, field] of cases) {
      const error = thrown(() => readRangeOptions(options));
      expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field, JSON.stringify(options)).toBe(field);
    }
  });

  test('inRangeWindow: strictly between the bounds, in the contract order', () => {
    const window = readRangeOptions({ after: ['m', '1'], before: ['m', '3'] });
    expect([['m', '1'], ['m', '1', ''], ['m', '2'], ['m', '3'], ['m', '10']].map((k) => inRangeWindow(k, window))).toEqual([false, true, true, false, true]);
    expect(inRangeWindow(['anything'], readRangeOptions({}))).toBe(true);
  });
});
