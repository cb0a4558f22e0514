/**
 * `createRelay`: the reference relay (docs/relay-protocol.md), one `node:http` server
 * carrying both the WebSocket and the HTTP carriers over one request handler.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDefaultCryptoProvider, type CryptoProvider } from '@deadbolt/core';
import { UsageError } from '@deadbolt/spec';
import { createChallengeTable } from './challenges.js';
import type { RelayCore, VerifyRegistration, WebSocketPeer } from './core.js';
import { createHttpListener } from './http.js';
import { resolveRelayLimits, type RelayLimits } from './limits.js';
import { createJsonRelayLogger, type RelayLogger } from './logger.js';
import { createMailboxHub } from './mailbox-hub.js';
import { createMemoryRelayStore } from './memory-store.js';
import { createProvisionTable } from './provisioning.js';
import { createRateLimiter } from './rate-limiter.js';
import { createSessionTable } from './sessions.js';
import type { PrekeyCounts, RelayStore } from './store.js';
import { attachWebSocketCarrier } from './websocket.js';

/** Options of {@link createRelay}. */
export interface RelayOptions {
  /** Where accounts, devices, prekeys and mailboxes live (default: {@link createMemoryRelayStore}). Closed by `close()`. */
  store?: RelayStore;
  /** Interface to listen on (default `127.0.0.1`). */
  host?: string;
  /** Port (default 0: an ephemeral port, see {@link Relay.url}). */
  port?: number;
  /** The relay's name, bound into every device's authentication signature (default `deadbolt-relay`). */
  relayId?: string;
  /**
   * Origins (`scheme://host[:port]`) whose browser pages may connect. A request without
   * an `Origin` header (a non-browser client) is always allowed; any other origin is
   * refused with 403, before a WebSocket upgrade (SECURITY.md F41). Default: none.
   */
  allowedOrigins?: readonly string[];
  /**
   * The product's registration check (docs/relay-protocol.md §2): called for a user id's
   * first account key and for any change of it, with the token the device sent. Absent:
   * **development mode** (first use pins; logged loudly at start).
   */
  verifyRegistration?: (userId: string, accountKey: Uint8Array, token: string) => Promise<boolean>;
  /** Tighter (or, for relay-side protections, looser) limits than the defaults. */
  limits?: Partial<RelayLimits>;
  /** Structured log sink (default: JSON lines on standard error, `info` and above). */
  logger?: RelayLogger;
  /** The clock in ms (default `Date.now`): challenges, sessions, rate limits, `receivedAt`. */
  now?: () => number;
  /** The crypto provider verifying certificates, signatures and uploads (default: the platform's). */
  crypto?: CryptoProvider;
}

/** A running relay. */
export interface Relay {
  /** `http://host:port`: `GET /v1/hello`, `POST /v1/rpc`, `GET /v1/health`. */
  readonly url: string;
  /** `ws://host:port/v1/ws`. */
  readonly wsUrl: string;
  /**
   * Graceful shutdown: health answers 503 and new upgrades and requests are refused
   * (UNAVAILABLE) at once; long polls answer; requests in flight finish; then the relay
   * stops listening, closes every socket (WebSockets with 1001) and closes the store.
   * Idempotent.
   */
  close(): Promise<void>;
}

/** How long `close()` waits for HTTP sockets to finish before cutting them. */
const CLOSE_GRACE_MS = 2000;

function checkRelayId(relayId: string): string {
  if (typeof relayId !== 'string' || relayId.length === 0 || Buffer.byteLength(relayId) > 255) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'relayId must be 1-255 bytes of UTF-8', details: { field: 'relayId', expected: '1-255 bytes' } });
  }
  return relayId;
}

function checkOrigins(origins: readonly string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const o of origins ?? []) {
    let parsed: URL;
    try {
      parsed = new URL(o);
    } catch {
      throw new UsageError('INVALID_ARGUMENT', { message: `allowed origin is not a URL origin: ${o}`, details: { field: 'allowedOrigins', expected: 'scheme://host[:port]' } });
    }
    if (parsed.origin !== o) {
      throw new UsageError('INVALID_ARGUMENT', {
        message: `allowed origin must be exactly an origin (${parsed.origin}), got ${o}`,
        details: { field: 'allowedOrigins', expected: 'scheme://host[:port]' },
      });
    }
    out.add(o);
  }
  return out;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Starts a relay and resolves once it listens.
 *
 * @example
 * ```ts
 * import { createRelay, createSqliteRelayStore } from '@deadbolt/relay';
 *
 * const relay = await createRelay({
 *   store: createSqliteRelayStore({ path: './deadbolt-relay.db' }),
 *   port: 8443,
 *   relayId: 'relay.example.com',
 *   allowedOrigins: ['https://app.example.com'],
 *   verifyRegistration: async (userId, accountKey, token) => myLogin.check(userId, token),
 * });
 * console.log(relay.wsUrl); // ws://127.0.0.1:8443/v1/ws
 * await relay.close();
 * ```
 */
