/**
 * The WebRTC transport: direct data channels between devices that are both online, over
 * a relay transport (WebSocket or HTTP polling) that it wraps as its **fallback**: the key
 * directory, the offline path, and the carrier of the signalling.
 *
 * ```
 * send(to) ──open link to `to`?──yes──▶ data channel ──ACK──▶ resolved
 *                 │                          │ NACK, link lost, no receipt, processing bound
 *                 no (and start one)         ▼
 *                 └────────────────────▶ fallback.send ──relay stored it──▶ resolved
 * ```
 *
 * - **Signalling** (SECURITY.md E35). Core attaches a {@link SignallingChannel}: offers and
 *   answers (signal-codec.ts) are sealed with the pairwise session and sent through the
 *   fallback, so the relay carries them without being able to read, change or forge them.
 *   A link is bound to the device core authenticated as the signal's sender; the DTLS
 *   fingerprint in that device's description is the only certificate its connection
 *   accepts, which each link checks again itself where the implementation exposes the
 *   remote certificate (peer-link.ts). Frames that arrive on a link are delivered as from
 *   that device; nothing on the channel names a sender.
 * - **Delivery** (transport.ts invariants 2, 3). Frames on the direct path are the same
 *   end-to-end encrypted frames; a frame the peer did not acknowledge as processed (NACK,
 *   link lost, no receipt within `receiptTimeoutMs`, not processed within
 *   `processTimeoutMs`) is sent again through the fallback, so nothing is lost; a frame
 *   that was processed but whose acknowledgement was lost arrives twice, and core drops
 *   the second copy silently (the ratchet recognises it). `send` resolves when every
 *   frame is either processed by the peer (direct) or stored by the relay (fallback).
 *   Inbound direct frames go to the same handler, one at a time together with the
 *   fallback's, and are acknowledged on the channel only after it resolved.
 * - **Device lists** (docs/relay-protocol.md, SEND). A frame goes direct only when it names
 *   the version of the recipient user's device list the relay last confirmed (by storing
 *   a send naming it, or naming it in a DEVICE_MISMATCH); the receiving device refuses one
 *   naming another version than its own user's list as core holds it. Either way the frame
 *   takes the relay, which refuses a stale version with DEVICE_MISMATCH, so a sender still
 *   learns of devices added or revoked.
 * - **When direct** (hostile review 2, finding 1). A link is attempted when the
 *   application itself talks to a device without one: a send whose messages carry
 *   `contact: true` (core marks the messages of `client.send`, and the copies to the
 *   sender's own devices; relay-protocol.ts), or `preconnect`. That send goes through the
 *   relay, within `maxPeers` links. Protocol traffic core sends on its own (group key
 *   requests to the sender of a held message, sender-key distributions, group control
 *   messages, receipts, signals) never makes an offer: an offer reveals this device's
 *   candidate addresses, and a stranger can make core send to it, for example by adding
 *   this device to a group. While this device talked to the peer in the last five
 *   minutes, a failed attempt or a dropped link is tried again on its own when its
 *   backoff ends: exponential with full jitter (`backoff`), from a short delay after a
 *   drop. After `maxUnansweredOffers` offers without any answer (the peer is offline or
 *   has no WebRTC) no more are made until a signal from that device arrives.
 * - **Whose offers are answered** (hostile review, finding 3). Answering an offer tells
 *   the peer this device's candidate addresses (unless `privacy: 'relay-only'`) and takes
 *   one of `maxPeers` slots, and the signalling channel hears every user that sends this
 *   device a message, strangers included (trust on first use, transport.ts). So an offer
 *   is answered only when `acceptOffer` says so; by default ({@link defaultAcceptOffer})
 *   only from a user the application sent to (a `contact` send, as above: automatic
 *   traffic does not count), a device it offered a link to itself, or a sender the
 *   signalling channel reports as not first contact. See
 *   {@link defaultAcceptOffer} for why. A refused offer gets no answer and no BYE (a
 *   stranger does not even learn the device is online), and the device's own next offer
 *   to that peer starts with a BYE to it, so that the two attempts do not block each
 *   other. Inbound offers being decided or negotiated are bounded: one per device (a
 *   newer offer from it replaces the older one), `maxPendingOffers` in all, half of them
 *   from one user's devices (review 4, finding 2); a decision
 *   not made within `connectTimeoutMs` counts as no (hostile review 3, finding 4).
 * - **One contact, bounded** (review 3, finding 2). Links with one user's devices are
 *   capped (`maxLinksPerUser`), either way; one device's offers are answered at most
 *   {@link ANSWER_BURST} at once, then one per {@link ANSWER_REFILL_MS} (each answer
 *   replaces its link and costs a connection, gathering, a TURN allocation and a sealed
 *   answer; the token is taken when `acceptOffer` is asked, and an answered link that
 *   never opens drains the bucket: review 4, findings 2 and 7); and when this device
 *   wants a link at `maxPeers` (or retries one that worked: review 4, finding 3), the link
 *   a peer initiated that least recently served this device makes room (review 4,
 *   finding 4).
 * - **Stale offers** (finding 4). Every signal carries its sender's `sequence`
 *   (signal-codec.ts): an offer not newer than the peer's signal that set up the current
 *   link never replaces it, so an old offer, replayed or delivered late, leaves a working
 *   link alone. It is answered with a BYE carrying the sequence this device holds
 *   (`floor`), at most once per link every {@link FLOOR_BYE_INTERVAL_MS}: a peer that
 *   restarted with its clock gone back learns it and offers again above it, so its new
 *   link replaces the dead one promptly; a late old offer is not its sender's current
 *   attempt, and the sender ignores the BYE (review 2, finding 3).
 * - **Idle links** close after `idleTimeoutMs` without traffic, and every link after
 *   {@link MAX_LINK_LIFETIME_MS} (2 minutes; review 3, finding 8); links to devices a user's device list no longer names are closed when core
 *   says so ({@link WebRtcTransport.closeLinksTo}, hostile review, finding 2).
 * - **Connection state** (invariants 1, 7, 8) is the fallback's: `connect` connects it;
 *   `close` closes every link and then it.
 * - **Privacy** (`privacy: 'relay-only'`): `iceTransportPolicy: 'relay'`, and every
 *   description sent or applied is stripped to relayed candidates (sdp.ts), so neither
 *   device learns the other's addresses, only the TURN server's. The ICE agent is not
 *   bound by the descriptions, so a link is used only while the candidate pair it
 *   selected is relayed at both ends (peer-link.ts; review 2, finding 2); one that is not,
 *   or that this implementation cannot show (unless `requireRelayedPairCheck: false`), is
 *   closed, and that device is not tried again for {@link REFUSAL_MS}. That check is
 *   detective only: the ICE checks have left before it runs. So an implementation known
 *   to send them from host addresses despite `iceTransportPolicy: 'relay'`
 *   (node-datachannel; peer-connection.ts) is refused in this mode at construction
 *   (hostile review 3, finding 1), recognised by its shape as well as its mark, and each
 *   connection is checked again as soon as it is constructed, before any description
 *   (review 4, finding 1: a factory function).
 * - **Refusals are per device** (review 2, finding 4). A link refused because the remote
 *   certificate or (privacy mode) the selected pair cannot be checked, or the pair is not
 *   relayed, stops attempts with that one device for {@link REFUSAL_MS} (a bounded map),
 *   not with every device: one odd peer cannot turn direct delivery off for all. But a
 *   certificate or pair "not exposed" is usually this device's own implementation: after
 *   that with {@link NOT_EXPOSED_USERS} users within {@link NOT_EXPOSED_WINDOW_MS}, no
 *   offer is made or answered for that long, which
 *   {@link WebRtcTransport.directLinksDisabled} shows (review 3, finding 5; review 4,
 *   finding 6).
 * - **Inbound rate** (review 3, finding 3): direct frames skip the relay's per-sender
 *   quotas, so each peer device takes a bounded rate of frames and bytes, in token
 *   buckets kept per device and shared by its successive links (review 4, finding 5); the
 *   excess is NACKed and comes through the relay, where they apply.
 *
 * @module
 */
import {
  RELAY_LIMITS,
  TRANSPORT_SPECIFICATION_VERSION,
  TransportCore,
  UsageError,
  backoffDelay,
  isDeadboltError,
  settleSendRequests,
  prepareOutbound,
  transportClosed,
  type Address,
  type BackoffOptions,
  type DeviceDirectoryEntry,
  type FetchBundlesOptions,
  type FrameHandler,
  type InboundFrame,
  type OutboundMessage,
  type SharedRecipient,
  type SignallingChannel,
  type TransportAdapter,
  type TransportAuth,
  type TransportNotice,
  type TransportState,
} from '@deadbolt/spec';
import { invalidOption as invalid, isolatedListener as isolated, positiveOption as positive, systemTimers as globalTimers, type SignalSenderInfo } from '@deadbolt/spec';
import { looksLikeNodeDatachannel, relaxesRelayPolicy, relayPolicyBasis, sendsFromHostDespiteRelayPolicy, type IceServer, type PeerConnectionConfig, type RemoteFingerprintReader, type RTCPeerConnectionConstructor, type RTCPeerConnectionLike, type SelectedCandidatePairReader } from './peer-connection.js';
import {
  CHANNEL_CLOSED,
  CHUNK_OUT_OF_SEQUENCE,
  CONNECT_TIMEOUT,
  CONNECTION_FAILED,
  FINGERPRINT_NOT_EXPOSED,
  FRAME_OUT_OF_SEQUENCE,
  FRAME_OVER_LIMIT,
  IDLE,
  NOT_BINARY,
  PAIR_NOT_EXPOSED,
  PAIR_NOT_RELAYED,
  PEER_NOT_READING,
  PeerLink,
  TOO_MUCH_BEFORE_OPEN,
  UNDECODABLE,
  type DeliveryOutcome,
  type FingerprintCheck,
  type LinkHost,
  type LinkSettings,
  type Timers,
} from './peer-link.js';
import { relayOnlySdp, sdpProblem, withoutEndOfCandidates } from './sdp.js';
import { CONNECTION_ID_LENGTH, decodeSignal, encodeSignal, type Signal } from './signal-codec.js';

/** The privacy modes: `'relay-only'` uses TURN-relayed candidates only. */
export type WebRtcPrivacy = 'relay-only' | 'off';

/**
 * What the signalling channel says of a signal's sender: core's `SignalSenderInfo`
 * (`firstContact`), re-exported. A channel that says nothing (an older core) is handled
 * as "unknown".
 */
export type { SignalSenderInfo };

/**
 * What the transport knows of a peer whose offer it is deciding on
 * ({@link WebRtcTransportOptions.acceptOffer}).
 *
 * @example
 * ```ts
 * const acceptOffer = (peer: Address, context: OfferContext) => contacts.has(peer.userId) || defaultAcceptOffer(peer, context);
 * ```
 */
export interface OfferContext {
  /**
   * The application sent to the peer's user through this transport since it was created:
   * a send with `contact: true` (core: `client.send`). Frames core sends on its own (group
   * key requests, sender keys, group control messages, receipts) do not count.
   */
  readonly sentTo: boolean;
  /** This device offered a link to this very device since the transport was created (a send, or `preconnect`). */
  readonly initiated: boolean;
  /** What the signalling channel said ({@link SignalSenderInfo}); `undefined` when it said nothing. */
  readonly firstContact: boolean | undefined;
}

