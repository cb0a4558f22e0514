/**
 * One direct connection to one peer device: a peer connection with one reliable, ordered
 * data channel, and the delivery protocol over it (direct-codec.ts).
 *
 * ```
 * connecting ──channel open, fingerprint checked──▶ open ──channel or connection closed,
 *     │                                                     no receipt in time, violation──▶ closed
 *     └── timeout, fingerprint mismatch, failure ───────────────────────────────────────────▶ closed
 * ```
 *
 * - **Identity.** The link's peer is the device that sent the signalling (core authenticated
 *   it); nothing on the channel names a sender. The remote description came through that
 *   authenticated signalling, so its DTLS fingerprint is the peer's: the WebRTC stack
 *   refuses a DTLS handshake with any other certificate, and on open this link compares
 *   the certificate the connected DTLS transport presents with the signalled fingerprint
 *   itself wherever the implementation exposes it (SECURITY.md E35); a mismatch closes it.
 *   Where the implementation does not expose it, the link is refused as well unless the
 *   application set `requireFingerprintCheck: false` (hostile review, finding 6): the
 *   check never fails open by default.
 * - **Privacy.** With `privacy: 'relay-only'` the link is used only while the candidate
 *   pair the ICE agent selected is relayed at both ends: read when the channel opens
 *   (before anything is sent or acted on) and every {@link PAIR_RECHECK_MS} after; any
 *   other pair, or one that cannot be read here (unless the application set
 *   `requireRelayedPairCheck: false`), closes it (hostile review 2, finding 2).
 * - **Outbound.** A frame is written as DATA chunks; the peer answers RECEIVED when the
 *   frame is complete, then ACK once its handler resolved (the frame is processed) or NACK
 *   when it was not. `send` resolves `delivered` on ACK and `relay` on NACK, when the
 *   link closes first, or when the processing bound passes: the caller then sends the
 *   frame through the relay (core recognises a frame that arrives both ways).
 * - **Liveness.** While frames wait for RECEIVED, some message from the peer must arrive
 *   within `receiptTimeoutMs`, or the link is presumed dead and closed.
 * - **Idle.** A link that carried nothing either way for `idleTimeoutMs`, with nothing in
 *   flight or waiting, is closed (`idle`), so it holds no slot and no peer connection.
 * - **Bounds** (hostile review, finding 5). Frames in flight (`maxInFlight`); inbound
 *   frames waiting for the handler by count (`maxInbound`) and by bytes, the partial frame
 *   included (`maxInboundBytes`): beyond either they are NACKed, so they come through the
 *   relay; one partial frame at a time, no frame over `maxFrameSize`. Every write, data
 *   and control (RECEIVED, ACK, NACK) alike, waits while the channel's `bufferedAmount`
 *   is above the high-water mark (`maxBufferedBytes`) until `bufferedamountlow` (or a
 *   poll) shows room; controls go first. A buffer that leaves no room for
 *   `receiptTimeoutMs`, or more controls waiting than the inbound bounds can explain,
 *   closes the link: its frames go through the relay.
 * - **Inbound rate** (hostile review 3, finding 3). Direct frames bypass the relay's
 *   per-sender quotas, so each complete frame is admitted by the transport
 *   ({@link LinkHost.admitInbound}): token buckets per device, shared by its successive
 *   links (hostile review 4, finding 5). The excess is NACKed and comes through the relay,
 *   where its quotas apply.
 *
 * @module
 */
import type { Address, InboundFrame } from '@deadbolt/spec';
import type { TransportTimers } from '@deadbolt/spec';
import { decodeDirect, encodeDirect, frameToDirect, type DirectMessage } from './direct-codec.js';
import {
  readRemoteFingerprint,
  readSelectedCandidatePair,
  type RemoteFingerprintReader,
  type RTCDataChannelLike,
  type RTCPeerConnectionLike,
  type SelectedCandidatePairReader,
} from './peer-connection.js';
import { fingerprintMatches, sdpFingerprints, type DtlsFingerprint } from './sdp.js';

