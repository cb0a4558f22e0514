/**
 * The HTTP long-polling transport (docs/relay-protocol.md §1): every request is one
 * `POST /v1/rpc` carrying a relay frame and answered by one; a FETCH long poll waits for
 * mail. Works with any `fetch` (browsers, Node, workers).
 *
 * - **Connect** (transport.ts invariant 1): `GET /v1/hello`, then AUTH (the device's
 *   signature over the relay id and challenge, §2) → AUTH_OK with a session token, sent
 *   as `Authorization: Bearer` on every later request. A refusal rejects `connect` and the
 *   state returns to `idle`; an unreachable relay, and UNAUTHENTICATED (see `connect`),
 *   are tried four times first.
 * - **Drops** (invariant 3): a network error, a timeout, a 5xx or an UNAVAILABLE answer
 *   moves the state to `reconnecting` and the request is retried with capped exponential
 *   backoff and full jitter; a 401 (or UNAUTHENTICATED: the token expired, or the relay
 *   restarted) authenticates again and retries. So `send` resolves only once the relay
 *   stored the messages; a lost answer means the retry stores them twice (at-least-once:
 *   the ratchet recognises the copy).
 * - **429**: a relay RATE_LIMITED refusal of `send`, `publishPrekeys` or `fetchBundles`
 *   rejects with `RATE_LIMITED` and its `retryAfterMs` (the larger of the frame's and the
 *   `Retry-After` header's), as on every transport; the caller decides. A 429 without a
 *   relay frame (a proxy's limit), and any 429 to the transport's own requests (FETCH,
 *   ACK, HELLO, AUTH), waits `Retry-After` and retries.
 * - **Polling** (invariant 2): one FETCH at a time (`pollWaitMs`) while connected; it also
 *   notices a relay that went away, and brings PREKEYS_LOW (the relay's answer to a FETCH
 *   when it has one). Messages are handed to the handler one at a time and acknowledged
 *   (one ACK per batch) after it resolved, before the next FETCH. The relay answers a
 *   FETCH at once while unacknowledged mail waits, so a batch left partly
 *   unacknowledged (the handler threw, or none is registered) backs off before the next
 *   FETCH, which delivers those messages again; registering a handler ends that wait.
 * - **Bounds** (invariant 4): message frames over `maxFrameSize` reject with
 *   `FRAME_TOO_LARGE` before anything is sent; one `send` is split into SEND requests that
 *   each fit the relay's 2 MiB frame and 1,000 recipients, and one `sendShared` into
 *   SEND_SHARED requests of at most 1,000 recipients; at most `maxPending` requests wait.
 * - **Device lists** (docs/relay-protocol.md "Device lists"): each SEND and SEND_SHARED
 *   entry carries the recipient user's `listVersion`; a DEVICE_MISMATCH answer rejects the
 *   send with `TransportError` `DEVICE_MISMATCH`, never retried. REVOKED (the device is not
 *   in its user's device list) is never retried either: on `connect` it rejects with
 *   `RELAY_REJECTED` `{ code: 'REVOKED' }`; when re-authenticating (the relay ended the
 *   session as the list changed) every waiting request rejects with it, polling stops and
 *   the state returns to `idle`.
 * - **Provisioning** (docs/protocol.md §3.4): `provisionTake` needs no `connect`: it is one
 *   PROVISION_TAKE request without a session token (one attempt: the relay deletes the
 *   blob when it answers, so a repeated take after a lost answer would find nothing).
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
  isDeadboltError,
  decodeRelayFrame,
  encodeRelayFrame,
  relayError,
  relayMessageLimit,
  requestIdCounter,
  signAuth,
  transportClosed,
  type BackoffOptions,
  type FrameHandler,
  type RelayFrame,
  type RelayRequestOptions,
  type TransportAdapter,
  type TransportAuth,
} from '@deadbolt/spec';
import type { TransportTimers } from '@deadbolt/spec';
import { invalidOption as invalid, positiveOption as positive, systemTimers as globalTimers, transportFailed as failed } from '@deadbolt/spec';

/** Timer functions (injectable for tests). */
export type HttpPollingTransportTimers = TransportTimers;

/**
 * Options of {@link createHttpPollingTransport}.
 *
 * @example
 * ```ts
 * const options: HttpPollingTransportOptions = { url: 'https://relay.example', relayId: 'relay.example', pollWaitMs: 25_000 };
 * ```
 */