/**
 * The default of {@link WebRtcTransportOptions.acceptOffer}: answer a device only when
 * the application on this device has sent to its user (`contact: true`), offered a link
 * to it, or the signalling channel says the conversation is not a first contact.
 *
 * Why: an answer gives the offerer this device's candidate addresses (with privacy off)
 * and a direct-link slot, and the signalling channel hears any user who merely knows this
 * user's id (trust on first use), so a stranger's offer must not be answered. What the
 * transport knows is what it carried: it sends every frame of this device, and core marks
 * those the user chose to send (`contact: true`), so "the user sent to that user" means
 * the conversation exists in both directions (the offer itself came the other way).
 * Frames core sends on its own do not count: a stranger can cause them (adding this
 * device to a group makes core ask it for the group key), and they would let its offers
 * in (hostile review 2, finding 1). That knowledge starts with the transport: after a restart, a device that
 * only receives would refuse the offers of a peer it did talk to before, which is why a
 * channel that knows the history (core, through its sessions) can say so with
 * `firstContact: false`, and why the application can decide instead (its contacts).
 * A sender reported as a first contact gets no answer unless this device itself wanted
 * a link with it. Timing ("sent to lately") is not used: a path where only one side
 * sends would never become direct.
 *
 * @example
 * ```ts
 * createWebRtcTransport({ fallback, acceptOffer: (peer, context) => myContacts.has(peer.userId) || defaultAcceptOffer(peer, context) });
 * ```
 */
export function defaultAcceptOffer(_peer: Address, context: OfferContext): boolean {
  return context.initiated || context.sentTo || context.firstContact === false;
}

/**
 * Options of {@link createWebRtcTransport}.
 *
 * @example
 * ```ts
 * const options: WebRtcTransportOptions = {
 *   fallback: createWebSocketTransport({ url: 'wss://relay.example/v1/ws' }),
 *   iceServers: [{ urls: 'turn:turn.example:3478', username: 'u', credential: 'p' }],
 *   privacy: 'relay-only',
 * };
 * ```
 */
export interface WebRtcTransportOptions {
  /** The relay transport for the key directory, the offline path and the signalling. */
  readonly fallback: TransportAdapter;
  /**
   * The `RTCPeerConnection` class: default `globalThis.RTCPeerConnection` (browsers). In
   * Node pass node-datachannel's ({@link nodeDatachannelImplementation}) or werift's.
   */
  readonly RTCPeerConnection?: RTCPeerConnectionConstructor;
  /** Reads the remote DTLS certificate's fingerprint where the standard API cannot (peer-connection.ts). */
  readonly remoteFingerprint?: RemoteFingerprintReader;
  /** STUN and TURN servers. Default none (direct paths only where host candidates reach). */
  readonly iceServers?: readonly IceServer[];
  /** `'relay-only'`: relayed candidates only, so peers never learn each other's IP addresses (needs a TURN server). Default `'off'`. */
  readonly privacy?: WebRtcPrivacy;
  /**
   * With `privacy: 'relay-only'`, **you assert that this `RTCPeerConnection`
   * implementation never sends from non-relayed addresses when `iceTransportPolicy` is
   * `'relay'`**. Without it the privacy mode takes only werift's class as marked by
   * {@link weriftImplementation} (or loaded by the configuration entry point), or, in a
   * browser, the platform's own `RTCPeerConnection` (or a class extending it); any other
   * is refused with INVALID_ARGUMENT (hostile review 5, finding 1: an allowlist, since a
   * wrapper, fork or other binding of an implementation that sends ICE checks from host
   * sockets passes any blocklist). node-datachannel's class is refused even with it.
   * Default `false`; ignored with privacy off.
   */
  readonly trustRelayPolicy?: boolean;
  /** How long one connection attempt (offer to open, checked channel) may take. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** How long ICE gathering may take before the description is sent with what it has. Default 3 s. */
  readonly gatherTimeoutMs?: number;
  /** Frames written and no message from the peer for this long: the link is presumed dead. Default 5 s. */
  readonly receiptTimeoutMs?: number;
  /** A frame received by the peer but not processed within this: it is sent through the relay too. Default 30 s. */
  readonly processTimeoutMs?: number;
  /** Backoff between failed attempts to one device (default 1 s doubling to 60 s, full jitter). */
  readonly backoff?: BackoffOptions;
  /**
   * Links (open or being set up) at most. Default 16. When this device itself wants a
   * link (a `contact` send, `preconnect`, or the retry after its link reached its
   * lifetime) and all are taken, a link a peer initiated is closed for it: the one whose
   * user this device sent a `contact: true` frame to (or whose device it asked for) least
   * recently, then the oldest; nothing the peer sends moves that order (hostile review 3,
   * finding 2; review 4, finding 3; review 5, findings 2 and 3).
   */
  readonly maxPeers?: number;
  /**
   * Links (open or being set up) with the devices of one user at most, either way: one
   * accepted contact with many devices cannot take every slot (hostile review 3, finding 2).
   * Default 4.
   */
  readonly maxLinksPerUser?: number;
  /**
   * Complete frames per second one peer device's links take from it (a token bucket of
   * `inboundFrameBurst`, kept per device and shared by its successive links: hostile
   * review 4, finding 5); more are NACKed, so their sender sends them through the relay,
   * whose per-sender quotas and rate limits apply (hostile review 3, finding 3). Default 50.
   */
  readonly maxInboundFramesPerSecond?: number;
  /** The burst of `maxInboundFramesPerSecond`. Default 200. */
  readonly inboundFrameBurst?: number;
  /** Bytes per second one link takes from its peer (burst: one second's worth, at least one frame of `maxFrameSize`); more are NACKed. Default 2 MiB. */
  readonly maxInboundBytesPerSecond?: number;
  /** Frames in flight on one link; more go through the relay. Default 256. */
  readonly maxInFlight?: number;
  /** Inbound frames of one link waiting for the handler; more are refused (NACK). Default 256. */
  readonly maxInbound?: number;
  /** Bytes of inbound frames of one link waiting for the handler (the partial one included); more are refused (NACK). Default 2 MiB. */
  readonly maxInboundBytes?: number;
  /** The data channel's high-water mark: every write (data or control) waits while `bufferedAmount` would pass it. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /** Offers to one device left unanswered before attempts pause until it signals. Default 3. */
  readonly maxUnansweredOffers?: number;
  /**
   * Whether to answer `peer`'s offer of a direct link (answering reveals this device's
   * candidate addresses unless `privacy` is `'relay-only'`, and takes a link slot). May
   * be asynchronous; an error counts as no. Default {@link defaultAcceptOffer}: only
   * peers the application sent to (`contact: true`) or offered a link to itself, or that
   * the signalling channel reports as not first contact. A refused offer gets no reply
   * at all. A decision not made within `connectTimeoutMs` counts as no and frees its
   * place among `maxPendingOffers` (hostile review 3, finding 4).
   */
  readonly acceptOffer?: (peer: Address, context: OfferContext) => boolean | Promise<boolean>;
  /**
   * Inbound offers being decided (`acceptOffer`) or negotiated (answered, not yet open), in
   * all; more are ignored. One per device at any time, and at most half of them (rounded
   * up: 2 of the default 4) from the devices of one user, so that one accepted contact with
   * several devices cannot hold every place with attempts that never complete (hostile
   * review 4, finding 2). Default 4.
   */
  readonly maxPendingOffers?: number;
  /**
   * A link that carried nothing either way for this long is closed. Default 60 s: below
   * {@link MAX_LINK_LIFETIME_MS} (2 minutes), which every link reaches anyway, so that an
   * unused link gives its slot and its peer connection back before that (hostile review 4,
   * finding 7; it was 5 minutes, which no link lived to see).
   */
  readonly idleTimeoutMs?: number;
  /**
   * Refuse a link (frames keep using the relay) when the `RTCPeerConnection`
   * implementation does not expose the remote DTLS certificate, so that this transport
   * cannot compare it with the signalled fingerprint itself. Default `true`; set `false`
   * only to rely on the WebRTC stack's own check (for example with a browser that has
   * neither `getRemoteCertificates()` nor certificate stats). After such a refusal this
   * transport makes and answers no more offers with that device for an hour, and after
   * such refusals with {@link NOT_EXPOSED_USERS} distinct users within
   * {@link NOT_EXPOSED_WINDOW_MS}, with no device for that window (the cause is then this
   * device's own implementation; hostile review 3, finding 5; hostile review 4, finding 6).
   */
  readonly requireFingerprintCheck?: boolean;
  /**
   * With `privacy: 'relay-only'`: refuse a link (frames keep using the relay) when the
   * `RTCPeerConnection` implementation does not expose the candidate pair its ICE agent
   * selected, so that this transport cannot check that it is relayed at both ends.
   * Default `true`; set `false` only to rely on the stack honouring
   * `iceTransportPolicy: 'relay'` (libdatachannel was seen not to). A pair that can be
   * read and is not relayed closes the link either way. Ignored with privacy off.
   */
  readonly requireRelayedPairCheck?: boolean;
  /** Reads the selected candidate pair's types where the standard API cannot (peer-connection.ts). */
  readonly selectedCandidatePair?: SelectedCandidatePairReader;
  /** Randomness for backoff jitter, uniform in [0, 1) (tests). */
  readonly random?: () => number;
  /** Timer functions (tests). */
  readonly timers?: Timers;
  /** The clock in ms (tests). */
  readonly now?: () => number;
}

/** A change of the path frames to one device take. */
export interface PathChange {
  readonly peer: Address;
  readonly path: 'direct' | 'relay';
  /** With `direct`: whether the DTLS certificate was compared with the signalled fingerprint here (`matched`) or only by the WebRTC stack (`not-exposed`). */
  readonly fingerprintCheck?: FingerprintCheck;
  /** With `relay`: why the link closed (no secrets, no addresses). */
  readonly reason?: string;
}

/**
 * The WebRTC transport: a {@link TransportAdapter} that also reports which path frames to
 * each device take.
 *
 * @example
 * ```ts
 * transport.onPathChange(({ peer, path }) => console.log(peer.userId, path)); // 'direct' or 'relay'
 * transport.path(bob); // 'direct' while a checked data channel to bob is open
 * ```
 */