/** Timer functions (injectable for tests). */
export type Timers = TransportTimers;

/** The data channel's label. */
export const CHANNEL_LABEL = 'deadbolt/1';

/** What became of a frame given to {@link PeerLink.send}. */
export type DirectOutcome = 'delivered' | 'relay' | 'closed';

/** What became of an inbound frame handed to the transport's handler. */
export type DeliveryOutcome = 'processed' | 'not-processed' | 'closed';

/** How the link checked the peer's DTLS certificate. */
export type FingerprintCheck = 'matched' | 'not-exposed';

/** Close reason of a link that carried nothing for `idleTimeoutMs`. */
export const IDLE = 'idle';
/** Close reason of a link refused because the implementation does not expose the remote certificate. */
export const FINGERPRINT_NOT_EXPOSED = 'the remote certificate is not exposed (requireFingerprintCheck)';
/** Close reason, in the privacy mode, of a link whose selected candidate pair is not relayed at both ends. */
export const PAIR_NOT_RELAYED = "the selected candidate pair is not relayed at both ends (privacy 'relay-only')";
/** Close reason, in the privacy mode, of a link whose selected candidate pair cannot be read here (requireRelayedPairCheck). */
export const PAIR_NOT_EXPOSED = "the selected candidate pair is not exposed (privacy 'relay-only', requireRelayedPairCheck)";
/** How often an open link's selected candidate pair is read again in the privacy mode (the ICE agent may switch pairs). */
export const PAIR_RECHECK_MS = 15_000;

// Close reasons the transport tells apart (webrtc-transport.ts: backoff, eviction, answer
// tokens). Named here, where the link closes with them, so that the transport matches the
// constants rather than copies of their text: rewording one cannot silently change how a
// close is counted.
/** The peer connection's state became `failed`. */
export const CONNECTION_FAILED = 'connection failed';
/** The peer connection's state became `closed`. */
export const CONNECTION_CLOSED = 'connection closed';
/** The link did not open within `connectTimeoutMs`. */
export const CONNECT_TIMEOUT = 'no connection in time';
/** The data channel closed (from this side nothing says why: the peer's lifetime, idle timer, eviction, shutdown or a break). */
export const CHANNEL_CLOSED = 'channel closed';
// Protocol breaks by the peer on the channel (the transport's PEER_BROKE).
export const NOT_BINARY = 'a message that is not binary';
export const TOO_MUCH_BEFORE_OPEN = 'too much before open';
export const UNDECODABLE = 'undecodable message';
export const FRAME_OUT_OF_SEQUENCE = 'frame out of sequence';
export const CHUNK_OUT_OF_SEQUENCE = 'chunk out of sequence';
export const FRAME_OVER_LIMIT = 'frame over the size limit';
export const PEER_NOT_READING = 'the peer does not read what it is sent';

/** Link settings (resolved by the transport). */
export interface LinkSettings {
  readonly connectTimeoutMs: number;
  readonly receiptTimeoutMs: number;
  readonly processTimeoutMs: number;
  readonly maxInFlight: number;
  readonly maxInbound: number;
  readonly maxInboundBytes: number;
  readonly maxBufferedBytes: number;
  readonly idleTimeoutMs: number;
  /**
   * Inbound rate (hostile review 3, finding 3): complete frames per second one device's
   * links take from it, with a burst of `inboundFrameBurst`, and bytes per second (burst: a
   * second's worth, or one frame of `maxFrameSize` if larger). Frames beyond either are
   * NACKed: the sender sends them through the relay, whose per-sender quotas apply. Applied
   * by the transport ({@link LinkHost.admitInbound}), per device (hostile review 4, finding 5).
   */
  readonly inboundFramesPerSecond: number;
  readonly inboundFrameBurst: number;
  readonly inboundBytesPerSecond: number;
  /** Refuse the link when the remote certificate's fingerprint cannot be read here. */
  readonly requireFingerprintCheck: boolean;
  readonly timers: Timers;
  readonly now: () => number;
  readonly remoteFingerprint?: RemoteFingerprintReader | undefined;
  /**
   * Privacy `'relay-only'`: the link is used only while the pair the ICE agent selected
   * is relayed at both ends (read on open, then every {@link PAIR_RECHECK_MS}).
   */
  readonly relayOnly: boolean;
  /** With `relayOnly`: refuse the link when the selected pair cannot be read here. */
  readonly requireRelayedPairCheck: boolean;
  readonly selectedCandidatePair?: SelectedCandidatePairReader | undefined;
}

