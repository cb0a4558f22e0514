/**
 * The WebRTC transport's own logic with real peer connections (node-datachannel) and an
 * in-memory relay path: both sides offering at once, an offer that waited in a mailbox,
 * offers to a device that never answers, the DTLS fingerprint check, a peer breaking the
 * framing or going silent, inbound bounds. Every wait is on an event, with a deadline.
 */
import { afterEach, describe, expect, test } from 'vitest';
import * as ndc from 'node-datachannel';
import * as polyfill from 'node-datachannel/polyfill';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import type { Address, InboundFrame, TransportAdapter, TransportAuth } from '@deadbolt/spec';
import {
  createWebRtcTransport,
  nodeDatachannelImplementation,
  type NodeDatachannelModule,
  type NodeDatachannelPolyfillModule,
  type PathChange,
  type RTCDataChannelLike,
  type RTCPeerConnectionConstructor,
  type RTCPeerConnectionLike,
  type WebRtcTransport,
  type WebRtcTransportOptions,
} from '../src/index.js';
import { Changes } from './helpers/changes.js';
import { MemoryHub } from './helpers/memory-hub.js';
import { ManualTimers } from './helpers/manual-timers.js';
import { UnsafeSignalBus } from './helpers/signal-bus.js';
import { within } from './helpers/stack.js';

const ndcImpl = nodeDatachannelImplementation(ndc as unknown as NodeDatachannelModule, polyfill as unknown as NodeDatachannelPolyfillModule);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

const changes = new Changes();

/** Peer connections a device created, with their data channels, observable. */
interface Instrumented {
  readonly Ctor: RTCPeerConnectionConstructor;
  readonly pcs: { pc: RTCPeerConnectionLike; channel?: RTCDataChannelLike; closed: boolean }[];
}

