/**
 * Hostile review 5: the privacy mode takes an allowlist of implementations (finding 1);
 * eviction ranked by this device's own demand, not by traffic (finding 2); only a link
 * lifetime buys an eviction on retry, and protocol breaks back off (finding 3); "not
 * exposed" counted at first open only, and never once this implementation exposed both
 * (finding 4); strangers' offers have a pool of their own, and a late BYE drains (finding
 * 5); drains only after an answer left, stray answers get rate-limited BYEs (finding 6);
 * attempts still connecting end when direct links are switched off (finding 7); inbound
 * rate per user on top of per device (finding 8). In-memory peer connections, manual
 * timers, injected clocks; every wait is on an event, with a deadline.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import { isDeadboltError, type Address, type SignalSenderInfo } from '@deadbolt/spec';
import * as polyfill from 'node-datachannel/polyfill';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import { ANSWER_REFILL_MS, createWebRtcTransport, encodeSignal, FLOOR_BYE_INTERVAL_MS, MAX_LINK_LIFETIME_MS, weriftImplementation, type RTCPeerConnectionConstructor } from '../src/index.js';
import { isEngineRtcPeerConnectionSource, relayPolicyBasis } from '../src/peer-connection.js';
import { PAIR_RECHECK_MS } from '../src/peer-link.js';
import { direct, utf8, viaRelay, World, type Device } from './helpers/fake-world.js';
import type { FakePeerConnection } from './helpers/fake-peer-connection.js';
import { MemoryHub } from './helpers/memory-hub.js';
import { within } from './helpers/stack.js';
import { bobAtMaxPeers, freshId, worldsClosedAfterEach } from './helpers/worlds.js';

const TURN = [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'p' }];

const world = worldsClosedAfterEach();
afterEach(() => {
  // Before the worlds close (hooks stack).
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

/** The error `createWebRtcTransport` throws with these options, or `undefined` (the transport made is closed). */
function refusal(options: Record<string, unknown>): unknown {
  try {
    void createWebRtcTransport({ fallback: new MemoryHub().transport(), iceServers: TURN, ...options } as never).close();
    return undefined;
  } catch (e) {
    return e;
  }
}

const refusedForPrivacy = (e: unknown): boolean => isDeadboltError(e, 'INVALID_ARGUMENT') && e.details.field === 'privacy' && !/127\.0\.0\.1|\bp\b/.test(String((e as Error).message));

