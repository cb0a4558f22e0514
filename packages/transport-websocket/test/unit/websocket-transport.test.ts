/**
 * The WebSocket transport against a scripted fake socket (the injectable platform
 * object): what the real relay cannot be made to do on demand. The conformance suite
 * covers the contract against the real relay.
 */
import { describe, expect, test } from 'vitest';
import { manualTimers, rejectionOf } from '@deadbolt/test-kit';
import { address, isDeadboltError, RELAY_LIMITS, type InboundFrame, type RelayFrame, type TransportState } from '@deadbolt/spec';
import { createWebSocketTransport, type WebSocketTransportOptions } from '../../src/index.js';
import { prepareSendRequests } from '../../src/websocket-transport.js';
import { auth, defaultAnswer, fakeWebSocket, HELLO, until, type Script } from '../helpers/fake-socket.js';

const bob = address('bob', 'laptop');
const one = [{ to: bob, frame: new Uint8Array([1]) }];

function setup(script: Script = {}, options: Partial<WebSocketTransportOptions> = {}) {
  const fake = fakeWebSocket(script);
  const clock = manualTimers();
  const transport = createWebSocketTransport({ url: 'ws://relay.test/v1/ws', WebSocket: fake.WebSocket, timers: clock.timers, random: () => 0.5, ...options });
  const states: TransportState[] = [];
  transport.onStateChange((s) => states.push(s));
  return { ...fake, clock, transport, states };
}


