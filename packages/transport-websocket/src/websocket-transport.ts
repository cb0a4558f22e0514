/**
 * The WebSocket transport (docs/relay-protocol.md §1): one multiplexed WebSocket to the
 * relay. Requests carry ids and may be answered in any order; the relay pushes DELIVER
 * frames, acknowledged only after the frame handler resolved.
 *
 * Reconnects on its own after a drop (capped exponential backoff with full jitter),
 * re-authenticating with the same credentials. A request not yet answered when the
 * connection drops is sent again on the next connection: `send` resolves only on the
 * relay's OK, so a message is either stored or still being retried (at-least-once; the
 * ratchet recognises a message stored twice).
 *
 * @module
 */
import {
  RELAY_LIMITS,
  TRANSPORT_SPECIFICATION_VERSION,
  TransportCore,
  TransportError,
  backoffDelay,
  decodeRelayFrame,
  encodeRelayFrame,
  prepareOutbound,
  relayError,
  transportClosed,
  type BackoffOptions,
  type OutboundMessage,
  type RelayFrame,
  type TransportAdapter,
  type TransportAuth,
} from '@deadbolt/spec';

/** The subset of the WHATWG WebSocket this transport uses (browsers' own, or `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A WebSocket constructor. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Options of {@link createWebSocketTransport}. */
export interface WebSocketTransportOptions {
  /** The relay's WebSocket URL, for example `wss://relay.example/v1/ws`. */
  readonly url: string;
  /** The WebSocket class; defaults to `globalThis.WebSocket` (Node 20 has none: pass `ws`). */
  readonly WebSocket?: WebSocketConstructor;
  /** A request unanswered this long cuts the connection (it is retried on the next). Default 15 s. */
  readonly requestTimeoutMs?: number;
  /** Reconnect backoff (default 100 ms doubling to 10 s, full jitter). */
  readonly backoff?: BackoffOptions;
  /** Requests waiting for a connection before `send` rejects. Default 1,000. */
  readonly maxPending?: number;
  /** Bytes buffered in the socket before requests wait. Default 4 MiB. */
  readonly maxBufferedBytes?: number;
  /** Randomness for jitter (tests). */
  readonly random?: () => number;
}

interface PendingRequest {
  readonly bytes: Uint8Array;
  readonly resolve: (frame: RelayFrame) => void;
  readonly reject: (error: unknown) => void;
  sent: boolean;
}

const OPEN = 1;

/**
 * Creates a WebSocket transport.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws'; // Node 20; browsers have their own
 * const transport = createWebSocketTransport({ url: 'ws://127.0.0.1:8787/v1/ws', WebSocket });
 * const client = await createClient({ userId: 'alice', deviceId: 'phone', storage, transport });
 * ```
 */