export async function createRelay(options: RelayOptions = {}): Promise<Relay> {
  const relayId = checkRelayId(options.relayId ?? 'deadbolt-relay');
  const limits = resolveRelayLimits(options.limits);
  const allowedOrigins = checkOrigins(options.allowedOrigins);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'port must be 0-65535', details: { field: 'port', expected: '0-65535' } });
  }
  const now = options.now ?? Date.now;
  const log = options.logger ?? createJsonRelayLogger();
  const store = options.store ?? createMemoryRelayStore();
  const crypto = options.crypto ?? createDefaultCryptoProvider();
  const verifyRegistration: VerifyRegistration | undefined = options.verifyRegistration;

  const drain = new AbortController();
  let draining = false;
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  const limiter = (l: RelayLimits['messages']) => createRateLimiter(l, limits.rateLimiterEntries, now);

  const core: RelayCore = {
    relayId,
    limits,
    store,
    crypto,
    log,
    now,
    verifyRegistration,
    allowedOrigins,
    challenges: createChallengeTable({ max: limits.maxPendingChallenges, lifetimeMs: limits.challengeLifetimeMs, now }),
    sessions: createSessionTable({ maxSessions: limits.maxSessions, perDevice: limits.sessionsPerDevice, idleMs: limits.sessionIdleMs, now }),
    hub: createMailboxHub(),
    provisions: createProvisionTable({
      maxBlobs: limits.maxProvisionBlobs,
      maxWaiters: limits.maxProvisionWaiters,
      lifetimeMs: limits.provisionLifetimeMs,
      now,
    }),
    peers: new Map<string, Set<WebSocketPeer>>(),
    limiters: {
      bundleFetches: limiter(limits.bundleFetches),
      directoryReads: limiter(limits.directoryReads),
      messages: limiter(limits.messages),
      sendBytes: limiter(limits.sendBytes),
      authAttempts: limiter(limits.authAttempts),
      requests: limiter(limits.requests),
      prekeyUploads: limiter(limits.prekeyUploads),
      deviceListPublishes: limiter(limits.deviceListPublishes),
      provisionPuts: limiter(limits.provisionPuts),
      provisionTakes: limiter(limits.provisionTakes),
    },
    pendingLow: new Map<string, PrekeyCounts>(),
    waiters: { total: 0, perDevice: new Map() },
    drainSignal: drain.signal,
    get draining() {
      return draining;
    },
    async track(work) {
      inFlight++;
      try {
        return await work();
      } finally {
        if (--inFlight === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const w of waiters) w();
        }
      }
    },
  };

  const server = createServer(
    { requestTimeout: limits.maxWaitMs + 30_000, headersTimeout: 30_000, keepAliveTimeout: 5000 },
    createHttpListener(core),
  );
  server.maxConnections = limits.maxSockets;
  server.on('clientError', (_e, socket) => socket.destroy());
  const websockets = attachWebSocketCarrier(server, core);

  try {
    await listen(server, port, host);
  } catch (e) {
    await websockets.close();
    if (options.store === undefined) await store.close();
    throw e;
  }
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${bound}`;
  const wsUrl = `ws://${urlHost}:${bound}/v1/ws`;

  log('info', 'relay-started', { url, relayId, mode: verifyRegistration ? 'registration-hook' : 'development' });
  if (verifyRegistration === undefined) {
    log('warn', 'development-mode', {
      message:
        'DEVELOPMENT MODE: no registration hook. Any account key is pinned to a user id on first use. Never expose this relay to the internet.',
    });
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    wsUrl,
    close() {
      closing ??= (async () => {
        // 1. Drain: health answers 503 (so load balancers stop routing here), upgrades and
        //    new requests are refused with 503 / UNAVAILABLE, long polls and waiting
        //    PROVISION_TAKEs answer now (with nothing).
        draining = true;
        log('info', 'relay-draining', {});
        drain.abort();
        core.provisions.close();
        // 2. Finish what is in flight (a SEND being committed, a bundle being taken).
        if (inFlight > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve));
        // 3. Stop listening and close every socket.
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await websockets.close();
        server.closeIdleConnections();
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([serverClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
        clearTimeout(timer);
        server.closeAllConnections();
        await serverClosed;
        // 4. Only then the store: nothing can reach it any more.
        await store.close();
        log('info', 'relay-stopped', {});
      })();
      return closing;
    },
  };
}
