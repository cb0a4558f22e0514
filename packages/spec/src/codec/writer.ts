/**
 * A growable big-endian byte writer for Deadbolt's wire and record formats
 * (docs/protocol.md §2 "Encoding conventions"). Encoding is deterministic: the same value
 * always produces the same bytes, because encodings feed signatures and associated data.
 *
 * @module
 */
import { InternalError } from '../errors.js';
import { utf8 } from './bytes.js';

/** Writes fields in order; `finish()` returns the compact result. */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(initialCapacity);
    this.#view = new DataView(this.#buf.buffer);
  }

  // Callers must call #reserve before reading #buf or #view: it may replace both.
  #reserve(n: number): number {
    const need = this.#len + n;
    if (need > this.#buf.length) {
      let cap = this.#buf.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    const at = this.#len;
    this.#len = need;
    return at;
  }

  u8(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) throw new InternalError('u8 out of range');
    const at = this.#reserve(1);
    this.#buf[at] = value;
    return this;
  }

  u16(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new InternalError('u16 out of range');
    const at = this.#reserve(2);
    this.#view.setUint16(at, value);
    return this;
  }

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new InternalError('u32 out of range');
    const at = this.#reserve(4);
    this.#view.setUint32(at, value);
    return this;
  }

  /** An unsigned integer below 2^53, as 8 bytes (timestamps in milliseconds). */
  u64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new InternalError('u64 out of range');
    const at = this.#reserve(8);
    this.#view.setUint32(at, Math.floor(value / 2 ** 32));
    this.#view.setUint32(at + 4, value >>> 0);
    return this;
  }

  /** Raw bytes of a length both sides know (keys, signatures). */
  fixed(bytes: Uint8Array, length: number): this {
    if (bytes.length !== length) throw new InternalError(`fixed field: expected ${length} bytes`);
    const at = this.#reserve(length);
    this.#buf.set(bytes, at);
    return this;
  }

  /** Bytes prefixed with a u8 length. */
  bytes8(bytes: Uint8Array): this {
    this.u8(bytes.length);
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
    return this;
  }

  /** Bytes prefixed with a u16 length. */
  bytes16(bytes: Uint8Array): this {
    this.u16(bytes.length);
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
    return this;
  }

  /** Bytes prefixed with a u32 length. */
  bytes32(bytes: Uint8Array): this {
    this.u32(bytes.length);
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
    return this;
  }

  /** A UTF-8 string prefixed with a u8 byte length. */
  string8(text: string): this {
    return this.bytes8(utf8(text));
  }

  /** The bytes written so far, as a fresh compact array. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}