describe("finding 1: privacy 'relay-only' takes an allowlist of implementations", () => {
  test('a wrapper holding a node-datachannel connection (no node-datachannel member anywhere) is refused; werift only as marked; anything else only with trustRelayPolicy; node-datachannel never', () => {
    // A wrapper: its own class, with a real node-datachannel connection inside.
    class Wrapper {
      readonly inner: unknown;
      constructor(config: unknown) {
        this.inner = new polyfill.RTCPeerConnection(config as never);
      }
    }
    const W = Wrapper as unknown as RTCPeerConnectionConstructor;
    expect(refusedForPrivacy(refusal({ RTCPeerConnection: W, privacy: 'relay-only' }))).toBe(true);
    expect(refusal({ RTCPeerConnection: W }), 'privacy off takes it').toBeUndefined();
    expect(refusal({ RTCPeerConnection: W, privacy: 'relay-only', trustRelayPolicy: true }), 'the application vouches for it').toBeUndefined();
    // werift unmarked is refused; marked by weriftImplementation it is taken.
    class Werift2 extends WeriftPeerConnection {}
    expect(refusedForPrivacy(refusal({ RTCPeerConnection: Werift2, privacy: 'relay-only' }))).toBe(true);
    expect(refusal({ ...weriftImplementation({ RTCPeerConnection: WeriftPeerConnection }), privacy: 'relay-only' })).toBeUndefined();
    // node-datachannel stays refused even with the assertion, and weriftImplementation does not mark it.
    expect(refusedForPrivacy(refusal({ RTCPeerConnection: polyfill.RTCPeerConnection, privacy: 'relay-only', trustRelayPolicy: true }))).toBe(true);
    expect(refusedForPrivacy(refusal({ ...weriftImplementation({ RTCPeerConnection: polyfill.RTCPeerConnection }), privacy: 'relay-only' }))).toBe(true);
    expect(isDeadboltError(refusal({ RTCPeerConnection: W, privacy: 'relay-only', trustRelayPolicy: 'yes' }), 'INVALID_ARGUMENT')).toBe(true);
  });

  test('the platform’s own class qualifies only in a browser, never in a server runtime however it is dressed up (review 6, finding 2)', () => {
    // Node with what jsdom, happy-dom or a shim add (Node 21+ has navigator.userAgent
    // itself): still not a browser, so no global qualifies without trustRelayPolicy.
    vi.stubGlobal('navigator', { userAgent: 'Mozilla/5.0 (test)' });
    vi.stubGlobal('window', {});
    vi.stubGlobal('self', globalThis);
    for (const Global of [Map, new Proxy(Map, {}), Map.bind(null), class RTCPeerConnection {}]) {
      vi.stubGlobal('RTCPeerConnection', Global);
      expect(refusedForPrivacy(refusal({ privacy: 'relay-only' })), String(Global)).toBe(true);
      expect(relayPolicyBasis(Global as never, false)).toBeUndefined();
    }
    // The engine's class is recognised by its own source text under its own name: a Proxy
    // or a bound function prints "[native code]" too, but with no name.
    expect(isEngineRtcPeerConnectionSource('function RTCPeerConnection() { [native code] }')).toBe(true);
    expect(isEngineRtcPeerConnectionSource('function webkitRTCPeerConnection() { [native code] }')).toBe(true);
    expect(isEngineRtcPeerConnectionSource(Function.prototype.toString.call(new Proxy(Map, {})))).toBe(false);
    expect(isEngineRtcPeerConnectionSource(Function.prototype.toString.call(Map.bind(null)))).toBe(false);
    expect(isEngineRtcPeerConnectionSource('function Map() { [native code] }')).toBe(false);
    expect(isEngineRtcPeerConnectionSource('class RTCPeerConnection extends Base {}')).toBe(false);
    // (The browser's own class, and a subclass of it, qualify in real Chromium:
    // test/chromium-privacy.test.ts opens a relay-only link with a recording subclass.)
  });

  test('a connection reporting another iceTransportPolicy than relay is closed before anything is made, and direct links are off', async () => {
    const w = world({ sender: 'talked-before' });
    const Fake = w.network.RTCPeerConnection('bob/d1');
    const Relaxed = class extends (Fake as unknown as new (c: unknown) => object) {
      getConfiguration(): { iceTransportPolicy: string } {
        return { iceTransportPolicy: 'all' };
      }
    } as unknown as RTCPeerConnectionConstructor;
    const bob = await w.device('bob', { RTCPeerConnection: Relaxed, privacy: 'relay-only', trustRelayPolicy: true, iceServers: TURN });
    const alice = await w.device('alice');
    expect(await within(bob.raw.preconnect(alice.address), 'the attempt')).toBe(false);
    expect(w.signals(bob.address, alice.address)).toEqual([]);
    expect(bob.raw.directLinksDisabled).toBeDefined();
    expect(bob.raw.directLinksDisabled).toMatch(/reports another iceTransportPolicy than 'relay'/);
    expect(bob.raw.directLinksDisabled).not.toMatch(/node-datachannel/);
  });
});

describe('finding 2: eviction ranked by this device’s own demand', () => {
  test('a peer whose frames the handler resolves (junk or replays core drops) every second does not keep its link: it is evicted, not the quiet contact', async () => {
    const w = world({ sender: 'talked-before' });
    const { bob, carol, dave, erin, later } = await bobAtMaxPeers(w);
    // Dave sends a frame a second; bob's handler resolves for each (as core does for frames it drops).
    for (let i = 0; i < 5; i++) {
      later(1000);
      await within(dave.transport.send([{ to: bob.address, frame: utf8(`junk ${i}`) }]), 'dave’s frame');
    }
    expect(direct(bob)).toHaveLength(5);
    expect(await within(bob.raw.preconnect(erin.address), 'bob’s link to erin')).toBe(true);
    expect(bob.raw.path(dave.address), 'dave’s link evicted').toBe('relay');
    expect(bob.raw.path(carol.address)).toBe('direct');
  });
});

