/**
 * Byte helpers used across core. `Uint8Array` only; every function returns fresh,
 * compact arrays and never aliases its inputs.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, throwing on malformed input (callers wrap it in a `CodecError`). */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Concatenates byte arrays into one fresh array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case hex of `bytes` (used for map keys of public values, never for secrets in logs). */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i] as number];
  return s;
}

/** Bytes of a lower-case or upper-case hex string of even length. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new TypeError('invalid hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new TypeError('invalid hex');
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Overwrites a secret buffer with zeros. Best effort only: JavaScript engines may have
 * copied the bytes, so this narrows, not closes, the window a memory dump sees.
 */
export function wipe(bytes: Uint8Array | undefined): void {
  bytes?.fill(0);
}
