/**
 * The WebSocket carrier (docs/relay-protocol.md §1): `GET /v1/ws` upgraded with `ws` in
 * `noServer` mode, so every check runs *before* the upgrade: draining, path, Origin
 * (SECURITY.md F41), per-address attempt limits and connection caps. `maxPayload` is the
 * relay frame limit, so an oversize frame closes the socket (1009) before it is even
 * buffered whole, let alone decoded or verified (SECURITY.md E34).
 *
 * A connection that never authenticates may still send PROVISION_TAKE after HELLO (a new
 * device has no certificate yet); it is closed like any other at the authentication
 * timeout. After HELLO → AUTH → AUTH_OK the relay pushes DELIVER frames as mail arrives, at most
 * `maxDeliver` unacknowledged messages in flight per connection; unacknowledged ones are
 * delivered again on the next connection. Backpressure: pushes pause while the socket's
 * send buffer is above the high-water mark and resume on `drain`; a connection whose
 * buffer passes the hard cap is dropped; reading pauses while too many requests of one
 * connection are being handled.
 *
 * @module
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { decodeRelayFrame, encodeRelayFrame, type RelayFrame } from '@deadbolt/spec';
import { newChallenge } from './challenges.js';
import { originAllowed, type RelayCore, type WebSocketPeer } from './core.js';
import type { AuthenticatedDevice } from './device.js';
import { deliverFrame, errorFrame, handleRequest, isRequest, needsNoDevice, readMail, type RequestContext } from './handler.js';
import { sameBytes } from './store-util.js';

/** The WebSocket side of a relay. */
export interface WebSocketCarrier {
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Closes every connection (1001), waiting briefly for clean closes. */
  close(): Promise<void>;
}

