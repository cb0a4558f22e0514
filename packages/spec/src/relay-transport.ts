/**
 * What every relay transport (docs/relay-protocol.md §1) does the same whatever carries
 * its frames: the caller-facing half of `TransportAdapter` (argument checks, the
 * `maxPending` gate, the typed relay calls and how their answers are read) and the
 * client's steps of the handshake (§2). A transport supplies only its wire, as a
 * {@link RelayCarrier}: how a request reaches the relay and comes back (WebSocket frames,
 * HTTP requests), how it connects, polls and closes.
 *
 * @module
 */
import { userId as toUserId } from './ids.js';
import type { RelayFrame } from './relay-protocol.js';
import { RELAY_LIMITS } from './relay-protocol.js';
import {
  checkDeviceListBytes,
  checkProvisionBlob,
  checkProvisionChannel,
  checkProvisionWait,
  deviceMismatchError,
  invalidOption as invalid,
  isolatedListener as isolated,
  planSendRequests,
  planSharedSend,
  prepareFetchSkip,
  relayError,
  settleSendRequests,
  transportClosed,
  transportFailed as failed,
  type TransportCore,
} from './transport-kit.js';
import {
  TRANSPORT_SPECIFICATION_VERSION,
  type DeviceDirectoryEntry,
  type FrameHandler,
  type TransportAdapter,
  type TransportAuth,
} from './transport.js';

/** What a relay transport's public method says about one request of the caller's. */
export interface RelayRequestOptions {
  /** The public method the request serves (errors name it). */
  readonly operation: string;
  /** The user a refusal is about (UNKNOWN_USER): present when the request addresses exactly one user. */
  readonly userId?: string;
  /** The largest message frame the request carries (SEND, SEND_SHARED only), for a TOO_LARGE refusal. */
  readonly largestFrame?: number;
}

/**
 * The wire of a relay transport: everything {@link createRelayTransport} leaves to it.
 * The public methods check their arguments, the state and `maxPending` before calling
 * any of these, so a carrier sees only valid, copied input.
 */
export interface RelayCarrier {
  /** State, listeners and deliveries (the transport's `TransportCore`). */
  readonly core: TransportCore;
  /** Requests of the caller's that may wait for the relay at once; more reject with `TRANSPORT_FAILED`. */
  readonly maxPending: number;
  /**
   * How many of the caller's `request`s wait for the relay now (the carrier counts them;
   * PROVISION_TAKEs in progress are counted here, and added).
   */
  pending(): number;
  /** The largest message frame now (the relay's HELLO may lower it). */
  maxFrameSize(): number;
  /** The connection attempt in progress, which a second `connect` returns. */
  connecting(): Promise<void> | undefined;
  /**
   * Starts a connection attempt with checked credentials (a private copy); called only
   * when the state is `idle` and no attempt is in progress. Resolves once the relay
   * accepted this device (transport.ts invariant 1).
   */
  connect(auth: TransportAuth): Promise<void>;
  /**
   * Sends one request of the caller's, counted against `maxPending` while it waits, and
   * resolves with the relay's answer; a relay ERROR rejects with its typed error (a
   * TOO_LARGE one as `FRAME_TOO_LARGE` naming `options.largestFrame`).
   */
  request(frame: RelayFrame, options: RelayRequestOptions): Promise<RelayFrame>;
  /** PROVISION_TAKE, with a checked channel and wait; needs no `connect` (docs/protocol.md §3.4). */
  provisionTake(channel: Uint8Array, waitMs: number): Promise<Uint8Array | undefined>;
  /** Registers the (checked) frame handler; default `core.onFrame`. */
  onFrame?(handler: FrameHandler): () => void;
  /** `TransportAdapter.close`. */
  close(): Promise<void>;
}

/** The credentials `connect` takes, checked and copied (the caller may reuse its arrays). */
function copyAuth(credentials: TransportAuth): TransportAuth {
  if (
    typeof credentials !== 'object' ||
    credentials === null ||
    !(credentials.certificate instanceof Uint8Array) ||
    typeof credentials.sign !== 'function' ||
    (credentials.token !== undefined && typeof credentials.token !== 'string')
  ) {
    throw invalid('auth', '{ certificate: Uint8Array, sign(relayId, challenge), token?: string }');
  }
  return {
    certificate: credentials.certificate.slice(),
    sign: (relayId, challenge) => credentials.sign(relayId, challenge),
    ...(credentials.token !== undefined ? { token: credentials.token } : {}),
  };
}

/** `{ userId }` when every entry addresses one user (a refusal is then about that user), else `{}`. */
function soleUser(addressed: readonly { readonly to: { readonly userId: string } }[]): { userId?: string } {
  const users = new Set(addressed.map((m) => m.to.userId));
  return users.size === 1 ? { userId: addressed[0]!.to.userId } : {};
}