function instrumented(kind: 'node-datachannel' | 'werift'): Instrumented {
  const pcs: Instrumented['pcs'] = [];
  const Base = (kind === 'werift' ? WeriftPeerConnection : ndcImpl.RTCPeerConnection) as unknown as new (config: unknown) => RTCPeerConnectionLike;
  type Entry = Instrumented['pcs'][number];
  class InstrumentedPeerConnection extends (Base as new (config: unknown) => object) {
    readonly #entry: Entry;
    constructor(config: unknown) {
      super(config);
      this.#entry = { pc: this as unknown as RTCPeerConnectionLike, closed: false };
      pcs.push(this.#entry);
      changes.poke();
    }
    createDataChannel(label: string, init?: { ordered?: boolean }): RTCDataChannelLike {
      const channel = (Base.prototype as unknown as RTCPeerConnectionLike).createDataChannel.call(this, label, init);
      this.#entry.channel = channel;
      return channel;
    }
    close(): void {
      this.#entry.closed = true;
      (Base.prototype as unknown as RTCPeerConnectionLike).close.call(this);
      changes.poke();
    }
  }
  return { Ctor: InstrumentedPeerConnection as unknown as RTCPeerConnectionConstructor, pcs };
}

interface Peer {
  readonly address: Address;
  readonly auth: TransportAuth;
  readonly raw: WebRtcTransport;
  readonly transport: TransportAdapter;
  readonly frames: InboundFrame[];
  readonly paths: PathChange[];
  readonly impl: Instrumented;
  handler: (frame: InboundFrame) => Promise<void> | void;
}

const opened: Peer[] = [];
afterEach(async () => {
  for (const p of opened.splice(0)) await p.transport.close();
});

function peer(
  hub: MemoryHub,
  bus: UnsafeSignalBus,
  name: string,
  options: Partial<WebRtcTransportOptions> = {},
  deviceListVersion?: () => number,
  kind: 'node-datachannel' | 'werift' = 'node-datachannel',
): Peer {
  const address = { userId: name, deviceId: 'd1' } as Address;
  const certificate = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const auth: TransportAuth = { certificate, sign: async () => new Uint8Array(64) };
  hub.register(address, certificate);
  bus.register(address, auth);
  const impl = instrumented(kind);
  const raw = createWebRtcTransport({
    fallback: hub.transport(),
    RTCPeerConnection: impl.Ctor,
    remoteFingerprint: ndcImpl.remoteFingerprint!,
    backoff: { initialMs: 1, maxMs: 1 },
    connectTimeoutMs: 3000,
    ...options,
  });
  const p: Peer = {
    address,
    auth,
    raw,
    transport: bus.wrap(raw, deviceListVersion ? { deviceListVersion } : {}),
    frames: [],
    paths: [],
    impl,
    handler: (frame) => {
      p.frames.push(frame);
      changes.poke();
    },
  };
  raw.onPathChange((c) => {
    p.paths.push(c);
    changes.poke();
  });
  p.transport.onFrame((frame) => p.handler(frame));
  opened.push(p);
  return p;
}

/**
 * Signalling between devices that talked before (the stand-in for core says so), so each
 * answers the other's offers: these cases are about what happens once offers are answered
 * (offer-policy.test.ts is about which are).
 */
const talkedBefore = (): UnsafeSignalBus => new UnsafeSignalBus({ sender: 'talked-before' });

const direct = (p: Peer): InboundFrame[] => p.frames.filter((f) => f.id.startsWith('rtc:'));
const viaRelay = (p: Peer): InboundFrame[] => p.frames.filter((f) => !f.id.startsWith('rtc:'));

describe('setting up links', () => {
  // werift here: libdatachannel now and then fails a well-formed answer ("Got a remote
  // candidate without ICE transport", a known race of the library), which the transport
  // survives by trying again, but which would make the counts below vary.
  test('both devices offer at once: the lower connection id wins on both sides, one link carries frames both ways', async () => {
    const hub = new MemoryHub();
    const bus = talkedBefore();
    const a = peer(hub, bus, 'alice', {}, undefined, 'werift');
    const b = peer(hub, bus, 'bob', {}, undefined, 'werift');
    await a.transport.connect(a.auth);
    await b.transport.connect(b.auth);
    const [fromA, fromB] = await within(Promise.all([a.raw.preconnect(b.address), b.raw.preconnect(a.address)]), 'both preconnects');
    expect([fromA, fromB]).toEqual([true, true]);
    // Two attempts and one answer; one side gave its own attempt up (before or after its
    // offer went out, so two or three signals).
    expect(a.impl.pcs.length + b.impl.pcs.length).toBe(3);
    expect(bus.sealed.length).toBeGreaterThanOrEqual(2);
    expect(bus.sealed.length).toBeLessThanOrEqual(3);
    expect([...a.impl.pcs, ...b.impl.pcs].filter((p) => p.closed)).toHaveLength(1);
    await changes.until(() => a.raw.path(b.address) === 'direct' && b.raw.path(a.address) === 'direct', 'both paths direct');
    await a.transport.send([{ to: b.address, frame: utf8('to bob') }]);
    await b.transport.send([{ to: a.address, frame: utf8('to alice') }]);
    expect(direct(b).map((f) => text(f.bytes))).toEqual(['to bob']);
    expect(direct(a).map((f) => text(f.bytes))).toEqual(['to alice']);
    expect(direct(b)[0]!.from).toEqual(a.address);
  });

  test('an offer that waited while its recipient was offline: the late answer is refused with a BYE, and a fresh attempt connects', async () => {
    const hub = new MemoryHub();
    const bus = talkedBefore();
    const timers = new ManualTimers();
    // werift: the exact signals below would vary with libdatachannel's occasional retry.
    const a = peer(hub, bus, 'alice', { timers, connectTimeoutMs: 60_000 }, undefined, 'werift');
    const b = peer(hub, bus, 'bob', {}, undefined, 'werift');
    hub.onStored(changes.poke);
    await a.transport.connect(a.auth);
    await a.transport.send([{ to: b.address, frame: utf8('while away'), contact: true }]); // stored; an offer follows
    await changes.until(() => hub.stored.length === 2, 'the offer in the mailbox');
    const ended = a.raw.preconnect(b.address); // follows the attempt under way
    expect(timers.fire(60_000), 'the attempt timed out').toBe(1);
    expect(await within(ended, 'the attempt to end')).toBe(false);
    expect(a.impl.pcs.map((p) => p.closed)).toEqual([true]);
    await b.transport.connect(b.auth); // b is back: the frame and the stale offer arrive
    await changes.until(() => a.raw.path(b.address) === 'direct' && b.raw.path(a.address) === 'direct', 'a fresh link');
    expect(viaRelay(b).map((f) => text(f.bytes))).toEqual(['while away']);
    // b answered the stale offer; a said BYE to it and offered again, and that one connected.
    const kinds = bus.sealed.map((s) => `${s.from.userId}→${s.to.userId}`);
    expect(kinds).toEqual(['alice→bob', 'bob→alice', 'alice→bob', 'alice→bob', 'bob→alice']);
    expect(b.impl.pcs.map((p) => p.closed)).toEqual([true, false]);
    await a.transport.send([{ to: b.address, frame: utf8('direct now') }]);
    expect(direct(b).map((f) => text(f.bytes))).toEqual(['direct now']);
  });

  test('offers to a device that never answers stop after maxUnansweredOffers, until it signals', async () => {
    let clock = 1_000_000;
    const hub = new MemoryHub();
    const bus = talkedBefore();
    const timers = new ManualTimers();
    // werift: with libdatachannel an answer now and then fails to apply (the race noted
    // above), and the retry after it waits for a timer this test does not fire.
    const a = peer(hub, bus, 'alice', { timers, connectTimeoutMs: 60_000, maxUnansweredOffers: 3, now: () => clock, backoff: { initialMs: 1000, maxMs: 1000 } }, undefined, 'werift');
    const c = peer(hub, bus, 'carol', {}, undefined, 'werift');
    hub.onStored(changes.poke);
    await a.transport.connect(a.auth);
    for (let i = 1; i <= 3; i++) {
      clock += 10_000; // past any backoff
      await a.transport.send([{ to: c.address, frame: utf8(`m${i}`), contact: true }]);
      expect(a.impl.pcs.length, `attempt ${i} started`).toBe(i);
      await changes.until(() => hub.stored.length === 2 * i, `offer ${i} in the mailbox`);
      expect(timers.fire(60_000), `attempt ${i} timed out`).toBe(1);
    }
    clock += 10_000;
    await a.transport.send([{ to: c.address, frame: utf8('m4'), contact: true }]);
    await a.transport.send([{ to: c.address, frame: utf8('m5'), contact: true }]);
    expect(a.impl.pcs.length, 'no fourth offer to a device that never answered').toBe(3);
    // Carol comes online: her answers to the stale offers show she runs WebRTC, so offers resume.
    await c.transport.connect(c.auth);
    await changes.until(() => a.raw.path(c.address) === 'direct', 'a link once carol signalled');
    expect(viaRelay(c).map((f) => text(f.bytes))).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  test('a DTLS certificate that does not match the signalled fingerprint: no link, frames keep going through the relay', async () => {
    const hub = new MemoryHub();
    const bus = talkedBefore();
    const wrong = { algorithm: 'sha-256', value: new Uint8Array(32).fill(0x5a) };
    const a = peer(hub, bus, 'alice', { remoteFingerprint: () => wrong });
    const b = peer(hub, bus, 'bob', { remoteFingerprint: () => wrong });
    await a.transport.connect(a.auth);
    await b.transport.connect(b.auth);
    expect(await within(a.raw.preconnect(b.address), 'the attempt')).toBe(false);
    await changes.until(() => [...a.impl.pcs, ...b.impl.pcs].every((p) => p.closed), 'both connections closed');
    expect(a.paths.concat(b.paths).filter((p) => p.path === 'direct')).toEqual([]);
    await a.transport.send([{ to: b.address, frame: utf8('still delivered') }]);
    await changes.until(() => b.frames.length === 1, 'the frame');
    expect(viaRelay(b).map((f) => text(f.bytes))).toEqual(['still delivered']);
  });

  test('where the remote certificate is not exposed and the application set requireFingerprintCheck: false, the stack is trusted and the link says so', async () => {
    const hub = new MemoryHub();
    const bus = talkedBefore();
    const a = peer(hub, bus, 'alice', { remoteFingerprint: () => undefined, requireFingerprintCheck: false });
    const b = peer(hub, bus, 'bob');
    await a.transport.connect(a.auth);
    await b.transport.connect(b.auth);
    void a.raw.preconnect(b.address);
    await changes.until(() => a.paths.some((p) => p.path === 'direct') && b.paths.some((p) => p.path === 'direct'), 'the link');
    // node-datachannel's polyfill answers getRemoteCertificates() with an empty buffer, which does not count.
    expect(a.paths.find((p) => p.path === 'direct')).toMatchObject({ fingerprintCheck: 'not-exposed' });
    expect(b.paths.find((p) => p.path === 'direct')).toMatchObject({ fingerprintCheck: 'matched' });
  });
});

describe('on the link', () => {
  async function linked(options: Partial<WebRtcTransportOptions> = {}, bOptions: Partial<WebRtcTransportOptions> = {}, bListVersion?: () => number): Promise<{ hub: MemoryHub; a: Peer; b: Peer }> {
    const hub = new MemoryHub();
    const bus = talkedBefore();
    const a = peer(hub, bus, 'alice', options);
    const b = peer(hub, bus, 'bob', bOptions, bListVersion);
    hub.onStored(changes.poke);
    await a.transport.connect(a.auth);
    await b.transport.connect(b.auth);
    // libdatachannel now and then fails an attempt; the transport tries again by itself.
    void a.raw.preconnect(b.address);
    await changes.until(() => a.raw.path(b.address) === 'direct' && b.raw.path(a.address) === 'direct', 'the link, at both ends');
    return { hub, a, b };
  }

  test('a peer that breaks the framing loses the link, not the frames', async () => {
    const { a, b } = await linked();
    const channel = a.impl.pcs.find((p) => !p.closed && p.channel)!.channel!;
    channel.send(Buffer.from([9, 9, 9])); // not a DirectMessage
    await changes.until(() => b.paths.some((p) => p.path === 'relay'), "bob's link to close");
    expect(b.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'undecodable message' });
    await changes.until(() => a.raw.path(b.address) === 'relay', "alice's link to close");
    await a.transport.send([{ to: b.address, frame: utf8('after') }]);
    await changes.until(() => b.frames.length === 1, 'the frame');
    expect(viaRelay(b).map((f) => text(f.bytes))).toEqual(['after']);
  });

  test('a peer that goes silent: no receipt within the bound, the link closes and the frames go through the relay', async () => {
    const { a, b } = await linked({ receiptTimeoutMs: 300 });
    const channel = a.impl.pcs.find((p) => !p.closed && p.channel)!.channel!;
    const send = channel.send.bind(channel);
    channel.send = (data: Uint8Array) => {
      if (data[1] !== 1) send(data); // DATA messages vanish on the way
    };
    await within(a.transport.send([{ to: b.address, frame: utf8('one') }, { to: b.address, frame: utf8('two') }]), 'the sends');
    expect(a.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'no receipt in time' });
    expect(viaRelay(b).map((f) => text(f.bytes)).sort()).toEqual(['one', 'two']);
    expect(direct(b)).toEqual([]);
  });

  test('inbound frames beyond maxInbound are refused on the link and arrive through the relay; the handler sees one at a time', async () => {
    const { hub, a, b } = await linked({}, { maxInbound: 1 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let running = 0;
    let most = 0;
    b.handler = async (frame) => {
      running++;
      most = Math.max(most, running);
      if (text(frame.bytes) === 'f0') await gate;
      b.frames.push(frame);
      running--;
      changes.poke();
    };
    const sending = a.transport.send([0, 1, 2].map((i) => ({ to: b.address, frame: utf8(`f${i}`) })));
    // f1 and f2 were refused (f0 holds the only place) and were stored by the relay path.
    await changes.until(() => hub.stored.filter((m) => m.to.userId === 'bob' && ['f1', 'f2'].includes(text(m.bytes))).length === 2, 'f1 and f2 through the relay path');
    release();
    await within(sending, 'the sends');
    await changes.until(() => b.frames.length === 3, 'three frames');
    expect(direct(b).map((f) => text(f.bytes))).toEqual(['f0']);
    expect(viaRelay(b).map((f) => text(f.bytes)).sort()).toEqual(['f1', 'f2']);
    expect(most).toBe(1);
  });

  test('device list versions: a frame goes direct only naming the version the relay confirmed, and only to a device holding that version', async () => {
    let bobHolds = 0;
    const { a, b } = await linked({}, {}, () => bobHolds);
    // The signalling went through the relay path naming version 0 for bob: confirmed.
    await a.transport.send([{ to: b.address, frame: utf8('v0'), listVersion: 0 }]);
    // A version the relay never accepted for bob goes through the relay (which checks it).
    await a.transport.send([{ to: b.address, frame: utf8('v7'), listVersion: 7 }]);
    // Bob's device holds version 5 now (a device was added): a frame naming 7 (now
    // confirmed by the relay path above) is refused on the link and goes through the relay.
    bobHolds = 5;
    await a.transport.send([{ to: b.address, frame: utf8('v7 again'), listVersion: 7 }]);
    bobHolds = 7;
    await a.transport.send([{ to: b.address, frame: utf8('v7 held'), listVersion: 7 }]);
    await changes.until(() => b.frames.length === 4, 'four frames');
    expect(direct(b).map((f) => text(f.bytes))).toEqual(['v0', 'v7 held']);
    expect(viaRelay(b).map((f) => text(f.bytes))).toEqual(['v7', 'v7 again']);
  });

  test('a relay confirmation lets frames go direct for 30 s only, then the next one goes through the relay, which would refuse a revoked device', async () => {
    let clock = 1_000_000;
    const { a, b } = await linked({ now: () => clock }, {});
    await a.transport.send([{ to: b.address, frame: utf8('fresh'), listVersion: 0 }]);
    clock += 31_000;
    await a.transport.send([{ to: b.address, frame: utf8('stale'), listVersion: 0 }]);
    clock += 1_000;
    await a.transport.send([{ to: b.address, frame: utf8('confirmed again'), listVersion: 0 }]);
    await changes.until(() => b.frames.length === 3, 'three frames');
    expect(direct(b).map((f) => text(f.bytes))).toEqual(['fresh', 'confirmed again']);
    expect(viaRelay(b).map((f) => text(f.bytes))).toEqual(['stale']);
  });
});
