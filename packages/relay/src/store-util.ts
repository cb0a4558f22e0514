/**
 * Helpers shared by the relay stores.
 *
 * @module
 */
import { UsageError } from '@deadbolt/spec';
import type { EnqueueResult, MailboxQuota, StoreAddress, StoreListVersion } from './store.js';

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

/**
 * Users whose stored device list version (0: none) differs from the one the sender named
 * (invariant 6), each once, with that stored version. `storedVersion(userId)` reads it
 * from the store's own state.
 */
export function listMismatches(
  expected: readonly StoreListVersion[] | undefined,
  storedVersion: (userId: string) => number,
): StoreListVersion[] {
  const out: StoreListVersion[] = [];
  const seen = new Set<string>();
  for (const e of expected ?? []) {
    if (seen.has(e.userId)) continue;
    seen.add(e.userId);
    const current = storedVersion(e.userId);
    if (current !== e.listVersion) out.push({ userId: e.userId, listVersion: current });
  }
  return out;
}

/** What the quotas count in one mailbox (invariant 6): its messages, their bytes, and the messages of one sender user. */
export interface MailboxUsage {
  readonly messages: number;
  readonly bytes: number;
  readonly fromSender: number;
}

/**
 * Checks a batch against the mailbox quotas (invariant 6) before anything is written.
 * `usageOf(mailbox)` reads a recipient mailbox's usage (counting the batch's sender user),
 * or `undefined` when that device is not registered; it is read once per mailbox, and the
 * batch's messages to one mailbox count together. `sizeOf(i)` is the size of the frame to
 * `to[i]`.
 *
 * @returns the refusal naming the first mailbox that is unknown or would go over a bound,
 *   or `undefined` when the whole batch fits
 */
export function quotaRefusal(
  to: readonly StoreAddress[],
  sizeOf: (i: number) => number,
  quota: MailboxQuota,
  usageOf: (mailbox: StoreAddress) => MailboxUsage | undefined,
): Extract<EnqueueResult, { readonly reason: 'unknown-device' | 'mailbox-full' }> | undefined {
  const planned = new Map<string, { messages: number; bytes: number; fromSender: number }>();
  for (let i = 0; i < to.length; i++) {
    const m = to[i] as StoreAddress;
    const key = addressKey(m);
    let p = planned.get(key);
    if (p === undefined) {
      const usage = usageOf(m);
      if (usage === undefined) return { ok: false, reason: 'unknown-device', to: m };
      p = { messages: usage.messages, bytes: usage.bytes, fromSender: usage.fromSender };
      planned.set(key, p);
    }
    p.messages += 1;
    p.bytes += sizeOf(i);
    p.fromSender += 1;
    if (p.messages > quota.maxMessages || p.bytes > quota.maxBytes || p.fromSender > quota.maxPerSender) {
      return { ok: false, reason: 'mailbox-full', to: m };
    }
  }
  return undefined;
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
