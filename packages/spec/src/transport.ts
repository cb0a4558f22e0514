/**
 * The transport contract (version `deadbolt.transport.v1`).
 *
 * A transport moves opaque frames between device mailboxes and reaches the key directory.
 * It never interprets a message frame: those are end-to-end encrypted bytes. The
 * conformance suite in `@deadbolt/test-kit` checks every invariant below against a real
 * relay on loopback; every transport package runs it.
 *
 * Invariants:
 * 1. **Connect.** `connect(auth)` resolves only once the relay accepted this device's
 *    signature over its challenge; it rejects (and the state returns to `idle`) if the
 *    relay refuses. `connect` while connected is a no-op.
 * 2. **Delivery is at-least-once and unordered.** The same frame may arrive twice, frames
 *    may be reordered; core deduplicates. A frame is **acknowledged only after** the
 *    handler's promise resolves; a handler that throws leaves it unacknowledged, so it is
 *    delivered again later (SECURITY.md E32). Frames that arrive while no handler is
 *    registered are not acknowledged.
 * 3. **No frame lost across reconnects.** After a dropped connection the transport
 *    reconnects on its own with capped exponential backoff and jitter; anything sent but
 *    not acknowledged by the relay is retried, anything delivered but not acknowledged is
 *    delivered again. `send` resolves only when the relay has accepted (stored) the
 *    messages.
 * 4. **Bounded.** `maxFrameSize` is declared; `send` of a larger frame rejects with
 *    `FRAME_TOO_LARGE` before anything is sent. Inbound frames over it are dropped before
 *    any work. Queues of pending sends and unacknowledged deliveries are bounded.
 * 5. **Copies.** `send` copies the bytes each view covers; mutating inputs afterwards has
 *    no effect. Delivered frames are fresh arrays.
 * 6. **Addressing.** A frame reaches only the mailbox it was sent to.
 * 7. **Close.** `close()` is idempotent; afterwards every operation rejects with `CLOSED`
 *    and the state is `closed`.
 * 8. **State** changes are observable through `onStateChange`, in order.
 *
 * Relay refusals surface as `TransportError`s: `RATE_LIMITED` (with `retryAfterMs`),
 * `UNKNOWN_USER`, `FRAME_TOO_LARGE`, or `RELAY_REJECTED` with the relay's code.
 *
 * @module
 */
import type { Address } from './ids.js';
import type { OutboundMessage } from './relay-protocol.js';

/** The transport contract version an adapter implements. */
export const TRANSPORT_SPECIFICATION_VERSION = 'deadbolt.transport.v1';

/** Connection state of a transport. */
export type TransportState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** A frame delivered to this device. */
export interface InboundFrame {
  /** The relay-assigned id (acknowledged by the transport after the handler resolves). */
  readonly id: string;
  /** The sender the relay authenticated (core verifies it again cryptographically). */
  readonly from: Address;
  /** When the relay accepted it, in ms since the epoch. */
  readonly receivedAt: number;
  /** The opaque frame bytes. */
  readonly bytes: Uint8Array;
}

/** Receives a frame. The frame is acknowledged only after the returned promise resolves. */
export type FrameHandler = (frame: InboundFrame) => Promise<void> | void;

/** How a device proves itself to the relay (docs/relay-protocol.md §2). */
export interface TransportAuth {
  /** This device's encoded device certificate. */
  readonly certificate: Uint8Array;
  /** Signs the relay's challenge with the device signing key (core builds the input). */
  sign(relayId: string, challenge: Uint8Array): Promise<Uint8Array>;
  /** A registration token issued by the product's own login, if the relay requires one. */
  readonly token?: string;
}

/** Something the relay tells this device outside a request. */
export type TransportNotice = { readonly type: 'prekeys-low'; readonly oneTimePrekeys: number; readonly pqPrekeys: number };

/**
 * Moves opaque frames between device mailboxes and reaches the key directory.
 *
 * @example
 * ```ts
 * transport.onFrame(async (frame) => { await client.receive(frame); });
 * await transport.connect(auth);
 * await transport.send([{ to: bob, frame: bytes }]);
 * ```
 */
export interface TransportAdapter {
  /** Which contract this adapter implements. */
  readonly specificationVersion: typeof TRANSPORT_SPECIFICATION_VERSION;
  /** The largest message frame, in bytes, this transport carries. */
  readonly maxFrameSize: number;
  /** The current connection state. */
  readonly state: TransportState;
  /** Connects and authenticates; resolves when the relay accepted this device. */
  connect(auth: TransportAuth): Promise<void>;
  /** Stores messages in their mailboxes (one upload for many recipients). */
  send(messages: readonly OutboundMessage[]): Promise<void>;
  /** Registers the (single) inbound frame handler; returns a function that removes it. */
  onFrame(handler: FrameHandler): () => void;
  /** Observes state changes; returns a function that stops observing. */
  onStateChange(listener: (state: TransportState) => void): () => void;
  /** Observes relay notices; returns a function that stops observing. */
  onNotice(listener: (notice: TransportNotice) => void): () => void;
  /** Publishes this device's prekeys (an encoded prekey upload, docs/protocol.md §4.5). */
  publishPrekeys(upload: Uint8Array): Promise<void>;
  /** One encoded prekey bundle per device of `userId`; rejects with `UNKNOWN_USER`. */
  fetchBundles(userId: string): Promise<Uint8Array[]>;
  /** Disconnects and releases resources. Idempotent. */
  close(): Promise<void>;
}

/**
 * What a transport package exports so that a client can be configured by name
 * (`{ transport: { adapter: 'websocket', options: { url } } }`) without code changes.
 */
export interface TransportAdapterModule {
  createTransportAdapter(options: Record<string, unknown>): TransportAdapter | Promise<TransportAdapter>;
}
