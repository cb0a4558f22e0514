/**
 * The PQXDH initial message (docs/protocol.md §5.3): the initiator's identity and the
 * prekeys it used, around the first Double Ratchet message. The initiator sends it on
 * every message until the responder's first reply confirms the session.
 *
 * ```
 * version u8 (=1) | type u8 (=0x01)
 * certificate    bytes16                         the initiator's device certificate (§3.2)
 * signedPrekeyId u32
 * hasOneTime u8 (0|1) [ oneTimePrekeyId u32 ]
 * hasPq      u8 (0|1) [ pqPrekeyId u32 | pqKind u8 | kemCiphertext[1088] ]
 * baseKey[32]                                    EK_A
 * message        bytes32                         a RatchetMessage (§6.4)
 * ```
 *
 * @module
 */
import type { X25519PublicKey } from '@deadbolt/spec';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Len, Limits, MessageType, PqPrekeyKind, WIRE_VERSION } from './constants.js';
import { decodeDeviceCertificate, encodeDeviceCertificate, readVersion, type DeviceCertificate } from './device-certificate.js';

/** Which PQ prekey the initiator encapsulated to, and the KEM ciphertext. */
export interface PrekeyMessagePq {
  readonly id: number;
  readonly kind: number;
  readonly ciphertext: Uint8Array;
}

/** A decoded PQXDH initial message. */
export interface PrekeyMessage {
  readonly certificate: DeviceCertificate;
  readonly signedPrekeyId: number;
  readonly oneTimePrekeyId?: number;
  readonly pq?: PrekeyMessagePq;
  readonly baseKey: X25519PublicKey;
  /** The encoded inner ratchet message. */
  readonly message: Uint8Array;
}

const STRUCTURE = 'PrekeyMessage';

/** Encodes an initial message (§5.3). */
export function encodePrekeyMessage(m: PrekeyMessage): Uint8Array {
  const w = new ByteWriter(1400 + m.message.length)
    .u8(WIRE_VERSION)
    .u8(MessageType.PREKEY)
    .bytes16(encodeDeviceCertificate(m.certificate))
    .u32(m.signedPrekeyId);
  if (m.oneTimePrekeyId !== undefined) w.u8(1).u32(m.oneTimePrekeyId);
  else w.u8(0);
  if (m.pq) w.u8(1).u32(m.pq.id).u8(m.pq.kind).fixed(m.pq.ciphertext, Len.mlkemCiphertext);
  else w.u8(0);
  return w.fixed(m.baseKey, Len.key).bytes32(m.message).finish();
}

/** Decodes an initial message. Throws `CodecError` or `UNSUPPORTED_VERSION`. */
export function decodePrekeyMessage(bytes: Uint8Array): PrekeyMessage {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxPrekeyMessage);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.PREKEY]);
  const certAt = r.offset;
  const certBytes = r.bytes16('certificate', Limits.maxCertificate);
  let certificate: DeviceCertificate;
  try {
    certificate = decodeDeviceCertificate(certBytes);
  } catch {
    throw r.fail('certificate', 'invalid certificate', certAt);
  }
  const signedPrekeyId = r.u32('signedPrekeyId');
  const oneTimePrekeyId = r.bool('hasOneTime') ? r.u32('oneTimePrekeyId') : undefined;
  let pq: PrekeyMessagePq | undefined;
  if (r.bool('hasPq')) {
    pq = {
      id: r.u32('pq.id'),
      kind: r.enumU8('pq.kind', [PqPrekeyKind.ONE_TIME, PqPrekeyKind.LAST_RESORT]),
      ciphertext: r.fixed('pq.ciphertext', Len.mlkemCiphertext),
    };
  }
  const baseKey = r.fixed('baseKey', Len.key) as X25519PublicKey;
  const message = r.bytes32('message', Limits.maxRatchetMessage);
  r.end();
  return {
    certificate,
    signedPrekeyId,
    ...(oneTimePrekeyId !== undefined ? { oneTimePrekeyId } : {}),
    ...(pq ? { pq } : {}),
    baseKey,
    message,
  };
}

/**
 * The message type of an encoded pairwise message, read from its first two bytes, or
 * `undefined` if they are not a v1 pairwise type. Cheap: used to dispatch and to refuse
 * group ciphertexts on the pairwise path before any crypto (SECURITY.md C22).
 */
export function peekMessageType(bytes: Uint8Array): number | undefined {
  if (bytes.length < 2 || bytes[0] !== WIRE_VERSION) return undefined;
  const t = bytes[1];
  return t === MessageType.PREKEY || t === MessageType.RATCHET ? t : undefined;
}
