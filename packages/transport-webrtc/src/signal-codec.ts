/**
 * The WebRTC signalling messages: the opaque payload of core's SIGNAL content
 * (docs/protocol.md §11.1), so every one travels sealed with the pairwise session through
 * the relay, which can neither read, change nor forge it.
 *
 * ```
 * Signal = version u8 (=2) | type u8 | connectionId[16] | sequence u64 | body
 * type 0x01 OFFER:  sdp bytes16 (UTF-8)   the offerer's complete description (candidates included)
 * type 0x02 ANSWER: sdp bytes16 (UTF-8)   the answerer's complete description
 * type 0x03 BYE:    [floor u64]           "I closed, or do not know, this connection"
 *                                         (+ floor: "I hold a signal of yours with this sequence")
 * ```
 *
 * `connectionId` is 16 random bytes the offerer picks per attempt; an ANSWER or BYE names
 * the attempt it belongs to, so a stale signal (one that waited in a mailbox while its
 * recipient was offline) can never be mistaken for the current one. When both devices
 * offer at once ("glare"), the offer with the lower `connectionId` (bytewise) is kept by
 * both.
 *
 * `sequence` orders the signals of one sending device: it strictly increases from one
 * signal to the next (the sender's clock in milliseconds, pushed past the last value it
 * used), so it keeps increasing across restarts of the sender unless its clock goes back.
 * It is inside the sealed payload, so the relay can neither change it nor forge it. An
 * OFFER whose sequence is not above that of the peer's signal that set up the current
 * link (its offer, or its answer to ours) is stale, an old offer replayed or delivered
 * late, and is ignored: it never replaces a working link (hostile review, finding 4).
 * Sequences are only ever compared with other sequences of the same sender, so clocks of
 * different devices need not agree.
 *
 * A sender whose clock went back (or that restarted with an earlier clock) would have its
 * offers ignored while the peer holds a link set up by a signal of a higher sequence,
 * however dead that link is (hostile review 2, finding 3). So the peer answers such an
 * offer, stale by sequence only, with a BYE naming it that carries `floor`, the sequence
 * it holds; the sender, if that offer is its current attempt, sends every later signal to
 * that peer above `floor`, and its next offer replaces the old link. An old offer
 * delivered late is not its sender's current attempt: the sender ignores the BYE, and the
 * working link stays. `floor` is optional (a BYE without it is 8 bytes shorter), so a
 * plain BYE is what it always was; a peer of an earlier release ignores a BYE with one as
 * malformed, which only leaves its attempt to time out.
 *
 * Version 1 (no `sequence`) is refused: such signals are ignored like any malformed one,
 * and the two devices keep using the relay.
 *
 * Descriptions are sent whole, once ICE gathering finished (or its time bound passed), not
 * trickled: one sealed message each way per attempt.
 *
 * @module
 */
import { ByteReader, ByteWriter, UsageError } from '@deadbolt/spec';

/** The signalling protocol version. */
export const SIGNAL_VERSION = 2;
/** Bytes of a connection id. */
export const CONNECTION_ID_LENGTH = 16;
/** The longest description carried (core's SIGNAL payload holds 65,535 bytes with the header). */
export const MAX_SDP_BYTES = 60_000;

const TYPES = { offer: 0x01, answer: 0x02, bye: 0x03 } as const;
const STRUCTURE = 'Signal';

/** A decoded signalling message. `sequence` strictly increases from one signal of a device to its next. */
export type Signal =
  | { readonly type: 'offer'; readonly connectionId: Uint8Array; readonly sequence: number; readonly sdp: string }
  | { readonly type: 'answer'; readonly connectionId: Uint8Array; readonly sequence: number; readonly sdp: string }
  | { readonly type: 'bye'; readonly connectionId: Uint8Array; readonly sequence: number; readonly floor?: number };

/**
 * Encodes a signalling message.
 *
 * @example
 * ```ts
 * const payload = encodeSignal({ type: 'offer', connectionId, sequence: nextSequence(), sdp: pc.localDescription.sdp });
 * ```
 */
export function encodeSignal(signal: Signal): Uint8Array {
  if (!Number.isSafeInteger(signal.sequence) || signal.sequence < 0) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'signal sequence must be an integer in [0, 2^53)', details: { field: 'sequence', expected: 'an integer in [0, 2^53)' } });
  }
  const w = new ByteWriter(64).u8(SIGNAL_VERSION).u8(TYPES[signal.type]).fixed(signal.connectionId, CONNECTION_ID_LENGTH).u64(signal.sequence);
  if (signal.type === 'bye') {
    if (signal.floor === undefined) return w.finish();
    if (!Number.isSafeInteger(signal.floor) || signal.floor < 0) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'signal floor must be an integer in [0, 2^53)', details: { field: 'floor', expected: 'an integer in [0, 2^53)' } });
    }
    return w.u64(signal.floor).finish();
  }
  const sdp = new TextEncoder().encode(signal.sdp);
  if (sdp.length > MAX_SDP_BYTES) {
    throw new UsageError('INVALID_ARGUMENT', { message: `session description of ${sdp.length} bytes over ${MAX_SDP_BYTES}`, details: { field: 'sdp', expected: `at most ${MAX_SDP_BYTES} bytes` } });
  }
  return w.bytes16(sdp).finish();
}

/**
 * Decodes a signalling message. Throws `CodecError` (naming the field and offset) on
 * anything malformed, oversized or with trailing bytes.
 *
 * @example
 * ```ts
 * const signal = decodeSignal(payload);
 * if (signal.type === 'answer') await pc.setRemoteDescription({ type: 'answer', sdp: signal.sdp });
 * ```
 */
export function decodeSignal(bytes: Uint8Array): Signal {
  const r = new ByteReader(bytes, STRUCTURE, 2 + CONNECTION_ID_LENGTH + 8 + 2 + MAX_SDP_BYTES);
  r.enumU8('version', [SIGNAL_VERSION]);
  const type = r.enumU8('type', [TYPES.offer, TYPES.answer, TYPES.bye]);
  const connectionId = r.fixed('connectionId', CONNECTION_ID_LENGTH);
  const sequence = r.u64('sequence');
  if (type === TYPES.bye) {
    if (r.remaining === 0) return { type: 'bye', connectionId, sequence };
    const floor = r.u64('floor');
    r.end();
    return { type: 'bye', connectionId, sequence, floor };
  }
  const at = r.offset;
  const raw = r.bytes16('sdp', MAX_SDP_BYTES);
  r.end();
  let sdp: string;
  try {
    sdp = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw r.fail('sdp', 'malformed UTF-8', at);
  }
  // A description is printable text and line breaks; anything else is refused here.
  if (/[^\t\r\n\x20-\x7e]/.test(sdp)) throw r.fail('sdp', 'characters outside printable ASCII', at);
  return { type: type === TYPES.offer ? 'offer' : 'answer', connectionId, sequence, sdp };
}
