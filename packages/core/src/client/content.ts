/**
 * What the client puts inside a pairwise plaintext (docs/protocol.md §11.1).
 *
 * ```
 * Content = version u8 (=1) | kind u8 | messageId[16] | sentAt u64 | kind body
 * kind 0x01 DIRECT:     body bytes32                              a message to the recipient's user
 * kind 0x02 SENT_SYNC:  recipientUserId string8 | body bytes32    a copy of a message this user sent,
 *                                                                 for the sender's own other devices
 * kind 0x03 DEVICE_HELLO: (no body)                               a new device announcing itself to its
 *                                                                 user's other devices
 * kind 0x04 SIGNAL:     payload bytes16                           opaque bytes for the transport's
 *                                                                 signalling (WebRTC offers, answers),
 *                                                                 never shown to the app nor stored
 * kind 0x05 GROUP:      payload bytes32                           a group payload (docs/protocol.md §12:
 *                                                                 a change, welcome, sender-key
 *                                                                 distribution, key request or fragment)
 * ```
 *
 * `messageId` is 16 random bytes chosen by the sender; all copies of one message (to each
 * recipient device and each own device) carry the same id.
 *
 * @module
 */
import { userId as toUserId, type UserId } from '@deadbolt/spec';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Limits, WIRE_VERSION } from '../protocol/constants.js';
import { readVersion } from '../protocol/device-certificate.js';

/** Content kinds (§11.1). */
export const ContentKind = Object.freeze({ DIRECT: 0x01, SENT_SYNC: 0x02, DEVICE_HELLO: 0x03, SIGNAL: 0x04, GROUP: 0x05 });

/** The largest SIGNAL payload (§11.1): it is length-prefixed with a u16. */
export const MAX_SIGNAL_PAYLOAD = 0xffff;

/** The largest GROUP payload (§11.1): what fits a pairwise plaintext with the content header. */
export const MAX_GROUP_PAYLOAD = Limits.maxPlaintext - 128;

/** Decoded content. */
export type Content =
  | { readonly kind: 'direct'; readonly messageId: Uint8Array; readonly sentAt: number; readonly body: Uint8Array }
  | { readonly kind: 'sent-sync'; readonly messageId: Uint8Array; readonly sentAt: number; readonly recipient: UserId; readonly body: Uint8Array }
  | { readonly kind: 'device-hello'; readonly messageId: Uint8Array; readonly sentAt: number }
  | { readonly kind: 'signal'; readonly messageId: Uint8Array; readonly sentAt: number; readonly payload: Uint8Array }
  | { readonly kind: 'group'; readonly messageId: Uint8Array; readonly sentAt: number; readonly payload: Uint8Array };

const KIND_BYTE = { direct: ContentKind.DIRECT, 'sent-sync': ContentKind.SENT_SYNC, 'device-hello': ContentKind.DEVICE_HELLO, signal: ContentKind.SIGNAL, group: ContentKind.GROUP } as const;

const STRUCTURE = 'Content';
const MAX_BODY = Limits.maxPlaintext - 128;

/** Encodes content (§11.1). */
export function encodeContent(c: Content): Uint8Array {
  const w = new ByteWriter(64 + ('body' in c ? c.body.length : 'payload' in c ? c.payload.length : 0))
    .u8(WIRE_VERSION)
    .u8(KIND_BYTE[c.kind])
    .fixed(c.messageId, 16)
    .u64(c.sentAt);
  if (c.kind === 'device-hello') return w.finish();
  if (c.kind === 'signal') return w.bytes16(c.payload).finish();
  if (c.kind === 'group') return w.bytes32(c.payload).finish();
  if (c.kind === 'sent-sync') w.string8(c.recipient);
  return w.bytes32(c.body).finish();
}

/** Decodes content. Throws `CodecError`. */
export function decodeContent(bytes: Uint8Array): Content {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxPlaintext);
  readVersion(r, STRUCTURE);
  const kind = r.enumU8('kind', [ContentKind.DIRECT, ContentKind.SENT_SYNC, ContentKind.DEVICE_HELLO, ContentKind.SIGNAL, ContentKind.GROUP]);
  const messageId = r.fixed('messageId', 16);
  const sentAt = r.u64('sentAt');
  if (kind === ContentKind.DEVICE_HELLO) {
    r.end();
    return { kind: 'device-hello', messageId, sentAt };
  }
  if (kind === ContentKind.SIGNAL) {
    const payload = r.bytes16('payload', MAX_SIGNAL_PAYLOAD);
    r.end();
    return { kind: 'signal', messageId, sentAt, payload };
  }
  if (kind === ContentKind.GROUP) {
    const payload = r.bytes32('payload', MAX_GROUP_PAYLOAD);
    r.end();
    return { kind: 'group', messageId, sentAt, payload };
  }
  if (kind === ContentKind.DIRECT) {
    const body = r.bytes32('body', MAX_BODY);
    r.end();
    return { kind: 'direct', messageId, sentAt, body };
  }
  const at = r.offset;
  const raw = r.string8('recipient');
  let recipient: UserId;
  try {
    recipient = toUserId(raw);
  } catch {
    throw r.fail('recipient', 'invalid user id', at);
  }
  const body = r.bytes32('body', MAX_BODY);
  r.end();
  return { kind: 'sent-sync', messageId, sentAt, recipient, body };
}

/** The largest body a message may carry. */
export const MAX_MESSAGE_BODY = MAX_BODY;
