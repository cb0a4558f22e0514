/**
 * The relay protocol codec (docs/relay-protocol.md §3): every frame kind round-trips; any
 * truncation, trailing byte, count or size over its bound is a `CodecError` naming the
 * field; and the document's frame, error and limit tables match the code.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  address,
  ByteWriter,
  decodeRelayFrame,
  encodeRelayFrame,
  isDeadboltError,
  PROVISION_CHANNEL_BYTES,
  RELAY_ERROR_CODES,
  RELAY_FRAME_KINDS,
  RELAY_LIMITS,
  type RelayFrame,
} from '../src/index.js';

const bob = address('bob', 'laptop');
const carol = address('carol.c', 'phone-2');
const bytes = (n: number, fill = 7): Uint8Array => new Uint8Array(n).fill(fill);
const channel = bytes(PROVISION_CHANNEL_BYTES, 0xc1);

/** One frame of every kind, as the decoder returns it (optional fields filled in). */
const SAMPLES: Record<RelayFrame['kind'], RelayFrame> = {
  hello: { kind: 'hello', relayId: 'relay.example', challenge: bytes(32, 1), serverTime: 1_700_000_000_000, maxMessage: RELAY_LIMITS.maxMessage },
  auth: { kind: 'auth', certificate: bytes(180, 2), signature: bytes(64, 3), challenge: bytes(32, 1), token: 'tøken' },
  'auth-ok': { kind: 'auth-ok', sessionToken: 'abc_DEF-1', oneTimePrekeys: 7, pqPrekeys: 2 },
  send: {
    kind: 'send',
    messages: [
      { to: bob, listVersion: 0, frame: bytes(10, 4) },
      { to: carol, listVersion: 0xffffffff, frame: new Uint8Array(0) },
    ],
  },
  'send-shared': {
    kind: 'send-shared',
    recipients: [
      { to: bob, listVersion: 3 },
      { to: carol, listVersion: 0 },
    ],
    frame: bytes(300, 5),
  },
  deliver: { kind: 'deliver', messages: [{ id: 'm-1', from: bob, receivedAt: 12, frame: bytes(5, 6) }] },
  fetch: { kind: 'fetch', waitMs: 30_000, max: 100 },
  ack: { kind: 'ack', ids: ['a', 'b'] },
  'publish-prekeys': { kind: 'publish-prekeys', upload: bytes(2000, 8) },
  'fetch-bundles': { kind: 'fetch-bundles', userId: 'bob', skip: ['phone', 'laptop.2'] },
  bundles: { kind: 'bundles', bundles: [bytes(1500, 9), bytes(1400, 10)], deviceList: bytes(300, 11) },
  'publish-device-list': { kind: 'publish-device-list', deviceList: bytes(RELAY_LIMITS.maxDeviceList, 12) },
  'provision-put': { kind: 'provision-put', channel, sealed: bytes(RELAY_LIMITS.maxProvisionBlob, 13) },
  'provision-take': { kind: 'provision-take', channel, waitMs: RELAY_LIMITS.maxProvisionWaitMs },
  provision: { kind: 'provision', sealed: bytes(900, 14) },
  ok: { kind: 'ok' },
  error: { kind: 'error', code: 'REVOKED', retryAfterMs: 0, message: 'the device is not in its list' },
  'prekeys-low': { kind: 'prekeys-low', oneTimePrekeys: 3, pqPrekeys: 9 },
  'device-mismatch': {
    kind: 'device-mismatch',
    users: [
      { userId: 'bob', listVersion: 4 },
      { userId: 'carol.c', listVersion: 0 },
    ],
  },
};

function decodeError(input: Uint8Array): { field: string; offset: number; reason: string } {
  try {
    decodeRelayFrame(input);
  } catch (e) {
    if (isDeadboltError(e, 'DECODE_FAILED')) return e.details;
    throw e;
  }
  throw new Error('decoded, but expected a CodecError');
}

/** A frame with a hand-written body, for inputs the encoder refuses to make. */
function raw(kind: RelayFrame['kind'], body: (w: ByteWriter) => void): Uint8Array {
  const w = new ByteWriter().u8(1).u8(RELAY_FRAME_KINDS[kind]).u32(9);
  body(w);
  return w.finish();
}