/** Writes bytes that do not decode on `from`'s data channel to its peer. */
function breakProtocol(from: Device): void {
  const pc = from.pcs().at(-1)!;
  pc.channel!.send(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
}

describe('finding 3: a protocol break is a failure; only the lifetime buys an eviction on retry', () => {
  test('a peer that breaks each link it gets: the backoff grows (not reset at open)', async () => {
    const w = world({ sender: 'talked-before' });
    const clock = 1_000_000;
    const bob = await w.device('bob', { now: () => clock, random: () => 0.5 });
    const alice = await w.device('alice');
    expect(await within(bob.raw.preconnect(alice.address), 'the link')).toBe(true);
    breakProtocol(alice);
    await w.changes.until(() => bob.raw.path(alice.address) === 'relay', 'bob’s end closed');
    expect(bob.paths.at(-1)?.reason).toBe('undecodable message');
    expect(bob.timers.count(500), 'first failure: 0.5 × 1 s').toBe(1);
    expect(bob.timers.fire(500)).toBe(1);
    await w.linked(bob, alice);
    breakProtocol(alice);
    await w.changes.until(() => bob.raw.path(alice.address) === 'relay', 'bob’s end closed again');
    expect(bob.timers.count(500), 'no fast retry').toBe(0);
    expect(bob.timers.count(1000), 'second failure: 0.5 × 2 s').toBe(1);
  });

  test('a channel the peer closes is a normal end once the link lived 30 s (its lifetime, idle, shutdown look the same), a break before (review 6, finding 1)', async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { now: () => clock, random: () => 0.5 });
    const alice = await w.device('alice');
    const closeFromAlice = async (what: string): Promise<void> => {
      alice.pcs().at(-1)!.channel!.close();
      await w.changes.until(() => bob.raw.path(alice.address) === 'relay', what);
      expect(bob.paths.at(-1)?.reason).toBe('channel closed');
    };
    for (let i = 0; i < 2; i++) {
      if (i === 0) expect(await within(bob.raw.preconnect(alice.address), 'the link')).toBe(true);
      else await w.linked(bob, alice);
      clock += 60_000;
      await closeFromAlice(`alice ended link ${i + 1} after a minute`);
      expect(bob.timers.count(500), `after link ${i + 1}: the backoff starts again (0.5 × 1 s)`).toBe(1);
      expect(bob.timers.fire(500)).toBe(1);
    }
    // Closed within 30 s of opening: a break; the backoff grows.
    await w.linked(bob, alice);
    await closeFromAlice('closed at once');
    expect(bob.timers.count(500)).toBe(1);
    expect(bob.timers.fire(500)).toBe(1);
    await w.linked(bob, alice);
    await closeFromAlice('closed at once again');
    expect(bob.timers.count(500), 'no fast retry').toBe(0);
    expect(bob.timers.count(1000), 'second failure: 0.5 × 2 s').toBe(1);
  });

  test('at maxPeers, a channel the peer closed at the end of the link lifetime buys the retry an eviction, as the lifetime here would', async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { maxPeers: 2, now: () => clock });
    const alice = await w.device('alice');
    const carol = await w.device('carol');
    const dave = await w.device('dave');
    expect(await within(bob.raw.preconnect(alice.address), 'bob’s link to alice')).toBe(true);
    expect(await within(carol.raw.preconnect(bob.address), 'carol’s link')).toBe(true);
    clock += MAX_LINK_LIFETIME_MS - 5_000; // alice's lifetime timer ran out first
    alice.pcs().at(-1)!.channel!.close();
    await w.changes.until(() => bob.raw.path(alice.address) === 'relay', 'bob’s end closed');
    expect(await within(dave.raw.preconnect(bob.address), 'dave’s link')).toBe(true);
    const before = bob.pcs().length;
    expect(bob.timers.fire(0), 'the retry').toBe(1);
    expect(bob.pcs().length, 'an attempt, in the place of a link a peer initiated').toBe(before + 1);
    expect(bob.paths.find((p) => p.reason === 'closed for a link this device wants (maxPeers)')).toBeDefined();
  });

  test('at maxPeers, the retry after a link the peer broke does not close a link a peer initiated', async () => {
    const w = world({ sender: 'talked-before' });
    const bob = await w.device('bob', { maxPeers: 2 });
    const alice = await w.device('alice');
    const carol = await w.device('carol');
    const dave = await w.device('dave');
    expect(await within(bob.raw.preconnect(alice.address), 'bob’s link to alice')).toBe(true);
    expect(await within(carol.raw.preconnect(bob.address), 'carol’s link')).toBe(true);
    breakProtocol(alice);
    await w.changes.until(() => bob.raw.path(alice.address) === 'relay', 'bob’s end closed');
    expect(await within(dave.raw.preconnect(bob.address), 'dave’s link')).toBe(true);
    const before = bob.pcs().length;
    expect(bob.timers.fire(0), 'the retry').toBe(1);
    expect(bob.pcs(), 'no attempt: no slot, and no eviction').toHaveLength(before);
    expect([bob.raw.path(carol.address), bob.raw.path(dave.address)]).toEqual(['direct', 'direct']);
    expect(bob.paths.find((p) => p.reason === 'closed for a link this device wants (maxPeers)')).toBeUndefined();
  });
});