/**
 * Builds a relay transport's `TransportAdapter` around its wire. The public methods
 * reject after `close()` with `CLOSED`, check and copy their arguments before anything is
 * sent (contract invariants 4 and 5), refuse with `TRANSPORT_FAILED` while `idle` or when
 * `maxPending` requests already wait, split `send` and `sendShared` into requests that fit
 * the relay's limits, and read the answers: OK, BUNDLES, or DEVICE_MISMATCH (rejects with
 * `DEVICE_MISMATCH`, never retried: nothing was stored).
 *
 * @example
 * ```ts
 * return createRelayTransport({
 *   core, maxPending, pending: () => counted, maxFrameSize,
 *   connecting: () => connecting, connect: startConnecting,
 *   request: (frame, options) => userRequest(frame, options),
 *   provisionTake: takeOnce, close: closeNow,
 * });
 * ```
 */
export function createRelayTransport(carrier: RelayCarrier): TransportAdapter {
  const { core, maxPending } = carrier;
  const closed = (): boolean => core.state === 'closed';
  /** PROVISION_TAKEs in progress (`carrier.pending()` counts the rest). */
  let takes = 0;

  /** Room for `requests` more of the caller's requests. */
  function room(operation: string, requests: number): void {
    if (carrier.pending() + takes + requests > maxPending) throw failed(operation, `too many requests waiting for the relay (at most ${maxPending})`);
  }

  /** The common gate of the public requests. */
  function admit(operation: string, requests: number): void {
    if (core.state === 'idle') throw failed(operation, 'not connected: call connect() first');
    room(operation, requests);
  }

  /** One SEND or SEND_SHARED request: resolves on OK; DEVICE_MISMATCH rejects with `DEVICE_MISMATCH`. */
  async function sendRequest(frame: RelayFrame, options: RelayRequestOptions): Promise<void> {
    const answer = await carrier.request(frame, options);
    if (answer.kind === 'device-mismatch') throw deviceMismatchError(answer.users);
    if (answer.kind !== 'ok') throw failed(options.operation, `the relay answered ${answer.kind}, expected OK`);
  }

  /** A request answered by OK. */
  async function okRequest(frame: RelayFrame, operation: string): Promise<void> {
    const answer = await carrier.request(frame, { operation });
    if (answer.kind !== 'ok') throw failed(operation, `the relay answered ${answer.kind}, expected OK`);
  }

  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    get maxFrameSize() {
      return carrier.maxFrameSize();
    },
    get state() {
      return core.state;
    },

    connect(credentials) {
      if (closed()) return Promise.reject(transportClosed());
      if (core.state === 'connected' || core.state === 'reconnecting') return Promise.resolve();
      const inProgress = carrier.connecting();
      if (inProgress) return inProgress;
      let auth: TransportAuth;
      try {
        auth = copyAuth(credentials);
      } catch (e) {
        return Promise.reject(e);
      }
      return carrier.connect(auth);
    },

    async send(messages) {
      if (closed()) throw transportClosed();
      const chunks = planSendRequests(messages, carrier.maxFrameSize());
      admit('send', chunks.length);
      // Every request is encoded (copied) by the carrier before the first await.
      const requests = chunks.map((chunk) => {
        const largestFrame = chunk.reduce((n, m) => Math.max(n, m.frame.byteLength), 0);
        return sendRequest({ kind: 'send', messages: chunk }, { operation: 'send', largestFrame, ...soleUser(chunk) });
      });
      settleSendRequests(await Promise.allSettled(requests));
    },

    async sendShared(recipients, frame) {
      if (closed()) throw transportClosed();
      const plan = planSharedSend(recipients, frame, carrier.maxFrameSize());
      admit('sendShared', plan.requests.length);
      const requests = plan.requests.map((chunk) =>
        sendRequest({ kind: 'send-shared', recipients: chunk, frame: plan.frame }, { operation: 'sendShared', largestFrame: plan.frame.byteLength, ...soleUser(chunk) }),
      );
      settleSendRequests(await Promise.allSettled(requests));
    },

    onFrame(handler) {
      if (typeof handler !== 'function') throw invalid('handler', 'a function');
      return carrier.onFrame ? carrier.onFrame(handler) : core.onFrame(handler);
    },
    onStateChange(listener) {
      return core.onStateChange(isolated(listener));
    },
    onNotice(listener) {
      return core.onNotice(isolated(listener));
    },

    async publishPrekeys(upload) {
      if (closed()) throw transportClosed();
      if (!(upload instanceof Uint8Array) || upload.byteLength === 0) throw invalid('upload', 'a non-empty Uint8Array');
      admit('publishPrekeys', 1);
      await carrier.request({ kind: 'publish-prekeys', upload: upload.slice() }, { operation: 'publishPrekeys' });
    },

    async fetchBundles(userId, options): Promise<DeviceDirectoryEntry> {
      if (closed()) throw transportClosed();
      toUserId(userId); // INVALID_ARGUMENT naming `userId`
      const skip = prepareFetchSkip(options);
      admit('fetchBundles', 1);
      const frame = await carrier.request({ kind: 'fetch-bundles', userId, skip }, { operation: 'fetchBundles', userId });
      if (frame.kind !== 'bundles') throw failed('fetchBundles', `the relay answered ${frame.kind}, expected BUNDLES`);
      return { bundles: frame.bundles.map((b) => b.slice()), deviceList: frame.deviceList?.slice() };
    },

    async publishDeviceList(deviceList) {
      if (closed()) throw transportClosed();
      const copy = checkDeviceListBytes(deviceList);
      admit('publishDeviceList', 1);
      await okRequest({ kind: 'publish-device-list', deviceList: copy }, 'publishDeviceList');
    },

    async provisionPut(channel, sealed) {
      if (closed()) throw transportClosed();
      const c = checkProvisionChannel(channel);
      const s = checkProvisionBlob(sealed);
      admit('provisionPut', 1);
      await okRequest({ kind: 'provision-put', channel: c, sealed: s }, 'provisionPut');
    },

    async provisionTake(channel, waitMs) {
      if (closed()) throw transportClosed();
      const c = checkProvisionChannel(channel);
      const wait = checkProvisionWait(waitMs);
      // No connect needed (docs/protocol.md §3.4); counted against maxPending like any waiting request.
      room('provisionTake', 1);
      takes++;
      try {
        return await carrier.provisionTake(c, wait);
      } finally {
        takes--;
      }
    },

    close() {
      return carrier.close();
    },
  };
}

