/**
 * A bounds-checked big-endian reader. Every failure is a `CodecError` naming the
 * structure, the field and the byte offset (never the bytes themselves). A reader refuses
 * input over the structure's maximum size before parsing anything, and `end()` rejects
 * trailing bytes (docs/protocol.md §2; docs/relay-protocol.md uses the same conventions).
 *
 * @module
 */
import { CodecError } from '../errors.js';
import { fromUtf8 } from './bytes.js';

/** Reads the fields of one structure in order. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #structure: string;
  #offset = 0;

  /**
   * @param bytes the input (any view; never modified)
   * @param structure the structure's name, for error messages
   * @param maxSize the largest valid encoding; larger input is rejected before parsing
   */
  constructor(bytes: Uint8Array, structure: string, maxSize: number) {
    if (!(bytes instanceof Uint8Array)) {
      throw new CodecError({ structure, field: 'input', offset: 0, reason: 'not a Uint8Array' });
    }
    if (bytes.length > maxSize) {
      throw new CodecError({ structure, field: 'input', offset: 0, reason: `larger than ${maxSize} bytes` });
    }
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#structure = structure;
  }

  /** The current offset. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  /** A `CodecError` at the current offset. */
  fail(field: string, reason: string, at = this.#offset): CodecError {
    return new CodecError({ structure: this.#structure, field, offset: at, reason });
  }

  #take(field: string, n: number): number {
    if (n > this.remaining) throw this.fail(field, `truncated: needs ${n} bytes, ${this.remaining} left`);
    const at = this.#offset;
    this.#offset += n;
    return at;
  }

  u8(field: string): number {
    return this.#bytes[this.#take(field, 1)] as number;
  }

  u16(field: string): number {
    return this.#view.getUint16(this.#take(field, 2));
  }

  u32(field: string): number {
    return this.#view.getUint32(this.#take(field, 4));
  }

  u64(field: string): number {
    const at = this.#take(field, 8);
    const hi = this.#view.getUint32(at);
    if (hi >= 2 ** 21) throw this.fail(field, 'integer above 2^53', at);
    return hi * 2 ** 32 + this.#view.getUint32(at + 4);
  }

  /** A fresh copy of the next `length` bytes. */
  fixed(field: string, length: number): Uint8Array {
    const at = this.#take(field, length);
    return this.#bytes.slice(at, at + length);
  }

  /** A u8 that must be one of `allowed`. */
  enumU8(field: string, allowed: readonly number[]): number {
    const at = this.#offset;
    const v = this.u8(field);
    if (!allowed.includes(v)) throw this.fail(field, `unexpected value ${v}`, at);
    return v;
  }

  /** A boolean encoded as 0 or 1. */
  bool(field: string): boolean {
    return this.enumU8(field, [0, 1]) === 1;
  }

  bytes8(field: string, max = 0xff): Uint8Array {
    const at = this.#offset;
    const n = this.u8(field);
    if (n > max) throw this.fail(field, `length ${n} over ${max}`, at);
    return this.fixed(field, n);
  }

  bytes16(field: string, max = 0xffff): Uint8Array {
    const at = this.#offset;
    const n = this.u16(field);
    if (n > max) throw this.fail(field, `length ${n} over ${max}`, at);
    return this.fixed(field, n);
  }

  bytes32(field: string, max: number): Uint8Array {
    const at = this.#offset;
    const n = this.u32(field);
    if (n > max) throw this.fail(field, `length ${n} over ${max}`, at);
    return this.fixed(field, n);
  }

  /** A UTF-8 string with a u8 byte length; malformed UTF-8 is rejected. */
  string8(field: string): string {
    const at = this.#offset;
    const raw = this.bytes8(field);
    try {
      return fromUtf8(raw);
    } catch {
      throw this.fail(field, 'malformed UTF-8', at);
    }
  }

  /** Requires that every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) throw this.fail('end', `${this.remaining} trailing bytes`);
  }
}
