/**
 * The WebSocket transport (docs/relay-protocol.md §1): one multiplexed WebSocket to the
 * relay. Requests carry ids and may be answered in any order; the relay pushes DELIVER
 * frames, acknowledged only after the frame handler resolved.
 *
 * ```
 * idle ──connect──▶ connecting ──AUTH_OK──▶ connected ──drop──▶ reconnecting ──AUTH_OK──▶ connected …
 *  ▲                    │ refused, unreachable                      │ backoff, retried
 *  └────────────────────┘                       close() from any state ──▶ closed
 * ```
 *
 * - **Connect** (transport.ts invariant 1): HELLO → AUTH (the device's signature over the
 *   relay id and challenge, §2) → AUTH_OK. `connect` resolves only then; a refusal (an
 *   UNAUTHENTICATED or a cut connection only after four attempts) or `connectTimeoutMs`
 *   without AUTH_OK rejects it,
 *   the state returns to `idle`, and requests queued meanwhile reject with
 *   `TRANSPORT_FAILED`. REVOKED (the device is not in its user's device list) is never
 *   retried: on `connect` it rejects with `RELAY_REJECTED` `{ code: 'REVOKED' }`; on a
 *   reconnection (the relay closed the socket with 4004 when the list changed) the
 *   transport stops reconnecting, rejects every waiting request with that error and
 *   returns to `idle`.
 * - **Drops** (invariant 3): reconnects on its own with capped exponential backoff and
 *   full jitter, authenticating again with the same credentials. A request not answered
 *   when the connection dropped is written again on the next connection, so `send`
 *   resolves only on the relay's OK (at-least-once: the ratchet recognises a message
 *   stored twice). A written request unanswered for `requestTimeoutMs` cuts the
 *   connection (presumed dead) and is retried on the next. A relay answering UNAVAILABLE
 *   (shutting down) is treated the same way.
 * - **Bounds** (invariant 4): message frames over `maxFrameSize` reject with
 *   `FRAME_TOO_LARGE` before anything is sent; one `send` is split into SEND requests that
 *   each fit the relay's 2 MiB frame and 1,000 recipients, and one `sendShared` into
 *   SEND_SHARED requests of at most 1,000 recipients (a larger frame would make the relay
 *   close the socket, and the retry would loop); at most `maxPending` requests wait;
 *   writes pause while the socket's `bufferedAmount` is above `maxBufferedBytes`.
 * - **Device lists** (docs/relay-protocol.md "Device lists"): each SEND and SEND_SHARED
 *   entry carries the recipient user's `listVersion`; a DEVICE_MISMATCH answer rejects the
 *   send with `TransportError` `DEVICE_MISMATCH` (the users and their current versions),
 *   never retried: the caller must refresh those users first.
 * - **Provisioning** (docs/protocol.md §3.4): `provisionTake` needs no `connect`: it opens
 *   a socket of its own, reads HELLO, sends PROVISION_TAKE instead of AUTH, and closes it
 *   once answered.
 * - **Deliveries** (invariant 2): through `TransportCore` (`@deadbolt/spec`): one message at
 *   a time to the handler, acknowledged after it resolved. A message whose handler threw,
 *   or that arrived with no handler, stays unacknowledged and comes again on the next
 *   connection (the relay does not resend on the same one).
 *
 * @module
 */
import {
  RELAY_LIMITS,
  TransportCore,
  TransportError,
  acceptHello,
  backoffDelay,
  createRelayTransport,
  decodeRelayFrame,
  isDeadboltError,
  encodeRelayFrame,
  planSendRequests,
  relayError,
  relayMessageLimit,
  requestIdCounter,
  signAuth,
  transportClosed,
  type BackoffOptions,
  type HelloFrame,
  type OutboundMessage,
  type RelayFrame,
  type RelayRequestOptions,
  type TransportAdapter,
  type TransportAuth,
} from '@deadbolt/spec';
import type { TransportTimers } from '@deadbolt/spec';
import { invalidOption as invalid, positiveOption as positive, systemTimers as globalTimers, transportFailed as failed } from '@deadbolt/spec';