export interface WebRtcTransport extends TransportAdapter {
  /** `'direct'` while an open, checked data channel to `peer` exists; otherwise `'relay'`. */
  path(peer: Address): 'direct' | 'relay';
  /** Observes path changes; returns a function that stops observing. */
  onPathChange(listener: (change: PathChange) => void): () => void;
  /**
   * Why this transport makes and answers no offers at all right now, or `undefined` while
   * it does (hostile review 4, finding 6). Direct links are switched off for a while when
   * links with {@link NOT_EXPOSED_USERS} users were refused within
   * {@link NOT_EXPOSED_WINDOW_MS} because the remote certificate or (privacy mode) the
   * selected candidate pair was not exposed (this device's own implementation, most
   * likely), until that window has passed; and for good, in the privacy mode, once the
   * `RTCPeerConnection` given turns out to construct node-datachannel connections (a
   * factory function; the class itself is refused at creation) or a connection that
   * reports another `iceTransportPolicy` than `'relay'`. Frames take the relay
   * meanwhile. The reason names no address and no secret.
   *
   * @example
   * ```ts
   * if (transport.directLinksDisabled) console.warn('direct links off:', transport.directLinksDisabled);
   * ```
   */
  readonly directLinksDisabled: string | undefined;
  /**
   * Sets up a direct link to `peer` now, without waiting for a send (for example when the
   * user opens a conversation with a contact), regardless of backoff. Resolves `true` once
   * the path is direct, `false` when the attempt ended without a link (the peer is
   * offline, has no WebRTC, or cannot be reached), or when no attempt can be made (not
   * connected, no signalling, `maxLinksPerUser` links with that user, `maxPeers` links
   * none of which a peer initiated). Rejects only for an invalid address.
   *
   * **Only for peers the application trusts** (hostile review 3, finding 7). The offer
   * gives `peer` this device's candidate addresses (unless `privacy: 'relay-only'`), and
   * `peer` counts as `initiated` from then on: its own offers are answered
   * ({@link defaultAcceptOffer}). The transport does not check who `peer` is, because it
   * cannot tell a contact from a stranger here (it knows only what it carried since it was
   * created); the application can. Do not call it for a conversation the user has not
   * accepted, such as a message request from a stranger.
   */
  preconnect(peer: Address): Promise<boolean>;
  attachSignalling(channel: SignallingChannel): void;
  /**
   * Closes the links (open or being set up) to `userId`'s devices not in `keepDeviceIds`,
   * drops their pending offers and stops trying to reach them; returns how many links
   * closed. The transport contract's optional hook: core calls it whenever it applies a
   * changed signed device list of that user, with the devices the list names, so that a
   * revoked device loses its link at once rather than within the link lifetime. Frames in
   * flight on a closed link go through the relay, which refuses a revoked device.
   *
   * @example
   * ```ts
   * transport.closeLinksTo('bob', ['phone']); // what core does once bob's list names only his phone
   * ```
   */
  closeLinksTo(userId: string, keepDeviceIds: readonly string[]): number;
  /**
   * Closes every link, then the fallback. Frames written on a link and not yet
   * acknowledged settle as closed (`send` rejects with TRANSPORT_CLOSED, and core records
   * those messages `failed`), although the peer **may have received and processed them**
   * (hostile review 3, finding 9): a message recorded failed at close may have been
   * delivered. Sending it again is safe (core drops a duplicate silently).
   */
  close(): Promise<void>;
}

interface PeerState {
  readonly peer: Address;
  failures: number;
  nextAttemptAt: number;
  unanswered: number;
  lastDemandAt: number;
  /** The next attempt, scheduled after a failure or a drop while this device wants a link. */
  retry: unknown;
  /**
   * The last link with this device had opened (it worked, and ended by its lifetime or a
   * drop): its retry may close a link a peer initiated for its slot, as a send would
   * (hostile review 4, finding 3).
   */
  evictOnRetry: boolean;
}

const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 1000, maxMs: 60_000 };
/** Devices whose attempt history is remembered (oldest forgotten first). */
const MAX_PEER_STATES = 1024;
/**
 * How long a relay confirmation of a user's device list version lets frames to that user
 * go direct. After it, the next frame goes through the relay, which refuses it if the list
 * changed (a device was revoked): a revoked device's open link carries at most this much
 * more (hostile review, finding 2).
 */
const CONFIRMATION_TTL_MS = 30_000;
/**
 * The longest a direct link stays up before it is closed and signalled again through the
 * relay, which refuses a revoked device: bounds how long a revoked device can keep
 * sending on a link it already had, since the receiving side checks only its own copy of
 * the sender's device list (hostile review 3, finding 8: 2 minutes, was 10). A link still
 * wanted is set up again at once (its retry, no backoff after a link that worked).
 *
 * @example
 * ```ts
 * expect(timers.count(MAX_LINK_LIFETIME_MS)).toBe(openLinks);
 * ```
 */
export const MAX_LINK_LIFETIME_MS = 2 * 60_000;
const EXPIRED = 'link lifetime reached';
/**
 * How many offers of one device this device answers at once, and how often after that
 * (one more every {@link ANSWER_REFILL_MS}; a token bucket per device, hostile review 3,
 * finding 2): each answered offer closes that device's previous link and costs a peer
 * connection, ICE gathering, a TURN allocation and a sealed answer, so an accepted
 * contact cannot churn its link as fast as the relay carries offers: at most
 * `ANSWER_BURST` answers, then six a minute. The burst is what an honest peer needs when
 * this device comes online: up to `maxUnansweredOffers` (3 by default) of its offers
 * waited in the mailbox, and its fresh one follows them. Offers beyond it are ignored
 * (no answer, no BYE), before `acceptOffer` is asked and before the existing link is touched.
 *
 * @example
 * ```ts
 * expect(answersTo(peer, withinMs(60_000))).toBeLessThanOrEqual(ANSWER_BURST + 60_000 / ANSWER_REFILL_MS);
 * ```
 */
export const ANSWER_BURST = 4;
/** See {@link ANSWER_BURST}: one more answer to a device's offers per this many ms. */
export const ANSWER_REFILL_MS = 10_000;
/**
 * After links refused because the remote certificate or (privacy mode) the selected pair
 * is not exposed, with this many distinct **users** within {@link NOT_EXPOSED_WINDOW_MS},
 * the transport makes and answers no offers at all for that window
 * ({@link WebRtcTransport.directLinksDisabled} says so): "not exposed" is a property of
 * this device's own implementation far more often than of the peer's, so trying each new
 * peer would only cost attempts (and, with privacy off, show each peer this device's
 * candidate addresses) for nothing. Users, not devices (hostile review 4, finding 6): one
 * user's several devices, odd or hostile, cannot switch direct links off; and for a
 * window, not for good: a transport kept running tries again.
 *
 * @example
 * ```ts
 * // after links with three users were refused with FINGERPRINT_NOT_EXPOSED within the hour:
 * transport.directLinksDisabled; // a reason; no offer made or answered for an hour
 * ```
 */
export const NOT_EXPOSED_USERS = 3;
/** The window of {@link NOT_EXPOSED_USERS}, and how long direct links stay off after it was reached (1 hour). */
export const NOT_EXPOSED_WINDOW_MS = 60 * 60_000;
/** {@link WebRtcTransport.directLinksDisabled} after {@link NOT_EXPOSED_USERS}. */
const OFF_NOT_EXPOSED = 'the remote certificate or selected candidate pair was not exposed with several users (this device’s implementation): direct links are off for an hour';
/** {@link WebRtcTransport.directLinksDisabled} when a privacy-mode connection turned out to be node-datachannel's. */
const OFF_HOST_SENDING = "privacy 'relay-only': the RTCPeerConnection given constructs node-datachannel connections, which send ICE checks from host addresses regardless of iceTransportPolicy: direct links are off";
/** {@link WebRtcTransport.directLinksDisabled} when a privacy-mode connection reported another `iceTransportPolicy` than `'relay'`. */
const OFF_RELAXED_POLICY = "privacy 'relay-only': a connection made by the RTCPeerConnection given reports another iceTransportPolicy than 'relay' (getConfiguration()): direct links are off";
/** Inbound rate buckets kept, one per device (oldest forgotten first; hostile review 4, finding 5). */
const MAX_INBOUND_BUCKETS = 1024;
/**
 * Close reasons of an open link that mean the peer broke the protocol (hostile review 5,
 * finding 3): treated as failures (backoff grows, no eviction on retry), not as a link
 * that worked, or a peer could make this device retry at once, and evict for it, by
 * breaking each link it gets.
 */
const PEER_BROKE: ReadonlySet<string> = new Set([
  NOT_BINARY,
  TOO_MUCH_BEFORE_OPEN,
  UNDECODABLE,
  FRAME_OUT_OF_SEQUENCE,
  CHUNK_OUT_OF_SEQUENCE,
  FRAME_OVER_LIMIT,
  PEER_NOT_READING,
]);
/**
 * A channel the peer closed is how every normal end looks from this side (its lifetime,
 * idle timer, eviction or shutdown: nothing on the channel says why), so it counts as a
 * protocol break only when the link lived less than this (hostile review 6, finding 1);
 * and one closed within {@link LIFETIME_SLACK_MS} of the link lifetime is that lifetime.
 */
const SHORT_LINK_MS = 30_000;
const LIFETIME_SLACK_MS = 15_000;
/** Close reasons of an answered attempt that never opened and drain its device's answer tokens (hostile review 5, finding 6). */
const UNOPENED_FAILURES: ReadonlySet<string> = new Set([CONNECT_TIMEOUT, CONNECTION_FAILED]);
/**
 * A BYE for an answered attempt arriving later than this after the answer left still
 * drains its device's answer tokens (hostile review 5, finding 5): an honest peer ends
 * its stale offers as soon as it hears the answer, and a peer that waits until just
 * before the connect timeout held the place for nothing.
 */
const BYE_GRACE_MS = 2000;
/** Inbound places for offers of first contacts (strangers), apart from `maxPendingOffers` (hostile review 5, finding 5). */
const STRANGER_PENDING = 1;
/** Close reason of an attempt still connecting when direct links were switched off (hostile review 5, finding 7). */
const DIRECT_OFF = 'direct links switched off';
/** Close reason of a link a peer initiated, closed for one this device wants (maxPeers). */
const EVICTED = 'closed for a link this device wants (maxPeers)';
/** Connection ids of ended attempts remembered, so a repeated old offer is not answered. */
const MAX_RECENTLY_CLOSED = 256;
/** A send this recent makes a device worth connecting to when it shows it is online. */
const DEMAND_WINDOW_MS = 5 * 60_000;
/** Close reasons that are not the peer's or the network's fault (no backoff). */
const REPLACED = 'replaced by the other side';
const CLOSING = 'transport closed';
/** Close reason of a link whose peer said BYE for it. */
const PEER_BYE = 'the peer ended the connection';
/** Close reason of a link to a device its user's list no longer names (no retry). */
const DEVICE_REMOVED = 'device removed from its user’s list';
/** Users sent to and devices offered to that are remembered for {@link defaultAcceptOffer} (oldest forgotten first). */
const MAX_KNOWN_PEERS = 1024;
/**
 * How long a device whose link was refused for a check that could not be made or failed
 * (remote certificate not exposed; privacy mode: selected pair not exposed or not
 * relayed) is not offered to nor answered. Per device: one odd peer costs one attempt an
 * hour, not direct delivery to everybody (hostile review 2, finding 4).
 *
 * @example
 * ```ts
 * transport.onPathChange(({ path, reason }) => path === 'relay' && reason && retryLater(REFUSAL_MS));
 * ```
 */
export const REFUSAL_MS = 60 * 60_000;
/** Close reasons that refuse the device for {@link REFUSAL_MS}. */
const REFUSALS: ReadonlySet<string> = new Set([FINGERPRINT_NOT_EXPOSED, PAIR_NOT_EXPOSED, PAIR_NOT_RELAYED]);
/** The refusals that this device's own implementation usually causes ({@link NOT_EXPOSED_USERS}). */
const NOT_EXPOSED_REFUSALS: ReadonlySet<string> = new Set([FINGERPRINT_NOT_EXPOSED, PAIR_NOT_EXPOSED]);
/**
 * The shortest time between two BYEs carrying a `floor` for one link (stale offers,
 * signal-codec.ts): an authenticated peer repeating stale offers costs at most one relay
 * message per link in this time.
 *
 * @example
 * ```ts
 * expect(byesWithFloor(peer).length).toBeLessThanOrEqual(Math.ceil(elapsedMs / FLOOR_BYE_INTERVAL_MS));
 * ```
 */
