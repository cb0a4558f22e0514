/**
 * Hostile review 4: node-datachannel recognised by its shape in the privacy mode, class and
 * instance (finding 1); one user cannot hold every pending inbound place, and an answered
 * link that never opens costs its device its answers (finding 2); the retry after a link
 * that worked may evict at maxPeers (finding 3); eviction order by useful traffic only
 * (finding 4); inbound rate per device, not per link (finding 5); "not exposed" counted by
 * users within a window, and observable (finding 6); decisions cost answer tokens, idle
 * default below the lifetime, decision timers cleared (finding 7). In-memory peer
 * connections with manual timers and injected clocks (node-datachannel itself where its
 * class is the subject); every wait is on an event, with a deadline.
 */
import { createRequire } from 'node:module';
import * as polyfill from 'node-datachannel/polyfill';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import {
  ANSWER_BURST,
  ANSWER_REFILL_MS,
  createWebRtcTransport,
  encodeDirect,
  encodeSignal,
  looksLikeNodeDatachannel,
  MAX_LINK_LIFETIME_MS,
  NOT_EXPOSED_USERS,
  NOT_EXPOSED_WINDOW_MS,
  sendsFromHostDespiteRelayPolicy,
  type RTCPeerConnectionConstructor,
} from '../src/index.js';
import { frameToDirect } from '../src/direct-codec.js';
import { direct, utf8, viaRelay, type Device } from './helpers/fake-world.js';
import { MemoryHub } from './helpers/memory-hub.js';
import { within } from './helpers/stack.js';
import { bobAtMaxPeers, CONNECT_MS, freshId, worldsClosedAfterEach } from './helpers/worlds.js';

const TURN = [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'p' }];
const cjsPolyfill = createRequire(import.meta.url)('node-datachannel/polyfill') as typeof polyfill;

const world = worldsClosedAfterEach();
afterEach(() => {
  vi.restoreAllMocks(); // before the worlds close (hooks stack)
});

function refusal(fn: () => unknown): unknown {
  try {
    const t = fn() as { close?: () => Promise<void> };
    void t?.close?.();
    return undefined;
  } catch (e) {
    return e;
  }
}