describe('round trips', () => {
  test('the samples cover every frame kind', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(RELAY_FRAME_KINDS).sort());
  });

  for (const [kind, frame] of Object.entries(SAMPLES)) {
    test(`${kind}: decode(encode(frame)) is the frame, with its request id; re-encoding gives the same bytes`, () => {
      const encoded = encodeRelayFrame(0xfffffffe, frame);
      expect(encoded[1]).toBe(RELAY_FRAME_KINDS[frame.kind]);
      const decoded = decodeRelayFrame(encoded);
      expect(decoded).toEqual({ requestId: 0xfffffffe, frame });
      expect(encodeRelayFrame(0xfffffffe, decoded.frame)).toEqual(encoded);
    });
  }

  test('an absent listVersion is sent as 0 (the sender knows no list)', () => {
    const { frame } = decodeRelayFrame(encodeRelayFrame(1, { kind: 'send', messages: [{ to: bob, frame: bytes(1) }] }));
    expect(frame).toEqual({ kind: 'send', messages: [{ to: bob, listVersion: 0, frame: bytes(1) }] });
    const shared = decodeRelayFrame(encodeRelayFrame(1, { kind: 'send-shared', recipients: [{ to: bob }], frame: bytes(1) })).frame;
    expect(shared).toEqual({ kind: 'send-shared', recipients: [{ to: bob, listVersion: 0 }], frame: bytes(1) });
  });

  test('FETCH_BUNDLES: no skip encodes as the older form (no count), which decodes as skipping nothing; an explicit zero count too; bad skips are refused', () => {
    const none = encodeRelayFrame(9, { kind: 'fetch-bundles', userId: 'bob' });
    expect(none).toEqual(raw('fetch-bundles', (w) => w.string8('bob')));
    expect(encodeRelayFrame(9, { kind: 'fetch-bundles', userId: 'bob', skip: [] })).toEqual(none);
    expect(decodeRelayFrame(none).frame).toEqual({ kind: 'fetch-bundles', userId: 'bob', skip: [] });
    expect(decodeRelayFrame(raw('fetch-bundles', (w) => w.string8('bob').u16(0))).frame).toEqual({ kind: 'fetch-bundles', userId: 'bob', skip: [] });
    expect(decodeRelayFrame(raw('fetch-bundles', (w) => w.string8('bob'))).frame).toEqual({ kind: 'fetch-bundles', userId: 'bob', skip: [] });
    expect(decodeError(raw('fetch-bundles', (w) => w.string8('bob').u16(RELAY_LIMITS.maxBundles + 1)))).toMatchObject({ field: 'skip', reason: `count ${RELAY_LIMITS.maxBundles + 1} over ${RELAY_LIMITS.maxBundles}` });
    expect(decodeError(raw('fetch-bundles', (w) => w.string8('bob').u16(1).string8('no spaces')))).toMatchObject({ field: 'skip[0]', reason: 'invalid device id' });
    expect(decodeError(raw('fetch-bundles', (w) => w.string8('bob').u16(2).string8('a')))).toMatchObject({ field: 'skip[1]' });
  });

  test('an empty deviceList in BUNDLES and an empty PROVISION mean "none"', () => {
    expect(decodeRelayFrame(encodeRelayFrame(1, { kind: 'bundles', bundles: [], deviceList: undefined })).frame).toEqual({ kind: 'bundles', bundles: [], deviceList: undefined });
    expect(decodeRelayFrame(encodeRelayFrame(1, { kind: 'provision', sealed: undefined })).frame).toEqual({ kind: 'provision', sealed: undefined });
  });

  test('property: SEND, SEND_SHARED and DEVICE_MISMATCH round-trip for any ids, versions and frames', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9._@:+-]{1,64}$/);
    const addr = fc.record({ userId: id, deviceId: id }).map((a) => address(a.userId, a.deviceId));
    const version = fc.integer({ min: 0, max: 0xffffffff });
    const frame = fc.uint8Array({ maxLength: 64 });
    fc.assert(
      fc.property(fc.array(fc.record({ to: addr, listVersion: version, frame }), { maxLength: 20 }), (messages) => {
        const f: RelayFrame = { kind: 'send', messages };
        expect(decodeRelayFrame(encodeRelayFrame(3, f)).frame).toEqual(f);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.record({ to: addr, listVersion: version }), { maxLength: 20 }), frame, (recipients, bytesOf) => {
        const f: RelayFrame = { kind: 'send-shared', recipients, frame: bytesOf };
        expect(decodeRelayFrame(encodeRelayFrame(3, f)).frame).toEqual(f);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.record({ userId: id, listVersion: version }), { maxLength: 20 }), (users) => {
        const f: RelayFrame = { kind: 'device-mismatch', users };
        expect(decodeRelayFrame(encodeRelayFrame(3, f)).frame).toEqual(f);
      }),
    );
  });
});