export function createWebSocketTransport(options: WebSocketTransportOptions): TransportAdapter {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof options.url !== 'string' || !/^wss?:\/\//.test(options.url)) {
    throw new TransportError('TRANSPORT_FAILED', { message: 'url must be a ws:// or wss:// URL', details: { operation: 'create' } });
  }
  if (!Ctor) throw new TransportError('TRANSPORT_FAILED', { message: 'no WebSocket implementation: pass options.WebSocket', details: { operation: 'create' } });
  const requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
  const maxPending = options.maxPending ?? 1000;
  const maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const random = options.random ?? Math.random;
  const core = new TransportCore(RELAY_LIMITS.maxMessage);

  let auth: TransportAuth | undefined;
  let socket: WebSocketLike | undefined;
  let authenticated = false;
  let nextId = 1;
  let attempt = 0;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let connecting: Promise<void> | undefined;
  const pending = new Map<number, PendingRequest>();
  const timers = new Map<number, ReturnType<typeof setTimeout>>();

  const takeId = (): number => {
    const id = nextId;
    nextId = nextId >= 0xfffffffe ? 1 : nextId + 1;
    return id;
  };

  function flush(): void {
    if (!socket || socket.readyState !== OPEN || !authenticated) return;
    for (const [id, req] of pending) {
      if (req.sent) continue;
      if (socket.bufferedAmount > maxBuffered) return; // backpressure: the rest go later
      req.sent = true;
      socket.send(req.bytes);
      timers.set(
        id,
        setTimeout(() => {
          // No answer: treat the connection as dead; the request is retried on the next one.
          timers.delete(id);
          socket?.close(4000, 'request timeout');
        }, requestTimeoutMs),
      );
    }
  }

  function request(frame: RelayFrame): Promise<RelayFrame> {
    if (core.state === 'closed') return Promise.reject(transportClosed());
    if (pending.size >= maxPending) {
      return Promise.reject(new TransportError('TRANSPORT_FAILED', { message: 'too many requests waiting for the relay', details: { operation: 'request' } }));
    }
    const id = takeId();
    return new Promise<RelayFrame>((resolve, reject) => {
      pending.set(id, { bytes: encodeRelayFrame(id, frame), resolve, reject, sent: false });
      flush();
    });
  }

  function answer(id: number, frame: RelayFrame): void {
    const req = pending.get(id);
    if (!req) return;
    pending.delete(id);
    const t = timers.get(id);
    if (t) clearTimeout(t);
    timers.delete(id);
    req.resolve(frame);
  }

  function resetSent(): void {
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    for (const req of pending.values()) req.sent = false;
  }

  /** Opens a socket and authenticates; resolves on AUTH_OK, rejects on refusal or drop. */
  function open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new Ctor!(options.url);
      ws.binaryType = 'arraybuffer';
      socket = ws;
      authenticated = false;
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        if (error === undefined) resolve();
        else reject(error);
      };
      ws.onmessage = (ev) => {
        if (socket !== ws) return;
        const data = ev.data;
        const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined;
        if (!bytes) return;
        let envelope;
        try {
          envelope = decodeRelayFrame(bytes);
        } catch {
          ws.close(4002, 'undecodable frame');
          return;
        }
        const { requestId, frame } = envelope;
        if (!authenticated) {
          if (frame.kind === 'hello' && auth) {
            const a = auth;
            void a
              .sign(frame.relayId, frame.challenge)
              .then((signature) => {
                if (socket !== ws) return;
                ws.send(encodeRelayFrame(0, { kind: 'auth', certificate: a.certificate, signature, challenge: frame.challenge, token: a.token ?? '' }));
              })
              .catch((e: unknown) => {
                settle(e);
                ws.close(4003, 'cannot sign');
              });
          } else if (frame.kind === 'auth-ok') {
            authenticated = true;
            attempt = 0;
            settle();
            flush();
          } else if (frame.kind === 'error') {
            settle(relayError(frame));
            ws.close(4001, 'refused');
          }
          return;
        }
        switch (frame.kind) {
          case 'deliver':
            void core.deliver(frame.messages, async (ids) => {
              for (let i = 0; i < ids.length; i += RELAY_LIMITS.maxAck) await request({ kind: 'ack', ids: ids.slice(i, i + RELAY_LIMITS.maxAck) });
            });
            break;
          case 'prekeys-low':
            core.notice({ type: 'prekeys-low', oneTimePrekeys: frame.oneTimePrekeys, pqPrekeys: frame.pqPrekeys });
            break;
          default:
            if (requestId !== 0) answer(requestId, frame);
        }
      };
      ws.onclose = () => {
        if (socket !== ws) return;
        socket = undefined;
        authenticated = false;
        resetSent();
        settle(new TransportError('TRANSPORT_FAILED', { message: 'connection closed before authentication', details: { operation: 'connect' } }));
        if (core.state === 'connected' || core.state === 'reconnecting') scheduleReconnect();
      };
      ws.onerror = () => {
        /* onclose follows */
      };
    });
  }

  function scheduleReconnect(): void {
    if (core.state === 'closed' || reconnectTimer) return;
    core.setState('reconnecting');
    const delay = backoffDelay(attempt++, options.backoff, random);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      if (core.state === 'closed') return;
      open().then(
        () => core.setState('connected'),
        () => scheduleReconnect(),
      );
    }, delay);
  }

  async function call(frame: RelayFrame, userId?: string): Promise<RelayFrame> {
    const answerFrame = await request(frame);
    if (answerFrame.kind === 'error') throw relayError(answerFrame, userId);
    return answerFrame;
  }

  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    maxFrameSize: RELAY_LIMITS.maxMessage,
    get state() {
      return core.state;
    },
    connect(credentials: TransportAuth): Promise<void> {
      if (core.state === 'closed') return Promise.reject(transportClosed());
      if (core.state === 'connected' || core.state === 'reconnecting') return Promise.resolve();
      if (connecting) return connecting;
      auth = credentials;
      core.setState('connecting');
      connecting = open().then(
        () => {
          connecting = undefined;
          core.setState('connected');
        },
        (e: unknown) => {
          connecting = undefined;
          socket?.close();
          socket = undefined;
          if (core.state !== 'closed') core.setState('idle');
          throw e;
        },
      );
      return connecting;
    },
    async send(messages: readonly OutboundMessage[]): Promise<void> {
      if (core.state === 'closed') throw transportClosed();
      const prepared = prepareOutbound(messages, RELAY_LIMITS.maxMessage);
      await call({ kind: 'send', messages: prepared }, prepared[0]?.to.userId);
    },
    onFrame: (handler) => core.onFrame(handler),
    onStateChange: (listener) => core.onStateChange(listener),
    onNotice: (listener) => core.onNotice(listener),
    async publishPrekeys(upload: Uint8Array): Promise<void> {
      if (!(upload instanceof Uint8Array)) throw new TransportError('TRANSPORT_FAILED', { message: 'upload must be a Uint8Array', details: { operation: 'publishPrekeys' } });
      await call({ kind: 'publish-prekeys', upload: upload.slice() });
    },
    async fetchBundles(userId: string): Promise<Uint8Array[]> {
      const frame = await call({ kind: 'fetch-bundles', userId }, userId);
      if (frame.kind !== 'bundles') throw new TransportError('TRANSPORT_FAILED', { message: 'unexpected answer to FETCH_BUNDLES', details: { operation: 'fetchBundles' } });
      return frame.bundles.map((b) => b.slice());
    },
    async close(): Promise<void> {
      if (core.state === 'closed') return;
      core.close();
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      resetSent();
      const closedError = transportClosed();
      for (const req of pending.values()) req.reject(closedError);
      pending.clear();
      const ws = socket;
      socket = undefined;
      ws?.close(1000, 'closed');
    },
  };
}
