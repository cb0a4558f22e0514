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
 * `UNKNOWN_USER`, `FRAME_TOO_LARGE`, `DEVICE_MISMATCH` (a send named an out-of-date device
 * list version: the users and their current versions), or `RELAY_REJECTED` with the
 * relay's code (`REVOKED` on connect: this device was removed from its user's list).
 * Neither DEVICE_MISMATCH nor REVOKED is retried by the transport. A connected device
 * that the relay revokes (it closes the connection, or ends the session, and then refuses
 * the device's authentication with REVOKED) makes the transport stop reconnecting: waiting
 * requests reject with `RELAY_REJECTED` `{ code: 'REVOKED' }` and the state returns to
 * `idle` (the conformance suite checks it).
 *
 * **Optional: signalling.** A transport that sets up paths of its own between devices
 * (WebRTC data channels) needs to exchange connection parameters with a peer device, and
 * must not trust anything the relay could have written. It implements
 * {@link TransportAdapter.attachSignalling}; core then gives it a {@link SignallingChannel}
 * whose messages are sealed with the pairwise session (docs/protocol.md §11.1, SIGNAL) and
 * so are end-to-end encrypted and authenticated as coming from one verified device. A
 * transport without the method is never given one, and nothing else changes for it.
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

/** A user's entry in the relay's key directory (FETCH_BUNDLES). */
export interface DeviceDirectoryEntry {
  /** One encoded prekey bundle per current device (protocol §4.4). */
  readonly bundles: readonly Uint8Array[];
  /** The user's signed device list (protocol §3.3), or `undefined` when it has none. */
  readonly deviceList: Uint8Array | undefined;
}

/**
 * Options of {@link TransportAdapter.fetchBundles}.
 *
 * @example
 * ```ts
 * // Start-up: the list, and bundles only of devices this one has no session with.
 * const entry = await transport.fetchBundles('alice', { skip: ['phone', 'tablet'] });
 * ```
 */
export interface FetchBundlesOptions {
  /**
   * Devices of the user whose bundles the caller does not need (it has sessions with
   * them): the relay takes none of their prekeys, and a read that takes no prekey at all
   * counts only against the looser directory-read limit, not the bundle-fetch limit
   * (docs/relay-protocol.md, FETCH_BUNDLES). At most `RELAY_LIMITS.maxBundles` device ids.
   */
  readonly skip?: readonly string[];
}

/** One recipient of {@link TransportAdapter.sendShared}. */
export interface SharedRecipient {
  readonly to: Address;
  /** The version of the recipient user's device list the sender encrypted for (0: none known). */
  readonly listVersion?: number;
}

/** Something the relay tells this device outside a request. */
export type TransportNotice = { readonly type: 'prekeys-low'; readonly oneTimePrekeys: number; readonly pqPrekeys: number };

/** What core knows of a signal's sender besides its address ({@link SignallingChannel.onSignal}). */
export interface SignalSenderInfo {
  /**
   * `true` when this device never sent a message to the sender's user (the sender is known
   * only from its own messages: trust on first use), `false` when it did, or when the
   * sender is another device of this user. Recorded by core when this device sends (not
   * inferred from the session, which a stranger's first message creates).
   */
  readonly firstContact: boolean;
}

/**
 * An end-to-end encrypted, authenticated side channel to peer devices, which core gives a
 * transport that asks for one ({@link TransportAdapter.attachSignalling}). Core owns the
 * pairwise sessions; the transport owns the routing: core hands each sealed signal to the
 * transport's relay path (the `deliver` function of {@link SignallingChannel.send}), and
 * core, which decrypts every frame the transport delivers, hands the signals inside back
 * through {@link SignallingChannel.onSignal}.
 *
 * Guarantees core gives (docs/protocol.md §11.1):
 * - a signal reaches `onSignal` only after it decrypted under a session with `from`, whose
 *   device certificate verified under an account key this device trusts (a contact whose
 *   key changed and was not accepted yet is not heard), so `from` is authenticated. That
 *   trust is trust on first use (docs/protocol.md §7.4): a user this device never talked
 *   to is heard too, from its first message, so a transport must not assume that a signal
 *   comes from someone the user chose to talk to (answering reveals network addresses
 *   unless the transport's own privacy settings prevent it);
 * - a signal is never shown to the application nor stored in its history;
 * - signals are padded and encrypted like messages: the relay cannot tell them apart by
 *   content, read them, change them or inject its own.
 *
 * Signals are delivered at least once and unordered, like every frame (a signal the
 * ratchet recognises as a duplicate is dropped by core), and may arrive long after they
 * were sealed (when the peer was offline): the transport's own signalling protocol must
 * tolerate stale signals.
 *
 * @example
 * ```ts
 * // Inside a transport's attachSignalling(channel):
 * channel.onSignal((from, payload) => handleSignal(from, payload));
 * await channel.send(peer, encodeMySignal(offer), (message) => relayPath.send([message]));
 * ```
 */
export interface SignallingChannel {
  /** The largest `payload` {@link SignallingChannel.send} accepts, in bytes. */
  readonly maxPayload: number;
  /**
   * Sends `payload` to the device `to`: core encrypts it with the pairwise session as
   * SIGNAL content and hands the message (the frame, with what the relay path needs, such
   * as the recipient user's device list version) to `deliver`, the transport's relay path.
   * When `deliver` rejects with `DEVICE_MISMATCH` (this device's view of the recipient's
   * devices is out of date), core refreshes that user's devices and seals and delivers
   * again, a bounded number of times, as it does for messages. Rejects with `deliver`'s
   * error, or `NO_SESSION`, `UNTRUSTED_IDENTITY`, `INVALID_ARGUMENT` (an oversize
   * payload), `CLOSED` when nothing could be sealed.
   */
  send(to: Address, payload: Uint8Array, deliver: (message: OutboundMessage) => Promise<void>): Promise<void>;
  /**
   * The version of this user's own device list (docs/protocol.md §3.3) this device holds;
   * 0 when it holds none. A transport that delivers frames without the relay (direct
   * links) compares it with the version the sender named, and sends a frame naming another
   * version back through the relay, which refuses it with `DEVICE_MISMATCH` when the
   * sender's view of this user's devices is out of date.
   */
  deviceListVersion(): Promise<number>;
  /**
   * Observes signals: payloads core decrypted from frames this transport delivered,
   * authenticated as sent by the device `from`, with what core knows of the sender
   * (`sender`, for example whether this is a first contact). Returns a function that stops
   * observing. A handler must not block: it is called inside the frame handler.
   */
  onSignal(handler: (from: Address, payload: Uint8Array, sender: SignalSenderInfo) => void): () => void;
}

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
  /**
   * The user's directory entry: one encoded prekey bundle per current device (but those
   * in `options.skip`), and the user's signed device list (docs/protocol.md §3.3) when it
   * has published one. Rejects with `UNKNOWN_USER`.
   */
  fetchBundles(userId: string, options?: FetchBundlesOptions): Promise<DeviceDirectoryEntry>;
  /**
   * Stores one frame in many mailboxes, all or none (SEND_SHARED): a message encrypted
   * once for many devices (a group message). Same guarantees and errors as `send`.
   */
  sendShared(recipients: readonly SharedRecipient[], frame: Uint8Array): Promise<void>;
  /** Publishes this user's new signed device list (docs/protocol.md §3.3). */
  publishDeviceList(deviceList: Uint8Array): Promise<void>;
  /** Leaves a sealed device-link answer at the relay under `channel` (16 bytes; protocol §3.4). */
  provisionPut(channel: Uint8Array, sealed: Uint8Array): Promise<void>;
  /**
   * Takes the device-link answer left under `channel`, waiting up to `waitMs` (at most
   * 30,000) for it; `undefined` if none came. Needs no `connect` (a new device has no
   * certificate yet): the transport reaches the relay without authenticating.
   */
  provisionTake(channel: Uint8Array, waitMs: number): Promise<Uint8Array | undefined>;
  /** Disconnects and releases resources. Idempotent. */
  close(): Promise<void>;
  /**
   * Optional. Present on transports that need an end-to-end encrypted channel to peer
   * devices for signalling (WebRTC). Core calls it at most once, before `connect`, with a
   * channel backed by its pairwise sessions.
   */
  attachSignalling?(channel: SignallingChannel): void;
  /**
   * Optional. Present on transports that keep their own connections to peer devices
   * (WebRTC direct links). Core calls it whenever it applies a user's signed device list
   * (docs/protocol.md §3.3), with the devices the list names: the transport closes every
   * connection to that user's other devices (a revoked device) at once.
   */
  closeLinksTo?(userId: string, keepDeviceIds: readonly string[]): void;
}

/**
 * What a transport package exports so that a client can be configured by name
 * (`{ transport: { adapter: 'websocket', options: { url } } }`) without code changes.
 */
export interface TransportAdapterModule {
  createTransportAdapter(options: Record<string, unknown>): TransportAdapter | Promise<TransportAdapter>;
}
