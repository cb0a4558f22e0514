/**
 * Stands in for core in transport-level tests: core gives a transport a signalling channel
 * whose signals are sealed frames that come back through the transport's frame handler,
 * where core decrypts them and hands them to the channel's listeners without surfacing
 * them. Here a "sealed" signal is a marked frame, unsealed by a wrapper around `onFrame`
 * (the real sealing is tested with real clients elsewhere). For test use only: nothing is
 * encrypted.
 */
import type { Address, FrameHandler, SignallingChannel, TransportAdapter, TransportAuth } from '@deadbolt/spec';
import type { SignalSenderInfo, WebRtcTransport } from '../../src/index.js';

const MARK = new TextEncoder().encode('\u0000unsafe-test-signal\u0000');

function marked(bytes: Uint8Array): boolean {
  return bytes.length >= MARK.length && MARK.every((b, i) => bytes[i] === b);
}

/** Options of {@link UnsafeSignalBus}. */
export interface UnsafeSignalBusOptions {
  /**
   * When a transport connects, set up direct links to every listening device first, so
   * that what follows takes the direct path (the devices are told they talked before).
   */
  readonly preconnect?: boolean;
  /**
   * What the stand-in tells a transport of a signal's sender besides its address (the
   * optional third argument of `onSignal` handlers). Default: nothing, as core today.
   * `'talked-before'`: `{ firstContact: false }` for every sender.
   */
  readonly sender?: 'nothing' | 'talked-before' | ((from: Address, to: Address) => SignalSenderInfo | undefined);
}

/** Devices by certificate, so a transport learns whose it is when it connects. */
export class UnsafeSignalBus {
  readonly #byCertificate = new Map<string, Address>();
  /** Wrapped transports that are connected with a frame handler (so they hear signals). */
  readonly #listening = new Set<{ self: Address; transport: WebRtcTransport }>();
  /** The signal listeners of each connected device. */
  readonly #listeners = new Map<string, Set<(from: Address, payload: Uint8Array, info: SignalSenderInfo) => void>>();
  readonly preconnect: boolean;
  readonly #sender: (from: Address, to: Address) => SignalSenderInfo | undefined;
  readonly #observers = new Set<() => void>();

  constructor(options: UnsafeSignalBusOptions = {}) {
    this.preconnect = options.preconnect ?? false;
    const sender = options.sender ?? (this.preconnect ? 'talked-before' : 'nothing');
    this.#sender = sender === 'nothing' ? () => undefined : sender === 'talked-before' ? () => ({ firstContact: false }) : sender;
  }

  /** Signals carried, per sender, with their payloads, for assertions. */
  readonly sealed: { from: Address; to: Address; payload: Uint8Array }[] = [];
  /** Signals handed to a transport's listeners (by a delivered frame or {@link inject}). */
  readonly heard: { from: Address; to: Address; payload: Uint8Array }[] = [];
  /** Frames handed to handlers, by the path they came (direct frames have `rtc:` ids). */
  readonly delivered = { direct: 0, relay: 0 };
  /** Direct links that opened, across every wrapped transport. */
  opened = 0;

  register(address: Address, auth: TransportAuth): void {
    this.#byCertificate.set(Buffer.from(auth.certificate).toString('hex'), address);
  }

