/** The signalling messages and the direct-channel framing: round trips, and every malformed input refused with the field and offset. */
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { decodeDirect, decodeSignal, encodeDirect, encodeSignal, type DirectMessage, type Signal } from '../../src/index.js';
import { MAX_CHANNEL_MESSAGE, MAX_CHUNK, frameToDirect } from '../../src/direct-codec.js';
import { MAX_SDP_BYTES } from '../../src/signal-codec.js';

const id = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const SDP = 'v=0\r\no=- 1 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n';

/** The CodecError `f` throws: its field and offset. */
function codecError(f: () => unknown): { field: string; offset: number } {
  try {
    f();
  } catch (e) {
    if (isDeadboltError(e, 'DECODE_FAILED')) return { field: e.details.field, offset: e.details.offset };
    throw e;
  }
  throw new Error('expected a CodecError, but it decoded');
}

describe('Signal (signal-codec.ts)', () => {
  test.each<Signal>([
    { type: 'offer', connectionId: id, sequence: 1_700_000_000_123, sdp: SDP },
    { type: 'answer', connectionId: id, sequence: 0, sdp: SDP },
    { type: 'bye', connectionId: id, sequence: Number.MAX_SAFE_INTEGER },
    { type: 'bye', connectionId: id, sequence: 5, floor: 1_700_000_000_999 },
  ])('round trip: $type', (signal) => {
    const bytes = encodeSignal(signal);
    expect(bytes[0]).toBe(2);
    expect(decodeSignal(bytes)).toEqual(signal);
  });

  test('layout: version 2, type, connection id, sequence (u64), then the length-prefixed description', () => {
    const bytes = encodeSignal({ type: 'answer', connectionId: id, sequence: 0x0102_0304_0506, sdp: 'v=0\r\n' });
    expect([...bytes.subarray(0, 2)]).toEqual([2, 2]);
    expect([...bytes.subarray(2, 18)]).toEqual([...id]);
    expect([...bytes.subarray(18, 26)]).toEqual([0, 0, 1, 2, 3, 4, 5, 6]);
    expect([...bytes.subarray(26, 28)]).toEqual([0, 5]);
    expect(new TextDecoder().decode(bytes.subarray(28))).toBe('v=0\r\n');
    expect([...encodeSignal({ type: 'bye', connectionId: id, sequence: 7 })]).toEqual([2, 3, ...id, 0, 0, 0, 0, 0, 0, 0, 7]);
    // A BYE may carry the sequence its sender holds (stale offers, review 2 finding 3): 8 more bytes.
    expect([...encodeSignal({ type: 'bye', connectionId: id, sequence: 7, floor: 0x0102 })]).toEqual([2, 3, ...id, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 1, 2]);
  });

  test('a sequence that is not an integer in [0, 2^53) is not encoded, nor decoded', () => {
    for (const sequence of [-1, 1.5, Number.NaN, 2 ** 53]) {
      let error: unknown;
      try {
        encodeSignal({ type: 'bye', connectionId: id, sequence });
      } catch (e) {
        error = e;
      }
      expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field, String(sequence)).toBe('sequence');
      let floorError: unknown;
      try {
        encodeSignal({ type: 'bye', connectionId: id, sequence: 1, floor: sequence });
      } catch (e) {
        floorError = e;
      }
      expect(isDeadboltError(floorError, 'INVALID_ARGUMENT') && floorError.details.field, `floor ${sequence}`).toBe('floor');
    }
    expect(codecError(() => decodeSignal(new Uint8Array([2, 3, ...id, 0, 0x20, 0, 0, 0, 0, 0, 0])))).toEqual({ field: 'sequence', offset: 18 });
    expect(codecError(() => decodeSignal(new Uint8Array([2, 3, ...id, 0, 0, 0])))).toEqual({ field: 'sequence', offset: 18 });
  });

  test('version 1 signals (without a sequence) are refused', () => {
    expect(codecError(() => decodeSignal(new Uint8Array([1, 3, ...id])))).toEqual({ field: 'version', offset: 0 });
  });

  test('malformed input is refused, naming the field and offset', () => {
    const good = encodeSignal({ type: 'offer', connectionId: id, sequence: 42, sdp: SDP });
    const bad = (edit: (b: Uint8Array) => void): Uint8Array => {
      const b = good.slice();
      edit(b);
      return b;
    };
    expect(codecError(() => decodeSignal(bad((b) => (b[0] = 1))))).toEqual({ field: 'version', offset: 0 });
    expect(codecError(() => decodeSignal(bad((b) => (b[1] = 9))))).toEqual({ field: 'type', offset: 1 });
    expect(codecError(() => decodeSignal(good.subarray(0, 10))).field).toBe('connectionId');
    expect(codecError(() => decodeSignal(good.subarray(0, good.length - 1))).field).toBe('sdp');
    expect(codecError(() => decodeSignal(new Uint8Array([...good, 0]))).field).toBe('end');
    // A BYE is followed by nothing or by an 8-byte floor, and nothing after it.
    const bye = encodeSignal({ type: 'bye', connectionId: id, sequence: 1 });
    expect(codecError(() => decodeSignal(new Uint8Array([...bye, 0]))).field).toBe('floor');
    expect(codecError(() => decodeSignal(new Uint8Array([...bye, 0, 0, 0, 0, 0, 0, 0, 1, 0]))).field).toBe('end');
    expect(codecError(() => decodeSignal(new Uint8Array([...bye, 0, 0x20, 0, 0, 0, 0, 0, 0]))).field).toBe('floor');
    // Not UTF-8, and UTF-8 that is not printable text.
    const raw = (sdp: number[]): Uint8Array => new Uint8Array([2, 1, ...id, 0, 0, 0, 0, 0, 0, 0, 1, 0, sdp.length, ...sdp]);
    expect(codecError(() => decodeSignal(raw([0xff, 0xfe])))).toEqual({ field: 'sdp', offset: 26 });
    expect(codecError(() => decodeSignal(raw([0x76, 0x3d, 0x00])))).toEqual({ field: 'sdp', offset: 26 });
    expect(codecError(() => decodeSignal(raw([0xc3, 0xa9])))).toEqual({ field: 'sdp', offset: 26 });
    // Oversize input is refused before parsing.
    expect(codecError(() => decodeSignal(new Uint8Array(MAX_SDP_BYTES + 100))).field).toBe('input');
  });

  test('a description over the limit is not encoded', () => {
    let error: unknown;
    try {
      encodeSignal({ type: 'offer', connectionId: id, sequence: 1, sdp: 'a'.repeat(MAX_SDP_BYTES + 1) });
    } catch (e) {
      error = e;
    }
    expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field).toBe('sdp');
  });
});

