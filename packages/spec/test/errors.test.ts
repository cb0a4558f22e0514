import { describe, expect, test } from 'vitest';
import {
  CodecError,
  DeadboltError,
  InternalError,
  ProtocolError,
  StorageError,
  TransportError,
  UsageError,
  isDeadboltError,
} from '../src/index.js';

describe('errors', () => {
  test('every subclass carries its kind, code and typed details', () => {
    const cases: [DeadboltError, string, string][] = [
      [new UsageError('INVALID_ARGUMENT', { details: { field: 'x', expected: 'y' } }), 'usage', 'INVALID_ARGUMENT'],
      [new ProtocolError('DUPLICATE_MESSAGE'), 'protocol', 'DUPLICATE_MESSAGE'],
      [new CodecError({ structure: 'S', field: 'f', offset: 3, reason: 'r' }), 'codec', 'DECODE_FAILED'],
      [new StorageError('STORAGE_FAILED', { details: { operation: 'batch' } }), 'storage', 'STORAGE_FAILED'],
      [new TransportError('FRAME_TOO_LARGE', { details: { size: 2, max: 1 } }), 'transport', 'FRAME_TOO_LARGE'],
      [new InternalError('bug'), 'internal', 'INTERNAL'],
    ];
    for (const [e, kind, code] of cases) {
      expect(e).toBeInstanceOf(Error);
      expect(e.kind).toBe(kind);
      expect(e.code).toBe(code);
      expect(isDeadboltError(e)).toBe(true);
      expect(isDeadboltError(e, code as never)).toBe(true);
      expect(isDeadboltError(e, 'CLOSED')).toBe(false);
    }
  });

  test('the codec error names structure, field and offset', () => {
    const e = new CodecError({ structure: 'Bundle', field: 'signature', offset: 17, reason: 'truncated' });
    expect(e.message).toBe('Bundle: truncated at signature (offset 17)');
    expect(e.details.offset).toBe(17);
    expect(e.name).toBe('CodecError');
  });

  test('the guard recognises errors from another copy of the package (Symbol.for marker)', () => {
    const foreign = Object.assign(new Error('x'), { code: 'CLOSED', [Symbol.for('@deadbolt/error')]: true });
    expect(isDeadboltError(foreign, 'CLOSED')).toBe(true);
    expect(isDeadboltError(Object.assign(new Error('x'), { code: 'CLOSED' }))).toBe(false);
    expect(isDeadboltError(null)).toBe(false);
    expect(isDeadboltError('CLOSED')).toBe(false);
  });

  test('cause is kept', () => {
    const cause = new Error('inner');
    expect(new StorageError('STORAGE_FAILED', { details: { operation: 'get' }, cause }).cause).toBe(cause);
  });
});