describe('finding 4: "not exposed" counted at first open only, and not once this implementation exposed both', () => {
  test('pair re-checks reading nothing with 3 users while open do not switch direct links off', async () => {
    const w = world({ sender: 'talked-before' });
    let readable = true;
    w.network.selectedPair = () => (readable ? { local: 'relay', remote: 'relay' } : undefined);
    const privacy = { privacy: 'relay-only' as const, trustRelayPolicy: true, iceServers: TURN };
    // Bob's implementation shows no certificate for dave, erin and frank (so nothing on this
    // transport ever exposed both), and the pair is read at open.
    const bob = await w.device('bob', { ...privacy, requireFingerprintCheck: false, remoteFingerprint: () => undefined });
    const peers: Device[] = [];
    for (const name of ['dave', 'erin', 'frank']) peers.push(await w.device(name, privacy));
    for (const p of peers) expect(await within(bob.raw.preconnect(p.address), 'the link')).toBe(true);
    readable = false; // the connections going down: the re-check reads nothing
    expect(bob.timers.fire(PAIR_RECHECK_MS)).toBe(3);
    await w.changes.until(() => peers.every((p) => bob.raw.path(p.address) === 'relay'), 'the links closed');
    expect(bob.raw.directLinksDisabled).toBeUndefined();
  });

  test('after one link exposed its certificate and pair, refusals with 3 other users at first open do not switch direct links off', async () => {
    const w = world({ sender: 'talked-before' });
    w.network.selectedPair = () => ({ local: 'relay', remote: 'relay' });
    const privacy = { privacy: 'relay-only' as const, trustRelayPolicy: true, iceServers: TURN };
    const bob = await w.device('bob', {
      ...privacy,
      // Carol's certificate is shown; the others' are not (their implementations, say).
      remoteFingerprint: (pc) => {
        const remote = (pc as FakePeerConnection).remote;
        return remote?.owner === 'carol/d1' ? remote.certificate : undefined;
      },
    });
    const carol = await w.device('carol', privacy);
    expect(await within(bob.raw.preconnect(carol.address), 'carol’s link')).toBe(true);
    expect(bob.paths.at(-1)?.fingerprintCheck).toBe('matched');
    for (const name of ['dave', 'erin', 'frank']) {
      const p = await w.device(name, privacy);
      expect(await within(bob.raw.preconnect(p.address), 'the attempt')).toBe(false);
    }
    expect(bob.raw.directLinksDisabled).toBeUndefined();
  });
});

