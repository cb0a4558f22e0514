/**
 * An order-preserving binary encoding of storage keys, so SQLite's BLOB comparison
 * (memcmp) orders keys exactly as the storage contract does: segment by segment, UTF-16
 * code units, a prefix before its extensions (`compareStorageKeys` in `@deadbolt/spec`).
 *
 * Each UTF-16 code unit `c` becomes three big-endian bytes of `c + 1` (1..65536), and
 * every segment ends with the terminator `00 00 00`, which sorts below any code unit.
 * Every key with prefix P therefore starts with enc(P) and sorts before
 * enc(P) | `FF FF FF`, which gives prefix ranges as one index range. UTF-8 TEXT would not
 * do: it replaces lone surrogates and sorts by code point, not code unit.
 *
 * @module
 */
import type { StorageKey } from '@deadbolt/spec';

/** Encodes a key (or a prefix) to its sortable form. */
export function encodeKey(key: StorageKey): Uint8Array {
  let length = 0;
  for (const segment of key) length += 3 * segment.length + 3;
  const out = new Uint8Array(length);
  let at = 0;
  for (const segment of key) {
    for (let i = 0; i < segment.length; i++) {
      const v = segment.charCodeAt(i) + 1;
      out[at] = v >>> 16;
      out[at + 1] = (v >>> 8) & 0xff;
      out[at + 2] = v & 0xff;
      at += 3;
    }
    at += 3; // terminator: three zero bytes
  }
  return out;
}

/** Decodes a key encoded by {@link encodeKey}. */
export function decodeKey(bytes: Uint8Array): string[] {
  const key: string[] = [];
  let units: number[] = [];
  for (let at = 0; at + 3 <= bytes.length; at += 3) {
    const v = ((bytes[at] as number) << 16) | ((bytes[at + 1] as number) << 8) | (bytes[at + 2] as number);
    if (v === 0) {
      key.push(String.fromCharCode(...units));
      units = [];
    } else units.push(v - 1);
  }
  return key;
}

/** The exclusive upper bound of every key starting with `prefix`. */
export function prefixEnd(encodedPrefix: Uint8Array): Uint8Array {
  const out = new Uint8Array(encodedPrefix.length + 3);
  out.set(encodedPrefix);
  out.fill(0xff, encodedPrefix.length);
  return out;
}

/**
 * The one index range `[lower, upper)` of a `range` call (storage invariant 12): keys under
 * `prefix`, strictly after `after`, strictly before `before`. The smallest encoding above
 * enc(after) is enc(after) | `00` (every longer blob that starts with it is greater, and
 * nothing sorts between them), so the exclusive bound becomes an inclusive one; the
 * tighter of each pair of bounds is kept, so SQLite walks only the window itself.
 * `Buffer.compare` is memcmp order, as SQLite compares BLOBs.
 */
export function windowBounds(prefix: StorageKey, after: StorageKey | undefined, before: StorageKey | undefined): { lower: Uint8Array; upper: Uint8Array } {
  const from = encodeKey(prefix);
  let lower = from;
  let upper = prefixEnd(from);
  if (after !== undefined) {
    const encoded = encodeKey(after);
    const next = new Uint8Array(encoded.length + 1);
    next.set(encoded);
    if (Buffer.compare(next, lower) > 0) lower = next;
  }
  if (before !== undefined) {
    const encoded = encodeKey(before);
    if (Buffer.compare(encoded, upper) < 0) upper = encoded;
  }
  return { lower, upper };
}