describe("privacy 'relay-only': node-datachannel recognised by its shape, not only by the mark (finding 1)", () => {
  const classes: [string, unknown][] = [
    ['the ESM polyfill class, unmarked', polyfill.RTCPeerConnection],
    ['the CommonJS copy (another class)', cjsPolyfill.RTCPeerConnection],
    ['a subclass of it', class Instrumented extends (polyfill.RTCPeerConnection as unknown as new (c: unknown) => object) {}],
  ];
  test.each(classes)('%s: createWebRtcTransport refuses it (INVALID_ARGUMENT, privacy); privacy off takes it', (_name, Ctor) => {
    expect(cjsPolyfill.RTCPeerConnection).not.toBe(polyfill.RTCPeerConnection);
    expect(sendsFromHostDespiteRelayPolicy(Ctor)).toBe(true);
    const e = refusal(() => createWebRtcTransport({ fallback: new MemoryHub().transport(), RTCPeerConnection: Ctor as RTCPeerConnectionConstructor, privacy: 'relay-only', iceServers: TURN }));
    expect(isDeadboltError(e, 'INVALID_ARGUMENT') && e.details.field).toBe('privacy');
    expect(String((e as Error).message)).not.toMatch(/127\.0\.0\.1|credential|\bp\b/);
    expect(refusal(() => createWebRtcTransport({ fallback: new MemoryHub().transport(), RTCPeerConnection: Ctor as RTCPeerConnectionConstructor }))).toBeUndefined();
  });

  test('the global: globalThis.RTCPeerConnection set to the polyfill class is refused in the privacy mode', () => {
    const g = globalThis as { RTCPeerConnection?: unknown };
    const before = g.RTCPeerConnection;
    g.RTCPeerConnection = polyfill.RTCPeerConnection;
    try {
      const e = refusal(() => createWebRtcTransport({ fallback: new MemoryHub().transport(), privacy: 'relay-only', iceServers: TURN }));
      expect(isDeadboltError(e, 'INVALID_ARGUMENT') && e.details.field).toBe('privacy');
    } finally {
      g.RTCPeerConnection = before;
    }
  });

  test('instances: node-datachannel’s (ESM, CommonJS) look like it; werift’s and a plain object do not', () => {
    const made = [new polyfill.RTCPeerConnection({ iceServers: [] }), new cjsPolyfill.RTCPeerConnection({ iceServers: [] })];
    try {
      for (const pc of made) expect(looksLikeNodeDatachannel(pc)).toBe(true);
    } finally {
      for (const pc of made) pc.close();
    }
    const werift = new WeriftPeerConnection({});
    expect(looksLikeNodeDatachannel(werift)).toBe(false);
    void werift.close();
    expect(sendsFromHostDespiteRelayPolicy(WeriftPeerConnection)).toBe(false);
    expect(looksLikeNodeDatachannel({ close() {} })).toBe(false);
  });

  /** A factory function (not a class with the polyfill's prototype) returning node-datachannel connections, and spies on what would gather or send. */
  function factory(): { Factory: RTCPeerConnectionConstructor; made: { close(): void; connectionState: string }[]; spies: ReturnType<typeof vi.spyOn>[] } {
    const proto = polyfill.RTCPeerConnection.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const spies = (['createOffer', 'createAnswer', 'setLocalDescription', 'setRemoteDescription'] as const).map((m) => vi.spyOn(proto, m));
    const made: { close(): void; connectionState: string }[] = [];
    function Factory(config: unknown): object {
      const pc = new polyfill.RTCPeerConnection(config as never);
      made.push(pc as never);
      return pc;
    }
    return { Factory: Factory as unknown as RTCPeerConnectionConstructor, made, spies };
  }

  test('a factory function returning node-datachannel connections: accepted at creation (it cannot be told), but the first connection is closed before any description is made, and direct links are off', async () => {
    const { Factory, made, spies } = factory();
    expect(sendsFromHostDespiteRelayPolicy(Factory)).toBe(false); // why the instance check exists
    const w = world({ sender: 'talked-before' });
    const bob = await w.device('bob', { RTCPeerConnection: Factory, privacy: 'relay-only', trustRelayPolicy: true, iceServers: TURN });
    const alice = await w.device('alice');
    expect(bob.raw.directLinksDisabled).toBeUndefined();
    expect(await within(bob.raw.preconnect(alice.address), 'the attempt')).toBe(false);
    expect(made).toHaveLength(1);
    expect(made[0]!.connectionState).toBe('closed');
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    expect(w.signals(bob.address, alice.address), 'no offer sent').toEqual([]);
    expect(bob.raw.directLinksDisabled).toMatch(/node-datachannel/);
    expect(bob.raw.directLinksDisabled).not.toMatch(/127\.0\.0\.1/);
    // Nothing more is tried, neither an offer nor an answer: no other connection made.
    await bob.transport.send([{ to: alice.address, frame: utf8('hello'), contact: true }]);
    void alice.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(alice.address, bob.address) === 1, 'alice’s offer heard');
    expect(made).toHaveLength(1);
    expect(w.signals(bob.address, alice.address)).toEqual([]);
    await w.changes.until(() => viaRelay(alice).includes('hello'), 'the frame through the relay');
  });

  test('a factory function, answering side: the offer is not applied, no answer is made or sent', async () => {
    const { Factory, made, spies } = factory();
    const w = world({ sender: 'talked-before' });
    const bob = await w.device('bob', { RTCPeerConnection: Factory, privacy: 'relay-only', trustRelayPolicy: true, iceServers: TURN });
    const carol = await w.device('carol');
    void carol.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(carol.address, bob.address) === 1, 'carol’s offer heard');
    expect(made).toHaveLength(1);
    expect(made[0]!.connectionState).toBe('closed');
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    expect(w.signals(bob.address, carol.address)).toEqual([]);
  });
});

describe('one user cannot hold every pending inbound place (finding 2)', () => {
  test('offers from one user’s devices take at most half of maxPendingOffers; another user is answered; an answered link that never opens drains its device’s answers', async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { now: () => clock }); // maxPendingOffers 4: 2 per user
    const alices: Device[] = [];
    for (let i = 1; i <= 4; i++) alices.push(await w.device('alice', {}, `d${i}`));
    // Offers written by hand: the answers reach alice's transports, which never offered, so
    // the attempts stay "connecting" at bob's end (ICE never completes).
    const hand = new (w.network.RTCPeerConnection('alice by hand'))({ iceServers: [], iceTransportPolicy: 'all' });
    const { sdp } = await hand.createOffer();
    let sequence = 1;
    const offer = (from: Device): void => w.bus.inject(bob.address, from.address, encodeSignal({ type: 'offer', connectionId: freshId(), sequence: sequence++, sdp: sdp! }));
    for (const a of alices) offer(a);
    expect(bob.pcs(), 'two of alice’s four answered').toHaveLength(2);
    expect(w.signals(bob.address, alices[2]!.address)).toEqual([]);
    // Another user's offer still finds a place.
    const carol = await w.device('carol');
    expect(await within(carol.raw.preconnect(bob.address), 'carol’s link')).toBe(true);
    // Alice's two answered attempts time out at bob's end...
    expect(bob.timers.fire(CONNECT_MS)).toBe(2);
    expect(bob.pcs().slice(0, 2).every((p) => p.closed)).toBe(true);
    // ...and cost those devices their answers: d1 offering again at once is ignored,
    offer(alices[0]!);
    expect(bob.pcs()).toHaveLength(3);
    // while d3, whose offer found no place before, is answered now,
    offer(alices[2]!);
    expect(bob.pcs()).toHaveLength(4);
    // and d1 again once its bucket has refilled one answer.
    clock += ANSWER_REFILL_MS;
    offer(alices[0]!);
    expect(bob.pcs()).toHaveLength(5);
  });
});