export const FLOOR_BYE_INTERVAL_MS = 5000;
/** A `floor` above this is ignored: a peer cannot push this device's sequences to it towards 2^53. */
const MAX_FLOOR = Number.MAX_SAFE_INTEGER - 2 ** 40;

function checkIceServers(value: unknown): IceServer[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('iceServers', 'an array of { urls, username?, credential? }');
  return value.map((s: Partial<IceServer> | null, i) => {
    const urls = typeof s?.urls === 'string' ? [s.urls] : Array.isArray(s?.urls) ? [...s.urls] : undefined;
    if (!urls || urls.length === 0 || !urls.every((u) => typeof u === 'string' && /^(stun|stuns|turn|turns):/i.test(u))) {
      throw invalid(`iceServers[${i}].urls`, 'stun:, stuns:, turn: or turns: URLs');
    }
    if (s?.username !== undefined && typeof s.username !== 'string') throw invalid(`iceServers[${i}].username`, 'a string');
    if (s?.credential !== undefined && typeof s.credential !== 'string') throw invalid(`iceServers[${i}].credential`, 'a string');
    return { urls, ...(s?.username !== undefined ? { username: s.username } : {}), ...(s?.credential !== undefined ? { credential: s.credential } : {}) };
  });
}

const keyOf = (a: Address): string => `${a.userId}/${a.deviceId}`;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

function randomId(): Uint8Array {
  const id = new Uint8Array(CONNECTION_ID_LENGTH);
  globalThis.crypto.getRandomValues(id);
  return id;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Waits for ICE gathering to complete, at most `ms`. */
function gathered(pc: RTCPeerConnectionLike, ms: number, timers: Timers): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      timers.clearTimeout(timer);
      pc.onicegatheringstatechange = null;
      resolve();
    };
    const timer = timers.setTimeout(done, ms);
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
  });
}

/**
 * Creates a WebRTC transport over `options.fallback`. Nothing is opened before `connect`;
 * no direct link is attempted before core attached its signalling channel.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws';
 * import * as ndc from 'node-datachannel';
 * import * as polyfill from 'node-datachannel/polyfill';
 * import { createWebSocketTransport } from '@deadbolt/transport-websocket';
 * import { createWebRtcTransport, nodeDatachannelImplementation } from '@deadbolt/transport-webrtc';
 *
 * const transport = createWebRtcTransport({
 *   fallback: createWebSocketTransport({ url: 'wss://relay.example/v1/ws', WebSocket }),
 *   ...nodeDatachannelImplementation(ndc, polyfill), // browsers: leave out
 *   iceServers: [{ urls: 'stun:stun.example:3478' }],
 * });
 * const client = await createClient({ userId: 'alice', deviceId: 'laptop', storage, transport });
 * await client.start(); // core attaches the signalling channel, then connects
 * ```
 */
