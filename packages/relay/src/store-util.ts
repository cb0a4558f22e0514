/**
 * Helpers shared by the relay stores.
 *
 * @module
 */
import { UsageError } from '@deadbolt/spec';
import type { StoreAddress } from './store.js';

/** A compact copy of the bytes a view covers (copy at the trust boundary). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Whether two byte arrays hold the same bytes (public data only: not constant-time). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An injective key for an address (no string-join ambiguity). */
export function addressKey(a: StoreAddress): string {
  return JSON.stringify([a.userId, a.deviceId]);
}

/** The error every method of a closed store rejects with. */
export function closedError(): UsageError<'CLOSED'> {
  return new UsageError('CLOSED', { message: 'the relay store is closed', details: { what: 'relay store' } });
}

/** A fresh message id: 16 random bytes as hex (32 characters), never a counter. */
export function newMessageId(): string {
  const raw = globalThis.crypto.getRandomValues(new Uint8Array(16));
  let out = '';
  for (const b of raw) out += b.toString(16).padStart(2, '0');
  return out;
}