export interface HttpPollingTransportOptions {
  /** The relay's base URL, for example `https://relay.example`. */
  readonly url: string;
  /** The fetch function; defaults to `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch;
  /**
   * The relay id this device expects (docs/relay-protocol.md §2). When set, a HELLO naming
   * another relay is refused before anything is signed. Recommended in production.
   */
  readonly relayId?: string;
  /** How long the relay may hold a FETCH open. Default 25 s (at most 30 s). */
  readonly pollWaitMs?: number;
  /** A request unanswered this long is aborted and retried. Default 15 s (plus the poll wait for FETCH). */
  readonly requestTimeoutMs?: number;
  /** Retry backoff (default 100 ms doubling to 10 s, full jitter). */
  readonly backoff?: BackoffOptions;
  /** Requests (`send` batches, prekey calls) waiting for the relay before more reject. Default 1,000. */
  readonly maxPending?: number;
  /** Randomness for jitter, uniform in [0, 1) (tests). */
  readonly random?: () => number;
  /** Timer functions (tests). Default the global ones. */
  readonly timers?: HttpPollingTransportTimers;
}

/** A failure a retry may fix. */
class Transient extends Error {
  constructor(
    readonly kind: 'drop' | 'reauthenticate' | 'wait',
    /** The session token the failed request carried. */
    readonly token: string | undefined,
    readonly retryAfterMs?: number,
  ) {
    super(`transient: ${kind}`);
  }
}

/** What a request is, for retries and for mapping refusals. */
interface CallOptions extends RelayRequestOptions {
  /** The caller's own request (send, prekeys): a relay RATE_LIMITED rejects instead of waiting. */
  readonly user: boolean;
  /** Extra time the relay may take (the FETCH wait). */
  readonly waitMs?: number;
}

const CONNECT_TRIES = 4;

/** `Retry-After` in ms: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Whether a refusal is REVOKED: this device is not in its user's device list (never retried). */
function isRevoked(e: unknown): boolean {
  return isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'REVOKED';
}

/** Requests sent without a session token: AUTH, and PROVISION_TAKE (a new device has no certificate yet). */
function anonymous(frame: RelayFrame): boolean {
  return frame.kind === 'auth' || frame.kind === 'provision-take';
}

/**
 * Creates an HTTP long-polling transport. Nothing is requested before `connect`.
 *
 * @example
 * ```ts
 * import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
 *
 * const transport = createHttpPollingTransport({ url: 'https://relay.example', relayId: 'relay.example' });
 * transport.onFrame(async (frame) => { await handle(frame); }); // acknowledged after this resolves
 * await transport.connect(auth);
 * await transport.send([{ to: bob, frame: ciphertext }]); // resolves once the relay stored it
 * await transport.close();
 * ```
 */