/** What a link needs from its transport. */
export interface LinkHost {
  /** The largest frame accepted. */
  maxFrameSize(): number;
  /**
   * Whether a complete inbound frame of `size` bytes from `peer` is within that device's
   * inbound rate ({@link LinkSettings.inboundFramesPerSecond}); takes its share if so. Kept
   * by the transport per device, not per link (hostile review 4, finding 5).
   */
  admitInbound(peer: Address, size: number): boolean;
  /**
   * Hands a complete inbound frame to the application's handler (serialised with the
   * relay's); `listVersion` is the version of this user's device list the sender named.
   */
  deliver(frame: InboundFrame, listVersion: number): Promise<DeliveryOutcome>;
  /** The link is open: frames to the peer may go direct. */
  opened(link: PeerLink): void;
  /** The link closed (`wasOpen` if it had opened). */
  closed(link: PeerLink, reason: string, wasOpen: boolean): void;
}

interface Outbound {
  readonly id: number;
  readonly chunks: Uint8Array[];
  next: number;
  phase: 'queued' | 'written' | 'received';
  timer: unknown;
  readonly settle: (outcome: DirectOutcome) => void;
}

/** Bytes of early messages (arriving before this side finished checking) kept at most. */
const MAX_EARLY_BYTES = 4 * 1024 * 1024;
/** How often a write paused by backpressure looks again, in case no bufferedamountlow event comes. */
const BACKPRESSURE_POLL_MS = 50;

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/** What `channel.send` is given: werift wants a Buffer (Node), browsers take a Uint8Array. */
function wire(bytes: Uint8Array): Uint8Array {
  const B = (globalThis as { Buffer?: { from(buffer: ArrayBufferLike, offset: number, length: number): Uint8Array } }).Buffer;
  return B ? B.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** One direct connection to one peer. Created by the transport for each attempt. */
export class PeerLink {
  readonly peer: Address;
  readonly connectionId: Uint8Array;
  /** Hex of the connection id (not secret: it names the attempt). */
  readonly connectionIdHex: string;
  readonly role: 'offerer' | 'answerer';
  readonly pc: RTCPeerConnectionLike;
  /** Set once an answer was applied (offerer only). */
  answered = false;
  /**
   * The `sequence` of the peer's signal that set this link up: its offer (answerer), or
   * its answer to ours (offerer, once answered). An offer from the peer not above it is
   * stale and never replaces this link (signal-codec.ts).
   */
  remoteSequence: number | undefined;
  /**
   * Answerer only: when this device's answer was handed to the relay (set by the
   * transport). Only an attempt whose answer actually left costs its device answer tokens
   * when it never opens (hostile review 5, findings 5 and 6).
   */
  answerSentAt: number | undefined;
  /** When the attempt began (the transport's clock): the last tie-break of the eviction order (hostile review 5, finding 2). */
  readonly createdAt: number;
  /** Resolves `true` when the link opens, `false` when it closes without having opened. */
  readonly ready: Promise<boolean>;
  #ready!: (open: boolean) => void;
  #state: 'connecting' | 'open' | 'closed' = 'connecting';
  #fingerprintCheck: FingerprintCheck | undefined;
  #expected: DtlsFingerprint[] = [];
  #channel: RTCDataChannelLike | undefined;
  readonly #settings: LinkSettings;
  readonly #host: LinkHost;
  #connectTimer: unknown;
  // Outbound.
  #nextFrameId = 1;
  readonly #outbound = new Map<number, Outbound>();
  readonly #writeQueue: Outbound[] = [];
  #pumpWait: unknown;
  /** Set while the pump writes (a write that calls back into it finds its message queued). */
  #pumping = false;
  #awaitingReceipt = 0;
  #watchdog: unknown;
  /** RECEIVED, ACK and NACK messages waiting for room in the channel's buffer (written first). */
  readonly #controls: Uint8Array[] = [];
  /** Armed while a write waits for room: the buffer must make some within `receiptTimeoutMs`. */
  #stall: unknown;
  #idle: unknown;
  /** The next reading of the selected candidate pair (privacy mode, while open). */
  #pairCheck: unknown;
  // Inbound.
  #lastInboundId = 0;
  /** The frame being received; `refused` once it would take the inbound bytes over the bound (its chunks are then dropped, and it is NACKed). */
  #partial: { id: number; count: number; listVersion: number; chunks: Uint8Array[]; size: number; seen: number; refused: boolean } | undefined;
  #inboundWaiting = 0;
  /** Bytes of the frames waiting for the handler. */
  #inboundBytes = 0;
  #early: Uint8Array[] | undefined = [];
  #earlyBytes = 0;
  /** Whether the selected candidate pair could be read when the link opened ({@link pairExposed}). */
  #pairExposed = false;

  constructor(params: { peer: Address; connectionId: Uint8Array; role: 'offerer' | 'answerer'; pc: RTCPeerConnectionLike; settings: LinkSettings; host: LinkHost }) {
    this.peer = params.peer;
    this.connectionId = params.connectionId.slice();
    this.connectionIdHex = hex(this.connectionId);
    this.role = params.role;
    this.pc = params.pc;
    this.#settings = params.settings;
    this.#host = params.host;
    this.ready = new Promise<boolean>((resolve) => (this.#ready = resolve));
    this.createdAt = this.#settings.now();
    const pc = this.pc;
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') this.close(pc.connectionState === 'failed' ? CONNECTION_FAILED : CONNECTION_CLOSED);
    };
    if (this.role === 'offerer') {
      this.#attach(pc.createDataChannel(CHANNEL_LABEL, { ordered: true }));
    } else {
      pc.ondatachannel = (ev: { channel?: RTCDataChannelLike }) => {
        const channel = ev?.channel;
        if (!channel) return;
        if (this.#channel !== undefined || channel.label !== CHANNEL_LABEL || this.#state === 'closed') {
          // One channel per link, with our label: anything else the peer opens is refused.
          try {
            channel.close();
          } catch {
            // Closing already.
          }
          return;
        }
        this.#attach(channel);
      };
    }
    this.#connectTimer = this.#settings.timers.setTimeout(() => this.close(CONNECT_TIMEOUT), this.#settings.connectTimeoutMs);
  }

  get state(): 'connecting' | 'open' | 'closed' {
    return this.#state;
  }

  /** How the peer's DTLS certificate was checked (once open). */
  get fingerprintCheck(): FingerprintCheck | undefined {
    return this.#fingerprintCheck;
  }

  /**
   * Whether the selected candidate pair could be read (privacy mode) when this link
   * opened. With the fingerprint `matched`, it shows that this device's implementation
   * exposes both, so later "not exposed" refusals are not its fault (hostile review 5,
   * finding 4).
   */
  get pairExposed(): boolean {
    return this.#pairExposed;
  }

  /** Frames sent and not yet settled. */
  get inFlight(): number {
    return this.#outbound.size;
  }

  /**
   * Applies the peer's description, received through the authenticated signalling: its
   * DTLS fingerprints are the ones the connection must present.
   */
  async setRemoteDescription(type: 'offer' | 'answer', sdp: string): Promise<void> {
    this.#expected = sdpFingerprints(sdp);
    await this.pc.setRemoteDescription({ type, sdp });
  }

  /**
   * Sends a frame directly. Resolves `delivered` once the peer's handler processed it,
   * `relay` when it must go through the relay instead, `closed` when the transport closed.
   */
  send(frame: Uint8Array, listVersion: number): Promise<DirectOutcome> {
    if (this.#state !== 'open' || this.#outbound.size >= this.#settings.maxInFlight) return Promise.resolve('relay');
    const id = this.#nextFrameId++;
    return new Promise<DirectOutcome>((resolve) => {
      const entry: Outbound = {
        id,
        chunks: frameToDirect(id, listVersion, frame),
        next: 0,
        phase: 'queued',
        timer: undefined,
        settle: (outcome) => {
          if (this.#outbound.get(id) !== entry) return;
          this.#outbound.delete(id);
          this.#settings.timers.clearTimeout(entry.timer);
          if (entry.phase === 'written') this.#receiptDone();
          resolve(outcome);
        },
      };
      this.#outbound.set(id, entry);
      this.#writeQueue.push(entry);
      this.#pump();
    });
  }

  /**
   * Closes the link. Frames in flight settle with `outcome` (`relay`: the caller sends them
   * through the relay; `closed`: the transport is closing).
   */
  close(reason: string, outcome: DirectOutcome = 'relay'): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    const t = this.#settings.timers;
    t.clearTimeout(this.#connectTimer);
    t.clearTimeout(this.#watchdog);
    t.clearTimeout(this.#pumpWait);
    t.clearTimeout(this.#stall);
    t.clearTimeout(this.#idle);
    t.clearTimeout(this.#pairCheck);
    this.#pairCheck = undefined;
    this.#pumpWait = undefined;
    this.#stall = undefined;
    this.#idle = undefined;
    this.#early = undefined;
    this.#partial = undefined;
    this.#writeQueue.length = 0;
    this.#controls.length = 0;
    for (const entry of [...this.#outbound.values()]) entry.settle(outcome);
    const channel = this.#channel;
    if (channel) {
      channel.onopen = null;
      channel.onmessage = null;
      channel.onclose = null;
      channel.onerror = () => {};
      try {
        channel.close();
      } catch {
        // Closing already.
      }
    }
    this.pc.onconnectionstatechange = null;
    this.pc.ondatachannel = null;
    this.pc.onicegatheringstatechange = null;
    try {
      this.pc.close();
    } catch {
      // Closed already.
    }
    this.#ready(false);
    this.#host.closed(this, reason, wasOpen);
  }

  // --- the channel -------------------------------------------------------------------------

  #attach(channel: RTCDataChannelLike): void {
    this.#channel = channel;
    try {
      channel.binaryType = 'arraybuffer';
    } catch {
      // Not settable here (werift delivers Buffers anyway).
    }
    channel.bufferedAmountLowThreshold = Math.floor(this.#settings.maxBufferedBytes / 2);
    channel.onopen = () => void this.#opened();
    channel.onclose = () => this.close(CHANNEL_CLOSED);
    channel.onerror = () => {
      // The close event follows, or the watchdog notices.
    };
    channel.onmessage = (ev: { data?: unknown }) => this.#message(ev?.data);
    channel.addEventListener?.('bufferedamountlow', () => this.#resume());
    if (channel.readyState === 'open') void this.#opened();
  }

  /** The channel is open: check the certificate the DTLS transport presents, then go. */
  async #opened(): Promise<void> {
    if (this.#state !== 'connecting' || this.#fingerprintCheck !== undefined) return;
    const expected = this.#expected;
    if (expected.length === 0) return this.close('no signalled fingerprint');
    let seen: DtlsFingerprint | undefined;
    try {
      seen = await readRemoteFingerprint(this.pc, (expected[0] as DtlsFingerprint).algorithm, this.#settings.remoteFingerprint);
    } catch {
      seen = undefined;
    }
    if (this.#state !== 'connecting') return;
    if (seen !== undefined && !fingerprintMatches(expected, seen)) return this.close('DTLS certificate does not match the signalled fingerprint');
    // Fail closed (finding 6): an implementation that cannot show the certificate it
    // connected to gets no link unless the application chose to rely on the stack alone.
    if (seen === undefined && this.#settings.requireFingerprintCheck) return this.close(FINGERPRINT_NOT_EXPOSED);
    // Privacy (hostile review 2, finding 2): the descriptions carried relayed candidates
    // only, but the ICE agent is what picks the path, and one was seen to pick a reflexive
    // pair despite `iceTransportPolicy: 'relay'`. Nothing is sent or acted on before the
    // pair it selected is known to be relayed at both ends.
    const pairProblem = await this.#pairProblem();
    if (this.#state !== 'connecting') return;
    if (pairProblem !== undefined) return this.close(pairProblem);
    this.#fingerprintCheck = seen !== undefined ? 'matched' : 'not-exposed';
    this.#state = 'open';
    this.#settings.timers.clearTimeout(this.#connectTimer);
    this.#active();
    const early = this.#early ?? [];
    this.#early = undefined;
    this.#ready(true);
    this.#schedulePairCheck();
    this.#host.opened(this);
    for (const bytes of early) {
      if (this.#state !== 'open') return;
      this.#handle(bytes);
    }
    this.#pump();
  }

  /**
   * In the privacy mode, why this link must not be used: its selected pair is not relayed
   * at both ends, or (unless the application opted out) it cannot be read. Otherwise, and
   * always with privacy off, `undefined`. The reason names candidate types, never addresses.
   */
  async #pairProblem(): Promise<string | undefined> {
    if (!this.#settings.relayOnly) return undefined;
    // readSelectedCandidatePair catches every failure itself (undefined: not exposed).
    const pair = await readSelectedCandidatePair(this.pc, this.#settings.selectedCandidatePair);
    if (pair === undefined) return this.#settings.requireRelayedPairCheck ? PAIR_NOT_EXPOSED : undefined;
    if (this.#state === 'connecting') this.#pairExposed = true;
    return pair.local === 'relay' && pair.remote === 'relay' ? undefined : PAIR_NOT_RELAYED;
  }

  /** While open in the privacy mode: read the selected pair again later (an ICE agent may switch to another pair). */
  #schedulePairCheck(): void {
    if (!this.#settings.relayOnly || this.#state !== 'open') return;
    this.#pairCheck = this.#settings.timers.setTimeout(() => {
      this.#pairCheck = undefined;
      void this.#pairProblem().then((problem) => {
        if (this.#state !== 'open') return;
        if (problem !== undefined) return this.close(problem);
        this.#schedulePairCheck();
      });
    }, PAIR_RECHECK_MS);
  }

  #message(data: unknown): void {
    if (this.#state === 'closed') return;
    const bytes = toBytes(data);
    if (bytes === undefined) return this.close(NOT_BINARY);
    if (this.#early !== undefined) {
      // Before this side has checked the certificate, nothing is acted on; kept, bounded.
      this.#earlyBytes += bytes.byteLength;
      if (this.#earlyBytes > MAX_EARLY_BYTES) return this.close(TOO_MUCH_BEFORE_OPEN);
      this.#early.push(bytes.slice());
      return;
    }
    this.#handle(bytes);
  }

  #handle(bytes: Uint8Array): void {
    let m: DirectMessage;
    try {
      m = decodeDirect(bytes);
    } catch {
      return this.close(UNDECODABLE);
    }
    this.#progress();
    this.#active();
    if (m.type === 'data') return this.#data(m);
    const entry = this.#outbound.get(m.frameId);
    if (entry === undefined) return; // settled already (timed out, or a late answer)
    if (m.type === 'received') {
      if (entry.phase !== 'written') return;
      entry.phase = 'received';
      this.#receiptDone();
      // Processing may take a while (storage); it is bounded all the same.
      entry.timer = this.#settings.timers.setTimeout(() => entry.settle('relay'), this.#settings.processTimeoutMs);
      return;
    }
    entry.settle(m.type === 'ack' ? 'delivered' : 'relay');
  }

  #data(m: Extract<DirectMessage, { type: 'data' }>): void {
    let p = this.#partial;
    if (p === undefined) {
      if (m.index !== 0 || m.frameId !== this.#lastInboundId + 1) return this.close(FRAME_OUT_OF_SEQUENCE);
      p = { id: m.frameId, count: m.count, listVersion: m.listVersion, chunks: [], size: 0, seen: 0, refused: false };
      this.#partial = p;
    } else if (m.frameId !== p.id || m.count !== p.count || m.listVersion !== p.listVersion || m.index !== p.seen) {
      return this.close(CHUNK_OUT_OF_SEQUENCE);
    }
    p.size += m.chunk.byteLength;
    p.seen++;
    if (p.size > this.#host.maxFrameSize()) return this.close(FRAME_OVER_LIMIT);
    // Bytes, not only frames (finding 5): a frame that would take what waits for the
    // handler over `maxInboundBytes` is not kept; it is NACKed once complete.
    if (!p.refused && this.#inboundBytes + p.size > this.#settings.maxInboundBytes) {
      p.refused = true;
      p.chunks.length = 0;
    }
    if (!p.refused) p.chunks.push(m.chunk);
    if (p.seen < p.count) return;
    this.#partial = undefined;
    this.#lastInboundId = p.id;
    if (p.refused) return this.#control('nack', p.id);
    // The relay's per-sender quotas do not see this path (hostile review 3, finding 3):
    // beyond this link's rate the frame is NACKed, and its sender sends it through the
    // relay, where they apply. Checked once the frame is complete (its size known).
    if (!this.#host.admitInbound(this.peer, p.size)) return this.#control('nack', p.id);
    const bytes = new Uint8Array(p.size);
    let at = 0;
    for (const c of p.chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    this.#inbound(p.id, p.listVersion, bytes);
  }

  #inbound(frameId: number, listVersion: number, bytes: Uint8Array): void {
    if (this.#inboundWaiting >= this.#settings.maxInbound) {
      this.#control('nack', frameId);
      return;
    }
    this.#control('received', frameId);
    this.#inboundWaiting++;
    this.#inboundBytes += bytes.byteLength;
    const frame: InboundFrame = { id: `rtc:${this.connectionIdHex.slice(0, 16)}:${frameId}`, from: this.peer, receivedAt: this.#settings.now(), bytes };
    const done = (): void => {
      this.#inboundWaiting--;
      this.#inboundBytes -= bytes.byteLength;
    };
    this.#host.deliver(frame, listVersion).then(
      (outcome) => {
        done();
        if (outcome !== 'closed') this.#control(outcome === 'processed' ? 'ack' : 'nack', frameId);
      },
      () => {
        done();
        this.#control('nack', frameId);
      },
    );
  }

  /**
   * Queues a RECEIVED, ACK or NACK: written before any data, but like data only while the
   * channel's buffer is below the high-water mark (finding 5). Each inbound frame causes
   * at most two, and at most `maxInbound` wait for the handler: far more waiting means the
   * peer keeps writing but does not read, and the link is closed.
   */
  #control(type: 'received' | 'ack' | 'nack', frameId: number): void {
    if (this.#state !== 'open' || this.#channel === undefined) return;
    this.#controls.push(encodeDirect({ type, frameId }));
    if (this.#controls.length > 2 * this.#settings.maxInbound + 64) return this.close(PEER_NOT_READING);
    this.#pump();
  }

  // --- writing -----------------------------------------------------------------------------

  /**
   * Writes what waits, controls first, then queued chunks in order, while the channel's
   * buffer has room: `bufferedAmount` plus the message stays within `maxBufferedBytes`
   * (an empty buffer always takes one message).
   */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      this.#write();
    } finally {
      this.#pumping = false;
    }
  }

  #write(): void {
    const channel = this.#channel;
    if (this.#state !== 'open' || channel === undefined || this.#pumpWait !== undefined) return;
    for (;;) {
      if (this.#state !== 'open') return;
      let entry: Outbound | undefined;
      let bytes: Uint8Array;
      if (this.#controls.length > 0) {
        bytes = this.#controls[0] as Uint8Array;
      } else {
        entry = this.#writeQueue[0];
        if (entry === undefined) break;
        if (this.#outbound.get(entry.id) !== entry) {
          this.#writeQueue.shift(); // settled while queued
          continue;
        }
        bytes = entry.chunks[entry.next] as Uint8Array;
      }
      const buffered = channel.bufferedAmount;
      if (buffered > 0 && buffered + bytes.byteLength > this.#settings.maxBufferedBytes) return this.#waitForRoom();
      try {
        channel.send(wire(bytes));
      } catch {
        return this.close('send failed');
      }
      this.#wrote();
      if (entry === undefined) {
        this.#controls.shift();
        continue;
      }
      entry.next++;
      if (entry.next < entry.chunks.length) continue;
      this.#writeQueue.shift();
      entry.phase = 'written';
      entry.chunks.length = 0;
      this.#awaitingReceipt++;
      if (this.#watchdog === undefined) this.#armWatchdog();
    }
  }

  /** No room in the channel's buffer: look again on `bufferedamountlow` or after a short poll; give up if none comes in time. */
  #waitForRoom(): void {
    const t = this.#settings.timers;
    this.#pumpWait = t.setTimeout(() => this.#resume(), BACKPRESSURE_POLL_MS);
    this.#stall ??= t.setTimeout(() => {
      this.#stall = undefined;
      if (this.#pumpWait !== undefined) this.close('the channel buffer did not drain in time');
    }, this.#settings.receiptTimeoutMs);
  }

  /** A write went out: the buffer had room, the link is in use. */
  #wrote(): void {
    if (this.#stall !== undefined) {
      this.#settings.timers.clearTimeout(this.#stall);
      this.#stall = undefined;
    }
    this.#active();
  }

  #resume(): void {
    this.#settings.timers.clearTimeout(this.#pumpWait);
    this.#pumpWait = undefined;
    this.#pump();
  }

  /** Something went either way: the idle clock starts again (not the eviction order, which nothing the peer sends moves: webrtc-transport.ts, evictPeerInitiated). */
  #active(): void {
    if (this.#state !== 'open') return;
    const t = this.#settings.timers;
    t.clearTimeout(this.#idle);
    this.#idle = t.setTimeout(() => {
      this.#idle = undefined;
      // Busy is not idle: frames in flight or waiting for a handler, or writes waiting.
      if (this.#outbound.size > 0 || this.#inboundWaiting > 0 || this.#partial !== undefined || this.#controls.length > 0) return this.#active();
      this.close(IDLE);
    }, this.#settings.idleTimeoutMs);
  }

  #receiptDone(): void {
    this.#awaitingReceipt--;
    if (this.#awaitingReceipt <= 0) {
      this.#awaitingReceipt = 0;
      this.#settings.timers.clearTimeout(this.#watchdog);
      this.#watchdog = undefined;
    }
  }

  #armWatchdog(): void {
    this.#settings.timers.clearTimeout(this.#watchdog);
    this.#watchdog = this.#settings.timers.setTimeout(() => {
      this.#watchdog = undefined;
      if (this.#awaitingReceipt > 0) this.close('no receipt in time');
    }, this.#settings.receiptTimeoutMs);
  }

  /** Something arrived from the peer: the link is alive, the receipt clock starts again. */
  #progress(): void {
    if (this.#awaitingReceipt > 0) this.#armWatchdog();
  }
}
