/**
 * The page side of the Chromium privacy test (`chromium-privacy.test.ts`): a real client
 * (`@deadbolt/core`, WebCrypto) on the WebRTC transport with the browser's own
 * RTCPeerConnection, `privacy` and `iceServers` as the test says, over the WebSocket
 * transport. Besides what `page.ts` offers it records what happens at the ICE level, from
 * Chromium itself and not from the transport:
 *
 * - every candidate the ICE agent gathered (`icecandidate` events) and every local
 *   description it produced, before the transport's privacy filter;
 * - every description applied from the peer (what the other page sent);
 * - every pair the ICE agent selected, on every peer connection, from the moment it had an
 *   ICE transport to its close (`RTCIceTransport` `selectedcandidatepairchange`);
 * - on demand, `getStats()` of every peer connection still open: each candidate pair with
 *   its candidate types and the bytes it carried, and which one the transport entry names.
 *
 * Node drives it through `globalThis.deadboltWebRtcPrivacy`; every wait is on an event,
 * with a deadline.
 */
import {
  createWebRtcTransport,
  readSelectedCandidatePair,
  type IceServer,
  type RTCPeerConnectionConstructor,
  type RTCPeerConnectionLike,
  type SelectedCandidatePair,
  type WebRtcPrivacy,
} from '../../src/index.js';
import { createPageDevice, createPageWaits } from './page-device.js';

/** One pair the ICE agent selected (types only, plus the candidates' protocol and address for diagnostics). */
export interface SelectedPairEvent {
  readonly pc: number;
  readonly local: string;
  readonly remote: string;
  readonly detail: string;
}

/** A candidate pair as `getStats()` reports it. */
export interface PairStats {
  readonly pc: number;
  readonly local: string;
  readonly remote: string;
  readonly state: string;
  readonly nominated: boolean;
  /** The transport entry names this pair as its selected one. */
  readonly selected: boolean;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly detail: string;
}

/** What `getStats()` of one open peer connection says. */
export interface PcStats {
  readonly pc: number;
  readonly connectionState: string;
  readonly localCandidates: string[];
  readonly remoteCandidates: string[];
  readonly pairs: PairStats[];
}

interface Recorded {
  /** Every local description the peer connections produced (unfiltered). */
  readonly localDescriptions: string[];
  /** Every description applied from the peer. */
  readonly remoteDescriptions: string[];
  /** Every candidate gathered (`icecandidate`), as its `candidate:` line. */
  readonly gathered: string[];
  readonly selected: SelectedPairEvent[];
  /** What the transport read of the selected pair, each time it checked (`undefined` as `null`). */
  readonly readings: (SelectedCandidatePair | null)[];
  /** How many peer connections were created, and how many reached `connected`. */
  created: number;
  connected: number;
}

const recorded: Recorded = { localDescriptions: [], remoteDescriptions: [], gathered: [], selected: [], readings: [], created: 0, connected: 0 };
const pcs: RecordingPeerConnection[] = [];
const waits = createPageWaits();
const { poke, until } = waits;
const device = createPageDevice(waits);

const describeCandidate = (c: RTCIceCandidate | null | undefined): string => (c ? `${c.type ?? '?'} ${c.protocol ?? '?'} ${c.address ?? '?'}:${c.port ?? '?'}` : 'none');

/** The browser's RTCPeerConnection, noting what its ICE agent gathers, is told and selects. */
class RecordingPeerConnection extends RTCPeerConnection {
  readonly index: number;
  #watching: RTCIceTransport | undefined;

  constructor(config?: RTCConfiguration) {
    super(config);
    this.index = recorded.created++;
    pcs.push(this);
    this.addEventListener('icecandidate', (ev) => {
      if (ev.candidate?.candidate) recorded.gathered.push(ev.candidate.candidate);
      poke();
    });
    // The ICE transport exists once the data channel's section is negotiated: watch it from
    // then on (before any connectivity check can succeed: checks need both descriptions).
    const watch = (): void => this.#watch();
    this.addEventListener('signalingstatechange', watch);
    this.addEventListener('iceconnectionstatechange', watch);
    this.addEventListener('connectionstatechange', () => {
      watch();
      if (this.connectionState === 'connected') recorded.connected++;
      poke();
    });
  }

  #watch(): void {
    const ice = this.sctp?.transport?.iceTransport;
    if (!ice || this.#watching === ice) return;
    this.#watching = ice;
    const note = (): void => {
      const pair = ice.getSelectedCandidatePair?.();
      if (!pair) return;
      recorded.selected.push({ pc: this.index, local: pair.local?.type ?? '?', remote: pair.remote?.type ?? '?', detail: `${describeCandidate(pair.local)} -> ${describeCandidate(pair.remote)}` });
      poke();
    };
    ice.addEventListener('selectedcandidatepairchange', note);
    note(); // in case one was selected already
  }

  /** `close()` fires no `connectionstatechange`: say so to the waits. */
  override close(): void {
    super.close();
    poke();
  }

  override get localDescription(): RTCSessionDescription | null {
    const d = super.localDescription;
    if (d?.sdp && !recorded.localDescriptions.includes(d.sdp)) recorded.localDescriptions.push(d.sdp);
    return d;
  }

