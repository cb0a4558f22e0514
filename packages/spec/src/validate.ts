/**
 * Shared argument checks for adapters, so every adapter rejects the same inputs with the
 * same error (contract invariants 1, 5 and 7 in `storage.ts`), and the snapshots an
 * adapter takes of its arguments before checking them.
 *
 * @module
 */
import { UsageError } from './errors.js';
import { STORAGE_LIMITS, compareStorageKeys, type RangeOptions, type StorageKey, type StorageOp } from './storage.js';

function invalid(field: string, expected: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', { message: `${field}: expected ${expected}`, details: { field, expected } });
}

/** Throws `INVALID_ARGUMENT` unless `key` is a valid {@link StorageKey} (full keys and prefixes alike: 1 to 8 segments). */
export function assertStorageKey(key: unknown, field = 'key'): asserts key is StorageKey {
  if (!Array.isArray(key) || key.length < 1 || key.length > STORAGE_LIMITS.maxKeySegments) {
    throw invalid(field, `an array of 1-${STORAGE_LIMITS.maxKeySegments} strings`);
  }
  for (const segment of key) {
    if (typeof segment !== 'string' || segment.length > STORAGE_LIMITS.maxSegmentLength) {
      throw invalid(field, `string segments of at most ${STORAGE_LIMITS.maxSegmentLength} code units`);
    }
  }
}

/** Throws `INVALID_ARGUMENT` unless `value` is a `Uint8Array` within the size limit. */
export function assertStorageValue(value: unknown, field = 'value'): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(field, 'a Uint8Array');
  if (value.byteLength > STORAGE_LIMITS.maxValueBytes) throw invalid(field, `at most ${STORAGE_LIMITS.maxValueBytes} bytes`);
}

/** Checks every operation of a batch before any is applied (invariant 5). */
export function assertStorageBatch(ops: unknown): asserts ops is readonly StorageOp[] {
  if (!Array.isArray(ops)) throw invalid('ops', 'an array of operations');
  if (ops.length > STORAGE_LIMITS.maxBatchOps) throw invalid('ops', `at most ${STORAGE_LIMITS.maxBatchOps} operations`);
  // An index loop, not `forEach`: `forEach` skips the holes of a sparse array, which would
  // let `[put, <hole>]` through validation and fail half-way through applying it.
  for (let i = 0; i < ops.length; i++) {
    const op: unknown = ops[i];
    if (typeof op !== 'object' || op === null) throw invalid(`ops[${i}]`, 'an operation');
    const o = op as { type?: unknown; key?: unknown; value?: unknown };
    assertStorageKey(o.key, `ops[${i}].key`);
    if (o.type === 'put') assertStorageValue(o.value, `ops[${i}].value`);
    else if (o.type !== 'delete') throw invalid(`ops[${i}].type`, "'put' or 'delete'");
  }
}

/** A compact copy of exactly the bytes a view covers. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return bytes.slice();
}

/**
 * A private, frozen copy of a key-like argument (a key or a range prefix), taken *before*
 * it is validated with {@link assertStorageKey}: a getter or proxy cannot show the check
 * one key and the backend another, and later changes to the caller's array change
 * nothing. Anything that is not an array of at most `maxKeySegments` elements is returned
 * as is (never copied, however long), for the validator to reject.
 *
 * @example
 * ```ts
 * import { assertStorageKey, snapshotStorageKey } from '@deadbolt/spec';
 *
 * function get(key: unknown) {
 *   const k = snapshotStorageKey(key);
 *   assertStorageKey(k); // checks the copy the backend will use
 *   return k; // readonly string[], frozen
 * }
 * ```
 */
export function snapshotStorageKey(key: unknown): unknown {
  return Array.isArray(key) && key.length <= STORAGE_LIMITS.maxKeySegments ? Object.freeze(Array.from(key as unknown[])) : key;
}

/**
 * {@link snapshotStorageKey} for a batch, taken before {@link assertStorageBatch}: a new
 * array of new operation objects whose `type`, `key` and `value` are each read exactly
 * once (the key snapshotted; the value not copied, which the adapter does after the
 * check). Holes of a sparse array become `undefined`, which the check rejects. Anything
 * that is not an array of at most `maxBatchOps` elements, and elements that are not
 * objects, are returned as they are, for the check to reject.
 *
 * @example
 * ```ts
 * import { assertStorageBatch, snapshotStorageBatch, type StorageOp } from '@deadbolt/spec';
 *
 * function batch(ops: readonly StorageOp[]) {
 *   const checked = snapshotStorageBatch(ops);
 *   assertStorageBatch(checked); // every operation checked before any is applied
 *   return checked.map((op) => (op.type === 'put' ? op.value.slice() : undefined));
 * }
 * ```
 */
