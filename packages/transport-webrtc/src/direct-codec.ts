/**
 * The framing on a direct data channel. What it carries are the same end-to-end encrypted
 * message frames the relay would carry (already sealed by core); this framing only adds
 * what delivery needs: frame ids, chunking (browsers and libdatachannel interoperate
 * reliably only up to 16 KiB per data channel message, and a frame may be 280 KiB), and
 * acknowledgements.
 *
 * ```
 * DirectMessage = version u8 (=1) | type u8 | frameId u32 | body
 * type 0x01 DATA:     listVersion u32 | index u16 | count u16 | chunk (the rest: up to 16,370 bytes)
 * type 0x02 RECEIVED: (no body)   every chunk of the frame arrived; it waits for the handler
 * type 0x03 ACK:      (no body)   the handler resolved: the frame is processed (and persisted)
 * type 0x04 NACK:     (no body)   the frame was not processed: send it through the relay
 * ```
 *
 * The channel is reliable and ordered, and each side writes a frame's chunks one after
 * another, so chunks arrive in order: index 0..count-1 of one frame, frame ids increasing
 * by one from 1, every chunk of a frame with the same `listVersion`. Anything else is a
 * protocol violation and closes the connection.
 *
 * `listVersion` is the version of the recipient user's device list the sender named for
 * this frame (what the relay checks on SEND, docs/relay-protocol.md): a receiver holding
 * another version refuses the frame (NACK), so that it goes through the relay, which
 * refuses a stale one with DEVICE_MISMATCH and so tells the sender to refresh.
 *
 * @module
 */
import { ByteReader, ByteWriter } from '@deadbolt/spec';

/** The direct framing version. */
export const DIRECT_VERSION = 1;
/** The largest data channel message this transport writes (the portable size, RFC 8831 §6.6). */
export const MAX_CHANNEL_MESSAGE = 16 * 1024;
const DATA_HEADER = 1 + 1 + 4 + 4 + 2 + 2;
/** The largest chunk of a frame in one DATA message. */
export const MAX_CHUNK = MAX_CHANNEL_MESSAGE - DATA_HEADER;

const TYPES = { data: 0x01, received: 0x02, ack: 0x03, nack: 0x04 } as const;
const STRUCTURE = 'DirectMessage';

/** A decoded message of the direct framing. */
export type DirectMessage =
  | { readonly type: 'data'; readonly frameId: number; readonly listVersion: number; readonly index: number; readonly count: number; readonly chunk: Uint8Array }
  | { readonly type: 'received' | 'ack' | 'nack'; readonly frameId: number };

/**
 * Encodes one message of the direct framing.
 *
 * @example
 * ```ts
 * channel.send(encodeDirect({ type: 'ack', frameId: 7 }));
 * ```
 */
export function encodeDirect(m: DirectMessage): Uint8Array {
  const w = new ByteWriter(m.type === 'data' ? DATA_HEADER + m.chunk.length : 6).u8(DIRECT_VERSION).u8(TYPES[m.type]).u32(m.frameId);
  if (m.type !== 'data') return w.finish();
  w.u32(m.listVersion).u16(m.index).u16(m.count);
  return w.fixed(m.chunk, m.chunk.length).finish();
}

/**
 * Splits a frame into the DATA messages that carry it (at least one, also for an empty frame).
 *
 * @example
 * ```ts
 * for (const message of frameToDirect(7, 3, frame)) channel.send(message);
 * ```
 */
export function frameToDirect(frameId: number, listVersion: number, frame: Uint8Array): Uint8Array[] {
  const count = Math.max(1, Math.ceil(frame.length / MAX_CHUNK));
  const out: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    out.push(encodeDirect({ type: 'data', frameId, listVersion, index, count, chunk: frame.subarray(index * MAX_CHUNK, (index + 1) * MAX_CHUNK) }));
  }
  return out;
}

/**
 * Decodes one message of the direct framing. Throws `CodecError` (naming field and
 * offset) on anything malformed, oversized or with trailing bytes.
 *
 * @example
 * ```ts
 * const m = decodeDirect(new Uint8Array(event.data));
 * if (m.type === 'ack') settle(m.frameId);
 * ```
 */
export function decodeDirect(bytes: Uint8Array): DirectMessage {
  const r = new ByteReader(bytes, STRUCTURE, MAX_CHANNEL_MESSAGE);
  r.enumU8('version', [DIRECT_VERSION]);
  const type = r.enumU8('type', [TYPES.data, TYPES.received, TYPES.ack, TYPES.nack]);
  const idAt = r.offset;
  const frameId = r.u32('frameId');
  if (frameId === 0) throw r.fail('frameId', 'zero', idAt);
  if (type !== TYPES.data) {
    r.end();
    return { type: type === TYPES.received ? 'received' : type === TYPES.ack ? 'ack' : 'nack', frameId };
  }
  const listVersion = r.u32('listVersion');
  const indexAt = r.offset;
  const index = r.u16('index');
  const countAt = r.offset;
  const count = r.u16('count');
  if (count === 0) throw r.fail('count', 'zero', countAt);
  if (index >= count) throw r.fail('index', `${index} not below count ${count}`, indexAt);
  const chunk = r.fixed('chunk', r.remaining);
  return { type: 'data', frameId, listVersion, index, count, chunk };
}