describe('the retry after a link that worked, at maxPeers (finding 3)', () => {
  test('peers’ offers took the slots freed by the lifetime: the retry closes a link a peer initiated and sets the wanted link up again', async () => {
    const w = world({ sender: 'talked-before' });
    const bob = await w.device('bob', { maxPeers: 2 });
    const alice = await w.device('alice');
    const carol = await w.device('carol');
    expect(await within(bob.raw.preconnect(alice.address), 'bob’s link to alice')).toBe(true);
    expect(await within(carol.raw.preconnect(bob.address), 'carol’s link')).toBe(true);
    // Both links reach their lifetime at bob's end (the manual timers fire by delay).
    expect(bob.timers.fire(MAX_LINK_LIFETIME_MS)).toBe(2);
    await w.changes.until(() => alice.raw.path(bob.address) === 'relay', 'alice’s end closed');
    // Before bob's retry, two peers' offers take both slots.
    const dave = await w.device('dave');
    const erin = await w.device('erin');
    expect(await within(dave.raw.preconnect(bob.address), 'dave’s link')).toBe(true);
    expect(await within(erin.raw.preconnect(bob.address), 'erin’s link')).toBe(true);
    const before = bob.pcs().length;
    expect(bob.timers.fire(0), 'the retry after a link that worked').toBe(1);
    expect(bob.pcs(), 'the retry made an attempt').toHaveLength(before + 1);
    await w.linked(bob, alice);
    expect([bob.raw.path(dave.address), bob.raw.path(erin.address)].filter((p) => p === 'relay')).toHaveLength(1);
    expect(bob.paths.find((p) => p.reason === 'closed for a link this device wants (maxPeers)')).toBeDefined();
  });
});

describe('eviction order by traffic useful to this device (finding 4)', () => {
  test('a peer writing junk (ACKs naming no frame, a NACKed frame) does not keep its link recent: it is evicted, not the quiet honest one', async () => {
    const w = world({ sender: 'talked-before' });
    // Bob wrote to carol (his own demand ranks the links; hostile review 5, finding 2).
    const { bob, carol, dave, erin, later } = await bobAtMaxPeers(w);
    later(1000);
    // Dave writes on his channel by hand: ACKs for frames bob never sent, and a frame
    // naming a device list bob does not hold (NACKed, not processed).
    const daveChannel = dave.pcs()[0]!.channel!;
    const bobToDave = bob.pcs().find((p) => p.remote === dave.pcs()[0])!.channel!;
    for (let id = 900; id < 910; id++) daveChannel.send(encodeDirect({ type: 'ack', frameId: id }));
    for (const chunk of frameToDirect(1, 7, utf8('junk'))) daveChannel.send(chunk);
    await w.changes.until(() => bobToDave.sent.length >= 2, 'bob’s RECEIVED and NACK to dave');
    expect(direct(bob)).toEqual([]);
    later(1000);
    expect(await within(bob.raw.preconnect(erin.address), 'bob’s link to erin')).toBe(true);
    expect(bob.raw.path(dave.address), 'dave’s link, never useful, evicted').toBe('relay');
    expect(bob.raw.path(carol.address)).toBe('direct');
  });
});

describe('inbound rate per device, not per link (finding 5)', () => {
  test('a new link of the same device does not get a fresh burst', async () => {
    const w = world({ sender: 'talked-before' });
    const clock = 1_000_000; // bob's clock does not move: no refill
    const alice = await w.device('alice');
    const bob = await w.device('bob', { now: () => clock, maxInboundFramesPerSecond: 2, inboundFrameBurst: 3 });
    expect(await within(alice.raw.preconnect(bob.address), 'the link')).toBe(true);
    await w.linked(alice, bob);
    await within(alice.transport.send(['1', '2', '3'].map((t) => ({ to: bob.address, frame: utf8(t) }))), 'the sends');
    expect(direct(bob)).toEqual(['1', '2', '3']);
    // The link reaches its lifetime and alice sets up a new one.
    expect(alice.timers.fire(MAX_LINK_LIFETIME_MS)).toBe(1);
    await w.changes.until(() => bob.raw.path(alice.address) === 'relay', 'bob’s end closed');
    alice.timers.fire(0);
    await w.linked(alice, bob);
    await within(alice.transport.send(['4', '5'].map((t) => ({ to: bob.address, frame: utf8(t) }))), 'the sends');
    expect(direct(bob)).toEqual(['1', '2', '3']);
    expect(viaRelay(bob)).toEqual(['4', '5']);
  });
});