// Implementations type their event objects differently (DOM `MessageEvent`, `ws`'s own);
// `any` here is what lets both the browser's class and `ws`'s be passed without a cast.
// The transport reads only `data` (message) and `code` (close).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyEvent = any;

/**
 * The subset of the WHATWG WebSocket this transport uses. The browser's `WebSocket`,
 * Node 22's global one and the `ws` package's class all fit.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  /** Bytes queued by `send` and not yet handed to the network. */
  readonly bufferedAmount: number;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: AnyEvent) => void) | null;
  onmessage: ((ev: AnyEvent) => void) | null;
  onclose: ((ev: AnyEvent) => void) | null;
  onerror: ((ev: AnyEvent) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or the `ws` package's default export. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Timer functions (injectable for tests). */
export type WebSocketTransportTimers = TransportTimers;

/**
 * Options of {@link createWebSocketTransport}.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws';
 * const options: WebSocketTransportOptions = { url: 'wss://relay.example/v1/ws', WebSocket, relayId: 'relay.example' };
 * ```
 */
export interface WebSocketTransportOptions {
  /** The relay's WebSocket URL, for example `wss://relay.example/v1/ws`. */
  readonly url: string;
  /** The WebSocket class; defaults to `globalThis.WebSocket` (Node 20 has none: pass `ws`). */
  readonly WebSocket?: WebSocketConstructor;
  /**
   * The relay id this device expects (docs/relay-protocol.md §2). When set, a HELLO naming
   * another relay is refused before anything is signed, so a server that forwards another
   * relay's challenge cannot obtain this device's answer to it. Recommended in production.
   */
  readonly relayId?: string;
  /** How long one connection attempt (open, HELLO, AUTH) may take. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** A written request unanswered this long cuts the connection (it is retried on the next). Default 15 s. */
  readonly requestTimeoutMs?: number;
  /** Reconnect backoff (default 100 ms doubling to 10 s, full jitter). */
  readonly backoff?: BackoffOptions;
  /** Requests (`send` batches, prekey calls) waiting for the relay before more reject. Default 1,000. */
  readonly maxPending?: number;
  /** Bytes buffered in the socket above which requests wait. Default 4 MiB. */
  readonly maxBufferedBytes?: number;
  /** Randomness for jitter, uniform in [0, 1) (tests). */
  readonly random?: () => number;
  /** Timer functions (tests). Default the global ones. */
  readonly timers?: WebSocketTransportTimers;
}

interface PendingRequest {
  readonly requestId: number;
  /** The encoded request: a private copy of the caller's bytes. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly operation: string;
  /** The user a refusal is about (UNKNOWN_USER), and the largest frame (TOO_LARGE). */
  readonly userId: string | undefined;
  readonly largestFrame: number;
  /** Counted against `maxPending` (the transport's own ACKs are not). */
  readonly counted: boolean;
  /** The connection it was written on, if it was. */
  writtenOn: Connection | undefined;
  timer: unknown;
  readonly resolve: (frame: RelayFrame) => void;
  readonly reject: (error: unknown) => void;
}

interface Connection {
  readonly socket: WebSocketLike;
  readonly openedAt: number;
  dead: boolean;
}

/** Connection attempts `connect` makes while the network (not the relay) fails them. */
const CONNECT_TRIES = 4;
const OPEN = 1;
const CLOSED = 3;
/** How often a write paused by backpressure looks at `bufferedAmount` again. */
const BACKPRESSURE_RETRY_MS = 10;
/** How long `close()` waits for the socket's closing handshake. */
const CLOSE_WAIT_MS = 1000;

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/**
 * Checks and copies `send`'s messages (invariants 4 and 5) and splits them into SEND
 * requests that each fit the relay frame (2 MiB) and the recipient limit (1,000): the
 * shared planner of `@deadbolt/spec`, so both relay transports split alike.
 */
export const prepareSendRequests: (messages: readonly OutboundMessage[], maxFrameSize: number) => OutboundMessage[][] = planSendRequests;

/** Whether a refusal is REVOKED: this device is not in its user's device list (never retried). */
function isRevoked(e: unknown): boolean {
  return isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'REVOKED';
}

/** Pushes kept while waiting for AUTH_OK; more means the relay (or a proxy) misbehaves. */
const MAX_EARLY_PUSHES = 16;

/**
 * Creates a WebSocket transport. Nothing is opened before `connect`.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws'; // Node 20; browsers have their own
 * import { createWebSocketTransport } from '@deadbolt/transport-websocket';
 *
 * const transport = createWebSocketTransport({ url: 'wss://relay.example/v1/ws', WebSocket, relayId: 'relay.example' });
 * transport.onFrame(async (frame) => { await handle(frame); }); // acknowledged after this resolves
 * await transport.connect(auth);
 * await transport.send([{ to: bob, frame: ciphertext }]); // resolves once the relay stored it
 * await transport.close();
 * ```
 */
export function createWebSocketTransport(options: WebSocketTransportOptions): TransportAdapter {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an options object');
  if (typeof options.url !== 'string' || !/^wss?:\/\/[^/]/i.test(options.url)) throw invalid('url', 'a ws:// or wss:// URL');
  const url = options.url;
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof Ctor !== 'function') throw invalid('WebSocket', "a WebSocket class (this platform has none: pass the 'ws' package's)");
  if (options.relayId !== undefined && (typeof options.relayId !== 'string' || options.relayId.length === 0)) throw invalid('relayId', 'a non-empty string');
  const expectedRelayId = options.relayId;
  const connectTimeoutMs = positive(options.connectTimeoutMs, 'connectTimeoutMs', 10_000);
  const requestTimeoutMs = positive(options.requestTimeoutMs, 'requestTimeoutMs', 15_000);
  const maxPending = positive(options.maxPending, 'maxPending', 1000);
  const maxBuffered = positive(options.maxBufferedBytes, 'maxBufferedBytes', 4 * 1024 * 1024);
  const random = options.random ?? Math.random;
  const timers = options.timers ?? globalTimers;
  const backoff = options.backoff;

  const core = new TransportCore(RELAY_LIMITS.maxMessage);
  /** The relay's own largest message, from its HELLO (never above the protocol's). */
  let relayMaxMessage = RELAY_LIMITS.maxMessage;
  const maxFrameSize = (): number => Math.min(RELAY_LIMITS.maxMessage, relayMaxMessage);

  let auth: TransportAuth | undefined;
  let current: Connection | undefined;
  /** Ends the connection attempt in progress, if any. */
  let abortHandshake: ((error: unknown) => void) | undefined;
  let connecting: Promise<void> | undefined;
  let reconnectTimer: unknown;
  /** Ends the wait between two attempts of `connect`. */
  let wakeConnect: (() => void) | undefined;
  let backpressureTimer: unknown;
  let attempt = 0;
  let counted = 0;
  let closing: Promise<void> | undefined;
  /** Handshake failures the network caused (worth another attempt), as opposed to refusals. */
  const networkFailures = new WeakSet<object>();
  /** Requests by id, in call order (a Map iterates in insertion order). */
  const pending = new Map<number, PendingRequest>();
  /** PROVISION_TAKEs in progress, each on a socket of its own (ended by `close()`). */
  const takes = new Set<(error: unknown) => void>();

  const takeId = requestIdCounter();
  const closed = (): boolean => core.state === 'closed';

  // --- one connection: open, HELLO, AUTH ---------------------------------------------------

  /**
   * Opens a socket and authenticates. On AUTH_OK the connection is adopted at once, in
   * the same event as the answer: a DELIVER the relay pushed in the same network read
   * must find it live.
   */
  function open(credentials: TransportAuth): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new Ctor!(url);
        ws.binaryType = 'arraybuffer';
      } catch (e) {
        reject(failed('connect', 'cannot open a WebSocket', e));
        return;
      }
      abortHandshake = fail;
      const conn: Connection = { socket: ws, openedAt: Date.now(), dead: false };
      let phase: 'hello' | 'signing' | 'auth' | 'done' = 'hello';
      let authId = 0;
      /** Pushes that overtook AUTH_OK (see below). */
      const early: unknown[] = [];
      const timer = timers.setTimeout(() => fail(failed('connect', `no AUTH_OK within ${connectTimeoutMs} ms`)), connectTimeoutMs);

      function fail(error: unknown): void {
        if (phase === 'done') return;
        phase = 'done';
        timers.clearTimeout(timer);
        if (abortHandshake === fail) abortHandshake = undefined;
        conn.dead = true;
        detach(ws);
        try {
          ws.close(1000);
        } catch {
          // Closing already.
        }
        reject(error);
      }

      ws.onopen = null;
      ws.onerror = () => {
        // The close event follows.
      };
      ws.onclose = (ev: { code?: number }) => {
        if (phase === 'done') return lost(conn);
        const error = failed('connect', `the connection closed before AUTH_OK (code ${ev?.code ?? 'unknown'})`);
        networkFailures.add(error);
        fail(error);
      };
      ws.onmessage = (ev: { data?: unknown }) => {
        if (phase === 'done') {
          received(conn, ev?.data);
          return;
        }
        const bytes = toBytes(ev?.data);
        let requestId: number;
        let frame: RelayFrame;
        try {
          if (bytes === undefined) throw new Error('a text message');
          ({ requestId, frame } = decodeRelayFrame(bytes));
        } catch (e) {
          fail(failed('connect', 'the relay sent an undecodable frame', e));
          return;
        }
        if (phase === 'hello') {
          let hello: HelloFrame;
          try {
            hello = acceptHello(frame, expectedRelayId, 'connect');
          } catch (e) {
            return fail(e);
          }
          phase = 'signing';
          Promise.resolve()
            .then(() => signAuth(credentials, hello))
            .then(
              (authFrame) => {
                if (phase !== 'signing') return;
                relayMaxMessage = relayMessageLimit(hello);
                authId = takeId();
                phase = 'auth';
                try {
                  ws.send(encodeRelayFrame(authId, authFrame) as Uint8Array<ArrayBuffer>);
                } catch (e) {
                  fail(failed('connect', 'cannot send AUTH', e));
                }
              },
              (e: unknown) => fail(e),
            );
          return;
        }
        if (phase !== 'auth' || requestId !== authId) {
          // Nothing but the AUTH answer is expected now; a relay error addressed to no
          // request (for example UNAVAILABLE) ends the attempt. A push (DELIVER,
          // PREKEYS_LOW) cannot come before AUTH_OK on one ordered stream, but a proxy that
          // reorders messages can move it there: it is kept (bounded) and handled once the
          // connection is adopted, because the relay counts a delivered message as in
          // flight on this connection and would not send it again while it stays up.
          if (frame.kind === 'error' && requestId === 0) fail(relayError(frame));
          else if (phase === 'auth' && requestId === 0 && (frame.kind === 'deliver' || frame.kind === 'prekeys-low')) {
            if (early.length >= MAX_EARLY_PUSHES) return fail(failed('connect', 'too many pushes before AUTH_OK'));
            early.push(ev?.data);
          }
          return;
        }
        if (frame.kind === 'error') return fail(relayError(frame));
        if (frame.kind !== 'auth-ok') return fail(failed('connect', `expected AUTH_OK, got ${frame.kind}`));
        phase = 'done';
        timers.clearTimeout(timer);
        if (abortHandshake === fail) abortHandshake = undefined;
        if (closed()) {
          cut(conn, 1000, 'closed');
          reject(transportClosed());
          return;
        }
        adopt(conn);
        for (const data of early.splice(0)) received(conn, data);
        resolve(conn);
      };
    });
  }

  /** Stops listening to a socket. Errors stay handled: an unheard error event may crash (`ws` is an EventEmitter). */
  function detach(ws: WebSocketLike): void {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = () => {};
  }

  /** `conn` is authenticated: it becomes the live connection, and everything waiting goes out. */
  function adopt(conn: Connection): void {
    current = conn;
    if (core.state === 'connecting') attempt = 0;
    core.setState('connected');
    pump();
  }

  /** The live connection ended: requests written on it go again on the next one. */
  function lost(conn: Connection): void {
    if (conn.dead) return;
    conn.dead = true;
    detach(conn.socket);
    if (current !== conn) return;
    current = undefined;
    for (const req of pending.values()) {
      if (req.writtenOn !== conn) continue;
      req.writtenOn = undefined;
      timers.clearTimeout(req.timer);
    }
    if (closed()) return;
    // A connection that stayed up a while starts the backoff over.
    if (Date.now() - conn.openedAt >= (backoff?.maxMs ?? 10_000)) attempt = 0;
    core.setState('reconnecting');
    scheduleReconnect();
  }

  /** Cuts a connection presumed dead; the transport reconnects. */
  function cut(conn: Connection, code: number, reason: string): void {
    try {
      conn.socket.close(code, reason);
    } catch {
      // Closing already.
    }
    lost(conn);
  }

  function scheduleReconnect(): void {
    if (closed() || auth === undefined || reconnectTimer !== undefined) return;
    const credentials = auth;
    reconnectTimer = timers.setTimeout(() => {
      reconnectTimer = undefined;
      if (closed()) return;
      open(credentials).then(
        () => undefined,
        (e: unknown) => (isRevoked(e) ? revoked(e) : scheduleReconnect()),
      );
    }, backoffDelay(attempt++, backoff, random));
  }

  /**
   * The relay refused this device as revoked (its user's device list no longer has it):
   * reconnecting cannot help. Every waiting request rejects with the refusal and the
   * transport is `idle` again; a later `connect` is refused the same way unless the
   * device is listed again.
   */
  function revoked(error: unknown): void {
    if (closed()) return;
    auth = undefined;
    for (const req of [...pending.values()]) {
      settle(req);
      req.reject(error);
    }
    core.setState('idle');
  }

  // --- frames from the relay ---------------------------------------------------------------

  function received(conn: Connection, data: unknown): void {
    if (conn !== current) return;
    const bytes = toBytes(data);
    let envelope;
    try {
      if (bytes === undefined) throw new Error('a text message');
      envelope = decodeRelayFrame(bytes);
    } catch {
      // A relay that breaks framing cannot be trusted with the rest of this connection.
      cut(conn, 4002, 'undecodable frame');
      return;
    }
    const { requestId, frame } = envelope;
    if (frame.kind === 'deliver' && requestId === 0) {
      void core.deliver(frame.messages, async (ids) => {
        const acks: Promise<unknown>[] = [];
        for (let i = 0; i < ids.length; i += RELAY_LIMITS.maxAck) {
          acks.push(request({ kind: 'ack', ids: ids.slice(i, i + RELAY_LIMITS.maxAck) }, { operation: 'ack' }, false));
        }
        await Promise.all(acks);
      });
      return;
    }
    if (frame.kind === 'prekeys-low') {
      core.notice({ type: 'prekeys-low', oneTimePrekeys: frame.oneTimePrekeys, pqPrekeys: frame.pqPrekeys });
      return;
    }
    if (frame.kind === 'error' && frame.code === 'UNAVAILABLE') {
      // The relay is shutting down: whatever it did not answer goes again on the next connection.
      cut(conn, 1000, 'relay unavailable');
      return;
    }
    const req = pending.get(requestId);
    if (req === undefined || req.writtenOn !== conn) return; // a duplicate or late answer
    // The connection works: the next drop starts the backoff over. (Not at AUTH_OK alone:
    // a relay that accepts and then drops at once must not be reconnected to in a loop.)
    attempt = 0;
    settle(req);
    if (frame.kind === 'error') req.reject(refusal(frame, req));
    else req.resolve(frame);
  }

  function refusal(frame: Extract<RelayFrame, { kind: 'error' }>, req: PendingRequest): TransportError {
    if (frame.code === 'TOO_LARGE') {
      return new TransportError('FRAME_TOO_LARGE', {
        message: `${req.operation}: the relay refused an oversize frame (${frame.message})`,
        details: { size: req.largestFrame, max: maxFrameSize() },
      });
    }
    return relayError(frame, req.userId);
  }

  // --- requests ----------------------------------------------------------------------------

  function settle(req: PendingRequest): void {
    pending.delete(req.requestId);
    timers.clearTimeout(req.timer);
    if (req.counted) counted--;
  }

  /**
   * Queues a request, counted against `maxPending` unless `isCounted` is false (the
   * transport's own ACKs). The frame is encoded, so copied, before this returns.
   */
  function request(frame: RelayFrame, opts: RelayRequestOptions, isCounted = true): Promise<RelayFrame> {
    const { operation, userId, largestFrame = 0 } = opts;
    const requestId = takeId();
    const bytes = encodeRelayFrame(requestId, frame) as Uint8Array<ArrayBuffer>;
    if (bytes.byteLength > RELAY_LIMITS.maxFrame) {
      return Promise.reject(
        new TransportError('FRAME_TOO_LARGE', {
          message: `${operation}: a request of ${bytes.byteLength} bytes is over the relay frame limit`,
          details: { size: bytes.byteLength, max: RELAY_LIMITS.maxFrame },
        }),
      );
    }
    return new Promise<RelayFrame>((resolve, reject) => {
      pending.set(requestId, { requestId, bytes, operation, userId, largestFrame, counted: isCounted, writtenOn: undefined, timer: undefined, resolve, reject });
      if (isCounted) counted++;
      pump();
    });
  }

  /** Writes waiting requests in call order while the socket's buffer has room. */
  function pump(): void {
    const conn = current;
    if (conn === undefined || conn.dead || backpressureTimer !== undefined) return;
    for (const req of pending.values()) {
      if (req.writtenOn !== undefined) continue;
      if (conn.socket.readyState !== OPEN) return;
      if (conn.socket.bufferedAmount > maxBuffered) {
        // WebSocket has no drain event: look again shortly.
        backpressureTimer = timers.setTimeout(() => {
          backpressureTimer = undefined;
          pump();
        }, BACKPRESSURE_RETRY_MS);
        return;
      }
      // Marked before the write: an answer must find it written, however soon it comes.
      req.writtenOn = conn;
      req.timer = timers.setTimeout(() => {
        // Written and never answered: the connection is presumed dead. The request stays
        // pending and is written again on the next connection.
        if (pending.get(req.requestId) === req && req.writtenOn === conn && current === conn) cut(conn, 4000, 'request timeout');
      }, requestTimeoutMs);
      try {
        conn.socket.send(req.bytes);
      } catch {
        cut(conn, 4000, 'send failed');
        return;
      }
    }
  }

  /**
   * PROVISION_TAKE on a socket of its own, without AUTH (relay-protocol.md PROVISION_TAKE):
   * open, read HELLO, send the take, wait for PROVISION, close. One attempt: a take whose
   * answer was lost cannot be repeated (the relay deleted the blob when it answered).
   */
  function provisionTakeOnce(channel: Uint8Array, waitMs: number): Promise<Uint8Array | undefined> {
    return new Promise<Uint8Array | undefined>((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new Ctor!(url);
        ws.binaryType = 'arraybuffer';
      } catch (e) {
        reject(failed('provisionTake', 'cannot open a WebSocket', e));
        return;
      }
      let settled = false;
      const requestId = takeId();
      const finish = (error: unknown, sealed?: Uint8Array): void => {
        if (settled) return;
        settled = true;
        timers.clearTimeout(timer);
        takes.delete(finish);
        detach(ws);
        try {
          ws.close(1000);
        } catch {
          // Closing already.
        }
        if (error === undefined) resolve(sealed);
        else reject(error);
      };
      const timer = timers.setTimeout(() => finish(failed('provisionTake', `no answer within ${connectTimeoutMs + waitMs} ms`)), connectTimeoutMs + waitMs);
      takes.add(finish);
      let phase: 'hello' | 'take' = 'hello';
      ws.onopen = null;
      ws.onerror = () => {
        // The close event follows.
      };
      ws.onclose = (ev: { code?: number }) => finish(failed('provisionTake', `the connection closed before the answer (code ${ev?.code ?? 'unknown'})`));
      ws.onmessage = (ev: { data?: unknown }) => {
        const bytes = toBytes(ev?.data);
        let envelope;
        try {
          if (bytes === undefined) throw new Error('a text message');
          envelope = decodeRelayFrame(bytes);
        } catch (e) {
          return finish(failed('provisionTake', 'the relay sent an undecodable frame', e));
        }
        const { frame } = envelope;
        if (phase === 'hello') {
          try {
            acceptHello(frame, expectedRelayId, 'provisionTake');
          } catch (e) {
            return finish(e);
          }
          phase = 'take';
          try {
            ws.send(encodeRelayFrame(requestId, { kind: 'provision-take', channel, waitMs }) as Uint8Array<ArrayBuffer>);
          } catch (e) {
            finish(failed('provisionTake', 'cannot send PROVISION_TAKE', e));
          }
          return;
        }
        if (envelope.requestId !== requestId) return; // nothing else is expected on this socket
        if (frame.kind === 'provision') return finish(undefined, frame.sealed?.slice());
        if (frame.kind === 'error') return finish(relayError(frame));
        finish(failed('provisionTake', `the relay answered ${frame.kind}, expected PROVISION`));
      };
    });
  }

  // --- the adapter -------------------------------------------------------------------------

  function closeNow(): Promise<void> {
    core.close();
    timers.clearTimeout(reconnectTimer);
    timers.clearTimeout(backpressureTimer);
    reconnectTimer = undefined;
    wakeConnect?.();
    for (const req of [...pending.values()]) {
      settle(req);
      req.reject(transportClosed());
    }
    abortHandshake?.(transportClosed());
    abortHandshake = undefined;
    for (const end of [...takes]) end(transportClosed());
    const sockets = current ? [current.socket] : [];
    if (current) current.dead = true;
    current = undefined;
    return Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === CLOSED) return resolve();
            const timer = timers.setTimeout(resolve, CLOSE_WAIT_MS);
            detach(ws);
            ws.onclose = () => {
              timers.clearTimeout(timer);
              resolve();
            };
            try {
              ws.close(1000, 'closed');
            } catch {
              timers.clearTimeout(timer);
              resolve();
            }
          }),
      ),
    ).then(() => undefined);
  }

  /** Starts `connect` (the public shell checked the state and copied the credentials). */
  function connect(credentials: TransportAuth): Promise<void> {
    auth = credentials;
    core.setState('connecting');
    const attemptConnect = async (): Promise<void> => {
      for (let tries = 1; ; tries++) {
        try {
          await open(credentials);
          return;
        } catch (e) {
          if (closed()) throw transportClosed();
          // Tried again, with backoff, on a fresh connection and challenge: a connection
          // cut before AUTH_OK, and UNAUTHENTICATED (an AUTH repeated on the way, by a
          // proxy or a flaky network, is answered "used challenge", possibly before the
          // original's AUTH_OK; a device the relay really refuses is refused each time).
          // Any other refusal, or a timeout, ends connect at once.
          const retry = (typeof e === 'object' && e !== null && networkFailures.has(e)) || (isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'UNAUTHENTICATED');
          if (!retry || tries >= CONNECT_TRIES) throw e;
          await new Promise<void>((resolve) => {
            const done = (): void => {
              wakeConnect = undefined;
              resolve();
            };
            wakeConnect = done; // close() ends the wait
            reconnectTimer = timers.setTimeout(() => {
              reconnectTimer = undefined;
              done();
            }, backoffDelay(tries - 1, backoff, random));
          });
          if (closed()) throw transportClosed();
        }
      }
    };
    connecting = attemptConnect().then(
      () => {
        connecting = undefined;
      },
      (error: unknown) => {
        connecting = undefined;
        if (closed()) throw transportClosed();
        auth = undefined;
        // Requests queued while connecting have nowhere to go.
        for (const req of [...pending.values()]) {
          settle(req);
          req.reject(failed(req.operation, 'the connection attempt failed', error));
        }
        core.setState('idle');
        throw error;
      },
    );
    return connecting;
  }

  return createRelayTransport({
    core,
    maxPending,
    pending: () => counted,
    maxFrameSize,
    connecting: () => connecting,
    connect,
    request,
    provisionTake: provisionTakeOnce,
    close(): Promise<void> {
      closing ??= closeNow();
      return closing;
    },
  });
}
