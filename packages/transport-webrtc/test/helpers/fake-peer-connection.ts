/**
 * An in-memory `RTCPeerConnection`, for the cases a real WebRTC stack cannot be steered
 * into: a data channel whose buffer does not drain (`bufferedAmount` held high until the
 * test drains it), and an implementation that does not expose the remote DTLS certificate
 * (pass {@link FakeNetwork.remoteFingerprint} as `remoteFingerprint` for one that does).
 * Two connections find each other through their descriptions (`a=fake-pc:<id>`), which
 * travel through the transport's signalling like real ones; a connection opens once the
 * offerer applied the answer. `getStats()` reports the candidate pair the test says the
 * ICE agent selected ({@link FakeNetwork.selectedPair}), in the standard entries, or none.
 * Test use only: no network, nothing encrypted.
 */
import type { DtlsFingerprint, RemoteFingerprintReader, RTCDataChannelLike, RTCPeerConnectionConstructor, RTCPeerConnectionLike, SessionDescriptionLike } from '../../src/index.js';

type Listener = (ev: unknown) => void;

/** A data channel of a {@link FakePeerConnection}. */
export class FakeDataChannel implements RTCDataChannelLike {
  readyState = 'connecting';
  bufferedAmountLowThreshold = 0;
  binaryType = 'arraybuffer';
  onopen: Listener | null | undefined = null;
  onclose: Listener | null | undefined = null;
  onerror: Listener | null | undefined = null;
  onmessage: Listener | null | undefined = null;
  /** Every message this end wrote, in order (copies). */
  readonly sent: Uint8Array[] = [];
  peer: FakeDataChannel | undefined;
  #buffered = 0;
  #stalled = false;
  readonly #held: Uint8Array[] = [];
  readonly #listeners = new Map<string, Set<Listener>>();

  constructor(
    readonly label: string,
    readonly network: FakeNetwork,
  ) {}

  get bufferedAmount(): number {
    return this.#buffered;
  }

  /** Holds what is written from now on in the buffer (`bufferedAmount` grows) until {@link drain}; `bytes` already buffered, as if earlier writes were stuck. */
  stall(bytes = 0): void {
    this.#stalled = true;
    this.#buffered += bytes;
  }