describe('"not exposed" counted by users, within a window, and observable (finding 6)', () => {
  test(`one user’s devices count once; ${NOT_EXPOSED_USERS} users within the window switch direct links off (directLinksDisabled) for NOT_EXPOSED_WINDOW_MS, then they are tried again`, async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { remoteFingerprint: () => undefined, now: () => clock });
    const carols: Device[] = [];
    for (let i = 1; i <= 3; i++) carols.push(await w.device('carol', {}, `d${i}`));
    for (const c of carols) expect(await within(bob.raw.preconnect(c.address), 'the attempt')).toBe(false);
    expect(bob.raw.directLinksDisabled, 'three devices of one user').toBeUndefined();
    const others: Device[] = [];
    for (const name of ['dave', 'erin', 'frank']) others.push(await w.device(name));
    expect(await within(bob.raw.preconnect(others[0]!.address), 'the attempt')).toBe(false);
    expect(bob.raw.directLinksDisabled).toBeUndefined();
    expect(await within(bob.raw.preconnect(others[1]!.address), 'the attempt')).toBe(false);
    expect(bob.raw.directLinksDisabled, `${NOT_EXPOSED_USERS} users`).toMatch(/not exposed/);
    const made = bob.pcs().length;
    expect(await within(bob.raw.preconnect(others[2]!.address), 'the attempt')).toBe(false);
    expect(bob.pcs()).toHaveLength(made);
    clock += NOT_EXPOSED_WINDOW_MS;
    expect(bob.raw.directLinksDisabled).toBeUndefined();
    void bob.raw.preconnect(others[2]!.address);
    expect(bob.pcs(), 'tried again after the window').toHaveLength(made + 1);
  });

  test('refusals further apart than the window do not add up', async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { remoteFingerprint: () => undefined, now: () => clock });
    for (const name of ['carol', 'dave', 'erin']) {
      const p = await w.device(name);
      expect(await within(bob.raw.preconnect(p.address), 'the attempt')).toBe(false);
      clock += NOT_EXPOSED_WINDOW_MS / 2 + 1;
    }
    expect(bob.raw.directLinksDisabled).toBeUndefined();
  });
});

describe('smaller (finding 7)', () => {
  test('(a) every acceptOffer call costs an answer token: refused offers ask at most ANSWER_BURST times at once', async () => {
    const w = world();
    let clock = 1_000_000;
    let asked = 0;
    const bob = await w.device('bob', {
      now: () => clock,
      acceptOffer: () => {
        asked++;
        return false;
      },
    });
    const alice = await w.device('alice');
    const hand = new (w.network.RTCPeerConnection('alice by hand'))({ iceServers: [], iceTransportPolicy: 'all' });
    const { sdp } = await hand.createOffer();
    let sequence = 1;
    const offer = (): void => w.bus.inject(bob.address, alice.address, encodeSignal({ type: 'offer', connectionId: freshId(), sequence: sequence++, sdp: sdp! }));
    for (let i = 0; i < ANSWER_BURST + 3; i++) offer();
    expect(asked).toBe(ANSWER_BURST);
    clock += ANSWER_REFILL_MS;
    offer();
    offer();
    expect(asked).toBe(ANSWER_BURST + 1);
  });

  test('(b) the default idleTimeoutMs (60 s) is below the link lifetime: an unused link closes idle', async () => {
    const IDLE_DEFAULT_MS = 60_000;
    expect(IDLE_DEFAULT_MS).toBeLessThan(MAX_LINK_LIFETIME_MS);
    const w = world({ sender: 'talked-before' });
    const alice = await w.device('alice');
    const bob = await w.device('bob');
    expect(await within(alice.raw.preconnect(bob.address), 'the link')).toBe(true);
    expect(bob.timers.fire(IDLE_DEFAULT_MS)).toBe(1);
    expect(bob.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'idle' });
  });

  test('(d) a pending decision’s timer is cleared by closeLinksTo and by close()', async () => {
    const w = world();
    const bob = await w.device('bob', { acceptOffer: () => new Promise<boolean>(() => {}) });
    const carol = await w.device('carol');
    const dave = await w.device('dave');
    void carol.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(carol.address, bob.address) === 1, 'carol’s offer heard');
    expect(bob.timers.count(CONNECT_MS), 'the decision’s timer').toBe(1);
    expect(bob.raw.closeLinksTo('carol', [])).toBe(0);
    expect(bob.timers.count(CONNECT_MS)).toBe(0);
    void dave.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(dave.address, bob.address) === 1, 'dave’s offer heard');
    expect(bob.timers.count(CONNECT_MS)).toBe(1);
    await bob.transport.close();
    expect(bob.timers.count(CONNECT_MS)).toBe(0);
  });
});