export function snapshotStorageBatch(ops: unknown): unknown {
  if (!Array.isArray(ops) || ops.length > STORAGE_LIMITS.maxBatchOps) return ops;
  // `Array.from` visits holes (as `undefined`), so a sparse batch is rejected.
  return Array.from(ops as unknown[], (op) => {
    if (typeof op !== 'object' || op === null) return op;
    const { type, key, value } = op as { type?: unknown; key?: unknown; value?: unknown };
    return { type, key: snapshotStorageKey(key), value };
  });
}

/**
 * The `limit` of `range`'s options ({@link RangeOptions}): `Infinity` when the options or
 * the limit are absent, else the limit, a non-negative safe integer (`0` means nothing,
 * unlike IndexedDB's count). Throws `INVALID_ARGUMENT` naming `options` or
 * `options.limit` for anything else.
 *
 * @example
 * ```ts
 * import { readRangeLimit } from '@deadbolt/spec';
 *
 * readRangeLimit(undefined); // Infinity
 * readRangeLimit({ limit: 2 }); // 2
 * readRangeLimit({ limit: -1 }); // throws UsageError INVALID_ARGUMENT (options.limit)
 * ```
 */
export function readRangeLimit(options: unknown): number {
  if (options === undefined) return Infinity;
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object');
  const { limit } = options as { limit?: unknown };
  if (limit === undefined) return Infinity;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    throw invalid('options.limit', 'a non-negative integer');
  }
  return limit;
}

/** {@link RangeOptions}, checked and copied by {@link readRangeOptions}. */
export interface CheckedRangeOptions {
  /** `Infinity` when absent. */
  readonly limit: number;
  readonly reverse: boolean;
  /** A frozen copy of the bound, or `undefined`. */
  readonly after: StorageKey | undefined;
  readonly before: StorageKey | undefined;
}

/**
 * Every option of `range` ({@link RangeOptions}, storage invariant 12), each read once,
 * checked, and the bounds copied (so a caller cannot change them while the adapter works):
 * `limit` as {@link readRangeLimit}; `reverse` a boolean; `after` and `before` valid keys.
 * Throws `INVALID_ARGUMENT` naming the option for anything else.
 *
 * @example
 * ```ts
 * import { readRangeOptions } from '@deadbolt/spec';
 *
 * readRangeOptions({ before: ['m', '9'], reverse: true, limit: 2 }); // { limit: 2, reverse: true, after: undefined, before: ['m', '9'] }
 * readRangeOptions({ reverse: 'yes' }); // throws UsageError INVALID_ARGUMENT (options.reverse)
 * ```
 */
export function readRangeOptions(options: unknown): CheckedRangeOptions {
  const limit = readRangeLimit(options);
  if (options === undefined) return { limit, reverse: false, after: undefined, before: undefined };
  const { reverse, after, before } = options as { reverse?: unknown; after?: unknown; before?: unknown };
  if (reverse !== undefined && typeof reverse !== 'boolean') throw invalid('options.reverse', 'a boolean');
  const bound = (value: unknown, field: string): StorageKey | undefined => {
    if (value === undefined) return undefined;
    const key = snapshotStorageKey(value);
    assertStorageKey(key, field);
    return key;
  };
  return { limit, reverse: reverse === true, after: bound(after, 'options.after'), before: bound(before, 'options.before') };
}

/**
 * Whether `key` lies inside the window of `options` (strictly after `after`, strictly
 * before `before`, storage invariant 12): for adapters that filter in memory.
 *
 * @example
 * ```ts
 * import { inRangeWindow, readRangeOptions } from '@deadbolt/spec';
 *
 * inRangeWindow(['m', '5'], readRangeOptions({ after: ['m', '5'] })); // false
 * ```
 */
export function inRangeWindow(key: StorageKey, options: CheckedRangeOptions): boolean {
  return (options.after === undefined || compareStorageKeys(key, options.after) > 0) && (options.before === undefined || compareStorageKeys(key, options.before) < 0);
}
