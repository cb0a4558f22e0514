import { describe, expect, test } from 'vitest';
import {
  RELAY_LIMITS,
  TransportCore,
  acceptHello,
  address,
  createRelayTransport,
  relayMessageLimit,
  requestIdCounter,
  signAuth,
  type RelayCarrier,
  type RelayFrame,
  type RelayRequestOptions,
  type TransportAuth,
} from '../src/index.js';

const bob = address('bob', 'laptop');
const carol = address('carol', 'phone');
const auth: TransportAuth = { certificate: new Uint8Array([1, 2, 3]), sign: async () => new Uint8Array(64) };
const hello: Extract<RelayFrame, { kind: 'hello' }> = { kind: 'hello', relayId: 'relay.example', challenge: new Uint8Array(32).fill(7), serverTime: 0, maxMessage: 1000 };

/** A carrier that records its calls and answers every request with `answer(frame)`. */
function fakeCarrier(answer: (frame: RelayFrame) => RelayFrame = () => ({ kind: 'ok' }), overrides: Partial<RelayCarrier> = {}) {
  const core = new TransportCore(RELAY_LIMITS.maxMessage);
  const requests: { frame: RelayFrame; options: RelayRequestOptions }[] = [];
  const connects: TransportAuth[] = [];
  let waiting = 0;
  const carrier: RelayCarrier = {
    core,
    maxPending: 3,
    pending: () => waiting,
    maxFrameSize: () => 100,
    connecting: () => undefined,
    connect: async (a) => {
      connects.push(a);
      core.setState('connected');
    },
    request: async (frame, options) => {
      requests.push({ frame, options });
      return answer(frame);
    },
    provisionTake: async () => new Uint8Array([9]),
    close: async () => core.close(),
    ...overrides,
  };
  return { core, carrier, requests, connects, transport: createRelayTransport(carrier), setWaiting: (n: number) => (waiting = n) };
}

