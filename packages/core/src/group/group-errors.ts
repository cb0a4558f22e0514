/**
 * The errors the group layer throws (docs/protocol.md). They use the existing codes
 * of `@deadbolt/spec`; each helper names the rule that failed, never key material or
 * plaintext. Kept in one place so that dedicated codes (for example
 * `GROUP_CHANGE_REJECTED`) can replace them with one edit.
 *
 * @module
 */
import { ProtocolError, UsageError } from '@deadbolt/spec';

/**
 * A received change (or welcome) that fails validation or authorization (§12.4). Reported
 * as `BAD_SIGNATURE`: the change is not signed by a device allowed to make it.
 */
export function changeRejected(rule: string): ProtocolError<'BAD_SIGNATURE'> {
  return new ProtocolError('BAD_SIGNATURE', { message: `group change rejected: ${rule}`, details: { what: `group change (${rule})` } });
}

/** A change this device tried to make that §12.4 does not allow. */
export function changeNotAllowed(rule: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', { message: `group change not allowed: ${rule}`, details: { field: 'ops', expected: rule } });
}

/**
 * Something a group payload or message needs is not (or not yet, or no longer) known.
 * `what` is one of `group`, `group epoch`, `sender key`, `retired sender key`: the first
 * three may resolve once more payloads arrive (§12.10), the last never does.
 */
export function unknownGroupKey(what: 'group' | 'group epoch' | 'sender key' | 'retired sender key'): ProtocolError<'UNKNOWN_KEY'> {
  return new ProtocolError('UNKNOWN_KEY', { message: `unknown ${what}`, details: { what } });
}

/**
 * Whether an `UNKNOWN_KEY` error may resolve once more payloads arrive (§12.10).
 *
 * @example
 * ```ts
 * try { await groups.decrypt(frame); } catch (e) { if (isRetryable(e)) hold(frame); else throw e; }
 * ```
 */
export function isRetryable(e: unknown): boolean {
  const what = e instanceof ProtocolError && e.code === 'UNKNOWN_KEY' ? (e.details as { what?: string } | undefined)?.what : undefined;
  return what === 'group' || what === 'group epoch' || what === 'sender key';
}

/** The authenticated pairwise sender is not the device a payload names, or not a member (§12.7.2). */
export function senderMismatch(reason: string): ProtocolError<'SENDER_MISMATCH'> {
  return new ProtocolError('SENDER_MISMATCH', { message: `group payload sender: ${reason}` });
}

/** A group limit (§12.12) was exceeded. */
export function groupLimit(limit: string, max: number): ProtocolError<'LIMIT_EXCEEDED'> {
  return new ProtocolError('LIMIT_EXCEEDED', { message: `group limit ${limit} exceeded`, details: { limit, max } });
}

/** This device is not (or no longer) a member of the group, or has no such group. */
export function notAMember(what: string): UsageError<'NOT_INITIALIZED'> {
  return new UsageError('NOT_INITIALIZED', { message: `not a member: ${what}`, details: { what } });
}
