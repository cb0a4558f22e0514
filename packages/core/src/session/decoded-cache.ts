/**
 * Decoded records by id, with the exact bytes each came from (or was written as): a load
 * whose stored bytes are byte-identical to the cached ones reuses the decoded record
 * (records are immutable), skipping the checksum and the decode. Any other writer
 * (another tab or process, a corrupted store) changes the bytes and forces a fresh,
 * checked decode. Bounded: the least recently used entry goes first.
 *
 * @module
 */
import { equalBytes } from '../crypto/checks.js';

export interface DecodedCache<T> {
  /** The record stored as `bytes` under `id` (`open` decodes and checks it on a miss); `undefined` when nothing is stored. */
  read(id: string, bytes: Uint8Array | undefined, open: (bytes: Uint8Array) => T): T | undefined;
  /** Remembers `record` as written in `bytes` (after a successful write). */
  keep(id: string, bytes: Uint8Array, record: T): void;
  /** Forgets `id` (after a delete). */
  drop(id: string): void;
}

export function createDecodedCache<T>(max: number): DecodedCache<T> {
  const entries = new Map<string, { readonly bytes: Uint8Array; readonly record: T }>();
  const keep = (id: string, bytes: Uint8Array, record: T): void => {
    entries.delete(id);
    entries.set(id, { bytes, record });
    if (entries.size > max) entries.delete(entries.keys().next().value as string);
  };
  return {
    read(id, bytes, open) {
      if (bytes === undefined) {
        entries.delete(id);
        return undefined;
      }
      const hit = entries.get(id);
      if (hit !== undefined && equalBytes(hit.bytes, bytes)) {
        keep(id, hit.bytes, hit.record);
        return hit.record;
      }
      const record = open(bytes);
      keep(id, bytes, record);
      return record;
    },
    keep,
    drop: (id) => void entries.delete(id),
  };
}
