/**
 * The HTTP long-polling transport (docs/relay-protocol.md §1): every request is one
 * `POST /v1/rpc` carrying a relay frame; a FETCH long poll waits for mail. Works with
 * any `fetch` (browsers, Node, workers).
 *
 * Transient failures (network errors, 5xx, a 401 after the relay restarted, 429 with
 * Retry-After) are retried with capped exponential backoff and full jitter, so `send`
 * resolves only once the relay stored the messages. The relay may then hold a message
 * twice (when an answer was lost and the request retried): delivery is at-least-once by
 * contract, and the ratchet recognises the copy.
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

/** Options of {@link createHttpPollingTransport}. */
export interface HttpPollingTransportOptions {
  /** The relay's base URL, for example `https://relay.example`. */
  readonly url: string;
  /** The fetch function; defaults to `globalThis.fetch`. */
  readonly fetch?: typeof globalThis.fetch;
  /** How long the relay may hold a FETCH open. Default 25 s (at most 30 s). */
  readonly pollWaitMs?: number;
  /** A request unanswered this long is aborted and retried. Default 15 s (plus the poll wait for FETCH). */
  readonly requestTimeoutMs?: number;
  /** Retry backoff (default 100 ms doubling to 10 s, full jitter). */
  readonly backoff?: BackoffOptions;
  /** Randomness for jitter (tests). */
  readonly random?: () => number;
}

/** A failure worth retrying (the relay or network, not the request itself). */
class Transient extends Error {
  constructor(
    readonly retryAfterMs: number | undefined,
    readonly reauthenticate = false,
  ) {
    super('transient');
  }
}

/**
 * Creates an HTTP long-polling transport.
 *
 * @example
 * ```ts
 * const transport = createHttpPollingTransport({ url: 'http://127.0.0.1:8787' });
 * const client = await createClient({ userId: 'bob', deviceId: 'laptop', storage, transport });
 * ```
 */