/** A hand-written offer (from `from` to `to`), whose SDP names a fake connection that exists unless `broken`. */
async function handOffer(w: World, broken = false): Promise<(to: Device, from: Address, connectionId?: Uint8Array) => Uint8Array> {
  const hand = new (w.network.RTCPeerConnection('by hand'))({ iceServers: [], iceTransportPolicy: 'all' });
  const { sdp } = await hand.createOffer();
  const text = broken ? sdp!.replace(/^a=fake-pc:\d+$/m, 'a=fake-pc:999999') : sdp!;
  let sequence = 1;
  return (to, from, connectionId = freshId()) => {
    w.bus.inject(to.address, from, encodeSignal({ type: 'offer', connectionId, sequence: sequence++, sdp: text }));
    return connectionId;
  };
}

describe('finding 6: drains only after an answer left; stray answers get rate-limited BYEs', () => {
  test('an answer this device could not make does not drain the offering device’s answers', async () => {
    const w = world({ sender: 'talked-before' });
    const bob = await w.device('bob', { now: () => 1_000_000 });
    const alice = await w.device('alice');
    const broken = await handOffer(w, true);
    broken(bob, alice.address);
    await w.changes.until(() => bob.pcs().length === 1 && bob.pcs()[0]!.closed, 'bob’s attempt failed');
    expect(w.signals(bob.address, alice.address).filter((s) => s.type === 'answer')).toEqual([]);
    const good = await handOffer(w);
    good(bob, alice.address);
    expect(bob.pcs(), 'the next offer is answered at once').toHaveLength(2);
  });

  test('answers naming no attempt of this device: one BYE per device per FLOOR_BYE_INTERVAL_MS', async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { now: () => clock });
    const alice = await w.device('alice');
    expect(await within(bob.raw.preconnect(alice.address), 'bob’s link to alice')).toBe(true);
    const stray = (): void => w.bus.inject(bob.address, alice.address, encodeSignal({ type: 'answer', connectionId: freshId(), sequence: clock, sdp: 'v=0\r\n' }));
    const byes = (): number => w.signals(bob.address, alice.address).filter((s) => s.type === 'bye').length;
    for (let i = 0; i < 20; i++) stray();
    await w.changes.until(() => byes() >= 1, 'a BYE');
    clock += FLOOR_BYE_INTERVAL_MS - 1;
    stray();
    await within(Promise.resolve(), 'settle');
    expect(byes()).toBe(1);
    clock += 1;
    stray();
    await w.changes.until(() => byes() === 2, 'the next BYE after the interval');
  });
});

describe('finding 7: switching direct links off ends attempts still gathering', () => {
  test('an offer gathering when direct links go off is never sent', async () => {
    const w = world({ sender: 'talked-before' });
    const Fake = w.network.RTCPeerConnection('bob/d1') as unknown as new (c: unknown) => FakePeerConnection;
    let made = 0;
    let waiting = false;
    // The first connection gathers until the gather timer; the second looks like
    // node-datachannel's, which switches direct links off (for good).
    function Factory(config: unknown): object {
      const pc = new Fake(config);
      if (++made === 1) {
        // Gathering until the gather timer; the test hears when the transport starts waiting.
        let listener: unknown = null;
        Object.defineProperty(pc, 'iceGatheringState', { get: () => 'gathering' });
        Object.defineProperty(pc, 'onicegatheringstatechange', {
          get: () => listener,
          set: (v: unknown) => {
            listener = v;
            waiting = v !== null;
            w.changes.poke();
          },
        });
      } else Object.defineProperty(pc, '_checkConfiguration', { value: () => undefined });
      return pc;
    }
    const bob = await w.device('bob', { RTCPeerConnection: Factory as unknown as RTCPeerConnectionConstructor, privacy: 'relay-only', trustRelayPolicy: true, iceServers: TURN });
    const alice = await w.device('alice');
    const carol = await w.device('carol');
    const toAlice = bob.raw.preconnect(alice.address);
    await w.changes.until(() => waiting, 'alice’s attempt gathering');
    expect(bob.timers.count(3000), 'the gather timer').toBe(1);
    expect(await within(bob.raw.preconnect(carol.address), 'carol’s attempt')).toBe(false);
    expect(bob.raw.directLinksDisabled).toBeDefined();
    bob.timers.fire(3000);
    expect(await within(toAlice, 'alice’s attempt')).toBe(false);
    expect(w.signals(bob.address, alice.address).filter((s) => s.type === 'offer')).toEqual([]);
  });
});

