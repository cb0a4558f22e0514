/**
 * The slice of the W3C `RTCPeerConnection` API this transport uses, so that any
 * implementation can be injected: the browser's own, node-datachannel's polyfill
 * (libdatachannel) or werift (pure TypeScript) in Node, or a test double.
 *
 * Reading the remote DTLS certificate's fingerprint is not uniformly exposed, so
 * {@link readRemoteFingerprint} tries, in order: an implementation's own hook (see
 * {@link nodeDatachannelImplementation}), the standard
 * `RTCDtlsTransport.getRemoteCertificates()`, werift's DTLS socket, and the `certificate`
 * entries of `getStats()`.
 *
 * @module
 */
import { certificateFingerprint, parseFingerprintValue, type DtlsFingerprint } from './sdp.js';

// Implementations type their events differently (DOM events, werift's, node-datachannel's):
// `any` here is what lets each be passed without a cast. The transport reads only
// `channel` (datachannel events) and `data` (message events).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyEvent = any;

/** A data channel, as the transport uses it. */
export interface RTCDataChannelLike {
  readonly label: string;
  readonly readyState: string;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  binaryType?: string;
  onopen: ((ev: AnyEvent) => void) | null | undefined;
  onclose: ((ev: AnyEvent) => void) | null | undefined;
  onerror: ((ev: AnyEvent) => void) | null | undefined;
  onmessage: ((ev: AnyEvent) => void) | null | undefined;
  send(data: AnyEvent): void;
  close(): void;
  addEventListener?(type: string, listener: (ev: AnyEvent) => void): void;
  removeEventListener?(type: string, listener: (ev: AnyEvent) => void): void;
}

/** A session description as exchanged. */
export interface SessionDescriptionLike {
  readonly type: string;
  readonly sdp?: string | undefined;
}