/** A relay's HELLO frame (docs/relay-protocol.md §2). */
export type HelloFrame = Extract<RelayFrame, { kind: 'hello' }>;
/** A device's AUTH frame (docs/relay-protocol.md §2). */
export type AuthFrame = Extract<RelayFrame, { kind: 'auth' }>;

/**
 * Reads the relay's first frame (docs/relay-protocol.md §2): HELLO, from the relay this
 * device expects when `expectedRelayId` is set (checked before anything is signed, so a
 * server forwarding another relay's challenge cannot obtain this device's answer to it).
 * A relay ERROR throws its typed error; anything else `TRANSPORT_FAILED` for `operation`.
 *
 * @example
 * ```ts
 * const hello = acceptHello(decodeRelayFrame(bytes).frame, 'relay.example', 'connect');
 * ```
 */
export function acceptHello(frame: RelayFrame, expectedRelayId: string | undefined, operation: string): HelloFrame {
  if (frame.kind === 'error') throw relayError(frame);
  if (frame.kind !== 'hello') throw failed(operation, `expected HELLO, got ${frame.kind}`);
  if (expectedRelayId !== undefined && frame.relayId !== expectedRelayId) {
    throw failed(operation, `the relay calls itself ${JSON.stringify(frame.relayId)}, expected ${JSON.stringify(expectedRelayId)}`);
  }
  return frame;
}

/**
 * Answers a HELLO (docs/relay-protocol.md §2): the device signs the relay id and
 * challenge, and the AUTH frame carries the signature with its certificate and session
 * token. A signature that is not 64 bytes rejects with `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * const auth = await signAuth(credentials, acceptHello(frame, relayId, 'connect'));
 * ```
 */
export async function signAuth(credentials: TransportAuth, hello: HelloFrame): Promise<AuthFrame> {
  const signature = await credentials.sign(hello.relayId, hello.challenge.slice());
  if (!(signature instanceof Uint8Array) || signature.byteLength !== 64) throw invalid('auth.sign() result', 'a 64-byte Ed25519 signature');
  return { kind: 'auth', certificate: credentials.certificate, signature, challenge: hello.challenge, token: credentials.token ?? '' };
}

/**
 * The largest message the relay takes, from its HELLO: at least 1, never above the
 * protocol's `RELAY_LIMITS.maxMessage` (a relay cannot raise the transport's limit).
 *
 * @example
 * ```ts
 * relayMaxMessage = relayMessageLimit(hello);
 * ```
 */
export function relayMessageLimit(hello: HelloFrame): number {
  return Math.max(1, Math.min(RELAY_LIMITS.maxMessage, hello.maxMessage));
}