  /** Calls `observer` after every signal sealed or heard; returns a function that stops it. */
  observe(observer: () => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /**
   * Hands `payload` to the transport of `to` as a signal core authenticated as sent by
   * `from` (as if it came sealed through the relay): a stale or replayed signal, here.
   */
  inject(to: Address, from: Address, payload: Uint8Array, info: SignalSenderInfo | undefined = this.#sender(from, to)): void {
    this.#hear(to, from, payload, info);
  }

  #hear(to: Address, from: Address, payload: Uint8Array, info: SignalSenderInfo | undefined): void {
    this.heard.push({ from, to, payload });
    // 'nothing': a channel that says nothing of the sender (an older core), so `info` is absent.
    for (const l of [...(this.#listeners.get(`${to.userId}/${to.deviceId}`) ?? [])])
      (l as (from: Address, payload: Uint8Array, info?: SignalSenderInfo) => void)(from, payload, ...(info !== undefined ? [info] : []));
    this.#observed();
  }

  #observed(): void {
    for (const o of [...this.#observers]) o();
  }

  /**
   * Wraps a WebRTC transport the way core drives one: the signalling channel is attached
   * when it connects, and signal frames are taken out of the frames the handler sees.
   */
  wrap(transport: WebRtcTransport, options: { deviceListVersion?: () => number } = {}): TransportAdapter {
    const bus = this;
    const listeners = new Set<(from: Address, payload: Uint8Array, info: SignalSenderInfo) => void>();
    let self: Address | undefined;
    let handler: FrameHandler | undefined;
    const entry = { self: undefined as unknown as Address, transport };
    transport.onPathChange((change) => {
      if (change.path === 'direct') bus.opened++;
    });
    const channel: SignallingChannel = {
      maxPayload: 0xffff,
      async send(to, payload, deliver) {
        if (self === undefined) throw new Error('not connected');
        bus.sealed.push({ from: self, to, payload: payload.slice() });
        bus.#observed();
        const frame = new Uint8Array(MARK.length + payload.length);
        frame.set(MARK);
        frame.set(payload, MARK.length);
        await deliver({ to, frame });
      },
      // The stand-in holds no device list unless told: frames naming a list go through the relay.
      deviceListVersion: async () => options.deviceListVersion?.() ?? 0,
      onSignal(handler) {
        listeners.add(handler);
        return () => listeners.delete(handler);
      },
    };
    // Like core, which registers its handler before connecting and keeps it: signals are
    // taken out here; any other frame goes to the test's handler, and with none it is not
    // processed (so not acknowledged, as the contract says of frames without a handler).
    transport.onFrame((frame) => {
      if (marked(frame.bytes)) {
        if (self !== undefined) bus.#hear(self, frame.from, frame.bytes.slice(MARK.length), bus.#sender(frame.from, self));
        return undefined;
      }
      const h = handler;
      if (h === undefined) throw new Error('no handler registered');
      if (frame.id.startsWith('rtc:')) bus.delivered.direct++;
      else bus.delivered.relay++;
      return h(frame);
    });
    return {
      specificationVersion: transport.specificationVersion,
      get maxFrameSize() {
        return transport.maxFrameSize;
      },
      get state() {
        return transport.state;
      },
      async connect(auth) {
        if (self === undefined) {
          self = bus.#byCertificate.get(Buffer.from(auth.certificate).toString('hex'));
          if (self !== undefined) {
            bus.#listeners.set(`${self.userId}/${self.deviceId}`, listeners);
            transport.attachSignalling(channel);
          }
        }
        await transport.connect(auth);
        if (!bus.preconnect || self === undefined || bus.#listening.has(entry)) return;
        entry.self = self;
        const others = [...bus.#listening].filter((o) => o.transport.state !== 'closed');
        bus.#listening.add(entry);
        await Promise.all(
          others.map(async (o) => {
            // A failed attempt is tried again by the transport itself (it wants the link).
            void transport.preconnect(o.self);
            await bothEnds(transport, o.self, o.transport, self!);
          }),
        );
      },
      send: (messages) => transport.send(messages),
      onFrame(h) {
        handler = h;
        return () => {
          if (handler === h) handler = undefined;
        };
      },
      onStateChange: (l) => transport.onStateChange(l),
      onNotice: (l) => transport.onNotice(l),
      publishPrekeys: (u) => transport.publishPrekeys(u),
      fetchBundles: (u, options) => transport.fetchBundles(u, options), // options too (a skip list): the suite checks it
      sendShared: (r, f) => transport.sendShared(r, f),
      publishDeviceList: (l) => transport.publishDeviceList(l),
      provisionPut: (c, s) => transport.provisionPut(c, s),
      provisionTake: (c, w) => transport.provisionTake(c, w),
      close: () => {
        bus.#listening.delete(entry);
        return transport.close();
      },
    };
  }
}

/**
 * Waits (at most 5 s: this is set-up, the suite's own cases decide) until the link is
 * open at both ends: one side opens a moment before the other.
 */
function bothEnds(mine: WebRtcTransport, peer: Address, other: WebRtcTransport, self: Address): Promise<void> {
  const open = (): boolean => mine.path(peer) === 'direct' && other.path(self) === 'direct';
  if (open()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, 5000);
    const offs = [mine, other].map((t) =>
      t.onPathChange(() => {
        if (open()) done();
      }),
    );
    function done(): void {
      clearTimeout(timer);
      for (const off of offs) off();
      resolve();
    }
  });
}