describe('websocket transport: handshake', () => {
  test('signs the relay id and challenge from HELLO, sends AUTH with a non-zero request id, connects on AUTH_OK', async () => {
    const signed: [string, Uint8Array][] = [];
    const { transport, sockets, states } = setup();
    await transport.connect({ ...auth, token: 'reg-token', sign: async (relayId, challenge) => (signed.push([relayId, challenge]), new Uint8Array(64).fill(2)) });
    expect(signed).toEqual([[HELLO.kind === 'hello' ? HELLO.relayId : '', new Uint8Array(32).fill(7)]]);
    const [authRequest] = sockets[0]!.received;
    expect(authRequest!.requestId).not.toBe(0);
    expect(authRequest!.frame).toMatchObject({ kind: 'auth', token: 'reg-token', certificate: auth.certificate, signature: new Uint8Array(64).fill(2) });
    expect(sockets[0]!.binaryType).toBe('arraybuffer');
    expect(states).toEqual(['connecting', 'connected']);
    await transport.close();
  });

  test('a DELIVER pushed right behind AUTH_OK (same network read) reaches the handler', async () => {
    const { transport } = setup({
      onRequest(socket, request) {
        defaultAnswer(socket, request);
        if (request.frame.kind === 'auth') {
          socket.answer(0, { kind: 'deliver', messages: [{ id: 'm1', from: bob, receivedAt: 5, frame: new Uint8Array([9]) }] });
        }
      },
    });
    const got: InboundFrame[] = [];
    transport.onFrame((f) => void got.push(f));
    await transport.connect(auth);
    await until(() => got.length === 1, 'the pushed frame');
    expect(got[0]).toMatchObject({ id: 'm1', from: bob, receivedAt: 5 });
    await transport.close();
  });

  test('a DELIVER that overtook AUTH_OK (a reordering proxy) is kept and handled, and acknowledged, once connected', async () => {
    const acked: string[] = [];
    const { transport } = setup({
      onRequest(socket, request) {
        if (request.frame.kind === 'auth') {
          socket.answer(0, { kind: 'deliver', messages: [{ id: 'early', from: bob, receivedAt: 5, frame: new Uint8Array([9]) }] });
        }
        if (request.frame.kind === 'ack') acked.push(...request.frame.ids);
        defaultAnswer(socket, request);
      },
    });
    const got: InboundFrame[] = [];
    transport.onFrame((f) => void got.push(f));
    await transport.connect(auth);
    await until(() => acked.length === 1, 'the acknowledgement of the early frame');
    expect(got.map((f) => f.id)).toEqual(['early']);
    expect(acked).toEqual(['early']);
    await transport.close();
  });

  test('no HELLO within connectTimeoutMs: connect rejects with TRANSPORT_FAILED, requests queued meanwhile reject too, state idle', async () => {
    const { transport, clock, states } = setup({ onOpen: () => {} }, { connectTimeoutMs: 1234 });
    const connecting = transport.connect(auth);
    const queued = transport.send(one);
    await until(() => clock.pending().includes(1234), 'the connect timer');
    clock.fire((ms) => ms === 1234);
    expect(isDeadboltError(await rejectionOf(connecting), 'TRANSPORT_FAILED')).toBe(true);
    expect(isDeadboltError(await rejectionOf(queued), 'TRANSPORT_FAILED')).toBe(true);
    expect(transport.state).toBe('idle');
    expect(states).toEqual(['connecting', 'idle']);
  });

  test('a handshake cut by the network is tried again (with backoff); after four cuts connect rejects', async () => {
    let opens = 0;
    const { transport, sockets, clock, states } = setup({ onOpen: (socket) => (++opens < 3 ? socket.drop() : socket.answer(0, HELLO)) });
    const connecting = transport.connect(auth);
    for (let i = 0; i < 2; i++) {
      await until(() => clock.pending().some((ms) => ms < 1000), `the wait before attempt ${i + 2}`);
      clock.fire((ms) => ms < 1000);
    }
    await connecting;
    expect([sockets.length, transport.state]).toEqual([3, 'connected']);
    expect(states).toEqual(['connecting', 'connected']);
    await transport.close();

    const never = setup({ onOpen: (socket) => socket.drop() });
    const failing = never.transport.connect(auth);
    for (let i = 0; i < 3; i++) {
      await until(() => never.clock.pending().some((ms) => ms < 1000), `wait ${i}`);
      never.clock.fire((ms) => ms < 1000);
    }
    expect(isDeadboltError(await rejectionOf(failing), 'TRANSPORT_FAILED')).toBe(true);
    expect([never.sockets.length, never.transport.state]).toEqual([4, 'idle']);
  });

  test('close() between two connection attempts: connect rejects with CLOSED', async () => {
    const { transport, clock } = setup({ onOpen: (socket) => socket.drop() });
    const connecting = transport.connect(auth);
    await until(() => clock.pending().some((ms) => ms < 1000), 'the wait between attempts');
    await transport.close();
    expect(isDeadboltError(await rejectionOf(connecting), 'CLOSED')).toBe(true);
  });

  test('with relayId set, a HELLO naming another relay is refused before anything is signed', async () => {
    let signs = 0;
    const { transport } = setup({}, { relayId: 'relay.example' });
    const e = await rejectionOf(transport.connect({ ...auth, sign: async () => (signs++, new Uint8Array(64)) }));
    expect(isDeadboltError(e, 'TRANSPORT_FAILED')).toBe(true);
    expect(signs).toBe(0);
    expect(transport.state).toBe('idle');
  });

  test('a relay refusal of AUTH rejects connect with RELAY_REJECTED and its code (UNAUTHENTICATED after four tries)', async () => {
    const { transport, sockets, clock } = setup({
      onRequest: (socket, { requestId }) => socket.answer(requestId, { kind: 'error', code: 'UNAUTHENTICATED', retryAfterMs: 0, message: 'no' }),
    });
    const connecting = transport.connect(auth);
    for (let i = 0; i < 3; i++) {
      await until(() => clock.pending().some((ms) => ms < 1000), `wait ${i}`);
      clock.fire((ms) => ms < 1000);
    }
    const e = await rejectionOf(connecting);
    expect(isDeadboltError(e, 'RELAY_REJECTED') && e.details).toEqual({ code: 'UNAUTHENTICATED' });
    expect([sockets.length, transport.state]).toEqual([4, 'idle']);
    const forbidden = setup({
      onRequest: (socket, { requestId }) => socket.answer(requestId, { kind: 'error', code: 'FORBIDDEN', retryAfterMs: 0, message: 'too many devices' }),
    });
    const f = await rejectionOf(forbidden.transport.connect(auth));
    expect(isDeadboltError(f, 'RELAY_REJECTED') && f.details).toEqual({ code: 'FORBIDDEN' });
    expect(forbidden.sockets).toHaveLength(1);
  });

  test('an AUTH answered UNAUTHENTICATED once (a repeated AUTH used the challenge up) connects on a fresh connection', async () => {
    let auths = 0;
    const { transport, sockets, clock } = setup({
      onRequest(socket, request) {
        if (request.frame.kind === 'auth' && ++auths === 1) return socket.answer(request.requestId, { kind: 'error', code: 'UNAUTHENTICATED', retryAfterMs: 0, message: 'used challenge' });
        defaultAnswer(socket, request);
      },
    });
    const connecting = transport.connect(auth);
    await until(() => clock.pending().some((ms) => ms < 1000), 'the wait before the second attempt');
    clock.fire((ms) => ms < 1000);
    await connecting;
    expect([sockets.length, transport.state]).toEqual([2, 'connected']);
    await transport.close();
  });

  test('a signature of the wrong length is the caller’s error (INVALID_ARGUMENT), and nothing is sent', async () => {
    const { transport, sockets } = setup();
    const e = await rejectionOf(transport.connect({ ...auth, sign: async () => new Uint8Array(10) }));
    expect(isDeadboltError(e, 'INVALID_ARGUMENT')).toBe(true);
    expect(sockets[0]!.received).toEqual([]);
  });
});