describe('DirectMessage (direct-codec.ts)', () => {
  test.each<DirectMessage>([
    { type: 'data', frameId: 1, listVersion: 0, index: 0, count: 1, chunk: Uint8Array.of(1, 2, 3) },
    { type: 'data', frameId: 0xffffffff, listVersion: 0xffffffff, index: 17, count: 18, chunk: new Uint8Array(MAX_CHUNK).fill(7) },
    { type: 'received', frameId: 5 },
    { type: 'ack', frameId: 6 },
    { type: 'nack', frameId: 7 },
  ])('round trip: $type', (m) => {
    const bytes = encodeDirect(m);
    expect(bytes.length).toBeLessThanOrEqual(MAX_CHANNEL_MESSAGE);
    expect(decodeDirect(bytes)).toEqual(m);
  });

  test('a frame is split into chunks of at most 16 KiB messages that reassemble to it', () => {
    for (const size of [0, 1, MAX_CHUNK, MAX_CHUNK + 1, 280 * 1024]) {
      const frame = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 0xff);
      const messages = frameToDirect(9, 4, frame).map(decodeDirect);
      expect(messages.length).toBe(Math.max(1, Math.ceil(size / MAX_CHUNK)));
      const parts: Uint8Array[] = [];
      messages.forEach((m, i) => {
        if (m.type !== 'data') throw new Error('not data');
        expect([m.frameId, m.listVersion, m.index, m.count]).toEqual([9, 4, i, messages.length]);
        parts.push(m.chunk);
      });
      const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        joined.set(p, at);
        at += p.length;
      }
      expect(joined.length).toBe(size);
      expect(joined.every((b, i) => b === frame[i])).toBe(true);
    }
  });

  test('malformed input is refused, naming the field and offset', () => {
    expect(codecError(() => decodeDirect(Uint8Array.of(2, 3, 0, 0, 0, 1)))).toEqual({ field: 'version', offset: 0 });
    expect(codecError(() => decodeDirect(Uint8Array.of(1, 9, 0, 0, 0, 1)))).toEqual({ field: 'type', offset: 1 });
    expect(codecError(() => decodeDirect(Uint8Array.of(1, 3, 0, 0, 0, 0)))).toEqual({ field: 'frameId', offset: 2 });
    expect(codecError(() => decodeDirect(Uint8Array.of(1, 3, 0, 0, 1)))).toEqual({ field: 'frameId', offset: 2 });
    expect(codecError(() => decodeDirect(Uint8Array.of(1, 3, 0, 0, 0, 1, 0))).field).toBe('end');
    expect(codecError(() => decodeDirect(Uint8Array.of(1, 1, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 1)))).toEqual({ field: 'count', offset: 12 });
    expect(codecError(() => decodeDirect(Uint8Array.of(1, 1, 0, 0, 0, 1, 0, 0, 0, 3, 0, 2, 0, 2, 1)))).toEqual({ field: 'index', offset: 10 });
    expect(codecError(() => decodeDirect(Uint8Array.of(1, 1, 0, 0, 0, 1, 0, 0)))).toEqual({ field: 'listVersion', offset: 6 });
    expect(codecError(() => decodeDirect(new Uint8Array(MAX_CHANNEL_MESSAGE + 1))).field).toBe('input');
  });
});
