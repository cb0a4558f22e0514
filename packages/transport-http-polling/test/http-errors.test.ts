/**
 * The HTTP adapter's handling of error statuses and retries, against msw (HTTP unit
 * tests only; the conformance suite runs against the real relay).
 */
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { manualTimers, rejectionOf } from '@deadbolt/test-kit';
import { address, decodeRelayFrame, encodeRelayFrame, isDeadboltError, RELAY_LIMITS, type InboundFrame, type RelayFrame, type TransportNotice } from '@deadbolt/spec';
import { createHttpPollingTransport, createTransportAdapter, type HttpPollingTransportOptions } from '../src/index.js';

const BASE = 'http://relay.test';
const bob = address('bob', 'laptop');
const auth = { certificate: new Uint8Array(100), sign: async () => new Uint8Array(64) };

/** A scripted relay: each rpc request gets the next answer for its frame kind. */
function relay(script: Partial<Record<RelayFrame['kind'], ((requestId: number) => Response | Promise<Response>)[]>>) {
  const seen: { kind: string; authorization: string | null; frame: RelayFrame; size: number }[] = [];
  const answer = (requestId: number, frame: RelayFrame): Response =>
    new HttpResponse(encodeRelayFrame(requestId, frame), { headers: { 'content-type': 'application/octet-stream' } });
  const handlers = [
    http.get(`${BASE}/v1/hello`, () => answer(0, { kind: 'hello', relayId: 'test', challenge: new Uint8Array(32), serverTime: 0, maxMessage: 286_720 })),
    http.post(`${BASE}/v1/rpc`, async ({ request }) => {
      const body = new Uint8Array(await request.arrayBuffer());
      const { requestId, frame } = decodeRelayFrame(body);
      seen.push({ kind: frame.kind, authorization: request.headers.get('authorization'), frame, size: body.byteLength });
      const scripted = script[frame.kind]?.shift();
      if (scripted) return scripted(requestId);
      if (frame.kind === 'auth') return answer(requestId, { kind: 'auth-ok', sessionToken: `token-${seen.filter((s) => s.kind === 'auth').length}`, oneTimePrekeys: 100, pqPrekeys: 20 });
      if (frame.kind === 'fetch') return new Promise<Response>(() => undefined); // a long poll that never answers
      return answer(requestId, { kind: 'ok' });
    }),
  ];
  return { handlers, seen, answer };
}

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function transport(options: Partial<HttpPollingTransportOptions> = {}) {
  return createHttpPollingTransport({ url: BASE, backoff: { initialMs: 1, maxMs: 5 }, random: () => 0.5, ...options });
}

const frameResponse = (frame: RelayFrame, init: ResponseInit = {}, requestId = 0): Response =>
  new HttpResponse(encodeRelayFrame(requestId, frame), { ...init, headers: { 'content-type': 'application/octet-stream', ...(init.headers as Record<string, string>) } });
const deliver = (id: string) => (requestId: number) =>
  frameResponse({ kind: 'deliver', messages: [{ id, from: bob, receivedAt: 1, frame: new Uint8Array([1]) }] }, {}, requestId);
const never = (): Promise<Response> => new Promise<Response>(() => undefined);

