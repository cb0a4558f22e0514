/**
 * The sender-key distribution message (docs/protocol.md §12.7.2): one sender chain,
 * at one generation, with its signing key, for one group. It travels only inside a pairwise
 * session; the receiver requires the session's certificate to be the sender it names and a
 * device of the group (SECURITY.md C21).
 *
 * ```
 * SenderKeyDistribution = version u8 | type u8 (=0x11) | groupId[32]
 *                       | senderUserId string8 | senderDeviceId string8
 *                       | keyId u32 | createdEpoch u32 | generation u32 | chainKey[32] | signingKey[32]
 * ```
 *
 * @module
 */
import type { Address } from '@deadbolt/spec';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Len, Limits, MessageType, WIRE_VERSION } from '../protocol/constants.js';
import { readVersion } from '../protocol/device-certificate.js';
import { GROUP_ID_LENGTH, type GroupId } from './group-id.js';
import { readDeviceId, readUserId } from './group-state.js';
import type { DistributedKey } from './sender-key.js';

/** A decoded distribution message. */
export interface SenderKeyDistribution extends DistributedKey {
  readonly groupId: GroupId;
  readonly sender: Address;
}

const STRUCTURE = 'SenderKeyDistribution';

/** Encodes a distribution message. It carries a chain key: send it only inside a pairwise session. */
export function encodeSenderKeyDistribution(d: SenderKeyDistribution): Uint8Array {
  return new ByteWriter(200)
    .u8(WIRE_VERSION)
    .u8(MessageType.GROUP_SENDER_KEY)
    .fixed(d.groupId, GROUP_ID_LENGTH)
    .string8(d.sender.userId)
    .string8(d.sender.deviceId)
    .u32(d.keyId)
    .u32(d.createdEpoch)
    .u32(d.generation)
    .fixed(d.chainKey, Len.key)
    .fixed(d.signingKey, Len.key)
    .finish();
}

/**
 * Decodes a distribution message. Throws `CodecError` (or `UNSUPPORTED_VERSION`).
 *
 * @example
 * ```ts
 * const { groupId, keyId } = decodeSenderKeyDistribution(payload);
 * ```
 */
export function decodeSenderKeyDistribution(bytes: Uint8Array): SenderKeyDistribution {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxSenderKeyDistribution);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.GROUP_SENDER_KEY]);
  const d: SenderKeyDistribution = {
    groupId: r.fixed('groupId', GROUP_ID_LENGTH) as GroupId,
    sender: { userId: readUserId(r, 'senderUserId'), deviceId: readDeviceId(r, 'senderDeviceId') },
    keyId: r.u32('keyId'),
    createdEpoch: r.u32('createdEpoch'),
    generation: r.u32('generation'),
    chainKey: r.fixed('chainKey', Len.key),
    signingKey: r.fixed('signingKey', Len.key),
  };
  r.end();
  return d;
}