/** The request id of a frame that did not decode, if its header is there (else 0). */
export function peekRequestId(bytes: Uint8Array): number {
  if (bytes.length < 6) return 0;
  return ((bytes[2]! << 24) | (bytes[3]! << 16) | (bytes[4]! << 8) | bytes[5]!) >>> 0;
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${reason.length}\r\n\r\n${reason}`);
  socket.destroy();
}

/** How long `close()` waits for clean closes before terminating sockets. */
const CLOSE_GRACE_MS = 2000;

export function attachWebSocketCarrier(server: Server, core: RelayCore): WebSocketCarrier {
  const { limits, log } = core;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrame,
    // Ciphertext does not compress, and compression invites memory bombs.
    perMessageDeflate: false,
    clientTracking: false,
  });
  /** Every open connection, with whether it answered the last ping. */
  const all = new Map<WebSocket, { alive: boolean }>();
  let unauthenticated = 0;
  /** Numbers connections, to key per-connection limits (PROVISION_TAKE). */
  let connections = 0;

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const remote = req.socket.remoteAddress ?? 'unknown';
    if (core.draining) return refuse(socket, 503, 'Service Unavailable');
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://relay').pathname;
    } catch {
      return refuse(socket, 400, 'Bad Request');
    }
    if (path !== '/v1/ws') return refuse(socket, 404, 'Not Found');
    // SECURITY.md F41: a page on a foreign origin must not even open a socket.
    if (!originAllowed(core, req.headers.origin)) {
      log('info', 'upgrade-refused', { reason: 'origin' });
      return refuse(socket, 403, 'Forbidden');
    }
    if (core.limiters.authAttempts.attempt([remote]) > 0) {
      log('info', 'upgrade-refused', { reason: 'rate-limited' });
      return refuse(socket, 429, 'Too Many Requests');
    }
    if (all.size >= limits.maxConnections || unauthenticated >= limits.maxUnauthenticatedConnections) {
      log('warn', 'upgrade-refused', { reason: 'connection-cap' });
      return refuse(socket, 503, 'Service Unavailable');
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket, remote));
  });

  function onConnection(ws: WebSocket, socket: Duplex, remote: string): void {
    const liveness = { alive: true };
    all.set(ws, liveness);
    unauthenticated++;
    const openedAt = core.now();
    const connection = `ws:${++connections}`;
    const challenge = newChallenge();
    let challengeUsed = false;
    let device: AuthenticatedDevice | undefined;
    let closed = false;
    let pending = 0;
    let authPending = false;
    let pumping = false;
    let pumpAgain = false;
    let waitingDrain = false;
    let unsubscribe: (() => void) | undefined;
    const inFlight = new Set<string>();
    const abort = new AbortController();

    const authTimer = setTimeout(() => {
      if (device === undefined) ws.close(1008, 'authentication timeout');
    }, limits.challengeLifetimeMs);
    authTimer.unref?.();

    function sendFrame(requestId: number, frame: RelayFrame): void {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(encodeRelayFrame(requestId, frame));
      if (ws.bufferedAmount > limits.maxBufferedBytes) {
        log('warn', 'slow-consumer', { bufferedBytes: ws.bufferedAmount });
        ws.terminate();
      }
    }

    function context(): RequestContext {
      return {
        carrier: 'websocket',
        remote,
        connection,
        device,
        signal: abort.signal,
        inFlight,
        consumeChallenge(c) {
          // Only this connection's own challenge, once, within its lifetime.
          if (challengeUsed) return false;
          challengeUsed = true;
          return sameBytes(c, challenge) && core.now() - openedAt <= limits.challengeLifetimeMs;
        },
      };
    }

    function updateReading(): void {
      if (closed) return;
      const shouldPause = authPending || pending >= limits.requestsInFlightPerConnection;
      if (shouldPause && !ws.isPaused) ws.pause();
      else if (!shouldPause && ws.isPaused) ws.resume();
    }

    function pump(): void {
      if (device === undefined || closed || core.draining) return;
      if (pumping) {
        pumpAgain = true;
        return;
      }
      pumping = true;
      const mine = device;
      void core
        .track(async () => {
          do {
            pumpAgain = false;
            if (closed) break;
            if (ws.bufferedAmount > limits.pushHighWaterBytes) {
              if (!waitingDrain) {
                waitingDrain = true;
                log('debug', 'push-paused', { bufferedBytes: ws.bufferedAmount });
                socket.once('drain', () => {
                  waitingDrain = false;
                  pump();
                });
              }
              break;
            }
            const room = limits.maxDeliver - inFlight.size;
            if (room <= 0) break;
            const messages = await readMail(core, context(), mine.address, room);
            if (closed || messages.length === 0) continue;
            for (const m of messages) inFlight.add(m.id);
            sendFrame(0, deliverFrame(messages));
            pumpAgain = true;
          } while (pumpAgain);
        })
        .catch((e: unknown) => {
          if (!closed && !core.draining) log('error', 'push-failed', { error: e instanceof Error ? e.name : typeof e });
        })
        .finally(() => {
          pumping = false;
        });
    }

    const peer: WebSocketPeer = {
      get device() {
        return device as AuthenticatedDevice;
      },
      openedAt,
      push: (frame) => sendFrame(0, frame),
      pump,
      acked(ids) {
        let released = false;
        for (const id of ids) released = inFlight.delete(id) || released;
        if (released) pump();
      },
      close: (code, reason) => ws.close(code, reason),
    };

    function onAuthenticated(d: AuthenticatedDevice): void {
      device = d;
      unauthenticated--;
      clearTimeout(authTimer);
      let set = core.peers.get(d.key);
      if (set === undefined) core.peers.set(d.key, (set = new Set()));
      set.add(peer);
      // At most `connectionsPerDevice`: a newer connection displaces the oldest (most
      // likely a dead one the relay has not noticed yet).
      while (set.size > limits.connectionsPerDevice) {
        const oldest = [...set].reduce((a, b) => (b.openedAt < a.openedAt ? b : a));
        set.delete(oldest);
        oldest.close(4001, 'displaced by a newer connection');
      }
      unsubscribe = core.hub.subscribe(d.key, pump);
      pump();
    }

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (closed) return;
      if (!isBinary) {
        ws.close(1003, 'binary frames only');
        return;
      }
      const bytes = toBytes(data);
      let envelope;
      try {
        envelope = decodeRelayFrame(bytes);
      } catch {
        sendFrame(peekRequestId(bytes), errorFrame('BAD_REQUEST', 'undecodable frame'));
        return;
      }
      const { requestId, frame } = envelope;
      if (!isRequest(frame)) {
        sendFrame(requestId, errorFrame('BAD_REQUEST', `${frame.kind} is not a request`));
        return;
      }
      // Before AUTH only AUTH, and PROVISION_TAKE: a new device without a certificate
      // sends it instead of AUTH, after HELLO (relay-protocol.md PROVISION_TAKE).
      if (device === undefined && !needsNoDevice(frame)) {
        sendFrame(requestId, errorFrame('UNAUTHENTICATED', 'authenticate first'));
        return;
      }
      const isAuth = frame.kind === 'auth';
      pending++;
      // Nothing else is read until AUTH is settled, so a pipelined request never races it.
      if (isAuth) authPending = true;
      updateReading();
      // The answer is written inside the tracked section, so a graceful close never
      // closes the socket between a committed SEND and its OK.
      void core
        .track(async () => {
          const result = await handleRequest(core, context(), frame);
          sendFrame(requestId, result.frame);
          result.after?.();
          if (isAuth) {
            if (result.authenticated && !closed) onAuthenticated(result.authenticated);
            else if (device === undefined) ws.close(1008, 'authentication failed');
          }
        })
        .finally(() => {
          pending--;
          if (isAuth) authPending = false;
          updateReading();
        });
    });

    ws.on('pong', () => {
      liveness.alive = true;
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      closed = true;
      all.delete(ws);
      if (device === undefined) unauthenticated--;
      clearTimeout(authTimer);
      abort.abort();
      unsubscribe?.();
      if (device !== undefined) {
        const set = core.peers.get(device.key);
        set?.delete(peer);
        if (set?.size === 0) core.peers.delete(device.key);
      }
    });

    sendFrame(0, {
      kind: 'hello',
      relayId: core.relayId,
      challenge,
      serverTime: core.now(),
      maxMessage: Math.min(limits.maxMessage, limits.maxFrame),
    });
  }

  // Keepalive: a socket that missed the previous ping's pong is dropped.
  const pinger = setInterval(() => {
    for (const [ws, liveness] of all) {
      if (!liveness.alive) {
        ws.terminate();
        continue;
      }
      liveness.alive = false;
      try {
        ws.ping();
      } catch {
        // Closing already.
      }
    }
  }, limits.pingIntervalMs);
  pinger.unref?.();

  return {
    get connections() {
      return all.size;
    },
    async close() {
      clearInterval(pinger);
      const closing = [...all.keys()].map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close(1001, 'relay shutting down');
          }),
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.all(closing), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
      clearTimeout(timer);
      for (const ws of all.keys()) ws.terminate();
      wss.close();
    },
  };
}
