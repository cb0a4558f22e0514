/**
 * Shared argument checks for adapters, so every adapter rejects the same inputs with the
 * same error (contract invariants 1, 5 and 7 in `storage.ts`).
 *
 * @module
 */
import { UsageError } from './errors.js';
import { STORAGE_LIMITS, type StorageKey, type StorageOp } from './storage.js';

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