export function createHttpPollingTransport(options: HttpPollingTransportOptions): TransportAdapter {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an options object');
  if (typeof options.url !== 'string' || !/^https?:\/\/[^/]/i.test(options.url)) throw invalid('url', 'an http:// or https:// URL');
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
  if (typeof doFetch !== 'function') throw invalid('fetch', 'a fetch function (this platform has none)');
  if (options.relayId !== undefined && (typeof options.relayId !== 'string' || options.relayId.length === 0)) throw invalid('relayId', 'a non-empty string');
  const expectedRelayId = options.relayId;
  const pollWaitMs = Math.min(positive(options.pollWaitMs, 'pollWaitMs', 25_000), RELAY_LIMITS.maxWaitMs);
  const requestTimeoutMs = positive(options.requestTimeoutMs, 'requestTimeoutMs', 15_000);
  const maxPending = positive(options.maxPending, 'maxPending', 1000);
  const random = options.random ?? Math.random;
  const timers = options.timers ?? globalTimers;
  const backoff = options.backoff;

  const core = new TransportCore(RELAY_LIMITS.maxMessage);
  let relayMaxMessage = RELAY_LIMITS.maxMessage;
  const maxFrameSize = (): number => Math.min(RELAY_LIMITS.maxMessage, relayMaxMessage);
  // A function, not a property read, so TypeScript does not narrow the state across awaits.
  const closed = (): boolean => core.state === 'closed';
  const idle = (): boolean => core.state === 'idle';
  /** Aborted by `close()`: ends every fetch and every wait. */
  const lifetime = new AbortController();
  let auth: TransportAuth | undefined;
  let token: string | undefined;
  let authenticating: Promise<void> | undefined;
  let connecting: Promise<void> | undefined;
  let counted = 0;
  let polling = false;
  let handlerWaiters: (() => void)[] = [];
  /** The REVOKED refusal that ended the last connection, for requests still waiting on it. */
  let revokedBy: unknown;

  const takeId = requestIdCounter();

  /** Waits `ms`; resolves early (and the caller sees `closed()`) on close. */
  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (lifetime.signal.aborted) return resolve();
      const done = (): void => {
        lifetime.signal.removeEventListener('abort', done);
        timers.clearTimeout(timer);
        resolve();
      };
      const timer = timers.setTimeout(done, ms);
      lifetime.signal.addEventListener('abort', done);
    });
  }

  /** One HTTP exchange; throws `Transient` for what a retry may fix. */
  async function exchange(path: string, frame: RelayFrame | undefined, call: CallOptions): Promise<RelayFrame> {
    if (closed()) throw transportClosed();
    const controller = new AbortController();
    const onClose = (): void => controller.abort();
    lifetime.signal.addEventListener('abort', onClose);
    const timer = timers.setTimeout(() => controller.abort(), requestTimeoutMs + (call.waitMs ?? 0));
    const sentToken = frame !== undefined && !anonymous(frame) ? token : undefined;
    try {
      const headers: Record<string, string> = {};
      let body: Uint8Array<ArrayBuffer> | undefined;
      if (frame !== undefined) {
        headers['content-type'] = 'application/octet-stream';
        if (!anonymous(frame) && token !== undefined) headers.authorization = `Bearer ${token}`;
        body = encodeRelayFrame(takeId(), frame) as Uint8Array<ArrayBuffer>;
      }
      let res: Response;
      try {
        res = await doFetch(`${base}${path}`, { method: frame ? 'POST' : 'GET', headers, ...(body ? { body } : {}), signal: controller.signal });
      } catch (e) {
        if (closed()) throw transportClosed();
        throw new Transient('drop', sentToken); // network error or timeout
      }
      let bytes: Uint8Array;
      try {
        const declared = Number(res.headers.get('content-length') ?? '0');
        if (declared > RELAY_LIMITS.maxFrame) throw new Error('answer over the relay frame limit');
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch {
        if (closed()) throw transportClosed();
        throw new Transient('drop', sentToken); // the answer was cut off
      }
      let answer: RelayFrame | undefined;
      try {
        answer = decodeRelayFrame(bytes).frame;
      } catch {
        answer = undefined;
      }
      const relayRefusal = answer?.kind === 'error' ? answer : undefined;
      if (res.status === 401) throw new Transient('reauthenticate', sentToken);
      if (res.status === 429) {
        const header = retryAfterMs(res.headers.get('retry-after'));
        if (relayRefusal?.code === 'RATE_LIMITED' && call.user) {
          throw new TransportError('RATE_LIMITED', {
            message: `${call.operation}: the relay asks to slow down (${relayRefusal.message})`,
            details: { retryAfterMs: Math.max(relayRefusal.retryAfterMs, header ?? 0) },
          });
        }
        throw new Transient('wait', sentToken, Math.max(header ?? 0, relayRefusal?.retryAfterMs ?? 0));
      }
      if (res.status === 413) {
        throw new TransportError('FRAME_TOO_LARGE', {
          message: `${call.operation}: the relay refused a request of ${body?.byteLength ?? 0} bytes as too large`,
          details: { size: call.largestFrame ?? body?.byteLength ?? 0, max: call.largestFrame !== undefined ? maxFrameSize() : RELAY_LIMITS.maxFrame },
        });
      }
      if (res.status >= 500 || res.status === 408) throw new Transient('drop', sentToken);
      if (answer === undefined) throw failed(call.operation, `the relay's answer (HTTP ${res.status}) did not decode`);
      if (relayRefusal?.code === 'UNAUTHENTICATED' && frame?.kind !== 'auth') throw new Transient('reauthenticate', sentToken);
      if (relayRefusal?.code === 'UNAVAILABLE') throw new Transient('drop', sentToken);
      if (relayRefusal?.code === 'RATE_LIMITED' && !call.user) throw new Transient('wait', sentToken, relayRefusal.retryAfterMs);
      return answer;
    } finally {
      timers.clearTimeout(timer);
      lifetime.signal.removeEventListener('abort', onClose);
    }
  }

  /** HELLO then AUTH; sets the session token. A refusal throws the relay's typed error. */
  function authenticate(): Promise<void> {
    authenticating ??= (async () => {
      try {
        await authenticateOnce();
      } finally {
        authenticating = undefined;
      }
    })();
    return authenticating;
  }

  async function authenticateOnce(): Promise<void> {
    const credentials = auth;
    if (credentials === undefined) throw failed('connect', 'not connected: call connect() first');
    const hello = acceptHello(await exchange('/v1/hello', undefined, { operation: 'connect', user: false }), expectedRelayId, 'connect');
    const authFrame = await signAuth(credentials, hello);
    token = undefined;
    const ok = await exchange('/v1/rpc', authFrame, { operation: 'connect', user: false });
    if (ok.kind === 'error') throw relayError(ok);
    if (ok.kind !== 'auth-ok') throw failed('connect', `expected AUTH_OK, got ${ok.kind}`);
    relayMaxMessage = relayMessageLimit(hello);
    token = ok.sessionToken;
  }

  /**
   * The relay refused this device as revoked while re-authenticating (its user's device
   * list no longer has it): retrying cannot help. Requests waiting reject with the refusal
   * (each finds the state `idle` on its next attempt), polling stops, the state is `idle`.
   */
  function revoke(error: unknown): void {
    revokedBy = error;
    auth = undefined;
    token = undefined;
    core.setState('idle');
  }

  /** A request, retried through transient failures; resolves with the relay's answer. */
  async function call(frame: RelayFrame, opts: CallOptions): Promise<RelayFrame> {
    let reauthentications = 0;
    for (let attempt = 0; ; attempt++) {
      if (closed()) throw transportClosed();
      if (idle()) throw revokedBy ?? failed(opts.operation, 'not connected: call connect() first');
      try {
        if (token === undefined) {
          await authenticate();
          // The relay accepted this device again: connected, even while the request that
          // follows is a long poll that may take its full wait.
          if (core.state === 'reconnecting') core.setState('connected');
        }
        const answer = await exchange('/v1/rpc', frame, opts);
        if (core.state === 'reconnecting') core.setState('connected');
        if (answer.kind === 'error') {
          if (answer.code === 'TOO_LARGE') {
            throw new TransportError('FRAME_TOO_LARGE', {
              message: `${opts.operation}: the relay refused an oversize frame (${answer.message})`,
              details: { size: opts.largestFrame ?? 0, max: maxFrameSize() },
            });
          }
          throw relayError(answer, opts.userId);
        }
        return answer;
      } catch (e) {
        if (closed()) throw transportClosed();
        if (isRevoked(e) && token === undefined) {
          if (!idle()) revoke(e);
          throw e;
        }
        if (!(e instanceof Transient)) {
          // A refusal of the re-authentication itself (the relay lost or revoked this
          // device) is not the caller's request failing: keep trying, with backoff.
          if (token !== undefined || opts.operation === 'connect') throw e;
          if (core.state === 'connected') core.setState('reconnecting');
          await sleep(backoffDelay(attempt, backoff, random));
          continue;
        }
        // A lost session (the token expired, or the relay restarted) is a reconnection too:
        // the state says so until the relay accepted this device again.
        if (e.kind !== 'wait' && core.state === 'connected') core.setState('reconnecting');
        // Reconnecting means authenticating again: it proves the relay is back (a retried
        // long poll would not answer for its whole wait) and renews a session the relay
        // may have lost. Only the session the failed request used is dropped, so many
        // requests failing together authenticate once.
        if (e.kind !== 'wait' && e.token !== undefined && e.token === token) token = undefined;
        // One immediate re-authentication after a 401; repeated ones back off.
        if (e.kind === 'reauthenticate' && reauthentications++ === 0) continue;
        const delay = backoffDelay(attempt, backoff, random);
        await sleep(e.kind === 'wait' ? Math.max(e.retryAfterMs ?? 0, delay) : delay);
      }
    }
  }

  /** Waits `ms` between polls; a handler being registered ends the wait early. */
  async function pause(ms: number): Promise<void> {
    let wake: (() => void) | undefined;
    const registered = new Promise<void>((resolve) => handlerWaiters.push((wake = resolve)));
    await Promise.race([sleep(ms), registered]);
    handlerWaiters = handlerWaiters.filter((w) => w !== wake);
  }

  async function pollLoop(): Promise<void> {
    if (polling) return;
    polling = true;
    let failures = 0;
    try {
      while (!closed() && !idle()) {
        let answer: RelayFrame;
        try {
          answer = await call({ kind: 'fetch', waitMs: pollWaitMs, max: RELAY_LIMITS.maxDeliver }, { operation: 'fetch', user: false, waitMs: pollWaitMs });
        } catch {
          if (closed()) return;
          // A refusal of FETCH itself (for example the device was removed): try again later.
          await sleep(backoffDelay(failures++, backoff, random));
          continue;
        }
        if (answer.kind === 'prekeys-low') {
          core.notice({ type: 'prekeys-low', oneTimePrekeys: answer.oneTimePrekeys, pqPrekeys: answer.pqPrekeys });
          continue;
        }
        if (answer.kind !== 'deliver' || answer.messages.length === 0) {
          failures = 0;
          continue;
        }
        let acknowledged = 0;
        await core.deliver(answer.messages, async (ids) => {
          for (let i = 0; i < ids.length; i += RELAY_LIMITS.maxAck) {
            await call({ kind: 'ack', ids: ids.slice(i, i + RELAY_LIMITS.maxAck) }, { operation: 'ack', user: false });
          }
          acknowledged = ids.length;
        });
        // The next FETCH answers at once with whatever is still unacknowledged: after a
        // handler failure, or with no handler, wait first, longer each time (a handler
        // registered meanwhile ends the wait).
        if (acknowledged < answer.messages.length) await pause(backoffDelay(failures++, backoff, random));
        else failures = 0;
      }
    } finally {
      polling = false;
    }
  }

  /** A request of the caller's, counted against `maxPending` while it waits. */
  async function userCall(frame: RelayFrame, opts: RelayRequestOptions): Promise<RelayFrame> {
    counted++;
    try {
      return await call(frame, { ...opts, user: true });
    } finally {
      counted--;
    }
  }

  /** Starts `connect` (the public shell checked the state and copied the credentials). */
  function connect(credentials: TransportAuth): Promise<void> {
    revokedBy = undefined;
    auth = credentials;
    core.setState('connecting');
    connecting = (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await authenticate();
          return;
        } catch (e) {
          if (closed()) throw transportClosed();
          // A refusal fails connect, except UNAUTHENTICATED: an AUTH request repeated on
          // the way (a retrying proxy) is answered "used challenge" although the first
          // copy succeeded, so it is tried again with a fresh challenge, as an
          // unreachable relay is (a device the relay really refuses is refused each time).
          const refusedAuth = isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'UNAUTHENTICATED';
          if (!(e instanceof Transient) && !refusedAuth) throw e;
          if (attempt + 1 >= CONNECT_TRIES) throw refusedAuth ? e : failed('connect', 'the relay is unreachable');
          const delay = backoffDelay(attempt, backoff, random);
          await sleep(e instanceof Transient && e.kind === 'wait' ? Math.max(e.retryAfterMs ?? 0, delay) : delay);
        }
      }
    })().then(
      () => {
        connecting = undefined;
        if (closed()) throw transportClosed();
        core.setState('connected');
        void pollLoop();
      },
      (e: unknown) => {
        connecting = undefined;
        if (closed()) throw transportClosed();
        auth = undefined;
        token = undefined;
        core.setState('idle');
        throw e;
      },
    );
    return connecting;
  }

  /**
   * PROVISION_TAKE: no connect and no session token, one request (one attempt: the relay
   * deletes the blob when it answers, so a repeated take after a lost answer would find nothing).
   */
  async function provisionTake(channel: Uint8Array, waitMs: number): Promise<Uint8Array | undefined> {
    let answer: RelayFrame;
    try {
      answer = await exchange('/v1/rpc', { kind: 'provision-take', channel, waitMs }, { operation: 'provisionTake', user: true, waitMs });
    } catch (e) {
      if (!(e instanceof Transient)) throw e;
      if (e.kind === 'wait') {
        throw new TransportError('RATE_LIMITED', { message: 'provisionTake: the relay asks to slow down', details: { retryAfterMs: e.retryAfterMs ?? 0 } });
      }
      throw failed('provisionTake', 'the relay is unreachable or did not answer');
    }
    if (answer.kind === 'error') throw relayError(answer);
    if (answer.kind !== 'provision') throw failed('provisionTake', `the relay answered ${answer.kind}, expected PROVISION`);
    return answer.sealed?.slice();
  }

  /** Ends every waiter for a handler (a poll pausing after an unacknowledged batch). */
  function wakeHandlerWaiters(): void {
    const waiters = handlerWaiters;
    handlerWaiters = [];
    for (const w of waiters) w();
  }

  return createRelayTransport({
    core,
    maxPending,
    pending: () => counted,
    maxFrameSize,
    connecting: () => connecting,
    connect,
    request: userCall,
    provisionTake,
    onFrame(next: FrameHandler): () => void {
      if (closed()) return () => {};
      const remove = core.onFrame(next);
      wakeHandlerWaiters();
      return remove;
    },
    async close(): Promise<void> {
      if (closed()) return;
      core.close();
      lifetime.abort();
      wakeHandlerWaiters();
    },
  });
}
