/**
 * The Double Ratchet message (docs/protocol.md §6.4).
 *
 * ```
 * header = version u8 (=1) | type u8 (=0x02) | dh[32] | pn u32 | n u32     (42 bytes)
 * body   = commitment[32] | ChaCha20-Poly1305 ciphertext | tag[16]
 * encoding = header | body bytes32
 * ```
 *
 * The 42 header bytes are authenticated as part of the associated data (§6.3), which
 * binds the version and the message type (SECURITY.md C22).
 *
 * @module
 */
import type { X25519PublicKey } from '@deadbolt/spec';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Len, Limits, MessageType, WIRE_VERSION } from './constants.js';
import { readVersion } from './device-certificate.js';

/** The header of a ratchet message (Double Ratchet §3.4 HEADER). */
export interface RatchetHeader {
  /** The sender's current ratchet public key (DHs). */
  readonly dh: X25519PublicKey;
  /** Number of messages in the sender's previous sending chain. */
  readonly pn: number;
  /** This message's number in the sending chain. */
  readonly n: number;
}

/** A decoded ratchet message. */
export interface RatchetMessage {
  readonly header: RatchetHeader;
  /** The 42 encoded header bytes, exactly as received (they go into the AD). */
  readonly headerBytes: Uint8Array;
  /** commitment | ciphertext | tag. */
  readonly body: Uint8Array;
}

const STRUCTURE = 'RatchetMessage';
export const RATCHET_HEADER_LENGTH = 42;
/** The smallest body: a commitment and a tag around an empty ciphertext. */
export const MIN_BODY = Len.commitment + Len.aeadTag;

/** Encodes a header (the 42 bytes that are also authenticated). */
export function encodeRatchetHeader(h: RatchetHeader): Uint8Array {
  return new ByteWriter(RATCHET_HEADER_LENGTH)
    .u8(WIRE_VERSION)
    .u8(MessageType.RATCHET)
    .fixed(h.dh, Len.key)
    .u32(h.pn)
    .u32(h.n)
    .finish();
}

/** Encodes a message from its already-encoded header and its body. */
export function encodeRatchetMessage(headerBytes: Uint8Array, body: Uint8Array): Uint8Array {
  return new ByteWriter(headerBytes.length + body.length + 4).fixed(headerBytes, RATCHET_HEADER_LENGTH).bytes32(body).finish();
}

/** Decodes a ratchet message. Throws `CodecError` or `UNSUPPORTED_VERSION`. */
export function decodeRatchetMessage(bytes: Uint8Array): RatchetMessage {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxRatchetMessage);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.RATCHET]);
  const header: RatchetHeader = {
    dh: r.fixed('dh', Len.key) as X25519PublicKey,
    pn: r.u32('pn'),
    n: r.u32('n'),
  };
  const bodyAt = r.offset;
  const body = r.bytes32('body', Limits.maxRatchetMessage);
  if (body.length < MIN_BODY) throw r.fail('body', `shorter than ${MIN_BODY} bytes`, bodyAt);
  r.end();
  return { header, headerBytes: bytes.slice(0, RATCHET_HEADER_LENGTH), body };
}