export function createHttpPollingTransport(options: HttpPollingTransportOptions): TransportAdapter {
  if (typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) {
    throw new TransportError('TRANSPORT_FAILED', { message: 'url must be an http:// or https:// URL', details: { operation: 'create' } });
  }
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
  if (!doFetch) throw new TransportError('TRANSPORT_FAILED', { message: 'no fetch implementation: pass options.fetch', details: { operation: 'create' } });
  const pollWaitMs = Math.min(options.pollWaitMs ?? 25_000, RELAY_LIMITS.maxWaitMs);
  const requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
  const random = options.random ?? Math.random;
  const core = new TransportCore(RELAY_LIMITS.maxMessage);
  // A function, not a property read, so TypeScript does not narrow the state across awaits.
  const closed = (): boolean => core.state === 'closed';
  const aborts = new Set<AbortController>();
  let auth: TransportAuth | undefined;
  let token: string | undefined;
  let authenticating: Promise<void> | undefined;
  let nextId = 1;
  let polling = false;
  let connecting: Promise<void> | undefined;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const c = new AbortController();
      aborts.add(c);
      const t = setTimeout(() => {
        aborts.delete(c);
        resolve();
      }, ms);
      c.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });

  /** One HTTP exchange. Throws `Transient` for what a retry may fix. */
  async function exchange(path: string, frame: RelayFrame | undefined, waitMs = 0): Promise<RelayFrame> {
    if (closed()) throw transportClosed();
    const controller = new AbortController();
    aborts.add(controller);
    const timer = setTimeout(() => controller.abort(), requestTimeoutMs + waitMs);
    try {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (token && frame?.kind !== 'auth') headers.authorization = `Bearer ${token}`;
      let res: Response;
      try {
        res = await doFetch(`${base}${path}`, {
          method: frame ? 'POST' : 'GET',
          headers,
          ...(frame ? { body: encodeRelayFrame(nextId++ % 0xfffffffe || 1, frame) as BodyInit } : {}),
          signal: controller.signal,
        });
      } catch {
        if (closed()) throw transportClosed();
        throw new Transient(undefined);
      }
      const body = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
      if (res.status === 401) throw new Transient(undefined, true);
      if (res.status === 429) {
        const after = Number(res.headers.get('retry-after'));
        throw new Transient(Number.isFinite(after) && after >= 0 ? after * 1000 : undefined);
      }
      if (res.status >= 500 || res.status === 408) throw new Transient(undefined);
      let decoded: RelayFrame;
      try {
        decoded = decodeRelayFrame(body).frame;
      } catch {
        throw new TransportError('TRANSPORT_FAILED', { message: `undecodable answer (HTTP ${res.status})`, details: { operation: path } });
      }
      if (decoded.kind === 'error' && decoded.code === 'UNAUTHENTICATED' && frame?.kind !== 'auth') throw new Transient(undefined, true);
      if (decoded.kind === 'error' && decoded.code === 'UNAVAILABLE') throw new Transient(decoded.retryAfterMs || undefined);
      return decoded;
    } finally {
      clearTimeout(timer);
      aborts.delete(controller);
    }
  }

  /** HELLO then AUTH; sets the session token. Refusals throw the relay's typed error. */
  function authenticate(): Promise<void> {
    authenticating ??= (async () => {
      try {
        const a = auth;
        if (!a) throw new TransportError('TRANSPORT_FAILED', { message: 'not connected', details: { operation: 'authenticate' } });
        const hello = await exchange('/v1/hello', undefined);
        if (hello.kind !== 'hello') throw new TransportError('TRANSPORT_FAILED', { message: 'unexpected answer to hello', details: { operation: 'hello' } });
        const signature = await a.sign(hello.relayId, hello.challenge);
        token = undefined;
        const ok = await exchange('/v1/rpc', { kind: 'auth', certificate: a.certificate, signature, challenge: hello.challenge, token: a.token ?? '' });
        if (ok.kind === 'error') throw relayError(ok);
        if (ok.kind !== 'auth-ok') throw new TransportError('TRANSPORT_FAILED', { message: 'unexpected answer to auth', details: { operation: 'auth' } });
        token = ok.sessionToken;
      } finally {
        authenticating = undefined;
      }
    })();
    return authenticating;
  }

  /** A request with retries for transient failures; resolves with the relay's answer. */
  async function call(frame: RelayFrame, userId?: string, waitMs = 0): Promise<RelayFrame> {
    for (let attempt = 0; ; attempt++) {
      if (closed()) throw transportClosed();
      try {
        if (!token) {
          await authenticate();
          // The relay answered and accepted us: connected again, even while the next
          // exchange is a long poll that may take its full wait.
          if (core.state === 'reconnecting') core.setState('connected');
        }
        const answer = await exchange('/v1/rpc', frame, waitMs);
        if (core.state === 'reconnecting') core.setState('connected');
        if (answer.kind === 'error') throw relayError(answer, userId);
        return answer;
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        if (e.reauthenticate) token = undefined;
        if (core.state === 'connected') core.setState('reconnecting');
        await sleep(e.retryAfterMs ?? backoffDelay(attempt, options.backoff, random));
      }
    }
  }

  async function pollLoop(): Promise<void> {
    if (polling) return;
    polling = true;
    try {
      while (!closed()) {
        let answer: RelayFrame;
        try {
          answer = await call({ kind: 'fetch', waitMs: pollWaitMs, max: RELAY_LIMITS.maxDeliver }, undefined, pollWaitMs);
        } catch (e) {
          if (closed()) return;
          // A non-transient refusal (for example the device was removed): back off and try again.
          await sleep(backoffDelay(5, options.backoff, random));
          void e;
          continue;
        }
        if (answer.kind === 'deliver' && answer.messages.length > 0) {
          await core.deliver(answer.messages, async (ids) => {
            for (let i = 0; i < ids.length; i += RELAY_LIMITS.maxAck) await call({ kind: 'ack', ids: ids.slice(i, i + RELAY_LIMITS.maxAck) });
          });
        } else if (answer.kind === 'prekeys-low') {
          core.notice({ type: 'prekeys-low', oneTimePrekeys: answer.oneTimePrekeys, pqPrekeys: answer.pqPrekeys });
        }
      }
    } finally {
      polling = false;
    }
  }

  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    maxFrameSize: RELAY_LIMITS.maxMessage,
    get state() {
      return core.state;
    },
    connect(credentials: TransportAuth): Promise<void> {
      if (closed()) return Promise.reject(transportClosed());
      if (core.state === 'connected' || core.state === 'reconnecting') return Promise.resolve();
      if (connecting) return connecting;
      auth = credentials;
      core.setState('connecting');
      connecting = (async () => {
        for (let attempt = 0; ; attempt++) {
          try {
            await authenticate();
            return;
          } catch (e) {
            // A refusal fails connect; an unreachable relay is retried a few times first.
            if (!(e instanceof Transient) || attempt >= 3) throw e instanceof Transient ? new TransportError('TRANSPORT_FAILED', { message: 'relay unreachable', details: { operation: 'connect' } }) : e;
            await sleep(backoffDelay(attempt, options.backoff, random));
          }
        }
      })().then(
        () => {
          connecting = undefined;
          core.setState('connected');
          void pollLoop();
        },
        (e: unknown) => {
          connecting = undefined;
          if (!closed()) core.setState('idle');
          throw e;
        },
      );
      return connecting;
    },
    async send(messages: readonly OutboundMessage[]): Promise<void> {
      if (closed()) throw transportClosed();
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
      if (closed()) return;
      core.close();
      for (const c of aborts) c.abort();
      aborts.clear();
    },
  };
}
