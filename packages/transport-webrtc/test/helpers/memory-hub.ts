/**
 * An in-memory stand-in for the relay path, for scenario tests of the WebRTC transport's
 * own logic (glare, stale signals, backoff, checks): mailboxes per device, at-least-once
 * delivery acknowledged after the handler resolved, every stored frame recorded. The
 * real relay is used by the conformance suite and the client tests; this one lets a test
 * hold a device "offline" and count what reached its mailbox. Test use only.
 */
import {
  RELAY_LIMITS,
  TRANSPORT_SPECIFICATION_VERSION,
  TransportCore,
  TransportError,
  prepareOutbound,
  transportClosed,
  type Address,
  type FrameHandler,
  type InboundFrame,
  type TransportAdapter,
  type TransportState,
} from '@deadbolt/spec';

interface Mailbox {
  readonly queue: InboundFrame[];
  transport: { core: TransportCore; handler(): FrameHandler | undefined } | undefined;
  draining: boolean;
}

/** A hub of mailboxes; `transport()` makes a device's relay path to it. */
export class MemoryHub {
  readonly #boxes = new Map<string, Mailbox>();
  readonly #byCertificate = new Map<string, Address>();
  #next = 1;
  /** Every frame stored, in order. */
  readonly stored: { from: Address; to: Address; bytes: Uint8Array }[] = [];
  readonly #listeners = new Set<() => void>();

  register(address: Address, certificate: Uint8Array): void {
    this.#byCertificate.set(Buffer.from(certificate).toString('hex'), address);
    this.#box(address);
  }

  /** Calls `listener` after every stored frame; returns a function that stops it. */
  onStored(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #box(a: Address): Mailbox {
    const key = `${a.userId}/${a.deviceId}`;
    let box = this.#boxes.get(key);
    if (box === undefined) {
      box = { queue: [], transport: undefined, draining: false };
      this.#boxes.set(key, box);
    }
    return box;
  }

  /** Hands queued frames to the connected transport's handler, one at a time; a failure stops until the next connect. */
  async #drain(box: Mailbox): Promise<void> {
    if (box.draining) return;
    box.draining = true;
    try {
      while (box.queue.length > 0) {
        const t = box.transport;
        const handler = t?.handler();
        if (t === undefined || handler === undefined || t.core.state !== 'connected') return;
        const frame = box.queue[0] as InboundFrame;
        try {
          await handler({ ...frame, bytes: frame.bytes.slice() });
        } catch {
          return; // not acknowledged: delivered again on the next connect
        }
        if (box.queue[0] === frame) box.queue.shift();
      }
    } finally {
      box.draining = false;
    }
  }

  transport(): TransportAdapter {
    const hub = this;
    const core = new TransportCore(RELAY_LIMITS.maxMessage);
    let self: Address | undefined;
    let handler: FrameHandler | undefined;
    const attach = { core, handler: () => handler };
    const unsupported = (what: string): Promise<never> => Promise.reject(new TransportError('TRANSPORT_FAILED', { message: `${what} is not in the memory hub`, details: { operation: what } }));
    return {
      specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
      maxFrameSize: RELAY_LIMITS.maxMessage,
      get state(): TransportState {
        return core.state;
      },
      async connect(auth) {
        if (core.state === 'closed') throw transportClosed();
        self = hub.#byCertificate.get(Buffer.from(auth.certificate).toString('hex'));
        if (self === undefined) throw new TransportError('RELAY_REJECTED', { message: 'unknown device', details: { code: 'UNAUTHENTICATED' } });
        core.setState('connecting');
        const box = hub.#box(self);
        box.transport = attach;
        core.setState('connected');
        void hub.#drain(box);
      },
      async send(messages) {
        if (core.state === 'closed') throw transportClosed();
        if (self === undefined) throw new TransportError('TRANSPORT_FAILED', { message: 'not connected', details: { operation: 'send' } });
        const from = self;
        for (const m of prepareOutbound(messages, RELAY_LIMITS.maxMessage)) {
          const box = hub.#box(m.to);
          box.queue.push({ id: `m${hub.#next++}`, from, receivedAt: Date.now(), bytes: m.frame });
          hub.stored.push({ from, to: m.to, bytes: m.frame });
          for (const l of [...hub.#listeners]) l();
          void hub.#drain(box);
        }
      },
      onFrame(h) {
        handler = h;
        if (self !== undefined) void hub.#drain(hub.#box(self));
        return () => {
          if (handler === h) handler = undefined;
        };
      },
      onStateChange: (l) => core.onStateChange(l),
      onNotice: (l) => core.onNotice(l),
      publishPrekeys: () => unsupported('publishPrekeys'),
      fetchBundles: () => unsupported('fetchBundles'),
      sendShared: () => unsupported('sendShared'),
      publishDeviceList: () => unsupported('publishDeviceList'),
      provisionPut: () => unsupported('provisionPut'),
      provisionTake: () => unsupported('provisionTake'),
      async close() {
        if (self !== undefined && hub.#box(self).transport === attach) hub.#box(self).transport = undefined;
        core.close();
      },
    };
  }
}
