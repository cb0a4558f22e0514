/**
 * Group ids (docs/protocol.md §12.2.1, §12.3.3).
 *
 * A group id is 32 bytes: the SHA-256 of the group's genesis change with its id field
 * zeroed, prefixed by `label8("Deadbolt_v1_GroupId")`. It therefore commits to the creator,
 * a random nonce, the name and the initial members: nobody, the creator included, can
 * present two different geneses for one id.
 *
 * @module
 */
import { UsageError, type Brand } from '@deadbolt/spec';
import { concatBytes, fromHex, toHex } from '../codec/bytes.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, labelPrefix } from '../protocol/constants.js';

/** A group id: 32 bytes. */
export type GroupId = Brand<Uint8Array, 'GroupId'>;

/** Byte length of a group id. */
export const GROUP_ID_LENGTH = 32;

const ID_LABEL = labelPrefix(Label.groupId);

/**
 * Derives a group id (§12.3.3) from the genesis change's body (the bytes before its
 * signature) whose groupId field, at `idOffset`, holds 32 zero bytes.
 *
 * @example
 * ```ts
 * const id = deriveGroupId(crypto, bodyWithZeroId);
 * ```
 */
export function deriveGroupId(crypto: CryptoProvider, bodyWithZeroId: Uint8Array): GroupId {
  return crypto.sha256(concatBytes(ID_LABEL, bodyWithZeroId)) as GroupId;
}

/**
 * Checks and brands a group id given as bytes or lowercase hex.
 *
 * @example
 * ```ts
 * const id = groupId('9f86d0...'); // 64 hex characters
 * ```
 */
export function groupId(value: Uint8Array | string): GroupId {
  let bytes: Uint8Array | undefined;
  if (typeof value === 'string' && /^[0-9a-f]{64}$/.test(value)) bytes = fromHex(value);
  else if (value instanceof Uint8Array && value.length === GROUP_ID_LENGTH) bytes = value.slice();
  if (!bytes) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'groupId must be 32 bytes or 64 lowercase hex characters', details: { field: 'groupId', expected: '32 bytes' } });
  }
  return bytes as GroupId;
}

/**
 * The lowercase hex of a group id, as used in storage keys (§12.11).
 *
 * @example
 * ```ts
 * const key = ['group', groupIdHex(id), 'meta'];
 * ```
 */
export function groupIdHex(id: GroupId): string {
  return toHex(id);
}