describe('createRelayTransport: connect', () => {
  test('checks and copies the credentials before the carrier sees them', async () => {
    const { transport, connects } = fakeCarrier();
    for (const bad of [null, {}, { certificate: new Uint8Array(1) }, { ...auth, token: 5 }]) {
      await expect(transport.connect(bad as unknown as TransportAuth)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'auth' } });
    }
    expect(connects).toEqual([]);
    const certificate = new Uint8Array([1, 2, 3]);
    await transport.connect({ ...auth, certificate, token: 't' });
    certificate.fill(0);
    expect(Array.from(connects[0]!.certificate)).toEqual([1, 2, 3]);
    expect(connects[0]!.token).toBe('t');
    expect(transport.state).toBe('connected');
    await transport.connect(auth); // already connected: nothing more
    expect(connects).toHaveLength(1);
  });

  test('returns the attempt in progress, and CLOSED after close', async () => {
    const inProgress = new Promise<void>(() => {});
    const { transport, connects } = fakeCarrier(undefined, { connecting: () => inProgress });
    expect(transport.connect(auth)).toBe(inProgress);
    expect(connects).toEqual([]);
    await transport.close();
    await expect(transport.connect(auth)).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('createRelayTransport: requests', () => {
  test('refuses while idle and when maxPending requests wait; provisionTake needs no connect', async () => {
    const { transport, setWaiting, requests } = fakeCarrier();
    await expect(transport.publishPrekeys(new Uint8Array(1))).rejects.toMatchObject({ code: 'TRANSPORT_FAILED', message: 'publishPrekeys: not connected: call connect() first' });
    expect(Array.from((await transport.provisionTake(new Uint8Array(16), 0))!)).toEqual([9]);
    await transport.connect(auth);
    setWaiting(3);
    await expect(transport.provisionTake(new Uint8Array(16), 0)).rejects.toMatchObject({ code: 'TRANSPORT_FAILED', message: 'provisionTake: too many requests waiting for the relay (at most 3)' });
    await expect(transport.publishDeviceList(new Uint8Array(1))).rejects.toMatchObject({ code: 'TRANSPORT_FAILED', details: { operation: 'publishDeviceList' } });
    expect(requests).toEqual([]);
  });

  test('a PROVISION_TAKE in progress counts against maxPending until it settles', async () => {
    let answerTake: (sealed: Uint8Array | undefined) => void = () => {};
    const { transport, setWaiting } = fakeCarrier(undefined, { provisionTake: () => new Promise((resolve) => (answerTake = resolve)) });
    await transport.connect(auth);
    setWaiting(2);
    const take = transport.provisionTake(new Uint8Array(16), 1000);
    await expect(transport.publishPrekeys(new Uint8Array(1))).rejects.toMatchObject({ message: 'publishPrekeys: too many requests waiting for the relay (at most 3)' });
    answerTake(undefined);
    expect(await take).toBeUndefined();
    await transport.publishPrekeys(new Uint8Array(1));
  });

  test('send: one request per chunk, naming the sole user and the largest frame; a non-OK answer fails', async () => {
    const { transport, requests } = fakeCarrier((frame) => (frame.kind === 'send' && frame.messages.length === 2 ? { kind: 'bundles', bundles: [], deviceList: undefined } : { kind: 'ok' }));
    await transport.connect(auth);
    await transport.send([{ to: bob, frame: new Uint8Array(5) }]);
    expect(requests[0]!.options).toEqual({ operation: 'send', largestFrame: 5, userId: 'bob' });
    await expect(
      transport.send([
        { to: bob, frame: new Uint8Array(2) },
        { to: carol, frame: new Uint8Array(9) },
      ]),
    ).rejects.toMatchObject({ code: 'TRANSPORT_FAILED', message: 'send: the relay answered bundles, expected OK' });
    expect(requests[1]!.options).toEqual({ operation: 'send', largestFrame: 9 });
    await expect(transport.send([{ to: bob, frame: new Uint8Array(101) }])).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
    expect(requests).toHaveLength(2);
  });

  test('sendShared: DEVICE_MISMATCH answers of several requests become one naming every user', async () => {
    let n = 0;
    const { transport, requests } = fakeCarrier(() => ({ kind: 'device-mismatch', users: [{ userId: `u${n++}`, listVersion: 1 }] }));
    await transport.connect(auth);
    const recipients = Array.from({ length: RELAY_LIMITS.maxRecipients + 1 }, (_, i) => ({ to: address(`user${i}`, 'd') }));
    await expect(transport.sendShared(recipients, new Uint8Array(4))).rejects.toMatchObject({
      code: 'DEVICE_MISMATCH',
      details: { users: [{ userId: 'u0', listVersion: 1 }, { userId: 'u1', listVersion: 1 }] },
    });
    expect(requests.map((r) => r.options)).toEqual([
      { operation: 'sendShared', largestFrame: 4 },
      { operation: 'sendShared', largestFrame: 4, userId: `user${RELAY_LIMITS.maxRecipients}` },
    ]);
  });

  test('fetchBundles: checks the user id, copies the answer, and refuses another answer', async () => {
    const bundle = new Uint8Array([1, 2]);
    let answer: RelayFrame = { kind: 'bundles', bundles: [bundle], deviceList: undefined };
    const { transport, requests } = fakeCarrier(() => answer);
    await transport.connect(auth);
    await expect(transport.fetchBundles('a/b')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'userId must be 1-64 characters of [A-Za-z0-9._@:+-]',
      details: { field: 'userId', expected: '1-64 characters of [A-Za-z0-9._@:+-]' },
    });
    const entry = await transport.fetchBundles('bob', { skip: ['phone'] });
    expect(entry.bundles[0]).toEqual(bundle);
    expect(entry.bundles[0]).not.toBe(bundle);
    expect(requests[0]).toEqual({ frame: { kind: 'fetch-bundles', userId: 'bob', skip: ['phone'] }, options: { operation: 'fetchBundles', userId: 'bob' } });
    answer = { kind: 'ok' };
    await expect(transport.fetchBundles('bob')).rejects.toMatchObject({ message: 'fetchBundles: the relay answered ok, expected BUNDLES' });
  });

  test('onFrame and listeners: checked, then the carrier\'s or the core\'s', () => {
    const registered: unknown[] = [];
    const { transport } = fakeCarrier(undefined, { onFrame: (h) => (registered.push(h), () => {}) });
    expect(() => transport.onFrame(undefined as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'handler', expected: 'a function' } }));
    const handler = (): void => {};
    transport.onFrame(handler);
    expect(registered).toEqual([handler]);
    expect(() => transport.onStateChange(5 as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('handshake helpers (docs/relay-protocol.md §2)', () => {
  test('acceptHello: the relay\'s error, another frame, another relay', () => {
    expect(acceptHello(hello, 'relay.example', 'connect')).toBe(hello);
    expect(acceptHello(hello, undefined, 'connect')).toBe(hello);
    expect(() => acceptHello({ kind: 'error', code: 'UNAVAILABLE', retryAfterMs: 0, message: '' }, undefined, 'connect')).toThrow(expect.objectContaining({ code: 'RELAY_REJECTED', details: { code: 'UNAVAILABLE' } }));
    expect(() => acceptHello({ kind: 'ok' }, undefined, 'provisionTake')).toThrow(expect.objectContaining({ code: 'TRANSPORT_FAILED', message: 'provisionTake: expected HELLO, got ok' }));
    expect(() => acceptHello(hello, 'other', 'connect')).toThrow(expect.objectContaining({ message: 'connect: the relay calls itself "relay.example", expected "other"' }));
  });

  test('signAuth: signs the relay id and a copy of the challenge; refuses a signature that is not 64 bytes', async () => {
    const seen: [string, Uint8Array][] = [];
    const frame = await signAuth({ ...auth, token: 'tok', sign: async (relayId, challenge) => (seen.push([relayId, challenge]), new Uint8Array(64).fill(1)) }, hello);
    expect(seen[0]![0]).toBe('relay.example');
    expect(seen[0]![1]).toEqual(hello.challenge);
    expect(seen[0]![1]).not.toBe(hello.challenge);
    expect(frame).toEqual({ kind: 'auth', certificate: auth.certificate, signature: new Uint8Array(64).fill(1), challenge: hello.challenge, token: 'tok' });
    expect((await signAuth(auth, hello)).token).toBe('');
    await expect(signAuth({ ...auth, sign: async () => new Uint8Array(63) }, hello)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'auth.sign() result' } });
  });

  test('relayMessageLimit: the relay may lower the limit, never raise it or make it 0', () => {
    expect(relayMessageLimit(hello)).toBe(1000);
    expect(relayMessageLimit({ ...hello, maxMessage: RELAY_LIMITS.maxMessage + 1 })).toBe(RELAY_LIMITS.maxMessage);
    expect(relayMessageLimit({ ...hello, maxMessage: 0 })).toBe(1);
  });
});

describe('requestIdCounter', () => {
  test('counts from 1, and each counter on its own', () => {
    const a = requestIdCounter();
    const b = requestIdCounter();
    expect([a(), a(), a()]).toEqual([1, 2, 3]);
    expect(b()).toBe(1);
  });
});