/** An ICE server (W3C `RTCIceServer`). */
export interface IceServer {
  /** `stun:host:port`, `turn:host:port?transport=udp|tcp`, `turns:host:port`. */
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** The configuration the transport passes to the constructor (a subset of `RTCConfiguration`). */
export interface PeerConnectionConfig {
  readonly iceServers: IceServer[];
  /** `relay` in the privacy mode: only TURN-relayed candidates are gathered and used. */
  readonly iceTransportPolicy: 'all' | 'relay';
}

/** A peer connection, as the transport uses it. */
export interface RTCPeerConnectionLike {
  readonly connectionState: string;
  readonly iceGatheringState: string;
  readonly localDescription: SessionDescriptionLike | null;
  onconnectionstatechange: ((ev: AnyEvent) => void) | null | undefined;
  onicegatheringstatechange: ((ev: AnyEvent) => void) | null | undefined;
  ondatachannel: ((ev: AnyEvent) => void) | null | undefined;
  createDataChannel(label: string, init?: { ordered?: boolean }): RTCDataChannelLike;
  createOffer(): Promise<SessionDescriptionLike>;
  createAnswer(): Promise<SessionDescriptionLike>;
  setLocalDescription(description?: AnyEvent): Promise<void>;
  setRemoteDescription(description: AnyEvent): Promise<void>;
  /**
   * W3C `getStats()`: where the implementation has it, read for the remote certificate
   * (`transport` and `certificate` entries) and the selected candidate pair (`transport`,
   * `candidate-pair`, `local-candidate` and `remote-candidate` entries).
   */
  getStats?(): Promise<AnyEvent>;
  close(): void;
}

/** An `RTCPeerConnection` class. */
export type RTCPeerConnectionConstructor = new (config: PeerConnectionConfig) => RTCPeerConnectionLike;

/**
 * Reads the fingerprint of the certificate the remote end presented on the connected DTLS
 * transport, for implementations whose standard API does not expose it. Returns
 * `undefined` when it cannot tell.
 */
export type RemoteFingerprintReader = (pc: RTCPeerConnectionLike, algorithm: string) => Promise<DtlsFingerprint | undefined> | DtlsFingerprint | undefined;

/**
 * The types of the two candidates of the pair the ICE agent selected: `'host'`, `'srflx'`,
 * `'prflx'` or `'relay'` (RFC 8445 §5.1.1.1; anything else an implementation reports is
 * kept as it is, and is not `'relay'`). Types only: never an address or a port.
 */
export interface SelectedCandidatePair {
  readonly local: string;
  readonly remote: string;
}

/**
 * Reads the candidate types of the pair `pc`'s ICE agent selected, for implementations
 * whose standard API does not expose it. Returns `undefined` when it cannot tell.
 */
export type SelectedCandidatePairReader = (pc: RTCPeerConnectionLike) => Promise<SelectedCandidatePair | undefined> | SelectedCandidatePair | undefined;

/** An `RTCPeerConnection` implementation, and how to read its remote fingerprint and selected candidate pair if it is special. */
export interface PeerConnectionImplementation {
  readonly RTCPeerConnection: RTCPeerConnectionConstructor;
  readonly remoteFingerprint?: RemoteFingerprintReader;
  readonly selectedCandidatePair?: SelectedCandidatePairReader;
}

function toBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

/**
 * The fingerprint, under `algorithm`, of the certificate the remote end of `pc`'s
 * connected DTLS transport presented, or `undefined` when the implementation does not
 * expose it.
 *
 * @example
 * ```ts
 * const seen = await readRemoteFingerprint(pc, 'sha-256');
 * if (seen && !fingerprintMatches(sdpFingerprints(remoteSdp), seen)) pc.close();
 * ```
 */
export async function readRemoteFingerprint(pc: RTCPeerConnectionLike, algorithm: string, hook?: RemoteFingerprintReader): Promise<DtlsFingerprint | undefined> {
  if (hook) {
    const own = await hook(pc, algorithm);
    if (own) return own;
  }
  const anyPc = pc as AnyEvent;
  // W3C: RTCSctpTransport.transport is the RTCDtlsTransport; getRemoteCertificates() gives DER.
  try {
    const certs: unknown = anyPc.sctp?.transport?.getRemoteCertificates?.();
    if (Array.isArray(certs)) {
      const der = toBytes(certs[0]);
      // node-datachannel's polyfill answers one empty buffer: not an answer.
      if (der && der.byteLength > 0) return await certificateFingerprint(der, algorithm);
    }
  } catch {
    // Not exposed here: try the next way.
  }
  // werift: the DTLS socket keeps the peer's DER certificate.
  try {
    const der = toBytes(anyPc.sctpTransport?.dtlsTransport?.dtls?.remoteCertificate);
    if (der && der.byteLength > 0) return await certificateFingerprint(der, algorithm);
  } catch {
    // Not exposed here: try the next way.
  }
  // W3C stats: the transport's remoteCertificateId names a `certificate` entry with its fingerprint.
  try {
    if (typeof pc.getStats === 'function') {
      const report = (await pc.getStats()) as { forEach(cb: (v: AnyEvent) => void): void; get?(id: string): AnyEvent };
      const entries: AnyEvent[] = [];
      report.forEach((v) => entries.push(v));
      const transport = entries.find((e) => e?.type === 'transport' && typeof e.remoteCertificateId === 'string');
      const cert = transport ? entries.find((e) => e?.type === 'certificate' && e.id === transport.remoteCertificateId) : undefined;
      if (cert && typeof cert.fingerprint === 'string' && typeof cert.fingerprintAlgorithm === 'string') {
        const value = parseFingerprintValue(cert.fingerprint);
        if (value) return { algorithm: String(cert.fingerprintAlgorithm).toLowerCase(), value };
      }
    }
  } catch {
    // Not exposed here.
  }
  return undefined;
}

/** A pair of candidate types, if both are strings (what a reader returns, checked). */
function pairOf(local: unknown, remote: unknown): SelectedCandidatePair | undefined {
  return typeof local === 'string' && local !== '' && typeof remote === 'string' && remote !== '' ? { local: local.toLowerCase(), remote: remote.toLowerCase() } : undefined;
}

/** How much a pair reveals: 0 when both candidates are relayed, 1 otherwise (for keeping the worst of several). */
const exposure = (p: SelectedCandidatePair): number => (p.local === 'relay' && p.remote === 'relay' ? 0 : 1);

/**
 * The candidate types of the pair `pc`'s ICE agent selected, or `undefined` when the
 * implementation does not expose it (or has selected none). Where the stats name several
 * pairs in use (no transport entry says which is selected), the one that reveals most is
 * returned: a caller checking for relayed candidates fails closed.
 *
 * @example
 * ```ts
 * const pair = await readSelectedCandidatePair(pc);
 * if (pair?.local !== 'relay' || pair.remote !== 'relay') pc.close(); // privacy relay-only
 * ```
 */
export async function readSelectedCandidatePair(pc: RTCPeerConnectionLike, hook?: SelectedCandidatePairReader): Promise<SelectedCandidatePair | undefined> {
  if (hook) {
    try {
      const own = await hook(pc);
      const checked = own ? pairOf(own.local, own.remote) : undefined;
      if (checked) return checked;
    } catch {
      // Not exposed here: try the next way.
    }
  }
  const anyPc = pc as AnyEvent;
  // W3C: RTCSctpTransport.transport.iceTransport.getSelectedCandidatePair() → { local, remote } RTCIceCandidates.
  try {
    const pair = anyPc.sctp?.transport?.iceTransport?.getSelectedCandidatePair?.();
    const checked = pair ? pairOf(pair.local?.type, pair.remote?.type) : undefined;
    if (checked) return checked;
  } catch {
    // Not exposed here: try the next way.
  }
  // W3C stats: the transport entry's selectedCandidatePairId, else the pairs marked in use.
  try {
    if (typeof pc.getStats !== 'function') return undefined;
    const report = (await pc.getStats()) as { forEach(cb: (v: AnyEvent) => void): void };
    const entries: AnyEvent[] = [];
    report.forEach((v) => entries.push(v));
    const byId = new Map<string, AnyEvent>();
    for (const e of entries) if (typeof e?.id === 'string') byId.set(e.id, e);
    const selectedIds = entries.filter((e) => e?.type === 'transport' && typeof e.selectedCandidatePairId === 'string').map((e) => e.selectedCandidatePairId as string);
    const inUse =
      selectedIds.length > 0
        ? selectedIds.map((id) => byId.get(id))
        : entries.filter((e) => e?.type === 'candidate-pair' && (e.selected === true || (e.nominated === true && e.state === 'succeeded')));
    let worst: SelectedCandidatePair | undefined;
    for (const p of inUse) {
      if (p?.type !== 'candidate-pair') return undefined; // a transport names a pair the report lacks: cannot tell
      const checked = pairOf(byId.get(p.localCandidateId)?.candidateType, byId.get(p.remoteCandidateId)?.candidateType);
      if (checked === undefined) return undefined;
      if (worst === undefined || exposure(checked) > exposure(worst)) worst = checked;
    }
    return worst;
  } catch {
    return undefined; // Not exposed here.
  }
}

/**
 * `RTCPeerConnection` classes known to send ICE connectivity checks from their host
 * sockets even with `iceTransportPolicy: 'relay'` (hostile review 3, finding 1). A
 * reviewer's probe, repeated by test/privacy-wire.test.ts: libdatachannel (node-datachannel),
 * given a TURN server and the relay policy, sends its checks to a peer's candidate both
 * through TURN and straight from its own UDP socket, so a malicious peer who labels her
 * own socket `typ relay` in her answer learns the device's address. The selected-pair
 * check after open (peer-link.ts) comes too late for that: the checks already left. Such
 * classes are refused in the privacy mode at construction ({@link sendsFromHostDespiteRelayPolicy}).
 * A WeakSet of constructors: marking one keeps nothing alive.
 */
const HOST_LEAKING = new WeakSet<object>();

/**
 * Members of node-datachannel's polyfill `RTCPeerConnection` that no standard
 * implementation has (node-datachannel 0.33: `dist/esm/polyfill/RTCPeerConnection.mjs`
 * and its CommonJS twin `dist/cjs/polyfill/RTCPeerConnection.cjs` both define them on the
 * prototype). Hostile review 4, finding 1: a class known only by the mark
 * {@link nodeDatachannelImplementation} sets let the polyfill's own class in unmarked
 * (imported directly, set as the global, the CommonJS copy, which is another class), so
 * the class and its instances are recognised by shape as well. Any one of them is enough:
 * failing closed, a class that merely borrows a name is refused the privacy mode too.
 */
const NODE_DATACHANNEL_MEMBERS: readonly string[] = ['ext_localCandidates', 'ext_remoteCandidates', 'ext_maxDataChannelId', 'ext_maxMessageSize', '_checkConfiguration'];

/** Whether the prototype chain starting at `proto` (not including `Object.prototype`'s own) defines a node-datachannel member. Own descriptors only: no getter runs. */
function hasNodeDatachannelShape(proto: unknown): boolean {
  let depth = 0;
  for (let p = proto; (typeof p === 'object' || typeof p === 'function') && p !== null && p !== Object.prototype && p !== Function.prototype; p = Object.getPrototypeOf(p)) {
    // A chain this long is not a class hierarchy anybody writes: refuse rather than walk on.
    if (++depth > 64) return true;
    if (HOST_LEAKING.has(p as object)) return true;
    for (const name of NODE_DATACHANNEL_MEMBERS) if (Object.getOwnPropertyDescriptor(p, name) !== undefined) return true;
  }
  return false;
}

/**
 * Whether `Ctor`, or any class it extends, is known to send from host addresses whatever
 * `iceTransportPolicy` says: today node-datachannel's polyfill class, recognised by the
 * mark {@link nodeDatachannelImplementation} sets or by its non-standard members
 * (`ext_localCandidates`, `_checkConfiguration`...) anywhere on the prototype chain, so
 * the ESM and the CommonJS copies, unmarked, and any subclass (a wrapper that records or
 * instruments) are refused as well: failing closed. Never throws; a class whose prototype
 * cannot be read counts as refused.
 *
 * A factory function that returns such an instance is not a class with that prototype:
 * it cannot be told from here. {@link looksLikeNodeDatachannel} tells from the instance,
 * and the transport checks every instance it creates in the privacy mode, before anything
 * is gathered or sent (hostile review 4, finding 1).
 *
 * @example
 * ```ts
 * sendsFromHostDespiteRelayPolicy((await import('node-datachannel/polyfill')).RTCPeerConnection); // true
 * sendsFromHostDespiteRelayPolicy((await import('werift')).RTCPeerConnection); // false
 * ```
 */
export function sendsFromHostDespiteRelayPolicy(Ctor: unknown): boolean {
  try {
    for (let p: unknown = Ctor; typeof p === 'function' && p !== Function.prototype; p = Object.getPrototypeOf(p)) {
      if (HOST_LEAKING.has(p)) return true;
      if (hasNodeDatachannelShape((p as { prototype?: unknown }).prototype)) return true;
    }
    return false;
  } catch {
    return true; // a prototype that cannot be read (a hostile proxy): fail closed
  }
}

/**
 * Whether the peer connection `pc` is node-datachannel's (an instance of a marked class,
 * or with its non-standard members on its prototype chain or itself). The transport asks
 * right after constructing each connection in the privacy mode, before `createOffer`,
 * `setLocalDescription` or `setRemoteDescription` (nothing is gathered nor sent before
 * those), and closes one that is at once: this covers a factory function passed as
 * `RTCPeerConnection`, which {@link sendsFromHostDespiteRelayPolicy} cannot see through.
 * Never throws; an object that cannot be inspected counts as node-datachannel.
 *
 * @example
 * ```ts
 * const pc = new Ctor(config);
 * if (relayOnly && looksLikeNodeDatachannel(pc)) pc.close(); // and no link
 * ```
 */
export function looksLikeNodeDatachannel(pc: unknown): boolean {
  try {
    if (typeof pc !== 'object' || pc === null) return false;
    return hasNodeDatachannelShape(pc);
  } catch {
    return true;
  }
}

/**
 * Classes marked as werift's by this package ({@link weriftImplementation}, and the
 * configuration entry point when it loads werift): one of the three ways into the privacy
 * mode (hostile review 5, finding 1). A WeakSet: marking keeps nothing alive.
 */
const RELAY_POLICY_HONOURED = new WeakSet<object>();

/** The parts of the `werift` module {@link weriftImplementation} uses. */
export interface WeriftModule {
  // Loose on purpose, as NodeDatachannelModule: werift's own types fit without a cast.
  readonly RTCPeerConnection: abstract new (...args: never) => unknown;
}

/**
 * werift's implementation, its class marked as one that honours `iceTransportPolicy:
 * 'relay'` (it gathers and checks from TURN allocations only; test/privacy.test.ts), so
 * that `createWebRtcTransport` accepts it with `privacy: 'relay-only'` (hostile review 5,
 * finding 1: the privacy mode takes an allowlist, not a blocklist). Pass werift's own
 * module: marking another class here is the same assertion as `trustRelayPolicy: true`.
 * A node-datachannel-shaped class is never marked (and stays refused).
 *
 * @example
 * ```ts
 * import * as werift from 'werift';
 * const transport = createWebRtcTransport({ fallback, ...weriftImplementation(werift), privacy: 'relay-only', iceServers });
 * ```
 */
export function weriftImplementation(werift: WeriftModule): PeerConnectionImplementation {
  const Ctor = (werift as { RTCPeerConnection?: unknown } | null)?.RTCPeerConnection;
  if (typeof Ctor !== 'function') throw new TypeError('weriftImplementation: the werift module (with its RTCPeerConnection class)');
  if (!sendsFromHostDespiteRelayPolicy(Ctor)) RELAY_POLICY_HONOURED.add(Ctor);
  return { RTCPeerConnection: Ctor as unknown as RTCPeerConnectionConstructor };
}

/** A browser: `navigator.userAgent`, and `window` or `self`, in no server runtime (Node, Deno, Bun; Electron's renderer counts as a browser). */
function browserLike(): boolean {
  const g = globalThis as { navigator?: { userAgent?: unknown } | null; window?: unknown; self?: unknown; process?: { versions?: { node?: unknown; electron?: unknown } }; Deno?: unknown; Bun?: unknown };
  // A server runtime is never "the browser" (hostile review 6, finding 2): Node defines
  // `navigator.userAgent` itself from version 21, and jsdom, happy-dom or a shim add
  // `window`/`self`, so those alone would let a test setup's global pass for the platform's.
  // Electron's renderer runs Chromium's own WebRTC, so it stays browser-like.
  if (typeof g.process?.versions?.node === 'string' && g.process.versions.electron === undefined) return false;
  if (g.Deno !== undefined || g.Bun !== undefined) return false;
  if (typeof g.navigator !== 'object' || g.navigator === null || typeof g.navigator.userAgent !== 'string') return false;
  return (typeof g.window === 'object' && g.window !== null) || (typeof g.self === 'object' && g.self !== null);
}

/**
 * Whether `fn` is the engine's own `RTCPeerConnection` class: its source is the engine's
 * (`[native code]`) under that very name. A Proxy or a bound function also prints
 * `[native code]`, but with no name (`function () { [native code] }`), so a wrapper
 * dressed up with either does not pass (hostile review 6, finding 2).
 */
function nativeClass(fn: unknown): boolean {
  try {
    return typeof fn === 'function' && typeof (fn as { prototype?: unknown }).prototype === 'object' && isEngineRtcPeerConnectionSource(Function.prototype.toString.call(fn));
  } catch {
    return false;
  }
}

/** Whether a function's source text is the engine's own `RTCPeerConnection` (see `nativeClass`; exported for its tests). */
export function isEngineRtcPeerConnectionSource(source: string): boolean {
  return /^function (webkit)?RTCPeerConnection\(\) \{\s*\[native code\]\s*\}$/.test(source);
}

/**
 * Why `Ctor` may be used with `privacy: 'relay-only'`, or `undefined` when it may not
 * (hostile review 5, finding 1). An allowlist: node-datachannel's shape is only one of the
 * classes that send ICE checks from host sockets whatever the policy, and a wrapper, a fork
 * or another binding with renamed members would pass any blocklist. Accepted:
 *
 * - `'werift'`: exactly a class {@link weriftImplementation} marked (not a subclass: a
 *   subclass can make connections of any kind in its constructor);
 * - `'platform'`: in a browser (`navigator.userAgent`, and `window` or `self`, and not a
 *   server runtime), the platform's own `globalThis.RTCPeerConnection` (engine code, not a script's
 *   class set as the global), or a class extending it: there the browser's ICE agent is
 *   the only one, and a subclass must call its constructor; the transport also checks that
 *   each connection reports `iceTransportPolicy: 'relay'` ({@link relaxesRelayPolicy});
 * - `'trusted'`: any other class when the application asserts it (`trustRelayPolicy`).
 *
 * A node-datachannel-shaped class ({@link sendsFromHostDespiteRelayPolicy}) is refused in
 * every case, the assertion included. Never throws.
 */
export function relayPolicyBasis(Ctor: unknown, trustRelayPolicy: boolean): 'werift' | 'platform' | 'trusted' | undefined {
  if (typeof Ctor !== 'function' || sendsFromHostDespiteRelayPolicy(Ctor)) return undefined;
  if (RELAY_POLICY_HONOURED.has(Ctor)) return 'werift';
  try {
    const platform = (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection;
    if (browserLike() && nativeClass(platform) && !sendsFromHostDespiteRelayPolicy(platform)) {
      let depth = 0;
      for (let p: unknown = Ctor; typeof p === 'function' && depth < 64; p = Object.getPrototypeOf(p), depth++) if (p === platform) return 'platform';
    }
  } catch {
    // A prototype that cannot be read: not the platform's.
  }
  return trustRelayPolicy ? 'trusted' : undefined;
}

/**
 * Whether a connection says, through the standard `getConfiguration()`, that it does not
 * apply `iceTransportPolicy: 'relay'` (a subclass that rewrote the configuration it was
 * given, for example). A connection without `getConfiguration`, or whose answer names no
 * policy, is not judged here. Never throws; one that throws counts as relaxing it.
 */
export function relaxesRelayPolicy(pc: unknown): boolean {
  try {
    const get = (pc as { getConfiguration?: unknown } | null)?.getConfiguration;
    if (typeof get !== 'function') return false;
    const policy = (get.call(pc) as { iceTransportPolicy?: unknown } | null | undefined)?.iceTransportPolicy;
    return typeof policy === 'string' && policy !== 'relay';
  } catch {
    return true;
  }
}

/** The parts of the `node-datachannel` module {@link nodeDatachannelImplementation} uses. */
export interface NodeDatachannelModule {
  // Loose on purpose: the module's own types (whatever their version) must fit without a
  // cast; what comes back is checked at run time.
  readonly PeerConnection: new (name: string, config: never) => { remoteFingerprint(): unknown; getSelectedCandidatePair(): unknown };
}

/** The parts of the `node-datachannel/polyfill` module {@link nodeDatachannelImplementation} uses. */
export interface NodeDatachannelPolyfillModule {
  readonly RTCPeerConnection: new (config: never) => unknown;
}

/** A TURN or STUN URL in libdatachannel's object form (credentials never pass through a URL). */
function nativeIceServer(url: string, server: IceServer): string | Record<string, unknown> {
  const m = /^(stun|stuns|turn|turns):(\[[^\]]+\]|[^:?]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i.exec(url);
  if (!m) return url;
  const scheme = (m[1] as string).toLowerCase();
  const hostname = (m[2] as string).replace(/^\[|\]$/g, '');
  const port = m[3] ? Number(m[3]) : scheme === 'turns' || scheme === 'stuns' ? 5349 : 3478;
  if (scheme === 'stun' || scheme === 'stuns') return { hostname, port };
  const relayType = scheme === 'turns' ? 'TurnTls' : m[4]?.toLowerCase() === 'tcp' ? 'TurnTcp' : 'TurnUdp';
  return { hostname, port, relayType, ...(server.username !== undefined ? { username: server.username } : {}), ...(server.credential !== undefined ? { password: server.credential } : {}) };
}

/**
 * The node-datachannel (libdatachannel) implementation, with its remote certificate
 * fingerprint readable: the polyfill's `getRemoteCertificates()` is a stub, so the
 * native connection is created here (the polyfill accepts it as `peerConnection`) and
 * asked directly. libdatachannel's own fingerprint verification is never disabled. The
 * selected candidate pair is read from the native connection too (its types only).
 *
 * Not for the privacy mode: libdatachannel sends ICE checks from its host socket despite
 * `iceTransportPolicy: 'relay'`, so `createWebRtcTransport` refuses the class returned
 * here (and subclasses of it) with `privacy: 'relay-only'` (hostile review 3, finding 1).
 *
 * @example
 * ```ts
 * import * as ndc from 'node-datachannel';
 * import * as polyfill from 'node-datachannel/polyfill';
 * const transport = createWebRtcTransport({ fallback, ...nodeDatachannelImplementation(ndc, polyfill) });
 * ```
 */
export function nodeDatachannelImplementation(ndc: NodeDatachannelModule, polyfill: NodeDatachannelPolyfillModule): PeerConnectionImplementation {
  const natives = new WeakMap<object, { remoteFingerprint(): unknown; getSelectedCandidatePair(): unknown }>();
  let counter = 0;
  const Base = polyfill.RTCPeerConnection as unknown as new (config: Record<string, unknown>) => object;
  class DeadboltNodeDatachannelPeerConnection extends Base {
    constructor(config: PeerConnectionConfig) {
      const iceServers = (config.iceServers ?? []).flatMap((s) => (typeof s.urls === 'string' ? [s.urls] : [...s.urls]).map((u) => nativeIceServer(u, s)));
      const native = new ndc.PeerConnection(`deadbolt-${++counter}`, {
        iceServers,
        iceTransportPolicy: config.iceTransportPolicy,
        disableFingerprintVerification: false,
      } as never);
      super({ iceServers: [], iceTransportPolicy: config.iceTransportPolicy, peerConnection: native });
      natives.set(this, native);
    }
  }
  // libdatachannel sends from its host socket despite the relay policy: the transport
  // refuses this class (and the polyfill's own, which runs the same agent) in the privacy mode.
  HOST_LEAKING.add(DeadboltNodeDatachannelPeerConnection);
  if (typeof polyfill.RTCPeerConnection === 'function') HOST_LEAKING.add(polyfill.RTCPeerConnection);
  return {
    RTCPeerConnection: DeadboltNodeDatachannelPeerConnection as unknown as RTCPeerConnectionConstructor,
    remoteFingerprint(pc) {
      const native = natives.get(pc);
      if (!native) return undefined;
      try {
        const fp = native.remoteFingerprint() as { readonly value?: unknown; readonly algorithm?: unknown } | null;
        if (typeof fp !== 'object' || fp === null || typeof fp.value !== 'string') return undefined;
        const value = parseFingerprintValue(fp.value);
        return value ? { algorithm: String(fp.algorithm).toLowerCase(), value } : undefined;
      } catch {
        return undefined;
      }
    },
    selectedCandidatePair(pc) {
      const native = natives.get(pc);
      if (!native) return undefined;
      try {
        const pair = native.getSelectedCandidatePair() as { readonly local?: { readonly type?: unknown }; readonly remote?: { readonly type?: unknown } } | null;
        return pair ? pairOf(pair.local?.type, pair.remote?.type) : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