describe('malformed input is a CodecError naming the field', () => {
  for (const [kind, frame] of Object.entries(SAMPLES)) {
    test(`${kind}: every truncation and a trailing byte are refused`, () => {
      const encoded = encodeRelayFrame(5, frame);
      // Every strict prefix (big samples: the header, then a stride through the body, then the tail).
      const cuts = new Set<number>();
      for (let n = 0; n < Math.min(encoded.length, 64); n++) cuts.add(n);
      for (let n = 64; n < encoded.length; n += 97) cuts.add(n);
      for (let n = Math.max(0, encoded.length - 64); n < encoded.length; n++) cuts.add(n);
      // One documented exception: FETCH_BUNDLES cut right after its user id is the older
      // request without `skip` (tested above), which stays valid.
      const olderForm = kind === 'fetch-bundles' ? 6 + 1 + 'bob'.length : -1;
      for (const n of cuts) if (n !== olderForm) expect(() => decodeRelayFrame(encoded.subarray(0, n)), `prefix of ${n} bytes`).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
      const longer = new Uint8Array(encoded.length + 1);
      longer.set(encoded);
      expect(decodeError(longer).reason).toMatch(/trailing/);
    });
  }

  test('SEND_SHARED with more than 1,000 recipients', () => {
    const input = raw('send-shared', (w) => w.u16(RELAY_LIMITS.maxRecipients + 1));
    expect(decodeError(input)).toMatchObject({ field: 'count', offset: 6 });
  });

  test('SEND_SHARED and SEND frames over the message limit', () => {
    const shared = raw('send-shared', (w) => w.u16(1).string8('bob').string8('laptop').u32(0).u32(RELAY_LIMITS.maxMessage + 1));
    expect(decodeError(shared)).toMatchObject({ field: 'frame' });
    const send = raw('send', (w) => w.u16(1).string8('bob').string8('laptop').u32(1).u32(RELAY_LIMITS.maxMessage + 1));
    expect(decodeError(send)).toMatchObject({ field: 'frame' });
  });

  test('SEND_SHARED naming an invalid address', () => {
    const input = raw('send-shared', (w) => w.u16(1).string8('b/ob').string8('laptop').u32(0).bytes32(bytes(1)));
    expect(decodeError(input)).toMatchObject({ field: 'to', reason: 'invalid address' });
  });

  test('a device list over 4,303 bytes, in BUNDLES or PUBLISH_DEVICE_LIST; an empty one published', () => {
    expect(decodeError(raw('bundles', (w) => w.u16(0).bytes16(bytes(RELAY_LIMITS.maxDeviceList + 1))))).toMatchObject({ field: 'deviceList' });
    expect(decodeError(raw('publish-device-list', (w) => w.bytes16(bytes(RELAY_LIMITS.maxDeviceList + 1))))).toMatchObject({ field: 'deviceList' });
    expect(decodeError(raw('publish-device-list', (w) => w.bytes16(new Uint8Array(0))))).toMatchObject({ field: 'deviceList', reason: 'empty' });
  });

  test('a sealed blob over 8 KiB, or empty in PROVISION_PUT', () => {
    expect(decodeError(raw('provision-put', (w) => w.fixed(channel, 16).bytes16(bytes(RELAY_LIMITS.maxProvisionBlob + 1))))).toMatchObject({ field: 'sealed' });
    expect(decodeError(raw('provision-put', (w) => w.fixed(channel, 16).bytes16(new Uint8Array(0))))).toMatchObject({ field: 'sealed', reason: 'empty' });
    expect(decodeError(raw('provision', (w) => w.bytes16(bytes(RELAY_LIMITS.maxProvisionBlob + 1))))).toMatchObject({ field: 'sealed' });
  });

  test('a PROVISION_TAKE wait over 30 s', () => {
    expect(decodeError(raw('provision-take', (w) => w.fixed(channel, 16).u32(RELAY_LIMITS.maxProvisionWaitMs + 1)))).toMatchObject({ field: 'waitMs', offset: 22 });
  });

  test('DEVICE_MISMATCH with too many users or an invalid user id', () => {
    expect(decodeError(raw('device-mismatch', (w) => w.u16(RELAY_LIMITS.maxMismatchUsers + 1)))).toMatchObject({ field: 'count' });
    expect(decodeError(raw('device-mismatch', (w) => w.u16(1).string8('').u32(1)))).toMatchObject({ field: 'userId', reason: 'invalid user id' });
  });

  test('an unknown error code, while REVOKED is known', () => {
    expect(decodeError(raw('error', (w) => w.string8('NOPE').u32(0).bytes16(new Uint8Array(0))))).toMatchObject({ field: 'code' });
    expect(decodeRelayFrame(raw('error', (w) => w.string8('REVOKED').u32(0).bytes16(new Uint8Array(0)))).frame).toMatchObject({ code: 'REVOKED' });
  });

  test('the encoder refuses a channel of the wrong length', () => {
    expect(() => encodeRelayFrame(1, { kind: 'provision-take', channel: bytes(15), waitMs: 0 })).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});

describe('docs/relay-protocol.md matches the code', () => {
  const doc = readFileSync(new URL('../../../docs/relay-protocol.md', import.meta.url), 'utf8');
  const section = (title: string): string => {
    const start = doc.indexOf(title);
    expect(start, title).toBeGreaterThan(-1);
    const next = doc.indexOf('\n## ', start + title.length);
    return doc.slice(start, next === -1 ? undefined : next);
  };

  test('§3 lists exactly the frame kinds, with their bytes', () => {
    const rows = [...section('## 3. Frames').matchAll(/^\| 0x([0-9a-f]{2}) \| ([A-Z_]+) \|/gm)].map((m) => [m[2]!.toLowerCase().replace(/_/g, '-'), parseInt(m[1]!, 16)]);
    expect(Object.fromEntries(rows)).toEqual({ ...RELAY_FRAME_KINDS });
  });

  test('§4 lists exactly the error codes', () => {
    const codes = [...section('## 4. Errors').matchAll(/^\| ([A-Z_]+) \|/gm)].map((m) => m[1]);
    expect(codes).toEqual([...RELAY_ERROR_CODES]);
  });

  test('§5 states the codec limits', () => {
    const limits = section('## 5. Limits');
    const row = (label: string): string => {
      const m = limits.match(new RegExp(`^\\| ${label}[^|]* \\| ([^|]+) \\|`, 'm'));
      expect(m, label).not.toBeNull();
      return m![1]!.trim();
    };
    const num = (s: string): number => Number(s.replace(/,/g, '').split(' ')[0]);
    expect(num(row('recipients per SEND'))).toBe(RELAY_LIMITS.maxRecipients);
    expect(num(row('device list'))).toBe(RELAY_LIMITS.maxDeviceList);
    expect(num(row('sealed provisioning blob'))).toBe(RELAY_LIMITS.maxProvisionBlob);
    expect(num(row('PROVISION_TAKE wait')) * 1000).toBe(RELAY_LIMITS.maxProvisionWaitMs);
    expect(num(row('long-poll wait')) * 1000).toBe(RELAY_LIMITS.maxWaitMs);
  });
});