describe('finding 5: strangers’ offers have a place of their own; a late BYE drains', () => {
  test('a pending stranger’s decision takes the one strangers’ place, not the contacts’ places', async () => {
    const strangers = new Set(['mallory', 'trudy']);
    const w = world({ sender: (from: Address): SignalSenderInfo => ({ firstContact: strangers.has(from.userId) }) });
    const asked: string[] = [];
    const bob = await w.device('bob', {
      acceptOffer: (peer) => {
        asked.push(`${peer.userId}/${peer.deviceId}`);
        return new Promise<boolean>(() => undefined); // decided by the user, later
      },
    });
    const offer = await handOffer(w);
    const at = (userId: string, deviceId: string): Address => ({ userId, deviceId }) as Address;
    offer(bob, at('mallory', 'd1'));
    offer(bob, at('trudy', 'd1'));
    for (const u of ['carol', 'dave']) for (const d of ['d1', 'd2']) offer(bob, at(u, d));
    expect(asked).toEqual(['mallory/d1', 'carol/d1', 'carol/d2', 'dave/d1', 'dave/d2']);
  });

  test('a BYE for an answered attempt more than 2 s after the answer drains that device’s answers; within 2 s it does not', async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { now: () => clock });
    const alice = await w.device('alice');
    const offer = await handOffer(w);
    const answered = (n: number): Promise<void> => w.changes.until(() => w.signals(bob.address, alice.address).filter((s) => s.type === 'answer').length === n, `answer ${n}`);
    const bye = (id: Uint8Array): void => w.bus.inject(bob.address, alice.address, encodeSignal({ type: 'bye', connectionId: id, sequence: clock }));
    let id = offer(bob, alice.address);
    await answered(1);
    clock += 1000;
    bye(id);
    id = offer(bob, alice.address);
    expect(bob.pcs(), 'a prompt BYE: answered again').toHaveLength(2);
    await answered(2);
    clock += 3000;
    bye(id);
    offer(bob, alice.address);
    expect(bob.pcs(), 'a late BYE drained the answers').toHaveLength(2);
    clock += ANSWER_REFILL_MS;
    offer(bob, alice.address);
    expect(bob.pcs()).toHaveLength(3);
  });
});

describe('finding 8: inbound rate per user on top of per device', () => {
  test('a user’s second device gets no fresh burst', async () => {
    const w = world({ sender: 'talked-before' });
    const clock = 1_000_000; // no refill
    const bob = await w.device('bob', { now: () => clock, maxInboundFramesPerSecond: 2, inboundFrameBurst: 3 });
    const a1 = await w.device('alice', {}, 'd1');
    const a2 = await w.device('alice', {}, 'd2');
    for (const a of [a1, a2]) expect(await within(a.raw.preconnect(bob.address), 'the link')).toBe(true);
    await within(a1.transport.send(['1', '2', '3'].map((t) => ({ to: bob.address, frame: utf8(t) }))), 'd1’s sends');
    await within(a2.transport.send(['4', '5'].map((t) => ({ to: bob.address, frame: utf8(t) }))), 'd2’s sends');
    expect(direct(bob)).toEqual(['1', '2', '3']);
    expect(viaRelay(bob)).toEqual(['4', '5']);
  });
});