  /** Empties the buffer: what was held is delivered, then `bufferedamountlow` fires. */
  drain(): void {
    this.#stalled = false;
    this.#buffered = 0;
    for (const bytes of this.#held.splice(0)) this.#deliver(bytes);
    for (const l of [...(this.#listeners.get('bufferedamountlow') ?? [])]) l({ type: 'bufferedamountlow' });
  }

  send(data: unknown): void {
    if (this.readyState !== 'open') throw new Error('InvalidStateError: the channel is not open');
    const view = data as Uint8Array;
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
    this.sent.push(bytes);
    this.network.changed();
    if (this.#stalled) {
      this.#buffered += bytes.byteLength;
      this.#held.push(bytes);
      return;
    }
    this.#deliver(bytes);
  }

  #deliver(bytes: Uint8Array): void {
    const peer = this.peer;
    queueMicrotask(() => {
      if (peer === undefined || peer.readyState !== 'open') return;
      peer.onmessage?.({ data: bytes.slice().buffer });
    });
  }

  close(): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    const peer = this.peer;
    queueMicrotask(() => {
      if (peer === undefined || peer.readyState === 'closed') return;
      peer.readyState = 'closed';
      peer.onclose?.({});
      this.network.changed();
    });
    this.network.changed();
  }

  addEventListener(type: string, listener: Listener): void {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.#listeners.get(type)?.delete(listener);
  }

  /** Opens this end (the connection did). */
  open(): void {
    if (this.readyState !== 'connecting') return;
    this.readyState = 'open';
    this.onopen?.({});
  }
}

/** A peer connection that connects only to other {@link FakePeerConnection}s of its network. */
export class FakePeerConnection implements RTCPeerConnectionLike {
  connectionState = 'new';
  readonly iceGatheringState = 'complete';
  localDescription: SessionDescriptionLike | null = null;
  onconnectionstatechange: Listener | null | undefined = null;
  onicegatheringstatechange: Listener | null | undefined = null;
  ondatachannel: Listener | null | undefined = null;
  /** The fingerprint of this end's (imaginary) certificate. */
  readonly certificate: DtlsFingerprint = { algorithm: 'sha-256', value: globalThis.crypto.getRandomValues(new Uint8Array(32)) };
  channel: FakeDataChannel | undefined;
  remote: FakePeerConnection | undefined;
  closed = false;

  constructor(
    readonly id: number,
    readonly owner: string,
    readonly network: FakeNetwork,
  ) {}

  createDataChannel(label: string): FakeDataChannel {
    this.channel = new FakeDataChannel(label, this.network);
    return this.channel;
  }

  #description(type: 'offer' | 'answer'): SessionDescriptionLike {
    const fp = Array.from(this.certificate.value, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
    const sdp = ['v=0', `o=- ${this.id} 0 IN IP4 0.0.0.0`, 's=-', 't=0 0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', `a=fingerprint:sha-256 ${fp}`, `a=fake-pc:${this.id}`, ''].join('\r\n');
    return { type, sdp };
  }

  async createOffer(): Promise<SessionDescriptionLike> {
    return this.#description('offer');
  }

  async createAnswer(): Promise<SessionDescriptionLike> {
    return this.#description('answer');
  }

  async setLocalDescription(description: SessionDescriptionLike): Promise<void> {
    this.localDescription = description;
  }

  async setRemoteDescription(description: SessionDescriptionLike): Promise<void> {
    const id = Number(/^a=fake-pc:(\d+)$/m.exec(description.sdp ?? '')?.[1]);
    const remote = this.network.pcs.find((p) => p.id === id);
    if (remote === undefined) throw new Error('no such fake peer connection');
    this.remote = remote;
    if (description.type === 'answer') queueMicrotask(() => this.network.connect(this, remote));
  }

  /** W3C stats: a transport naming the selected pair, the pair, and its two candidates (types only) while connected. */
  async getStats(): Promise<Map<string, Record<string, unknown>>> {
    const report = new Map<string, Record<string, unknown>>();
    const pair = this.network.selectedPair(this);
    if (pair === undefined || this.connectionState !== 'connected') return report;
    const add = (entry: Record<string, unknown>): void => void report.set(entry.id as string, entry);
    add({ id: 'T01', type: 'transport', selectedCandidatePairId: 'CP1' });
    add({ id: 'CP1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', state: 'succeeded', nominated: true });
    add({ id: 'L1', type: 'local-candidate', candidateType: pair.local });
    add({ id: 'R1', type: 'remote-candidate', candidateType: pair.remote });
    return report;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connectionState = 'closed';
    this.channel?.close();
    this.network.changed();
  }
}

/** The connections of a test; {@link FakeNetwork.RTCPeerConnection} gives the class to pass as `RTCPeerConnection`. */
export class FakeNetwork {
  readonly pcs: FakePeerConnection[] = [];
  #next = 1;
  readonly #listeners = new Set<() => void>();
  /** A reader that exposes the remote end's certificate (without it, the fake exposes none). */
  readonly remoteFingerprint: RemoteFingerprintReader = (pc) => (pc as FakePeerConnection).remote?.certificate;
  /** The candidate types `getStats()` reports as selected, per connection (default: none, as if not exposed). */
  selectedPair: (pc: FakePeerConnection) => { local: string; remote: string } | undefined = () => undefined;

  /** The class one device passes as `RTCPeerConnection`; its connections are marked with `owner`. */
  RTCPeerConnection(owner: string): RTCPeerConnectionConstructor {
    const network = this;
    return class extends FakePeerConnection {
      constructor() {
        super(network.#next++, owner, network);
        network.pcs.push(this);
        network.changed();
      }
    } as unknown as RTCPeerConnectionConstructor;
  }

  /** The connections `owner` created, oldest first. */
  of(owner: string): FakePeerConnection[] {
    return this.pcs.filter((p) => p.owner === owner);
  }

  /** Calls `listener` whenever anything in the network changes; returns a function that stops it. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  changed(): void {
    for (const l of [...this.#listeners]) l();
  }

  /** The offerer applied the answer: the channel opens at both ends. */
  connect(offerer: FakePeerConnection, answerer: FakePeerConnection): void {
    const a = offerer.channel;
    if (a === undefined || offerer.closed || answerer.closed || answerer.remote !== offerer) return;
    const b = new FakeDataChannel(a.label, this);
    answerer.channel = b;
    a.peer = b;
    b.peer = a;
    for (const pc of [offerer, answerer]) {
      pc.connectionState = 'connected';
      pc.onconnectionstatechange?.({});
    }
    answerer.ondatachannel?.({ channel: b });
    a.open();
    b.open();
    this.changed();
  }
}
