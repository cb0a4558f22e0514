/**
 * A request for a member's current sender key (docs/protocol.md §12.9.1), sent over
 * a pairwise session by a device holding messages under a key it does not have.
 *
 * ```
 * GroupKeyRequest = version u8 | type u8 (=0x14) | groupId[32] | keyId u32      (0: the current key)
 * ```
 *
 * @module
 */
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { MessageType, WIRE_VERSION } from '../protocol/constants.js';
import { readVersion } from '../protocol/device-certificate.js';
import { GROUP_ID_LENGTH, type GroupId } from './group-id.js';

/** A decoded key request. */
export interface GroupKeyRequest {
  readonly groupId: GroupId;
  readonly keyId: number;
}

const STRUCTURE = 'GroupKeyRequest';
const LENGTH = 2 + GROUP_ID_LENGTH + 4;

export function encodeGroupKeyRequest(q: GroupKeyRequest): Uint8Array {
  return new ByteWriter(LENGTH).u8(WIRE_VERSION).u8(MessageType.GROUP_KEY_REQUEST).fixed(q.groupId, GROUP_ID_LENGTH).u32(q.keyId).finish();
}

/** Decodes a key request. Throws `CodecError` (or `UNSUPPORTED_VERSION`). */
export function decodeGroupKeyRequest(bytes: Uint8Array): GroupKeyRequest {
  const r = new ByteReader(bytes, STRUCTURE, LENGTH);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.GROUP_KEY_REQUEST]);
  const q: GroupKeyRequest = { groupId: r.fixed('groupId', GROUP_ID_LENGTH) as GroupId, keyId: r.u32('keyId') };
  r.end();
  return q;
}