/** Resolves once `check()` holds, re-checking after each turn of the event loop. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    if (check()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}


describe('HTTP polling transport: statuses and retries', () => {
  test('a 401 makes it authenticate again and retry the request', async () => {
    const r = relay({ send: [() => new HttpResponse(null, { status: 401 })] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]);
    const kinds = r.seen.filter((s) => s.kind !== 'fetch').map((s) => s.kind);
    expect(kinds).toEqual(['auth', 'send', 'auth', 'send']);
    expect(r.seen.filter((s) => s.kind === 'send').map((s) => s.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
    await t.close();
  });

  test('a 429 without a relay frame (a proxy limit) waits for Retry-After, then retries', async () => {
    const r = relay({ send: [() => new HttpResponse(null, { status: 429, headers: { 'retry-after': '0' } })] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]);
    expect(r.seen.filter((s) => s.kind === 'send')).toHaveLength(2);
    await t.close();
  });

  test('a 500 and a network error are retried until the relay answers', async () => {
    const r = relay({ send: [() => new HttpResponse(null, { status: 500 }), () => HttpResponse.error(), () => new HttpResponse(null, { status: 503 })] });
    server.use(...r.handlers);
    const t = transport();
    const states: string[] = [];
    t.onStateChange((s) => states.push(s));
    await t.connect(auth);
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]);
    expect(r.seen.filter((s) => s.kind === 'send')).toHaveLength(4);
    expect(states).toContain('reconnecting');
    await t.close();
  });

  test('relay refusals are typed errors and are not retried', async () => {
    const refuse = (code: 'RATE_LIMITED' | 'UNKNOWN_USER' | 'MAILBOX_FULL', retryAfterMs = 0) => (): Response =>
      new HttpResponse(encodeRelayFrame(0, { kind: 'error', code, retryAfterMs, message: code }), { headers: { 'content-type': 'application/octet-stream' } });
    const r = relay({ send: [refuse('RATE_LIMITED', 1500), refuse('MAILBOX_FULL')], 'fetch-bundles': [refuse('UNKNOWN_USER')] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    let caught: unknown;
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]).catch((e: unknown) => (caught = e));
    expect(isDeadboltError(caught, 'RATE_LIMITED') && caught.details.retryAfterMs).toBe(1500);
    await expect(t.send([{ to: bob, frame: new Uint8Array([1]) }])).rejects.toSatisfy((e) => isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'MAILBOX_FULL');
    await expect(t.fetchBundles('nobody')).rejects.toSatisfy((e) => isDeadboltError(e, 'UNKNOWN_USER'));
    expect(r.seen.filter((s) => s.kind === 'send')).toHaveLength(2);
    await t.close();
  });

  test('a refused authentication fails connect (UNAUTHENTICATED after four tries, others at once) and leaves the transport idle', async () => {
    const refuse = (code: 'UNAUTHENTICATED' | 'FORBIDDEN') => (): Response => new HttpResponse(encodeRelayFrame(0, { kind: 'error', code, retryAfterMs: 0, message: 'no' }));
    const r = relay({ auth: [refuse('UNAUTHENTICATED'), refuse('UNAUTHENTICATED'), refuse('UNAUTHENTICATED'), refuse('UNAUTHENTICATED'), refuse('FORBIDDEN')] });
    server.use(...r.handlers);
    const t = transport();
    await expect(t.connect(auth)).rejects.toSatisfy((e) => isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'UNAUTHENTICATED');
    expect(t.state).toBe('idle');
    expect(r.seen.map((s) => s.kind)).toEqual(['auth', 'auth', 'auth', 'auth']);
    await expect(t.connect(auth)).rejects.toSatisfy((e) => isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'FORBIDDEN');
    expect(r.seen).toHaveLength(5);
    await t.close();
  });

  test('an AUTH answered UNAUTHENTICATED once (a repeated request used the challenge up) connects on the fresh challenge', async () => {
    const r = relay({ auth: [() => new HttpResponse(encodeRelayFrame(0, { kind: 'error', code: 'UNAUTHENTICATED', retryAfterMs: 0, message: 'used challenge' }))] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    expect(t.state).toBe('connected');
    await t.close();
  });

  test('close aborts the long poll and pending retries', async () => {
    const r = relay({});
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    await t.close();
    await expect(t.send([{ to: bob, frame: new Uint8Array([1]) }])).rejects.toSatisfy((e) => isDeadboltError(e, 'CLOSED'));
  });
  test("a 429 carrying the relay's RATE_LIMITED refuses the send with RATE_LIMITED (the larger delay), not retried", async () => {
    const limited = (): Response => frameResponse({ kind: 'error', code: 'RATE_LIMITED', retryAfterMs: 1500, message: 'slow down' }, { status: 429, headers: { 'retry-after': '2' } });
    const r = relay({ send: [limited] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    const e = await rejectionOf(t.send([{ to: bob, frame: new Uint8Array([1]) }]));
    expect(isDeadboltError(e, 'RATE_LIMITED') && e.details).toEqual({ retryAfterMs: 2000 });
    expect(r.seen.filter((s) => s.kind === 'send')).toHaveLength(1);
    await t.close();
  });

  test('a 429 to the long poll waits Retry-After before the next FETCH', async () => {
    const clock = manualTimers();
    const limited = (): Response => frameResponse({ kind: 'error', code: 'RATE_LIMITED', retryAfterMs: 1000, message: 'too many waiting FETCH requests' }, { status: 429, headers: { 'retry-after': '3' } });
    const r = relay({ fetch: [limited, never] });
    server.use(...r.handlers);
    const t = transport({ timers: clock.timers });
    t.onFrame(() => {});
    await t.connect(auth);
    await until(() => clock.pending().includes(3000), 'a 3 s wait');
    expect(r.seen.filter((s) => s.kind === 'fetch')).toHaveLength(1);
    clock.fire((ms) => ms === 3000);
    await until(() => r.seen.filter((s) => s.kind === 'fetch').length === 2, 'the next FETCH');
    await t.close();
  });

  test('a throwing handler: the next FETCH waits a growing backoff (no busy loop), and the frame comes again', async () => {
    const clock = manualTimers();
    const r = relay({ fetch: [deliver('m1'), deliver('m1'), deliver('m1'), never] });
    server.use(...r.handlers);
    const t = transport({ timers: clock.timers, random: () => 0.999, backoff: { initialMs: 100, maxMs: 10_000 } });
    let calls = 0;
    t.onFrame(() => {
      calls++;
      throw new Error('fails on purpose');
    });
    await t.connect(auth);
    for (const wait of [99, 199, 399]) {
      await until(() => clock.pending().includes(wait), `a ${wait} ms pause`);
      expect(r.seen.filter((s) => s.kind === 'fetch').length).toBe(calls);
      clock.fire((ms) => ms === wait);
    }
    expect(calls).toBe(3);
    expect(r.seen.filter((s) => s.kind === 'ack')).toHaveLength(0);
    await t.close();
  });

  test('frames fetched with no handler are not acknowledged; registering a handler ends the pause and they are handled and acknowledged', async () => {
    const clock = manualTimers();
    const r = relay({ fetch: [deliver('m1'), deliver('m1'), never] });
    server.use(...r.handlers);
    const t = transport({ timers: clock.timers, random: () => 0.999, backoff: { initialMs: 100, maxMs: 10_000 } });
    await t.connect(auth);
    await until(() => clock.pending().includes(99), 'the pause');
    const got: InboundFrame[] = [];
    t.onFrame((f) => void got.push(f));
    await until(() => r.seen.some((s) => s.kind === 'ack'), 'the ACK');
    expect(got.map((f) => f.id)).toEqual(['m1']);
    expect(r.seen.find((s) => s.kind === 'ack')!.frame).toEqual({ kind: 'ack', ids: ['m1'] });
    await t.close();
  });

  test('PREKEYS_LOW answering a FETCH reaches onNotice, and polling goes on', async () => {
    const r = relay({ fetch: [(id) => frameResponse({ kind: 'prekeys-low', oneTimePrekeys: 3, pqPrekeys: 1 }, {}, id), never] });
    server.use(...r.handlers);
    const t = transport();
    const notices: TransportNotice[] = [];
    t.onNotice((n) => notices.push(n));
    await t.connect(auth);
    await until(() => r.seen.filter((s) => s.kind === 'fetch').length === 2, 'the next FETCH');
    expect(notices).toEqual([{ type: 'prekeys-low', oneTimePrekeys: 3, pqPrekeys: 1 }]);
    await t.close();
  });

  test('a network error on the long poll: reconnecting, authenticated again, connected', async () => {
    const r = relay({ fetch: [() => HttpResponse.error(), never] });
    server.use(...r.handlers);
    const t = transport();
    const states: string[] = [];
    t.onStateChange((s) => states.push(s));
    await t.connect(auth);
    await until(() => r.seen.filter((s) => s.kind === 'fetch').length === 2, 'the FETCH again');
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    expect(r.seen.map((s) => s.kind)).toEqual(['auth', 'fetch', 'auth', 'fetch']);
    expect(r.seen[3]!.authorization).toBe('Bearer token-2');
    await t.close();
  });

  test('413: FRAME_TOO_LARGE; one send larger than a relay frame goes as several requests within it', async () => {
    const r = relay({ 'publish-prekeys': [() => frameResponse({ kind: 'error', code: 'TOO_LARGE', retryAfterMs: 0, message: 'request body over 2097152 bytes' }, { status: 413 })] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    expect(isDeadboltError(await rejectionOf(t.publishPrekeys(new Uint8Array(10))), 'FRAME_TOO_LARGE')).toBe(true);
    const max = t.maxFrameSize;
    await t.send(Array.from({ length: 9 }, () => ({ to: bob, frame: new Uint8Array(max) })));
    const sends = r.seen.filter((s) => s.kind === 'send');
    expect(sends.map((s) => (s.frame.kind === 'send' ? s.frame.messages.length : 0))).toEqual([7, 2]);
    for (const s of sends) expect(s.size).toBeLessThanOrEqual(RELAY_LIMITS.maxFrame);
    await t.close();
  });

  test('at most maxPending requests wait; closing rejects them with CLOSED', async () => {
    const r = relay({ send: [never, never] });
    server.use(...r.handlers);
    const t = transport({ maxPending: 2 });
    await t.connect(auth);
    const waiting = [t.send([{ to: bob, frame: new Uint8Array([1]) }]), t.send([{ to: bob, frame: new Uint8Array([2]) }])];
    expect(isDeadboltError(await rejectionOf(t.send([{ to: bob, frame: new Uint8Array([3]) }])), 'TRANSPORT_FAILED')).toBe(true);
    await t.close();
    for (const p of waiting) expect(isDeadboltError(await rejectionOf(p), 'CLOSED')).toBe(true);
  });

  test('relayId: a HELLO naming another relay is refused before anything is signed', async () => {
    const r = relay({});
    server.use(...r.handlers);
    let signs = 0;
    const t = transport({ relayId: 'relay.example' });
    const e = await rejectionOf(t.connect({ ...auth, sign: async () => (signs++, new Uint8Array(64)) }));
    expect(isDeadboltError(e, 'TRANSPORT_FAILED')).toBe(true);
    expect([signs, r.seen.length, t.state]).toEqual([0, 0, 'idle']);
  });

  test('configuration by name, and option checks', () => {
    expect(createTransportAdapter({ url: BASE }).state).toBe('idle');
    expect(() => createTransportAdapter({})).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => createHttpPollingTransport({ url: 'ws://wrong' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('HTTP polling transport: device lists, shared sends, provisioning', () => {
  const mismatch = (userId: string, listVersion: number) => (requestId: number) => frameResponse({ kind: 'device-mismatch', users: [{ userId, listVersion }] }, {}, requestId);

  test('DEVICE_MISMATCH rejects send and sendShared with the users and versions, never retried; listVersion is on the wire', async () => {
    const r = relay({ send: [mismatch('bob', 4)], 'send-shared': [mismatch('bob', 4)] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    const e = await rejectionOf(t.send([{ to: bob, listVersion: 3, frame: new Uint8Array([1]) }]));
    expect(isDeadboltError(e, 'DEVICE_MISMATCH') && [e.kind, e.details]).toEqual(['transport', { users: [{ userId: 'bob', listVersion: 4 }] }]);
    const e2 = await rejectionOf(t.sendShared([{ to: bob, listVersion: 3 }], new Uint8Array([1])));
    expect(isDeadboltError(e2, 'DEVICE_MISMATCH') && e2.details).toEqual({ users: [{ userId: 'bob', listVersion: 4 }] });
    expect(r.seen.filter((s) => s.kind === 'send' || s.kind === 'send-shared').map((s) => s.frame)).toEqual([
      { kind: 'send', messages: [{ to: bob, listVersion: 3, frame: new Uint8Array([1]) }] },
      { kind: 'send-shared', recipients: [{ to: bob, listVersion: 3 }], frame: new Uint8Array([1]) },
    ]);
    expect(t.state).toBe('connected');
    await t.close();
  });

  test('REVOKED when re-authenticating: the waiting send rejects with RELAY_REJECTED REVOKED, polling stops, the state returns to idle', async () => {
    const revoked = (): Response => frameResponse({ kind: 'error', code: 'REVOKED', retryAfterMs: 0, message: 'not listed' });
    const r = relay({ send: [() => new HttpResponse(null, { status: 401 })], auth: [(id) => frameResponse({ kind: 'auth-ok', sessionToken: 'token-1', oneTimePrekeys: 1, pqPrekeys: 1 }, {}, id), revoked, revoked] });
    server.use(...r.handlers);
    const t = transport();
    const states: string[] = [];
    t.onStateChange((s) => states.push(s));
    await t.connect(auth);
    const e = await rejectionOf(t.send([{ to: bob, frame: new Uint8Array([1]) }]));
    expect(isDeadboltError(e, 'RELAY_REJECTED') && e.details).toEqual({ code: 'REVOKED' });
    expect(t.state).toBe('idle');
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'idle']);
    expect(isDeadboltError(await rejectionOf(t.send([{ to: bob, frame: new Uint8Array([1]) }])), 'TRANSPORT_FAILED')).toBe(true);
    const seen = r.seen.length;
    const again = await rejectionOf(t.connect(auth));
    expect(isDeadboltError(again, 'RELAY_REJECTED') && again.details).toEqual({ code: 'REVOKED' });
    expect(r.seen.slice(seen).map((s) => s.kind)).toEqual(['auth']); // refused once, not retried
    await t.close();
  });

  test('provisionTake: one request without a session token, even while connected; an empty PROVISION is undefined', async () => {
    const sealed = new Uint8Array(500).fill(8);
    const r = relay({
      'provision-take': [(id) => frameResponse({ kind: 'provision', sealed }, {}, id), (id) => frameResponse({ kind: 'provision', sealed: undefined }, {}, id)],
    });
    server.use(...r.handlers);
    const t = transport();
    const channel = new Uint8Array(16).fill(2);
    expect(await t.provisionTake(channel, 1000)).toEqual(sealed); // never connected
    expect(t.state).toBe('idle');
    await t.connect(auth);
    expect(await t.provisionTake(channel, 0)).toBeUndefined();
    const takes = r.seen.filter((s) => s.kind === 'provision-take');
    expect(takes.map((s) => s.authorization)).toEqual([null, null]);
    expect(takes[0]!.frame).toEqual({ kind: 'provision-take', channel, waitMs: 1000 });
    await t.close();
  });

  test('provisionTake is one attempt: a network error is TRANSPORT_FAILED, a 429 RATE_LIMITED, a refusal its code', async () => {
    const r = relay({
      'provision-take': [
        () => HttpResponse.error(),
        () => frameResponse({ kind: 'error', code: 'RATE_LIMITED', retryAfterMs: 700, message: 'slow' }, { status: 429 }),
        () => new HttpResponse(null, { status: 429, headers: { 'retry-after': '4' } }),
        () => frameResponse({ kind: 'error', code: 'UNAVAILABLE', retryAfterMs: 0, message: 'draining' }),
      ],
    });
    server.use(...r.handlers);
    const t = transport();
    const channel = new Uint8Array(16);
    expect(isDeadboltError(await rejectionOf(t.provisionTake(channel, 0)), 'TRANSPORT_FAILED')).toBe(true);
    const limited = await rejectionOf(t.provisionTake(channel, 0));
    expect(isDeadboltError(limited, 'RATE_LIMITED') && limited.details).toEqual({ retryAfterMs: 700 });
    const proxyLimited = await rejectionOf(t.provisionTake(channel, 0));
    expect(isDeadboltError(proxyLimited, 'RATE_LIMITED') && proxyLimited.details).toEqual({ retryAfterMs: 4000 });
    expect(isDeadboltError(await rejectionOf(t.provisionTake(channel, 0)), 'TRANSPORT_FAILED')).toBe(true);
    expect(r.seen.filter((s) => s.kind === 'provision-take')).toHaveLength(4);
    await t.close();
  });

  test('publishDeviceList and provisionPut send their bytes with the session token; fetchBundles returns the list', async () => {
    const list = new Uint8Array(250).fill(6);
    const r = relay({ 'fetch-bundles': [(id) => frameResponse({ kind: 'bundles', bundles: [new Uint8Array([1])], deviceList: list }, {}, id)] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    await t.publishDeviceList(list);
    await t.provisionPut(new Uint8Array(16).fill(1), new Uint8Array([7, 7]));
    expect(await t.fetchBundles('bob')).toEqual({ bundles: [new Uint8Array([1])], deviceList: list });
    const sent = r.seen.filter((s) => s.kind === 'publish-device-list' || s.kind === 'provision-put');
    expect(sent.map((s) => [s.frame, s.authorization])).toEqual([
      [{ kind: 'publish-device-list', deviceList: list }, 'Bearer token-1'],
      [{ kind: 'provision-put', channel: new Uint8Array(16).fill(1), sealed: new Uint8Array([7, 7]) }, 'Bearer token-1'],
    ]);
    await t.close();
  });
});
