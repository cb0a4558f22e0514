/**
 * Devices on the WebRTC transport with in-memory everything: the relay path (MemoryHub),
 * the signalling (UnsafeSignalBus, standing in for core) and the peer connections
 * (FakeNetwork), each device with its own manual timers, so that a test decides when a
 * bound ends and observes every step: what was signalled, which connections exist, what
 * each data channel wrote. Waits are on events, with a deadline. Test use only.
 */
import type { Address, InboundFrame, TransportAdapter, TransportAuth } from '@deadbolt/spec';
import { createWebRtcTransport, decodeSignal, type PathChange, type Signal, type WebRtcTransport, type WebRtcTransportOptions } from '../../src/index.js';
import { Changes } from './changes.js';
import { FakeNetwork, type FakePeerConnection } from './fake-peer-connection.js';
import { ManualTimers } from './manual-timers.js';
import { MemoryHub } from './memory-hub.js';
import { UnsafeSignalBus, type UnsafeSignalBusOptions } from './signal-bus.js';

/** One device: its transport (raw, and as core would drive it), what it received, its paths. */
export interface Device {
  readonly address: Address;
  readonly auth: TransportAuth;
  readonly raw: WebRtcTransport;
  readonly transport: TransportAdapter;
  readonly timers: ManualTimers;
  readonly frames: InboundFrame[];
  readonly paths: PathChange[];
  /** The peer connections this device created, oldest first. */
  pcs(): FakePeerConnection[];
  handler: (frame: InboundFrame) => Promise<void> | void;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
export const direct = (d: Device): string[] => d.frames.filter((f) => f.id.startsWith('rtc:')).map((f) => text(f.bytes));
export const viaRelay = (d: Device): string[] => d.frames.filter((f) => !f.id.startsWith('rtc:')).map((f) => text(f.bytes));
export const sameDevice = (a: Address, b: Address): boolean => a.userId === b.userId && a.deviceId === b.deviceId;

/** A world of devices; `close()` closes every one. */
export class World {
  readonly hub = new MemoryHub();
  readonly bus: UnsafeSignalBus;
  readonly network = new FakeNetwork();
  readonly changes = new Changes();
  readonly #devices: Device[] = [];

  constructor(bus: UnsafeSignalBusOptions = {}) {
    this.bus = new UnsafeSignalBus(bus);
    this.hub.onStored(this.changes.poke);
    this.bus.observe(this.changes.poke);
    this.network.onChange(this.changes.poke);
  }

  /** A device of `userId`, connected (its relay path and its signalling). */
  async device(userId: string, options: Partial<WebRtcTransportOptions> = {}, deviceId = 'd1'): Promise<Device> {
    const address = { userId, deviceId } as Address;
    const certificate = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const auth: TransportAuth = { certificate, sign: async () => new Uint8Array(64) };
    this.hub.register(address, certificate);
    this.bus.register(address, auth);
    const owner = `${userId}/${deviceId}`;
    const timers = new ManualTimers();
    const raw = createWebRtcTransport({
      fallback: this.hub.transport(),
      RTCPeerConnection: this.network.RTCPeerConnection(owner),
      remoteFingerprint: this.network.remoteFingerprint,
      timers,
      random: () => 0,
      ...options,
    });
    const changes = this.changes;
    const d: Device = {
      address,
      auth,
      raw,
      transport: this.bus.wrap(raw),
      timers,
      frames: [],
      paths: [],
      pcs: () => this.network.of(owner),
      handler: (frame) => {
        d.frames.push(frame);
        changes.poke();
      },
    };
    raw.onPathChange((c) => {
      d.paths.push(c);
      changes.poke();
    });
    d.transport.onFrame((frame) => d.handler(frame));
    this.#devices.push(d);
    await d.transport.connect(auth);
    return d;
  }

  /** The signals sealed from `from` to `to` so far, decoded. */
  signals(from: Address, to: Address): Signal[] {
    return this.bus.sealed.filter((s) => sameDevice(s.from, from) && sameDevice(s.to, to)).map((s) => decodeSignal(s.payload));
  }

  /** Offers `to` heard from `from` so far. */
  offersHeard(from: Address, to: Address): number {
    return this.bus.heard.filter((h) => sameDevice(h.from, from) && sameDevice(h.to, to) && decodeSignal(h.payload).type === 'offer').length;
  }

  /** Waits until the path is direct at both ends. */
  linked(a: Device, b: Device): Promise<void> {
    return this.changes.until(() => a.raw.path(b.address) === 'direct' && b.raw.path(a.address) === 'direct', `the link ${a.address.userId}/${a.address.deviceId} ↔ ${b.address.userId}/${b.address.deviceId}`);
  }

  async close(): Promise<void> {
    for (const d of this.#devices.splice(0)) await d.transport.close();
  }
}