describe('websocket transport: requests', () => {
  test('writes pause while bufferedAmount is above maxBufferedBytes, and resume when it drains', async () => {
    const { transport, sockets, clock } = setup({}, { maxBufferedBytes: 1024 });
    await transport.connect(auth);
    const socket = sockets[0]!;
    socket.bufferedAmount = 10_000;
    let sent = false;
    const sending = transport.send(one).then(() => (sent = true));
    await until(() => clock.pending().includes(10), 'the backpressure timer');
    expect(socket.kinds()).toEqual(['auth']);
    clock.fire((ms) => ms === 10); // still full: looks again later
    expect(socket.kinds()).toEqual(['auth']);
    socket.bufferedAmount = 0;
    clock.fire((ms) => ms === 10);
    await sending;
    expect(sent).toBe(true);
    expect(socket.kinds()).toEqual(['auth', 'send']);
    await transport.close();
  });

  test('a request unanswered for requestTimeoutMs cuts the connection; it is written again on the next and resolves', async () => {
    let sends = 0;
    const { transport, sockets, clock, states } = setup(
      {
        onRequest(socket, request) {
          if (request.frame.kind === 'send' && ++sends === 1) return; // the first one is lost
          defaultAnswer(socket, request);
        },
      },
      { requestTimeoutMs: 777 },
    );
    await transport.connect(auth);
    const sending = transport.send(one);
    await until(() => clock.pending().includes(777), 'the request timer');
    clock.fire((ms) => ms === 777);
    await until(() => states.includes('reconnecting'), 'reconnecting');
    clock.fire((ms) => ms < 1000); // the reconnect backoff
    await sending;
    expect(sockets).toHaveLength(2);
    expect(sockets[0]!.readyState).toBe(3);
    expect(sockets[1]!.kinds()).toEqual(['auth', 'send']);
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'connected']);
    await transport.close();
  });

  test('UNAVAILABLE (the relay is shutting down): the request is written again on the next connection', async () => {
    let sends = 0;
    const { transport, sockets, clock } = setup({
      onRequest(socket, request) {
        if (request.frame.kind === 'send' && ++sends === 1) return socket.answer(request.requestId, { kind: 'error', code: 'UNAVAILABLE', retryAfterMs: 0, message: '' });
        defaultAnswer(socket, request);
      },
    });
    await transport.connect(auth);
    const sending = transport.send(one);
    await until(() => clock.pending().some((ms) => ms < 1000), 'the reconnect timer');
    clock.fire((ms) => ms < 1000);
    await sending;
    expect(sockets.map((s) => s.kinds())).toEqual([
      ['auth', 'send'],
      ['auth', 'send'],
    ]);
    await transport.close();
  });

  test('relay refusals map to typed errors (RATE_LIMITED, UNKNOWN_USER, TOO_LARGE, others)', async () => {
    const answers = [
      { code: 'RATE_LIMITED', retryAfterMs: 1500 },
      { code: 'UNKNOWN_USER', retryAfterMs: 0 },
      { code: 'TOO_LARGE', retryAfterMs: 0 },
      { code: 'MAILBOX_FULL', retryAfterMs: 0 },
    ] as const;
    let i = 0;
    const { transport } = setup({
      onRequest(socket, request) {
        if (request.frame.kind !== 'send') return defaultAnswer(socket, request);
        const a = answers[i++]!;
        socket.answer(request.requestId, { kind: 'error', ...a, message: a.code });
      },
    });
    await transport.connect(auth);
    const errors = [];
    for (let n = 0; n < answers.length; n++) errors.push(await rejectionOf(transport.send([{ to: bob, frame: new Uint8Array(n + 3) }])));
    expect(errors.map((e) => (isDeadboltError(e) ? [e.code, e.kind, e.details] : e))).toEqual([
      ['RATE_LIMITED', 'transport', { retryAfterMs: 1500 }],
      ['UNKNOWN_USER', 'transport', { userId: 'bob' }],
      ['FRAME_TOO_LARGE', 'transport', { size: 5, max: RELAY_LIMITS.maxMessage }],
      ['RELAY_REJECTED', 'transport', { code: 'MAILBOX_FULL' }],
    ]);
    await transport.close();
  });

  test('at most maxPending requests wait; closing rejects them with CLOSED', async () => {
    const { transport } = setup({ onRequest: (socket, r) => (r.frame.kind === 'auth' ? defaultAnswer(socket, r) : undefined) }, { maxPending: 2 });
    await transport.connect(auth);
    const waiting = [transport.send(one), transport.fetchBundles('bob')];
    const refused = await rejectionOf(transport.send(one));
    expect(isDeadboltError(refused, 'TRANSPORT_FAILED')).toBe(true);
    await transport.close();
    for (const p of waiting) expect(isDeadboltError(await rejectionOf(p), 'CLOSED')).toBe(true);
  });

  test('before connect, requests reject with TRANSPORT_FAILED (not connected)', async () => {
    const { transport, sockets } = setup();
    expect(isDeadboltError(await rejectionOf(transport.send(one)), 'TRANSPORT_FAILED')).toBe(true);
    expect(sockets).toHaveLength(0);
  });

  test('a send of 1,500 messages goes as two SEND requests, and resolves once both are stored', async () => {
    const { transport, sockets } = setup();
    await transport.connect(auth);
    await transport.send(Array.from({ length: 1500 }, (_, i) => ({ to: bob, frame: new Uint8Array([i & 0xff]) })));
    const sends = sockets[0]!.received.filter((r) => r.frame.kind === 'send');
    expect(sends.map((r) => (r.frame.kind === 'send' ? r.frame.messages.length : 0))).toEqual([1000, 500]);
    await transport.close();
  });

  test('SEND requests are split to fit the relay frame; invalid recipients are refused before anything is sent', () => {
    const max = RELAY_LIMITS.maxMessage;
    const chunks = prepareSendRequests(Array.from({ length: 9 }, () => ({ to: bob, frame: new Uint8Array(max) })), max);
    expect(chunks.map((c) => c.length)).toEqual([7, 2]);
    expect(() => prepareSendRequests([{ to: { userId: 'bob', deviceId: 'a/b' } as never, frame: new Uint8Array(1) }], max)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('websocket transport: reconnecting', () => {
  test('reconnect delays: full jitter under a ceiling doubling from backoff.initialMs to backoff.maxMs', async () => {
    let opened = 0;
    const { transport, sockets, clock } = setup(
      {
        onOpen(socket) {
          if (++opened === 1) socket.answer(0, HELLO);
          else socket.drop(); // every reconnect attempt fails
        },
      },
      { random: () => 0.999, backoff: { initialMs: 100, maxMs: 400 } },
    );
    await transport.connect(auth);
    sockets[0]!.drop();
    for (let i = 0; i < 4; i++) {
      await until(() => clock.pending().some((ms) => ms < 1000), `reconnect timer ${i}`);
      clock.fire((ms) => ms < 1000);
      await until(() => sockets.length === i + 2 && sockets[i + 1]!.readyState === 3, `attempt ${i} to fail`);
    }
    await until(() => clock.pending().some((ms) => ms < 1000), 'the fifth timer');
    expect(clock.requested.filter((ms) => ms < 1000)).toEqual([99, 199, 399, 399, 399]);
    expect(transport.state).toBe('reconnecting');
    await transport.close();
    expect(transport.state).toBe('closed');
  });

  test('an undecodable frame from the relay cuts the connection; the transport reconnects', async () => {
    const { transport, sockets, clock, states } = setup();
    await transport.connect(auth);
    sockets[0]!.onmessage?.({ data: new Uint8Array([1, 0x7f, 0, 0, 0, 0]).buffer });
    await until(() => states.includes('reconnecting'), 'reconnecting');
    clock.fire((ms) => ms < 1000);
    await until(() => transport.state === 'connected' && sockets.length === 2, 'connected again');
    await transport.close();
  });

  test('a handler that throws leaves the message unacknowledged; the next one is acknowledged', async () => {
    const { transport, sockets } = setup({
      onRequest(socket, request) {
        defaultAnswer(socket, request);
        if (request.frame.kind === 'auth') {
          socket.answer(0, {
            kind: 'deliver',
            messages: [
              { id: 'bad', from: bob, receivedAt: 1, frame: new Uint8Array([1]) },
              { id: 'good', from: bob, receivedAt: 1, frame: new Uint8Array([2]) },
            ],
          });
        }
      },
    });
    transport.onFrame((f) => {
      if (f.id === 'bad') throw new Error('fails on purpose');
    });
    await transport.connect(auth);
    await until(() => sockets[0]!.kinds().includes('ack'), 'the ACK');
    const ack = sockets[0]!.received.find((r) => r.frame.kind === 'ack')!;
    expect(ack.frame).toEqual({ kind: 'ack', ids: ['good'] });
    await transport.close();
  });
});

describe('websocket transport: device lists, shared sends, provisioning', () => {
  const carol = address('carol', 'phone');

  test('a shared send to 2,500 devices goes as three SEND_SHARED requests carrying the same frame and each listVersion', async () => {
    const { transport, sockets } = setup();
    await transport.connect(auth);
    const recipients = Array.from({ length: 2500 }, (_, i) => ({ to: address('bob', `d${i}`), listVersion: 7 }));
    await transport.sendShared(recipients, new Uint8Array([1, 2, 3]));
    const shared = sockets[0]!.received.flatMap((r) => (r.frame.kind === 'send-shared' ? [r.frame] : []));
    expect(shared.map((f) => f.recipients.length)).toEqual([1000, 1000, 500]);
    expect(shared.every((f) => f.frame.join() === '1,2,3' && f.recipients.every((r) => r.listVersion === 7))).toBe(true);
    expect(shared.flatMap((f) => f.recipients.map((r) => r.to.deviceId))).toEqual(recipients.map((r) => r.to.deviceId));
    await transport.close();
  });

  test('DEVICE_MISMATCH answers reject the send once, merged over its requests, and nothing is written again', async () => {
    const { transport, sockets } = setup({
      onRequest(socket, request) {
        if (request.frame.kind === 'send') {
          const first = request.frame.messages[0]!.to.userId;
          return socket.answer(request.requestId, first === 'bob' ? { kind: 'device-mismatch', users: [{ userId: 'bob', listVersion: 4 }] } : { kind: 'ok' });
        }
        if (request.frame.kind === 'send-shared') return socket.answer(request.requestId, { kind: 'device-mismatch', users: [{ userId: 'carol', listVersion: 0 }] });
        defaultAnswer(socket, request);
      },
    });
    await transport.connect(auth);
    // 1,001 messages: two SEND requests, each answered DEVICE_MISMATCH for its first user.
    const messages = [...Array.from({ length: 1000 }, () => ({ to: bob, listVersion: 3, frame: new Uint8Array([1]) })), { to: carol, frame: new Uint8Array([2]) }];
    const e = await rejectionOf(transport.send(messages));
    expect(isDeadboltError(e, 'DEVICE_MISMATCH') && [e.kind, e.details]).toEqual(['transport', { users: [{ userId: 'bob', listVersion: 4 }] }]);
    const e2 = await rejectionOf(transport.sendShared([{ to: carol, listVersion: 2 }], new Uint8Array([1])));
    expect(isDeadboltError(e2, 'DEVICE_MISMATCH') && e2.details).toEqual({ users: [{ userId: 'carol', listVersion: 0 }] });
    expect(sockets[0]!.kinds().filter((k) => k === 'send' || k === 'send-shared')).toEqual(['send', 'send', 'send-shared']);
    expect(transport.state).toBe('connected');
    await transport.close();
  });

  test('REVOKED when reconnecting: no more attempts, the waiting send rejects with RELAY_REJECTED REVOKED, the state returns to idle', async () => {
    let auths = 0;
    const { transport, sockets, clock, states } = setup({
      onRequest(socket, request) {
        if (request.frame.kind === 'auth' && ++auths > 1) return socket.answer(request.requestId, { kind: 'error', code: 'REVOKED', retryAfterMs: 0, message: 'not listed' });
        if (request.frame.kind === 'send') return; // unanswered: it waits across the drop
        defaultAnswer(socket, request);
      },
    });
    await transport.connect(auth);
    const sending = transport.send(one);
    await until(() => sockets[0]!.kinds().includes('send'), 'the SEND written');
    sockets[0]!.drop(); // the relay closed the socket (4004) when the list changed
    await until(() => clock.pending().some((ms) => ms < 1000), 'the reconnect timer');
    clock.fire((ms) => ms < 1000);
    const e = await rejectionOf(sending);
    expect(isDeadboltError(e, 'RELAY_REJECTED') && e.details).toEqual({ code: 'REVOKED' });
    expect(transport.state).toBe('idle');
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'idle']);
    expect(clock.pending().filter((ms) => ms < 1000)).toEqual([]);
    expect(sockets).toHaveLength(2);
    // connect is refused the same way, at once (never retried).
    const again = await rejectionOf(transport.connect(auth));
    expect(isDeadboltError(again, 'RELAY_REJECTED') && again.details).toEqual({ code: 'REVOKED' });
    expect(sockets).toHaveLength(3);
    await transport.close();
  });

  test('provisionTake without connect: its own socket, HELLO then PROVISION_TAKE (never AUTH), closed once answered', async () => {
    const sealed = new Uint8Array(300).fill(5);
    const { transport, sockets } = setup({
      onRequest(socket, request) {
        if (request.frame.kind === 'provision-take') return socket.answer(request.requestId, { kind: 'provision', sealed });
        defaultAnswer(socket, request);
      },
    });
    const channel = new Uint8Array(16).fill(9);
    expect(await transport.provisionTake(channel, 25_000)).toEqual(sealed);
    expect(sockets).toHaveLength(1);
    expect(sockets[0]!.kinds()).toEqual(['provision-take']);
    expect(sockets[0]!.received[0]!.frame).toEqual({ kind: 'provision-take', channel, waitMs: 25_000 });
    expect(sockets[0]!.readyState).toBe(3);
    expect(transport.state).toBe('idle');
    await transport.close();
  });

  test('provisionTake: an empty PROVISION is undefined; a refusal is typed; a HELLO from another relay is refused before the take; close() ends it with CLOSED', async () => {
    let answer: RelayFrame | undefined = { kind: 'provision', sealed: undefined };
    const { transport, sockets } = setup(
      {
        onRequest(socket, request) {
          if (request.frame.kind === 'provision-take' && answer) socket.answer(request.requestId, answer);
        },
      },
      { relayId: 'fake-relay' },
    );
    expect(await transport.provisionTake(new Uint8Array(16), 0)).toBeUndefined();
    answer = { kind: 'error', code: 'RATE_LIMITED', retryAfterMs: 900, message: 'slow down' };
    const limited = await rejectionOf(transport.provisionTake(new Uint8Array(16), 0));
    expect(isDeadboltError(limited, 'RATE_LIMITED') && limited.details).toEqual({ retryAfterMs: 900 });
    answer = undefined; // the relay keeps it waiting
    const waiting = transport.provisionTake(new Uint8Array(16), 30_000);
    await until(() => sockets.length === 3 && sockets[2]!.kinds().includes('provision-take'), 'the third take written');
    await transport.close();
    expect(isDeadboltError(await rejectionOf(waiting), 'CLOSED')).toBe(true);
    expect(sockets[2]!.readyState).toBe(3);

    const other = setup({}, { relayId: 'relay.example' });
    const e = await rejectionOf(other.transport.provisionTake(new Uint8Array(16), 0));
    expect(isDeadboltError(e, 'TRANSPORT_FAILED')).toBe(true);
    expect(other.sockets[0]!.kinds()).toEqual([]);
    await other.transport.close();
  });

  test('fetchBundles returns the bundles and the device list as fresh arrays', async () => {
    const list = new Uint8Array(200).fill(4);
    const { transport } = setup({
      onRequest(socket, request) {
        if (request.frame.kind === 'fetch-bundles') return socket.answer(request.requestId, { kind: 'bundles', bundles: [new Uint8Array([1, 2])], deviceList: list });
        defaultAnswer(socket, request);
      },
    });
    await transport.connect(auth);
    const entry = await transport.fetchBundles('bob');
    expect(entry).toEqual({ bundles: [new Uint8Array([1, 2])], deviceList: list });
    expect(entry.deviceList!.buffer.byteLength).toBe(200);
    await transport.close();
  });
});