export function createWebRtcTransport(options: WebRtcTransportOptions): WebRtcTransport {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an options object');
  const fallback = options.fallback;
  if (typeof fallback !== 'object' || fallback === null || typeof fallback.send !== 'function' || typeof fallback.connect !== 'function') {
    throw invalid('fallback', 'a transport adapter (WebSocket or HTTP polling)');
  }
  const Ctor = options.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: RTCPeerConnectionConstructor }).RTCPeerConnection;
  if (typeof Ctor !== 'function') throw invalid('RTCPeerConnection', "an RTCPeerConnection class (this platform has none: pass node-datachannel's or werift's)");
  if (options.remoteFingerprint !== undefined && typeof options.remoteFingerprint !== 'function') throw invalid('remoteFingerprint', 'a function');
  const privacy = options.privacy ?? 'off';
  if (privacy !== 'off' && privacy !== 'relay-only') throw invalid('privacy', "'relay-only' or 'off'");
  const iceServers = checkIceServers(options.iceServers);
  if (privacy === 'relay-only' && !iceServers.some((s) => (s.urls as string[]).some((u) => /^turns?:/i.test(u)))) {
    throw invalid('iceServers', "a TURN server (privacy 'relay-only' uses relayed candidates only)");
  }
  // Some stacks (werift) gather relay-only only with a TURN username and credential, and
  // otherwise open host sockets whose checks would show this device's address to a peer
  // (hostile review, finding 7): in relay-only mode every TURN server must carry both.
  if (privacy === 'relay-only' && iceServers.some((s) => (s.urls as string[]).some((u) => /^turns?:/i.test(u)) && (typeof s.username !== 'string' || s.username === '' || typeof s.credential !== 'string' || s.credential === ''))) {
    throw invalid('iceServers', "a username and credential on every TURN server (privacy 'relay-only')");
  }
  // Privacy (hostile review 3, finding 1): an implementation known to send ICE checks
  // from its host sockets whatever the policy says (node-datachannel) would show this
  // device's address to any peer that labels her own socket a relayed candidate, before
  // any check of the selected pair could run (that check is only detective). Refused
  // here, so the application learns at once rather than leaking quietly.
  if (privacy === 'relay-only' && sendsFromHostDespiteRelayPolicy(Ctor)) {
    throw new UsageError('INVALID_ARGUMENT', {
      message:
        "privacy 'relay-only' is not available with this RTCPeerConnection (node-datachannel): it sends ICE checks from this device's host addresses regardless of iceTransportPolicy 'relay'. Use werift or a browser, or privacy 'off'",
      details: { field: 'privacy', expected: "'off' with this RTCPeerConnection implementation, or an implementation that honours iceTransportPolicy 'relay' (werift, browsers)" },
    });
  }
  if (options.trustRelayPolicy !== undefined && typeof options.trustRelayPolicy !== 'boolean') throw invalid('trustRelayPolicy', 'a boolean');
  // And an allowlist (hostile review 5, finding 1): the check above knows node-datachannel
  // by its members, which a wrapper holding a real node-datachannel connection, a fork or
  // another binding does not show. The privacy mode takes werift as this package marked
  // it, the browser's own class in a browser, or what the application vouches for.
  if (privacy === 'relay-only' && relayPolicyBasis(Ctor, options.trustRelayPolicy === true) === undefined) {
    throw new UsageError('INVALID_ARGUMENT', {
      message:
        "privacy 'relay-only' takes werift's RTCPeerConnection (weriftImplementation), a browser's own, or another implementation with trustRelayPolicy: true (asserting it never sends from non-relayed addresses under iceTransportPolicy 'relay')",
      details: { field: 'privacy', expected: "weriftImplementation(werift), the browser's RTCPeerConnection, or trustRelayPolicy: true" },
    });
  }
  if (options.acceptOffer !== undefined && typeof options.acceptOffer !== 'function') throw invalid('acceptOffer', 'a function (peer, context) => boolean | Promise<boolean>');
  if (options.requireFingerprintCheck !== undefined && typeof options.requireFingerprintCheck !== 'boolean') throw invalid('requireFingerprintCheck', 'a boolean');
  if (options.requireRelayedPairCheck !== undefined && typeof options.requireRelayedPairCheck !== 'boolean') throw invalid('requireRelayedPairCheck', 'a boolean');
  if (options.selectedCandidatePair !== undefined && typeof options.selectedCandidatePair !== 'function') throw invalid('selectedCandidatePair', 'a function');
  const acceptOffer = options.acceptOffer ?? defaultAcceptOffer;
  const gatherTimeoutMs = positive(options.gatherTimeoutMs, 'gatherTimeoutMs', 3000);
  const maxPeers = positive(options.maxPeers, 'maxPeers', 16);
  const maxLinksPerUser = positive(options.maxLinksPerUser, 'maxLinksPerUser', 4);
  const maxPendingOffers = positive(options.maxPendingOffers, 'maxPendingOffers', 4);
  /** Inbound attempts (decisions, answered links not open) of one user's devices at most (review 4, finding 2). */
  const maxPendingPerUser = Math.max(1, Math.ceil(maxPendingOffers / 2));
  const maxUnanswered = positive(options.maxUnansweredOffers, 'maxUnansweredOffers', 3);
  const backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
  const random = options.random ?? Math.random;
  const timers = options.timers ?? globalTimers;
  const now = options.now ?? Date.now;
  const settings: LinkSettings = {
    connectTimeoutMs: positive(options.connectTimeoutMs, 'connectTimeoutMs', 10_000),
    receiptTimeoutMs: positive(options.receiptTimeoutMs, 'receiptTimeoutMs', 5000),
    processTimeoutMs: positive(options.processTimeoutMs, 'processTimeoutMs', 30_000),
    maxInFlight: positive(options.maxInFlight, 'maxInFlight', 256),
    maxInbound: positive(options.maxInbound, 'maxInbound', 256),
    maxInboundBytes: positive(options.maxInboundBytes, 'maxInboundBytes', 2 * 1024 * 1024),
    maxBufferedBytes: positive(options.maxBufferedBytes, 'maxBufferedBytes', 1024 * 1024),
    idleTimeoutMs: positive(options.idleTimeoutMs, 'idleTimeoutMs', 60_000),
    inboundFramesPerSecond: positive(options.maxInboundFramesPerSecond, 'maxInboundFramesPerSecond', 50),
    inboundFrameBurst: positive(options.inboundFrameBurst, 'inboundFrameBurst', 200),
    inboundBytesPerSecond: positive(options.maxInboundBytesPerSecond, 'maxInboundBytesPerSecond', 2 * 1024 * 1024),
    requireFingerprintCheck: options.requireFingerprintCheck ?? true,
    timers,
    now,
    remoteFingerprint: options.remoteFingerprint,
    relayOnly: privacy === 'relay-only',
    requireRelayedPairCheck: options.requireRelayedPairCheck ?? true,
    selectedCandidatePair: options.selectedCandidatePair,
  };
  const pcConfig = (): PeerConnectionConfig => ({
    // A fresh copy each time: some implementations write into the configuration.
    iceServers: iceServers.map((s) => ({ ...s, urls: [...(s.urls as string[])] })),
    iceTransportPolicy: privacy === 'relay-only' ? 'relay' : 'all',
  });
  /** What leaves this device, and what is applied from a peer, in the privacy mode. */
  const filterSdp = (sdp: string): string => (privacy === 'relay-only' ? relayOnlySdp(sdp) : sdp);
  /** A peer's description, as applied here (see {@link withoutEndOfCandidates}). */
  const remoteSdp = (sdp: string): string => withoutEndOfCandidates(filterSdp(sdp));

  const core = new TransportCore(RELAY_LIMITS.maxMessage);
  core.setState(fallback.state === 'closed' ? 'closed' : fallback.state);
  const links = new Map<string, PeerLink>();
  const peers = new Map<string, PeerState>();
  /**
   * The device list version the relay last confirmed per user: by storing a send that
   * named it, or by naming it in a DEVICE_MISMATCH. A frame goes direct only when it names
   * this version, so the relay's check (docs/relay-protocol.md, SEND) is never skipped
   * for a version it has not accepted; the receiving device checks its own (peer-link.ts).
   */
  const confirmed = new Map<string, { readonly listVersion: number; readonly at: number }>();
  /** Closes each open link when its lifetime is reached. */
  const lifetimes = new Map<PeerLink, unknown>();
  const recentlyClosed = new Map<string, true>();
  /** Users the application sent to (`contact: true`), when it last did, and devices it offered a link to ({@link defaultAcceptOffer}). */
  const sentTo = new Map<string, number>();
  const initiated = new Map<string, { readonly peer: Address }>();
  /** Inbound offers being decided, one per device (a newer one replaces it); `timer` ends an undecided one ({@link onOffer}). */
  const pendingOffers = new Map<string, { readonly peer: Address; readonly idHex: string; readonly sequence: number; readonly stranger: boolean; timer: unknown }>();
  /** Per device, the answers it may still get and when that was counted ({@link ANSWER_BURST}). */
  const answered = new Map<string, { readonly peer: Address; readonly tokens: number; readonly at: number }>();
  /** Per user, when a link with one of its devices was last refused as "not exposed" ({@link NOT_EXPOSED_USERS}). */
  const notExposedBy = new Map<string, number>();
  /** While set (and `until` not passed): no offer made or answered ({@link WebRtcTransport.directLinksDisabled}). */
  let directOff: { readonly reason: string; readonly until: number } | undefined;
  /**
   * Inbound rate per device, not per link (hostile review 4, finding 5): each new link
   * (one every lifetime, up to `maxLinksPerUser` per user) would otherwise start with a
   * full burst. Shared by the successive links of one device; bounded ({@link MAX_INBOUND_BUCKETS}).
   */
  const inboundBuckets = new Map<string, { frames: number; bytes: number; at: number }>();
  /**
   * The same per user (hostile review 5, finding 8): a user's several devices, or new
   * device ids with fresh buckets, get no more than one device's rate together. Bounded.
   */
  const inboundUserBuckets = new Map<string, { frames: number; bytes: number; at: number }>();
  /** Per device, when a BYE last answered an answer to no attempt of this device's (hostile review 5, finding 6). Bounded. */
  const strayByes = new Map<string, number>();
  /**
   * Whether a link on this transport opened with the remote certificate compared and (privacy
   * mode) its selected pair read: this device's implementation exposes both, so later "not
   * exposed" refusals are the peers' and never switch direct links off (hostile review 5, finding 4).
   */
  let exposedOnce = false;
  /** Answered links that came from a first contact's offer: they hold the strangers' place ({@link STRANGER_PENDING}). */
  const strangerLinks = new WeakSet<PeerLink>();
  /** The last offer refused per device: said BYE to when this device offers it a link itself. */
  const refusedOffers = new Map<string, { readonly peer: Address; readonly connectionId: Uint8Array }>();
  /** Devices whose link was refused for a check (REFUSALS), until when ({@link REFUSAL_MS}). */
  const refused = new Map<string, { readonly peer: Address; readonly until: number }>();
  let lastSequence = 0;
  /**
   * Per device, the last sequence used for it when a peer's `floor` set it above this
   * device's own (stale offers, signal-codec.ts). Only signals to that device use it.
   */
  const sequenceFloors = new Map<string, number>();
  /** When each link last sent a BYE with a `floor` ({@link FLOOR_BYE_INTERVAL_MS}). */
  const floorByes = new WeakMap<PeerLink, number>();
  const pathListeners = new Set<(change: PathChange) => void>();
  let signalling: SignallingChannel | undefined;
  let offSignal: (() => void) | undefined;
  let handler: FrameHandler | undefined;
  let offFallbackFrames: (() => void) | undefined;
  let closing: Promise<void> | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const closed = (): boolean => core.state === 'closed' || closing !== undefined;
  const live = (): boolean => !closed() && (core.state === 'connected' || core.state === 'reconnecting');

  const offFallbackState = fallback.onStateChange((state) => {
    if (state === 'closed') void transport.close();
    else core.setState(state);
  });

  /** One handler call at a time, across the fallback's frames and every link's. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  }

  function peerState(peer: Address): PeerState {
    const key = keyOf(peer);
    let st = peers.get(key);
    if (st === undefined) {
      st = { peer: { userId: peer.userId, deviceId: peer.deviceId }, failures: 0, nextAttemptAt: 0, unanswered: 0, lastDemandAt: 0, retry: undefined, evictOnRetry: false };
      peers.set(key, st);
      if (peers.size > MAX_PEER_STATES) {
        for (const [k, old] of peers) {
          if (peers.size <= MAX_PEER_STATES) break;
          if (links.has(k) || old.retry !== undefined) continue;
          peers.delete(k);
        }
      }
    }
    return st;
  }

  /**
   * After a failed attempt or a dropped link, while this device sent to the peer lately
   * and the peer has not left offers unanswered: the next attempt, when the backoff ends
   * ("resumes direct delivery when it can", without waiting for the next send).
   */
  function scheduleRetry(st: PeerState): void {
    timers.clearTimeout(st.retry);
    st.retry = undefined;
    if (closed() || now() - st.lastDemandAt >= DEMAND_WINDOW_MS || st.unanswered >= maxUnanswered) return;
    st.retry = timers.setTimeout(() => {
      st.retry = undefined;
      // Granted once per link lifetime reached (hostile review 5, finding 3): used up here.
      const evict = st.evictOnRetry;
      st.evictOnRetry = false;
      wantDirect(st.peer, { demand: false, scheduled: true, evict });
    }, Math.max(0, st.nextAttemptAt - now()));
  }

  /** Notes `key` in a bounded map of recent keys (the oldest forgotten first). */
  function remember<V>(map: Map<string, V>, key: string, value: V, max = MAX_KNOWN_PEERS): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > max) map.delete(map.keys().next().value as string);
  }

  /**
   * The next sequence of a signal to `peer`: this clock, past the last one used
   * (signal-codec.ts), and past the `floor` that peer said it holds, if any.
   */
  function nextSequence(peer: Address): number {
    lastSequence = Math.max(lastSequence + 1, Math.floor(now()));
    const key = keyOf(peer);
    const floor = sequenceFloors.get(key);
    if (floor === undefined) return lastSequence;
    if (floor < lastSequence) {
      sequenceFloors.delete(key); // this clock caught up: the common counter serves again
      return lastSequence;
    }
    remember(sequenceFloors, key, floor + 1);
    return floor + 1;
  }

  /** Whether `peer` is refused for now (its last link failed a check it cannot pass here). */
  function isRefused(peer: Address): boolean {
    const key = keyOf(peer);
    const r = refused.get(key);
    if (r === undefined) return false;
    if (now() < r.until) return true;
    refused.delete(key);
    return false;
  }

  /** Why no offer is made or answered now ({@link WebRtcTransport.directLinksDisabled}), or `undefined`. */
  function directDisabled(): string | undefined {
    if (directOff === undefined) return undefined;
    if (now() < directOff.until) return directOff.reason;
    directOff = undefined;
    return undefined;
  }

  /** Switches direct links off until `until`: no offer made or answered, no retry pending, no decision pending. */
  function disableDirect(reason: string, until: number): void {
    directOff = { reason, until };
    for (const st of peers.values()) {
      timers.clearTimeout(st.retry);
      st.retry = undefined;
    }
    for (const p of pendingOffers.values()) timers.clearTimeout(p.timer);
    pendingOffers.clear();
    // Attempts still gathering or connecting end too (hostile review 5, finding 7): their
    // offer or answer would otherwise still leave, showing this device's candidates.
    for (const l of [...links.values()]) if (l.state === 'connecting') l.close(DIRECT_OFF);
  }

  function emitPath(change: PathChange): void {
    for (const l of [...pathListeners]) l(change);
  }

  function confirm(userId: string, listVersion: number): void {
    confirmed.delete(userId);
    confirmed.set(userId, { listVersion, at: now() });
    if (confirmed.size > MAX_PEER_STATES) confirmed.delete(confirmed.keys().next().value as string);
  }

  /** Sends through the fallback, noting the device list versions the relay accepted or named. */
  async function relaySend(messages: readonly OutboundMessage[]): Promise<void> {
    try {
      await fallback.send(messages);
    } catch (e) {
      if (isDeadboltError(e, 'DEVICE_MISMATCH')) for (const u of e.details.users) confirm(u.userId, u.listVersion);
      throw e;
    }
    for (const m of messages) confirm(m.to.userId, m.listVersion ?? 0);
  }

  // --- links -------------------------------------------------------------------------------

  const host: LinkHost = {
    maxFrameSize: () => fallback.maxFrameSize,
    admitInbound(peer: Address, size: number): boolean {
      // Token buckets on the injected clock, refilled for the time passed, then one frame
      // and `size` bytes taken; a frame refused takes nothing (review 3, finding 3). Kept
      // per device (review 4, finding 5): a new link of the same device continues where
      // the last one left off. The byte bucket holds a second's worth, at least one frame
      // of the largest size.
      // And per user on top (review 5, finding 8): one user's devices share one rate, so
      // several devices, or new device ids, give a user no more than one device gets.
      const t = now();
      const byteBurst = Math.max(settings.inboundBytesPerSecond, fallback.maxFrameSize);
      const refill = (map: Map<string, { frames: number; bytes: number; at: number }>, key: string): { frames: number; bytes: number; at: number } => {
        const b = map.get(key) ?? { frames: settings.inboundFrameBurst, bytes: byteBurst, at: t };
        const elapsed = Math.max(0, t - b.at);
        b.frames = Math.min(settings.inboundFrameBurst, b.frames + (elapsed * settings.inboundFramesPerSecond) / 1000);
        b.bytes = Math.min(byteBurst, b.bytes + (elapsed * settings.inboundBytesPerSecond) / 1000);
        b.at = t;
        remember(map, key, b, MAX_INBOUND_BUCKETS);
        return b;
      };
      const device = refill(inboundBuckets, keyOf(peer));
      const user = refill(inboundUserBuckets, peer.userId);
      if (device.frames < 1 || device.bytes < size || user.frames < 1 || user.bytes < size) return false;
      for (const b of [device, user]) {
        b.frames -= 1;
        b.bytes -= size;
      }
      return true;
    },
    async deliver(frame: InboundFrame, listVersion: number): Promise<DeliveryOutcome> {
      // A frame naming another version of this user's device list than this device holds
      // goes through the relay, which arbitrates (DEVICE_MISMATCH to a stale sender).
      const channel = signalling;
      if (channel !== undefined) {
        let own: number;
        try {
          own = await channel.deviceListVersion();
        } catch {
          return 'not-processed';
        }
        if (own !== listVersion) return 'not-processed';
      }
      return serial(async () => {
        if (closed()) return 'closed';
        const h = handler;
        if (h === undefined) return 'not-processed'; // no handler: the frame goes through the relay
        try {
          await h(frame);
          return 'processed';
        } catch {
          return 'not-processed';
        }
      });
    },
    opened(link) {
      if (links.get(keyOf(link.peer)) !== link) return link.close(REPLACED);
      lifetimes.set(link, timers.setTimeout(() => link.close(EXPIRED), MAX_LINK_LIFETIME_MS));
      // This device's implementation showed the certificate and (privacy mode) the pair: "not
      // exposed" refusals from now on are the peers' (review 5, finding 4).
      if (link.fingerprintCheck === 'matched' && (!settings.relayOnly || link.pairExposed)) {
        exposedOnce = true;
        notExposedBy.clear();
      }
      const st = peerState(link.peer);
      // Failures are reset when the link ends well (closed), not here: a peer that opens
      // links only to break them must not reset its backoff each time (review 5, finding 3).
      st.unanswered = 0;
      timers.clearTimeout(st.retry);
      st.retry = undefined;
      emitPath({ peer: link.peer, path: 'direct', ...(link.fingerprintCheck ? { fingerprintCheck: link.fingerprintCheck } : {}) });
    },
    closed(link, reason, wasOpen) {
      const lifetime = lifetimes.get(link);
      if (lifetime !== undefined) {
        timers.clearTimeout(lifetime);
        lifetimes.delete(link);
      }
      const key = keyOf(link.peer);
      if (links.get(key) === link) links.delete(key);
      recentlyClosed.set(link.connectionIdHex, true);
      if (recentlyClosed.size > MAX_RECENTLY_CLOSED) recentlyClosed.delete(recentlyClosed.keys().next().value as string);
      // A check that could not be made or failed with this device (its certificate not
      // shown; privacy mode: its pair not relayed or not shown): that device is neither
      // offered to nor answered for a while. Only that device (finding 4 of review 2): the
      // cause may be its implementation or its network as much as this one.
      const refusal = REFUSALS.has(reason);
      // "Not exposed" is usually this device's own implementation (review 3, finding 5):
      // after it happened with NOT_EXPOSED_USERS distinct users within the window, no more
      // offers for that window. Users, not devices (review 4, finding 6): one user's
      // devices count once, so one contact cannot switch direct links off for everybody.
      // Only refusals when a link first opens count (review 5, finding 4): a periodic re-check
      // of an open link may read nothing while its connection goes down; and none once a
      // link here exposed both (then this device's implementation is evidently not the cause).
      if (NOT_EXPOSED_REFUSALS.has(reason) && !wasOpen && !exposedOnce && directDisabled() === undefined) {
        const t = now();
        for (const [u, at] of [...notExposedBy]) if (t - at >= NOT_EXPOSED_WINDOW_MS) notExposedBy.delete(u);
        remember(notExposedBy, link.peer.userId, t);
        if (notExposedBy.size >= NOT_EXPOSED_USERS) {
          notExposedBy.clear();
          disableDirect(OFF_NOT_EXPOSED, t + NOT_EXPOSED_WINDOW_MS);
        }
      }
      // An answered link that never opened and held its pending place until it timed out or
      // failed cost this device a connection, gathering, a TURN allocation and an answer:
      // its device's answer bucket is drained, so it cannot offer again at once (review 4,
      // finding 2). Not when this device ended it (closing, evicted, removed), the peer's
      // newer offer replaced it (that offer paid its own token), or the peer said BYE (it
      // gave the place back at once; an honest peer does so for its stale offers answered
      // when this device comes online, and must then be answered for its fresh one).
      // Only once the answer actually left (review 5, finding 6), and only for a connection
      // that did not come about: this device's own failures ('the answer could not be made
      // or sent': offline, relay quota) are not the peer's doing. A BYE later than
      // BYE_GRACE_MS after the answer drains too (review 5, finding 5): a peer that ends its
      // attempt just before the timeout held the place as long as one that let it time out.
      const sentAt = link.answerSentAt;
      if (
        link.role === 'answerer' &&
        !wasOpen &&
        sentAt !== undefined &&
        (UNOPENED_FAILURES.has(reason) || (reason === PEER_BYE && now() - sentAt > BYE_GRACE_MS))
      ) {
        remember(answered, key, { peer: link.peer, tokens: Math.min(0, answerTokens(key)), at: now() });
      }
      if (refusal) {
        remember(refused, key, { peer: link.peer, until: now() + REFUSAL_MS });
        const st = peers.get(key);
        if (st !== undefined) {
          timers.clearTimeout(st.retry);
          st.retry = undefined;
        }
      }
      // A link that worked (opened, and the peer did not break the protocol on it): its
      // device's backoff starts again (review 5, finding 3: not at open).
      const age = now() - link.createdAt;
      const broke = PEER_BROKE.has(reason) || (reason === CHANNEL_CLOSED && age < SHORT_LINK_MS);
      const worked = wasOpen && !broke && !refusal;
      if (worked) {
        const st = peers.get(key);
        if (st !== undefined) st.failures = 0;
      }
      // Idle, replaced, removed, refused, switched off or closing: not a failure; nothing to retry on its own.
      if (reason !== CLOSING && reason !== REPLACED && reason !== IDLE && reason !== DEVICE_REMOVED && reason !== EVICTED && reason !== DIRECT_OFF && !refusal) {
        const st = peerState(link.peer);
        if (link.role === 'offerer' && !link.answered) st.unanswered++;
        // A link that worked is tried again soon; one that never opened, or that the peer
        // broke, backs off further.
        const attempt = worked ? 0 : st.failures++;
        // At maxPeers, a peer's offer could take the slot this link freed before the retry
        // (review 4, finding 3): the retry after a link that reached its lifetime may close
        // a link a peer initiated, as the send that wanted it would. Only that reason, once
        // per lifetime (review 5, finding 3): a drop or a protocol break the peer can cause
        // at will must not buy it evictions.
        st.evictOnRetry = reason === EXPIRED || (wasOpen && reason === CHANNEL_CLOSED && age >= MAX_LINK_LIFETIME_MS - LIFETIME_SLACK_MS);
        st.nextAttemptAt = now() + backoffDelay(attempt, backoff, random);
        scheduleRetry(st);
      }
      if (wasOpen && reason !== CLOSING) emitPath({ peer: link.peer, path: 'relay', reason });
    },
  };

  function newLink(peer: Address, connectionId: Uint8Array, role: 'offerer' | 'answerer'): PeerLink | undefined {
    let pc: RTCPeerConnectionLike;
    try {
      pc = new Ctor!(pcConfig());
    } catch {
      const st = peerState(peer);
      st.nextAttemptAt = now() + backoffDelay(st.failures++, backoff, random);
      scheduleRetry(st);
      return undefined;
    }
    // Privacy (hostile review 4, finding 1): the class was checked at creation, but a
    // factory function (or any constructor returning another object) hides what it makes.
    // The instance is checked here, before createOffer, setLocalDescription or
    // setRemoteDescription: nothing has been gathered or sent yet. node-datachannel's
    // sends ICE checks from host sockets whatever the policy, so it is closed at once, and
    // since every connection comes from the same constructor, direct links stay off.
    // A connection that reports another policy than the relay one (a subclass rewriting
    // its configuration; review 5, finding 1) is refused the same way, with its own reason.
    const offReason = privacy !== 'relay-only' ? undefined : looksLikeNodeDatachannel(pc) ? OFF_HOST_SENDING : relaxesRelayPolicy(pc) ? OFF_RELAXED_POLICY : undefined;
    if (offReason !== undefined) {
      try {
        pc.close();
      } catch {
        // Closed already.
      }
      disableDirect(offReason, Number.POSITIVE_INFINITY);
      return undefined;
    }
    const link = new PeerLink({ peer, connectionId, role, pc, settings, host });
    links.set(keyOf(peer), link);
    return link;
  }

  /** Seals a signal with the pairwise session and sends it through the relay. */
  async function sendSignal(peer: Address, signal: Signal): Promise<boolean> {
    const channel = signalling;
    if (channel === undefined || closed()) return false;
    await channel.send(peer, encodeSignal(signal), async (message) => {
      if (closed()) throw transportClosed();
      await relaySend([message]);
    });
    return true;
  }

  function localSdp(pc: RTCPeerConnectionLike): string {
    const sdp = pc.localDescription?.sdp;
    if (typeof sdp !== 'string' || sdp.length === 0) throw new Error('no local description');
    return filterSdp(sdp);
  }

  /** Offers a link to `peer` (this device is the offerer). */
  function attempt(peer: Address): void {
    const key = keyOf(peer);
    remember(initiated, key, { peer });
    // An offer of this peer's that was refused may still be waiting there for an answer
    // (it would win or lose against this one by connection id): end it first.
    const refused = refusedOffers.get(key);
    refusedOffers.delete(key);
    if (refused !== undefined) bye(peer, refused.connectionId);
    const link = newLink(peer, randomId(), 'offerer');
    if (link === undefined) return;
    const pc = link.pc;
    void (async () => {
      try {
        await pc.setLocalDescription(await pc.createOffer());
        await gathered(pc, gatherTimeoutMs, timers);
        if (link.state === 'closed') return;
        // Switched off while gathering (review 5, finding 7): the offer does not leave.
        if (directDisabled() !== undefined) return link.close(DIRECT_OFF);
        await sendSignal(peer, { type: 'offer', connectionId: link.connectionId, sequence: nextSequence(peer), sdp: localSdp(pc) });
      } catch {
        link.close('the offer could not be made or sent');
      }
    })();
  }

  /** Answers `peer`'s offer (this device is the answerer). */
  function answer(peer: Address, offer: Extract<Signal, { type: 'offer' }>, stranger: boolean): void {
    const link = newLink(peer, offer.connectionId, 'answerer');
    if (link === undefined) return;
    if (stranger) strangerLinks.add(link);
    link.remoteSequence = offer.sequence;
    const pc = link.pc;
    void (async () => {
      try {
        await link.setRemoteDescription('offer', remoteSdp(offer.sdp));
        await pc.setLocalDescription(await pc.createAnswer());
        await gathered(pc, gatherTimeoutMs, timers);
        if (link.state === 'closed') return;
        // Switched off while gathering (review 5, finding 7): the answer does not leave.
        if (directDisabled() !== undefined) return link.close(DIRECT_OFF);
        const sent = await sendSignal(peer, { type: 'answer', connectionId: link.connectionId, sequence: nextSequence(peer), sdp: localSdp(pc) });
        if (sent) link.answerSentAt = now();
      } catch {
        // The offerer hears of it at once (and that this device is online), rather than
        // waiting for its attempt to time out.
        if (link.state !== 'closed' && !closed()) bye(peer, link.connectionId);
        link.close('the answer could not be made or sent');
      }
    })();
  }

  /**
   * The application talks to `peer` (a `contact` send that went through the relay, or
   * `preconnect`), or a retry is due: set up a direct link if it is worth trying now.
   */
  function wantDirect(peer: Address, { force = false, demand = true, scheduled = false, evict = false } = {}): void {
    if (signalling === undefined || !live() || directDisabled() !== undefined || isRefused(peer)) return;
    const key = keyOf(peer);
    const st = peerState(peer);
    if (demand) st.lastDemandAt = now();
    if (links.has(key) || linksWith(peer.userId) >= maxLinksPerUser) return;
    // A scheduled retry is its own backoff (its timer may fire a tick before the clock says).
    if (!force && (st.unanswered >= maxUnanswered || (!scheduled && now() < st.nextAttemptAt))) return;
    // All slots taken: a link the application wants now (a contact send, preconnect), or
    // the retry of one that worked (`evict`: its lifetime ended, and a peer's offer may
    // have taken its slot meanwhile; review 4, finding 3), takes the slot of the least
    // recently used link a peer initiated, so that peers' offers cannot keep this device
    // from the links it wants (review 3, finding 2). Other retries do not.
    if (links.size >= maxPeers && !((demand || evict) && evictPeerInitiated())) return;
    attempt(peer);
  }

  /** Links (open or being set up) with `userId`'s devices, `except` one device's left out. */
  function linksWith(userId: string, except?: string): number {
    let n = 0;
    for (const [k, l] of links) if (l.peer.userId === userId && k !== except) n++;
    return n;
  }

  /**
   * Closes the link a peer initiated (this device answered) that this device wanted least
   * recently; whether there was one. Ranked by what the peer cannot drive (review 5,
   * finding 2): when this device last sent its user a `contact: true` frame or asked for
   * that device (a send or `preconnect`), then by age (the oldest first). Not by traffic:
   * core's frame handler resolves for frames it drops (codec errors, duplicates), so a
   * hostile peer sending one junk or replayed frame a second would keep its link "used"
   * and have honest quiet links evicted first. The idle timer (peer-link.ts) is separate.
   */
  function evictPeerInitiated(): boolean {
    const demandOf = (l: PeerLink): number => Math.max(sentTo.get(l.peer.userId) ?? 0, peers.get(keyOf(l.peer))?.lastDemandAt ?? 0);
    let lru: PeerLink | undefined;
    let lruDemand = 0;
    for (const l of links.values()) {
      if (l.role !== 'answerer') continue;
      const d = demandOf(l);
      if (lru === undefined || d < lruDemand || (d === lruDemand && l.createdAt < lru.createdAt)) {
        lru = l;
        lruDemand = d;
      }
    }
    if (lru === undefined) return false;
    lru.close(EVICTED);
    return true;
  }

  /** The answers `key` may still get now: its bucket refilled for the time passed ({@link ANSWER_BURST}). */
  function answerTokens(key: string): number {
    const b = answered.get(key);
    if (b === undefined) return ANSWER_BURST;
    return Math.min(ANSWER_BURST, b.tokens + Math.max(0, now() - b.at) / ANSWER_REFILL_MS);
  }

  /** Whether an offer of `key` may be answered now. */
  const answerAllowed = (key: string): boolean => answerTokens(key) >= 1;

  /** Takes one of `peer`'s answer tokens: for each offer of its that `acceptOffer` is asked about (review 4, finding 7). */
  function noteAnswered(peer: Address): void {
    const key = keyOf(peer);
    remember(answered, key, { peer, tokens: answerTokens(key) - 1, at: now() });
  }

  function bye(peer: Address, connectionId: Uint8Array, floor?: number): void {
    sendSignal(peer, { type: 'bye', connectionId, sequence: nextSequence(peer), ...(floor !== undefined ? { floor } : {}) }).catch(() => undefined);
  }

  /**
   * Offers being decided plus answering-side links not open yet, of the peers `counts`
   * picks (`stranger`: a first contact's); `except`'s own link is left out (a newer offer
   * of that device would replace it). Bounded by `maxPendingOffers` (not first contacts),
   * {@link STRANGER_PENDING} (first contacts) and, per user, `maxPendingPerUser` (review 4,
   * finding 2).
   */
  function pendingInbound(except: string, counts: (peer: Address, stranger: boolean) => boolean): number {
    let n = 0;
    for (const [k, p] of pendingOffers) if (k !== except && counts(p.peer, p.stranger)) n++;
    for (const [k, l] of links) if (k !== except && l.role === 'answerer' && l.state === 'connecting' && counts(l.peer, strangerLinks.has(l))) n++;
    return n;
  }

  /** Whether `offer` from `key` is a repeat, or older than what the current link (or a pending decision) came from. */
  function staleOffer(key: string, offer: Extract<Signal, { type: 'offer' }>, idHex: string): boolean {
    if (recentlyClosed.has(idHex)) return true;
    const link = links.get(key);
    if (link !== undefined && (link.connectionIdHex === idHex || (link.remoteSequence !== undefined && offer.sequence <= link.remoteSequence))) return true;
    const pending = pendingOffers.get(key);
    return pending !== undefined && (pending.idHex === idHex || offer.sequence <= pending.sequence);
  }

  /**
   * An offer from `from`, a device this device has a link with (accepted or its own), new
   * by connection id but not above the sequence of the peer's signal that set the link up
   * (finding 3 of review 2): a late old offer, or the current attempt of a peer that
   * restarted with its clock gone back. The link stays either way; the offer is ended with
   * a BYE that carries the sequence held, so a restarted peer offers again above it (and
   * its link replaces the dead one), while a sender whose offer was merely late ignores
   * it. Once per link every {@link FLOOR_BYE_INTERVAL_MS} at most.
   */
  function staleBySequence(from: Address, offer: Extract<Signal, { type: 'offer' }>, idHex: string): void {
    const link = links.get(keyOf(from));
    if (link === undefined || link.remoteSequence === undefined || recentlyClosed.has(idHex) || link.connectionIdHex === idHex) return;
    if (offer.sequence > link.remoteSequence) return;
    const last = floorByes.get(link);
    if (last !== undefined && now() - last < FLOOR_BYE_INTERVAL_MS) return;
    floorByes.set(link, now());
    bye(from, offer.connectionId, link.remoteSequence);
  }

  /**
   * An offer from `from`: answered only if it is new (finding 4), within the bounds, and
   * `acceptOffer` allows it (finding 3). Decided before anything else is touched, and
   * refused without a word: a stranger learns nothing, not even that this device is online.
   */
  function onOffer(from: Address, offer: Extract<Signal, { type: 'offer' }>, firstContact: boolean | undefined): void {
    const key = keyOf(from);
    const idHex = hex(offer.connectionId);
    if (staleOffer(key, offer, idHex)) return staleBySequence(from, offer, idHex);
    if (directDisabled() !== undefined || isRefused(from)) return;
    // An accepted contact cannot churn its link (review 3, finding 2): beyond the per-device
    // rate, ignored before `acceptOffer` is asked and before the existing link is touched.
    if (!answerAllowed(key)) return;
    // At most one offer per device is being decided (this newer one replaces it),
    // `maxPendingOffers` inbound attempts in all, and half of them from one user's devices
    // (review 4, finding 2): a flood of offers (many users or many devices) costs neither
    // connections nor unbounded calls of `acceptOffer`, and one contact with several
    // devices that never complete their attempts cannot hold every place.
    // First contacts (review 5, finding 5): a stranger's offer (firstContact, or unknown and
    // neither sent to nor offered to) is only answered if `acceptOffer` says so, and may
    // take as long as connectTimeoutMs to decide; strangers share a pool of their own
    // (STRANGER_PENDING), so that they never take the places of contacts' offers.
    const stranger = firstContact === true || (firstContact === undefined && !sentTo.has(from.userId) && !initiated.has(key));
    if (!pendingOffers.has(key)) {
      if (
        stranger
          ? pendingInbound(key, (_, isStranger) => isStranger) >= STRANGER_PENDING
          : pendingInbound(key, (_, isStranger) => !isStranger) >= maxPendingOffers || pendingInbound(key, (peer, isStranger) => !isStranger && peer.userId === from.userId) >= maxPendingPerUser
      )
        return;
    }
    // Each decision costs a token, answered or not (review 4, finding 7): `acceptOffer` may
    // ask the user, so refused and replaced offers are rate-limited like answered ones.
    noteAnswered(from);
    const ticket = { peer: from, idHex, sequence: offer.sequence, stranger, timer: undefined as unknown };
    const replaced = pendingOffers.get(key);
    if (replaced !== undefined) timers.clearTimeout(replaced.timer);
    pendingOffers.set(key, ticket);
    const decided = (accepted: boolean): void => {
      if (pendingOffers.get(key) !== ticket) return; // replaced by a newer offer, timed out, or the device was removed
      timers.clearTimeout(ticket.timer);
      pendingOffers.delete(key);
      if (closed()) return;
      if (accepted !== true) {
        remember(refusedOffers, key, { peer: from, connectionId: offer.connectionId });
        return;
      }
      refusedOffers.delete(key);
      takeOffer(from, offer, idHex, stranger);
    };
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = acceptOffer({ userId: from.userId, deviceId: from.deviceId }, { sentTo: sentTo.has(from.userId), initiated: initiated.has(key), firstContact });
    } catch {
      verdict = false;
    }
    if (typeof verdict === 'boolean') return decided(verdict);
    // A decision may ask the user; one not made within connectTimeoutMs counts as no and
    // frees its place (review 3, finding 4): slow decisions cannot pin every pending slot.
    // The offerer's own attempt has ended by then anyway (the same bound).
    ticket.timer = timers.setTimeout(() => decided(false), settings.connectTimeoutMs);
    Promise.resolve(verdict).then(decided, () => decided(false));
  }

  /** An accepted offer: answered, unless it became stale while it was decided, or glare keeps this device's own. */
  function takeOffer(from: Address, offer: Extract<Signal, { type: 'offer' }>, idHex: string, stranger: boolean): void {
    const key = keyOf(from);
    // Its token was taken when `acceptOffer` was asked (onOffer).
    if (staleOffer(key, offer, idHex) || directDisabled() !== undefined || isRefused(from)) return;
    const st = peerState(from);
    // The device runs this transport and is online: offers to it are worth making again.
    st.unanswered = 0;
    // An offer this device cannot take is refused before an existing link is touched:
    // a bad or untimely offer never costs a working link (hostile review, finding 4).
    if (sdpProblem(offer.sdp) !== undefined || !live()) return bye(from, offer.connectionId);
    const link = links.get(key);
    if (link !== undefined) {
      // Both offered at once: the lower connection id is kept, by both sides.
      if (link.role === 'offerer' && link.state === 'connecting' && !link.answered && compareBytes(link.connectionId, offer.connectionId) < 0) return;
      link.close(REPLACED);
    }
    // One user's devices take at most maxLinksPerUser slots (review 3, finding 2): an accepted
    // contact with many devices cannot take every one. This device's old link, replaced
    // just above, is not counted.
    if (links.size >= maxPeers || linksWith(from.userId, key) >= maxLinksPerUser) return bye(from, offer.connectionId);
    answer(from, offer, stranger);
  }

  /** A signal core authenticated as sent by `from` (a device this user trusts, possibly on first use). */
  function onSignal(from: Address, payload: Uint8Array, info?: SignalSenderInfo): void {
    if (closed()) return;
    let signal: Signal;
    try {
      signal = decodeSignal(payload);
    } catch {
      return; // malformed: ignored (it is authenticated, so a buggy peer, not an attacker)
    }
    const key = keyOf(from);
    const idHex = hex(signal.connectionId);
    const link = links.get(key);
    switch (signal.type) {
      case 'offer': {
        const firstContact = typeof info?.firstContact === 'boolean' ? info.firstContact : undefined;
        onOffer(from, signal, firstContact);
        return;
      }
      case 'answer': {
        const st = peers.get(key);
        // The device runs this transport and is online: offers to it are worth making again.
        if (st !== undefined) st.unanswered = 0;
        if (link === undefined || link.connectionIdHex !== idHex) {
          // Only this device's own attempts are answered; anything else is not worth a word.
          if (st === undefined) return;
          // An answer to an attempt that ended: tell the peer, and since it is evidently
          // online now, try again if this device wanted a direct link lately. One BYE per
          // device every FLOOR_BYE_INTERVAL_MS at most (review 5, finding 6): each goes
          // through the relay, on this device's quota, so stray answers cannot spend it.
          const lastBye = strayByes.get(key);
          if (lastBye === undefined || now() - lastBye >= FLOOR_BYE_INTERVAL_MS) {
            remember(strayByes, key, now());
            bye(from, signal.connectionId);
          }
          // Not forced: backoff and the unanswered-offers limit still apply, so answers to
          // ended attempts cannot make this device open connections without bound (finding 8).
          if (link === undefined && now() - st.lastDemandAt < DEMAND_WINDOW_MS) wantDirect(from, { force: false, demand: false });
          return;
        }
        if (link.role !== 'offerer' || link.answered) return;
        if (sdpProblem(signal.sdp) !== undefined) return link.close('an unusable answer');
        link.answered = true;
        link.remoteSequence = signal.sequence;
        link.setRemoteDescription('answer', remoteSdp(signal.sdp)).catch(() => {
          if (link.state !== 'closed') bye(from, link.connectionId);
          link.close('the answer could not be applied');
        });
        return;
      }
      case 'bye': {
        const st = peers.get(key);
        if (st !== undefined) st.unanswered = 0;
        if (link?.connectionIdHex !== idHex) return;
        // The peer holds a signal of this device's with a sequence at least `floor` (this
        // device's clock went back, or it restarted): when the BYE ends this device's own
        // offer, the signals to that peer go above it from now on, and the next attempt
        // (its usual retry) replaces the peer's old link. Only for the current offer: a
        // BYE naming any other connection changes nothing (signal-codec.ts).
        if (signal.floor !== undefined && signal.floor <= MAX_FLOOR && link.role === 'offerer' && !link.answered) {
          remember(sequenceFloors, key, Math.max(signal.floor, sequenceFloors.get(key) ?? 0));
        }
        link.close(PEER_BYE);
        return;
      }
    }
  }

  // --- the adapter -------------------------------------------------------------------------

  async function closeNow(): Promise<void> {
    core.close();
    offSignal?.();
    offSignal = undefined;
    signalling = undefined;
    offFallbackFrames?.();
    offFallbackFrames = undefined;
    handler = undefined;
    pathListeners.clear();
    for (const st of peers.values()) timers.clearTimeout(st.retry);
    for (const p of pendingOffers.values()) timers.clearTimeout(p.timer);
    pendingOffers.clear();
    for (const link of [...links.values()]) link.close(CLOSING, 'closed');
    links.clear();
    offFallbackState();
    await fallback.close();
  }

  const transport: WebRtcTransport = {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    get maxFrameSize() {
      return fallback.maxFrameSize;
    },
    get state() {
      return core.state;
    },
    // Why no offer is made or answered now (review 4, finding 6), or undefined.
    get directLinksDisabled() {
      return directDisabled();
    },

    connect(auth: TransportAuth): Promise<void> {
      if (closed()) return Promise.reject(transportClosed());
      return fallback.connect(auth);
    },

    async send(messages: readonly OutboundMessage[]): Promise<void> {
      if (closed()) throw transportClosed();
      if (!Array.isArray(messages)) throw invalid('messages', 'an array of { to, frame }');
      // Checked and copied, all of it, before anything is sent (invariants 4, 5).
      const prepared: OutboundMessage[] = [];
      for (let i = 0; i < Math.max(messages.length, 1); i += RELAY_LIMITS.maxRecipients) {
        prepared.push(...prepareOutbound(messages.slice(i, i + RELAY_LIMITS.maxRecipients), fallback.maxFrameSize));
      }
      // The application talks to these users (`contact`): their devices' offers are
      // answered (defaultAcceptOffer). Frames core sends on its own do not count (finding 1
      // of review 2): a stranger can make core send to it.
      // When, too: this device's own demand ranks the links a peer initiated for eviction
      // (hostile review 5, finding 2), and only the application's sends move it.
      for (const m of prepared) if (m.contact === true) remember(sentTo, m.to.userId, now());
      if (!live()) return relaySend(prepared); // not connected: the fallback says so
      const viaRelay: OutboundMessage[] = [];
      const direct: Promise<void>[] = [];
      for (const m of prepared) {
        const link = links.get(keyOf(m.to));
        const listVersion = m.listVersion ?? 0;
        const confirmation = confirmed.get(m.to.userId);
        const fresh = confirmation !== undefined && confirmation.listVersion === listVersion && now() - confirmation.at <= CONFIRMATION_TTL_MS;
        if (link?.state === 'open' && link.inFlight < settings.maxInFlight && fresh) {
          direct.push(
            link.send(m.frame, listVersion).then((outcome) => {
              if (outcome === 'delivered') return undefined;
              if (outcome === 'closed' || closed()) throw transportClosed();
              return relaySend([m]);
            }),
          );
        } else {
          viaRelay.push(m);
          // Only the application's own sends offer a link (an offer shows this device's
          // addresses): core's automatic traffic never does (finding 1 of review 2).
          if (m.contact === true) wantDirect(m.to);
        }
      }
      const results = await Promise.allSettled([...(viaRelay.length > 0 ? [relaySend(viaRelay)] : []), ...direct]);
      settleSendRequests(results);
    },

    onFrame(h: FrameHandler): () => void {
      if (typeof h !== 'function') throw invalid('handler', 'a function');
      if (closed()) return () => {};
      handler = h;
      // Registered on the fallback only while there is a handler, so frames arriving
      // without one stay unacknowledged there too (invariant 2).
      offFallbackFrames ??= fallback.onFrame((frame) =>
        serial(async () => {
          const current = handler;
          if (current === undefined || closed()) throw new Error('no frame handler');
          await current(frame);
        }),
      );
      return () => {
        if (handler !== h) return;
        handler = undefined;
        offFallbackFrames?.();
        offFallbackFrames = undefined;
      };
    },
    onStateChange(listener: (state: TransportState) => void): () => void {
      return core.onStateChange(isolated(listener));
    },
    onNotice(listener: (notice: TransportNotice) => void): () => void {
      if (closed()) return () => {};
      return fallback.onNotice(isolated(listener));
    },
    publishPrekeys(upload: Uint8Array): Promise<void> {
      if (closed()) return Promise.reject(transportClosed());
      return fallback.publishPrekeys(upload);
    },
    fetchBundles(userId: string, options?: FetchBundlesOptions): Promise<DeviceDirectoryEntry> {
      if (closed()) return Promise.reject(transportClosed());
      return fallback.fetchBundles(userId, options);
    },
    // One frame for many mailboxes (group messages): the relay stores it once, all or none,
    // so it always takes the relay path. It says nothing of whom the application talks to
    // (core also sends group control messages this way): no offer, and no `sentTo`.
    async sendShared(recipients: readonly SharedRecipient[], frame: Uint8Array): Promise<void> {
      if (closed()) throw transportClosed();
      try {
        await fallback.sendShared(recipients, frame);
      } catch (e) {
        if (isDeadboltError(e, 'DEVICE_MISMATCH')) for (const u of e.details.users) confirm(u.userId, u.listVersion);
        throw e;
      }
      for (const r of recipients) confirm(r.to.userId, r.listVersion ?? 0);
    },
    publishDeviceList(deviceList: Uint8Array): Promise<void> {
      if (closed()) return Promise.reject(transportClosed());
      return fallback.publishDeviceList(deviceList);
    },
    provisionPut(channel: Uint8Array, sealed: Uint8Array): Promise<void> {
      if (closed()) return Promise.reject(transportClosed());
      return fallback.provisionPut(channel, sealed);
    },
    provisionTake(channel: Uint8Array, waitMs: number): Promise<Uint8Array | undefined> {
      if (closed()) return Promise.reject(transportClosed());
      return fallback.provisionTake(channel, waitMs);
    },

    attachSignalling(channel: SignallingChannel): void {
      if (typeof channel !== 'object' || channel === null || typeof channel.send !== 'function' || typeof channel.onSignal !== 'function') {
        throw invalid('channel', 'a signalling channel { send, onSignal }');
      }
      if (closed()) return;
      offSignal?.();
      signalling = channel;
      // A channel may say more of the sender than its address (SignalSenderInfo): read if given.
      offSignal = channel.onSignal((from: Address, payload: Uint8Array, info?: SignalSenderInfo) => {
        try {
          onSignal(from, payload, info);
        } catch {
          // Never into core's frame handler.
        }
      });
    },

    async preconnect(peer: Address): Promise<boolean> {
      if (typeof peer?.userId !== 'string' || typeof peer.deviceId !== 'string') throw invalid('peer', 'an address { userId, deviceId }');
      const key = keyOf(peer);
      // The application asked for this device: its offers are answered from now on.
      remember(initiated, key, { peer: { userId: peer.userId, deviceId: peer.deviceId } });
      // This device's own demand (the eviction order; review 5, finding 2), link or not.
      peerState(peer).lastDemandAt = now();
      if (!links.has(key)) wantDirect({ userId: peer.userId, deviceId: peer.deviceId }, { force: true });
      // Follow the link to `peer` as it is replaced (when both sides offered at once).
      for (let link = links.get(key); link !== undefined; link = links.get(key)) {
        if (link.state === 'open') return true;
        if (await link.ready) return true;
        if (links.get(key) === link) return false;
      }
      return false;
    },

    closeLinksTo(userId: string, keepDeviceIds: readonly string[]): number {
      if (typeof userId !== 'string') throw invalid('userId', 'a user id');
      if (!Array.isArray(keepDeviceIds) || !keepDeviceIds.every((d) => typeof d === 'string')) throw invalid('keepDeviceIds', 'an array of device ids');
      const keep = new Set(keepDeviceIds);
      const gone = (a: Address): boolean => a.userId === userId && !keep.has(a.deviceId);
      // Nothing more is tried with them: no retry, no pending decision, no memory of an offer.
      for (const [k, st] of peers) {
        if (!gone(st.peer)) continue;
        timers.clearTimeout(st.retry);
        peers.delete(k);
      }
      for (const p of pendingOffers.values()) if (gone(p.peer)) timers.clearTimeout(p.timer);
      for (const map of [pendingOffers, refusedOffers, initiated, refused, answered] as Map<string, { readonly peer: Address }>[]) {
        for (const [k, v] of [...map]) if (gone(v.peer)) map.delete(k);
      }
      let count = 0;
      for (const link of [...links.values()]) {
        if (!gone(link.peer)) continue;
        link.close(DEVICE_REMOVED);
        count++;
      }
      return count;
    },

    path(peer: Address): 'direct' | 'relay' {
      return links.get(keyOf(peer))?.state === 'open' ? 'direct' : 'relay';
    },
    onPathChange(listener: (change: PathChange) => void): () => void {
      const wrapped = isolated(listener);
      if (closed()) return () => {};
      pathListeners.add(wrapped);
      return () => pathListeners.delete(wrapped);
    },

    close(): Promise<void> {
      closing ??= closeNow();
      return closing;
    },
  };
  return transport;
}
