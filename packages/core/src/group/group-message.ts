/**
 * Group messages (docs/protocol.md §12.8): encrypted once under the sender's chain,
 * signed once with the chain's signing key, fanned out by the relay.
 *
 * ```
 * header = version u8 | type u8 (=0x10) | groupId[32] | epoch u32
 *        | senderUserId string8 | senderDeviceId string8 | keyId u32 | generation u32
 * GroupMessage = header | body bytes32 | signature[64]
 * AD        = label8("Deadbolt_v1_GroupAD") | header
 * body      = commitment | ChaCha20-Poly1305(key, nonce, padded, AD)        (§12.7.1, §6.2, §6.3)
 * signature = Ed25519.Sign(SSK, label8("Deadbolt_v1_GroupMessageSignature") | header | body bytes32)
 * ```
 *
 * Group id, epoch, sender device, key id, generation and type are authenticated twice (AD
 * and signature), so a message moved to another group, re-attributed, or fed to another
 * path fails (SECURITY.md C20, C22). The body is key-committing (SECURITY.md A5).
 *
 * @module
 */
import type { Address, Ed25519SecretKey } from '@deadbolt/spec';
import { concatBytes } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { decryptFailed } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, Len, Limits, MessageType, WIRE_VERSION, labelPrefix } from '../protocol/constants.js';
import { readVersion } from '../protocol/device-certificate.js';
import { deriveMessageKeys, openCommitted, sealCommitted } from '../protocol/message-keys.js';
import { pad, unpad } from '../protocol/padding.js';
import { GROUP_ID_LENGTH, type GroupId } from './group-id.js';
import { readDeviceId, readUserId } from './group-state.js';

/** The authenticated header of a group message (§12.8.1). */
export interface GroupMessageHeader {
  readonly groupId: GroupId;
  /** The sender's head epoch when it sent. */
  readonly epoch: number;
  readonly sender: Address;
  readonly keyId: number;
  readonly generation: number;
}

/** A decoded group message. */
export interface GroupMessage {
  readonly header: GroupMessageHeader;
  /** The header bytes exactly as received (they are the AD's tail). */
  readonly headerBytes: Uint8Array;
  /** commitment | ciphertext | tag. */
  readonly body: Uint8Array;
  /** Everything the signature covers, after its label: header | body bytes32. */
  readonly signed: Uint8Array;
  readonly signature: Uint8Array;
}

const STRUCTURE = 'GroupMessage';
const AD_LABEL = labelPrefix(Label.groupAd);
const SIGN_LABEL = labelPrefix(Label.groupMessageSignature);
/** The smallest body: a commitment and a tag around an empty ciphertext. */
const MIN_BODY = Len.commitment + Len.aeadTag;

/** Encodes a header (§12.8.1). */
export function encodeGroupMessageHeader(h: GroupMessageHeader): Uint8Array {
  return new ByteWriter(180)
    .u8(WIRE_VERSION)
    .u8(MessageType.GROUP)
    .fixed(h.groupId, GROUP_ID_LENGTH)
    .u32(h.epoch)
    .string8(h.sender.userId)
    .string8(h.sender.deviceId)
    .u32(h.keyId)
    .u32(h.generation)
    .finish();
}

/**
 * Decodes a group message. The size limit is checked first and the type must be GROUP:
 * pairwise messages and group payloads are refused here (SECURITY.md C22). Throws
 * `CodecError` (or `UNSUPPORTED_VERSION`).
 *
 * @example
 * ```ts
 * const { groupId, sender } = decodeGroupMessage(frame).header; // for routing only: not yet authenticated
 * ```
 */
export function decodeGroupMessage(bytes: Uint8Array): GroupMessage {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxGroupMessage);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.GROUP]);
  const header: GroupMessageHeader = {
    groupId: r.fixed('groupId', GROUP_ID_LENGTH) as GroupId,
    epoch: r.u32('epoch'),
    sender: { userId: readUserId(r, 'senderUserId'), deviceId: readDeviceId(r, 'senderDeviceId') },
    keyId: r.u32('keyId'),
    generation: r.u32('generation'),
  };
  const headerLength = r.offset;
  const bodyAt = r.offset;
  const body = r.bytes32('body', Limits.maxGroupMessage);
  if (body.length < MIN_BODY) throw r.fail('body', `shorter than ${MIN_BODY} bytes`, bodyAt);
  const signedLength = r.offset;
  const signature = r.fixed('signature', Len.signature);
  r.end();
  return { header, headerBytes: bytes.slice(0, headerLength), body, signed: bytes.slice(0, signedLength), signature };
}

/**
 * Seals and signs a group message with message key `mk` and the chain's signing secret.
 * The caller has advanced and will persist the chain before the result leaves (§12.8.2).
 */
export async function sealGroupMessage(
  crypto: CryptoProvider,
  header: GroupMessageHeader,
  mk: Uint8Array,
  signingSecret: Ed25519SecretKey,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const headerBytes = encodeGroupMessageHeader(header);
  const body = sealCommitted(crypto, deriveMessageKeys(crypto, mk, Label.groupMessageKeys), pad(plaintext), concatBytes(AD_LABEL, headerBytes));
  const signed = new ByteWriter(headerBytes.length + body.length + 4 + Len.signature).fixed(headerBytes, headerBytes.length).bytes32(body).finish();
  const signature = await crypto.ed25519Sign(signingSecret, concatBytes(SIGN_LABEL, signed));
  return concatBytes(signed, signature);
}

/** Whether the message's signature verifies under the chain's signing key (§12.8.3 step 5). */
export function verifyGroupMessageSignature(crypto: CryptoProvider, signingKey: Uint8Array, m: GroupMessage): Promise<boolean> {
  return crypto.ed25519Verify(signingKey, concatBytes(SIGN_LABEL, m.signed), m.signature);
}

/**
 * Opens a group message body with message key `mk` (§12.8.3 step 7): commitment first, in
 * constant time, then the AEAD; every failure is `DECRYPT_FAILED`.
 */
export function openGroupMessage(crypto: CryptoProvider, m: GroupMessage, mk: Uint8Array): Uint8Array {
  const padded = openCommitted(crypto, deriveMessageKeys(crypto, mk, Label.groupMessageKeys), m.body, concatBytes(AD_LABEL, m.headerBytes));
  try {
    return unpad(padded);
  } catch {
    throw decryptFailed();
  }
}