  override setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
    if (description.sdp) recorded.remoteDescriptions.push(description.sdp);
    return super.setRemoteDescription(description);
  }

  /** This connection's candidate pairs, from `getStats()`. */
  async stats(): Promise<PcStats> {
    const report = await this.getStats();
    const entries: Record<string, unknown>[] = [];
    report.forEach((e: Record<string, unknown>) => entries.push(e));
    const byId = new Map(entries.map((e) => [e.id as string, e]));
    const selectedIds = new Set(entries.filter((e) => e.type === 'transport' && typeof e.selectedCandidatePairId === 'string').map((e) => e.selectedCandidatePairId as string));
    const type = (id: unknown): string => String(byId.get(id as string)?.candidateType ?? '?');
    const where = (id: unknown): string => {
      const c = byId.get(id as string);
      return c ? `${String(c.candidateType)} ${String(c.protocol)} ${String(c.address)}:${String(c.port)}` : '?';
    };
    return {
      pc: this.index,
      connectionState: this.connectionState,
      localCandidates: entries.filter((e) => e.type === 'local-candidate').map((e) => String(e.candidateType)),
      remoteCandidates: entries.filter((e) => e.type === 'remote-candidate').map((e) => String(e.candidateType)),
      pairs: entries
        .filter((e) => e.type === 'candidate-pair')
        .map((e) => ({
          pc: this.index,
          local: type(e.localCandidateId),
          remote: type(e.remoteCandidateId),
          state: String(e.state),
          nominated: e.nominated === true,
          selected: selectedIds.has(e.id as string),
          bytesSent: Number(e.bytesSent ?? 0),
          bytesReceived: Number(e.bytesReceived ?? 0),
          detail: `${where(e.localCandidateId)} -> ${where(e.remoteCandidateId)}`,
        })),
    };
  }
}

const api = {
  /** Starts this page's device with the given privacy mode and ICE servers. */
  async start(options: {
    userId: string;
    deviceId: string;
    wsUrl: string;
    privacy: WebRtcPrivacy;
    iceServers: IceServer[];
    /** Tell the transport this pair was selected, whatever Chromium says (to exercise the refusal). */
    forgedPair?: SelectedCandidatePair;
  }): Promise<void> {
    await device.start(options, (fallback) =>
      createWebRtcTransport({
        fallback,
        RTCPeerConnection: RecordingPeerConnection as unknown as RTCPeerConnectionConstructor,
        privacy: options.privacy,
        iceServers: options.iceServers,
        backoff: { initialMs: 50, maxMs: 1000 },
        connectTimeoutMs: 8000,
        // The transport's own reader (no hook: Chromium's standard API), its answers noted.
        selectedCandidatePair: async (pc: RTCPeerConnectionLike) => {
          const pair = options.forgedPair ?? (await readSelectedCandidatePair(pc));
          recorded.readings.push(pair ?? null);
          poke();
          return pair;
        },
      }),
    );
  },
  stop: device.stop,
  send: device.send,
  waitReceived: device.waitReceived,
  history: device.history,
  path: device.path,
  async waitPath(userId: string, deviceId: string, path: 'direct' | 'relay'): Promise<void> {
    await device.waitPath(userId, deviceId, path);
  },
  /** A link attempt with that device, to its end: `true` when a link opened. */
  async preconnect(userId: string, deviceId: string): Promise<boolean> {
    const transport = device.transport();
    if (!transport) throw new Error('not started');
    return transport.preconnect({ userId, deviceId } as never);
  },
  /** Waits until the transport read a selected pair at least `n` times. */
  async waitReadings(n: number, ms?: number): Promise<(SelectedCandidatePair | null)[]> {
    await until(() => recorded.readings.length >= n, `${n} readings of the selected pair`, ms);
    return recorded.readings.slice();
  },
  /** Waits until `n` peer connections (over the page's lifetime) reached `connected`. */
  async waitConnected(n: number): Promise<void> {
    await until(() => recorded.connected >= n, `${n} peer connections connected`);
  },
  /** Waits until every peer connection of the page is closed. */
  async waitNoneOpen(): Promise<void> {
    await until(() => pcs.every((pc) => pc.connectionState === 'closed'), 'every peer connection closed');
  },
  /** `getStats()` of every peer connection not closed. */
  async stats(): Promise<PcStats[]> {
    return Promise.all(pcs.filter((pc) => pc.connectionState !== 'closed').map((pc) => pc.stats()));
  },
  paths: (): { path: string; reason?: string }[] => device.paths().map((p) => ({ path: p.path, ...(p.reason !== undefined ? { reason: p.reason } : {}) })),
  recorded: (): Omit<Recorded, 'readings'> & { readings: (SelectedCandidatePair | null)[]; open: number } => ({
    ...recorded,
    localDescriptions: recorded.localDescriptions.slice(),
    remoteDescriptions: recorded.remoteDescriptions.slice(),
    gathered: recorded.gathered.slice(),
    selected: recorded.selected.slice(),
    readings: recorded.readings.slice(),
    open: pcs.filter((pc) => pc.connectionState !== 'closed').length,
  }),
};

export type DeadboltWebRtcPrivacyPage = typeof api;
(globalThis as unknown as { deadboltWebRtcPrivacy: DeadboltWebRtcPrivacyPage }).deadboltWebRtcPrivacy = api;
