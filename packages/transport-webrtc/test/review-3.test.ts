/**
 * Hostile review 3, on in-memory peer connections with manual timers and injected clocks:
 * one accepted contact cannot take every link slot nor churn its link (finding 2), a
 * link's inbound rate is bounded and the excess goes through the relay (finding 3), an
 * undecided offer frees its slot (finding 4), "not exposed" refusals with a few devices
 * stop direct links altogether (finding 5), and links are closed and set up again at the
 * 2-minute lifetime (finding 8). Every wait is on an event, with a deadline.
 */
import { describe, expect, test } from 'vitest';
import type { Address } from '@deadbolt/spec';
import { ANSWER_BURST, ANSWER_REFILL_MS, encodeSignal, MAX_LINK_LIFETIME_MS, NOT_EXPOSED_USERS } from '../src/index.js';
import { FINGERPRINT_NOT_EXPOSED } from '../src/peer-link.js';
import { direct, utf8, viaRelay, World, type Device } from './helpers/fake-world.js';
import { within } from './helpers/stack.js';
import { bobAtMaxPeers, CONNECT_MS, freshId, worldsClosedAfterEach } from './helpers/worlds.js';

const world = worldsClosedAfterEach();

describe('one contact cannot take every slot nor churn its link (finding 2)', () => {
  test('links with one user’s devices are capped (maxLinksPerUser, default 4): the fifth device’s offer gets a BYE; another user still gets a link', async () => {
    const w = world({ sender: 'talked-before' }); // every offer is from a contact
    const bob = await w.device('bob');
    const alices: Device[] = [];
    for (let i = 1; i <= 5; i++) alices.push(await w.device('alice', {}, `d${i}`));
    for (const a of alices.slice(0, 4)) expect(await within(a.raw.preconnect(bob.address), `the link to ${a.address.deviceId}`)).toBe(true);
    expect(await within(alices[4]!.raw.preconnect(bob.address), 'the fifth attempt to end')).toBe(false);
    expect(w.signals(bob.address, alices[4]!.address).map((s) => s.type)).toEqual(['bye']);
    expect(bob.pcs().filter((p) => !p.closed)).toHaveLength(4);
    const carol = await w.device('carol');
    expect(await within(carol.raw.preconnect(bob.address), 'the link to carol')).toBe(true);
    // And this device's own wants are capped the same way: no offer to a fifth of alice's devices.
    await bob.transport.send([{ to: alices[4]!.address, frame: utf8('to the fifth'), contact: true }]);
    expect(bob.pcs().filter((p) => !p.closed)).toHaveLength(5);
    await w.changes.until(() => viaRelay(alices[4]!).includes('to the fifth'), 'the frame through the relay');
  });

  test(`one device's offers are answered ANSWER_BURST (${ANSWER_BURST}) at once, then one per ANSWER_REFILL_MS; an offer beyond that is ignored before the working link is touched`, async () => {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const bob = await w.device('bob', { now: () => clock });
    const alice = await w.device('alice');
    // Alice's offers, written by hand (her own transport never offered, so it ignores the answers).
    const pc = new (w.network.RTCPeerConnection('alice/d1 by hand'))({ iceServers: [], iceTransportPolicy: 'all' });
    const { sdp } = await pc.createOffer();
    let sequence = 1;
    const offer = (): void => w.bus.inject(bob.address, alice.address, encodeSignal({ type: 'offer', connectionId: freshId(), sequence: sequence++, sdp: sdp! }));
    const answered = (): number => bob.pcs().length;

    for (let i = 1; i <= ANSWER_BURST; i++) {
      offer();
      expect(answered(), `offer ${i}`).toBe(i);
    }
    expect(bob.pcs().slice(0, -1).every((p) => p.closed), 'each replaced the one before').toBe(true);
    offer(); // at once again: ignored, the link it would replace stays
    expect(answered()).toBe(ANSWER_BURST);
    expect(bob.pcs().at(-1)!.closed).toBe(false);
    clock += ANSWER_REFILL_MS - 1;
    offer();
    expect(answered()).toBe(ANSWER_BURST);
    clock += 1;
    offer();
    expect(answered()).toBe(ANSWER_BURST + 1);
    offer();
    expect(answered(), 'one per ANSWER_REFILL_MS').toBe(ANSWER_BURST + 1);
    // Sustained: six a minute.
    for (let i = 0; i < 6; i++) {
      clock += ANSWER_REFILL_MS;
      offer();
      offer();
    }
    expect(answered()).toBe(ANSWER_BURST + 1 + 6);
    // The limit is per device: another of alice's devices is answered meanwhile.
    const phone = await w.device('alice', {}, 'phone');
    expect(await within(phone.raw.preconnect(bob.address), 'the link to the phone')).toBe(true);
  });

  test('at maxPeers, a link this device wants (preconnect, a contact send) closes the least recently used link a peer initiated; its own links are never closed for it', async () => {
    const w = world({ sender: 'talked-before' });
    // Bob wrote to carol himself (his own demand; review 5, finding 2): dave's link is now
    // the one bob wanted least recently, whatever carol or dave send.
    const { bob, carol, dave, erin, later } = await bobAtMaxPeers(w);
    const frank = await w.device('frank');
    later(1000);
    expect(await within(bob.raw.preconnect(erin.address), 'bob’s link to erin')).toBe(true);
    expect(bob.raw.path(dave.address)).toBe('relay');
    expect(bob.raw.path(carol.address)).toBe('direct');
    expect(bob.paths.find((p) => p.path === 'relay')).toMatchObject({ peer: dave.address, reason: 'closed for a link this device wants (maxPeers)' });
    // A contact send evicts too: carol's link (the only one a peer initiated) makes room.
    await bob.transport.send([{ to: frank.address, frame: utf8('to frank'), contact: true }]);
    await w.linked(bob, frank);
    expect(bob.raw.path(carol.address)).toBe('relay');
    // Now both links are bob's own: nothing is closed for another, the attempt does not start.
    const before = bob.pcs().length;
    expect(await within(bob.raw.preconnect(carol.address), 'the attempt')).toBe(false);
    expect(bob.pcs()).toHaveLength(before);
    expect([bob.raw.path(erin.address), bob.raw.path(frank.address)]).toEqual(['direct', 'direct']);
  });
});

describe('a link’s inbound rate (finding 3)', () => {
  async function linked(bobOptions: Parameters<World['device']>[1]): Promise<{ w: World; alice: Device; bob: Device; later: (ms: number) => void }> {
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const alice = await w.device('alice');
    const bob = await w.device('bob', { now: () => clock, ...bobOptions });
    expect(await within(alice.raw.preconnect(bob.address), 'the link')).toBe(true);
    await w.linked(alice, bob);
    return { w, alice, bob, later: (ms) => (clock += ms) };
  }
  const frames = (to: Address, tags: string[]) => tags.map((t) => ({ to, frame: utf8(t) }));

  test('frames beyond maxInboundFramesPerSecond (burst inboundFrameBurst) are NACKed and come through the relay; the bucket refills with the clock', async () => {
    const { alice, bob, later } = await linked({ maxInboundFramesPerSecond: 2, inboundFrameBurst: 3 });
    await within(alice.transport.send(frames(bob.address, ['1', '2', '3', '4', '5'])), 'the sends');
    expect(direct(bob)).toEqual(['1', '2', '3']);
    expect(viaRelay(bob)).toEqual(['4', '5']);
    expect(alice.raw.path(bob.address), 'the link stays').toBe('direct');
    later(1000); // two frames' worth
    await within(alice.transport.send(frames(bob.address, ['6', '7', '8'])), 'the sends');
    expect(direct(bob)).toEqual(['1', '2', '3', '6', '7']);
    expect(viaRelay(bob)).toEqual(['4', '5', '8']);
  });

  test('bytes beyond maxInboundBytesPerSecond are NACKed and come through the relay', async () => {
    const { alice, bob, later } = await linked({ maxInboundBytesPerSecond: 300_000 });
    const big = (tag: number) => ({ to: bob.address, frame: new Uint8Array(100_000).fill(tag) });
    const tags = (rtc: boolean): number[] => bob.frames.filter((f) => f.id.startsWith('rtc:') === rtc).map((f) => f.bytes[0]!);
    await within(alice.transport.send([big(1), big(2), big(3), big(4)]), 'the sends');
    expect(tags(true)).toEqual([1, 2, 3]);
    expect(tags(false)).toEqual([4]);
    later(500); // 150 kB's worth
    await within(alice.transport.send([big(5), big(6)]), 'the sends');
    expect(tags(true)).toEqual([1, 2, 3, 5]);
    expect(tags(false)).toEqual([4, 6]);
  });
});

describe('undecided offers (finding 4)', () => {
  test('an acceptOffer decision not made within connectTimeoutMs counts as refused and frees its place; a late yes changes nothing', async () => {
    const w = world();
    const decisions: { peer: Address; decide: (ok: boolean) => void }[] = [];
    const bob = await w.device('bob', {
      maxPendingOffers: 1,
      acceptOffer: (peer) =>
        new Promise<boolean>((resolve) => {
          decisions.push({ peer, decide: resolve });
        }),
    });
    const carol = await w.device('carol');
    const dave = await w.device('dave');
    void carol.raw.preconnect(bob.address);
    await w.changes.until(() => decisions.length === 1, 'carol’s offer being decided');
    void dave.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(dave.address, bob.address) === 1, 'dave’s offer heard');
    expect(decisions.map((d) => d.peer.userId), 'the only place is taken').toEqual(['carol']);
    // Nobody decides on carol's offer: it is refused when connectTimeoutMs has passed.
    expect(bob.timers.fire(CONNECT_MS)).toBe(1);
    decisions[0]!.decide(true); // too late
    await Promise.resolve();
    expect(bob.pcs()).toEqual([]);
    expect(w.signals(bob.address, carol.address), 'refused without a word').toEqual([]);
    // Dave offers again (his attempt ended): the place is free.
    dave.timers.fire(CONNECT_MS);
    void dave.raw.preconnect(bob.address);
    await w.changes.until(() => decisions.length === 2, 'dave’s offer being decided');
    expect(decisions[1]!.peer.userId).toBe('dave');
    decisions[1]!.decide(true);
    await w.linked(dave, bob);
  });
});

describe('"not exposed" refusals are this device’s own (finding 5)', () => {
  test(`after links refused as not exposed with ${NOT_EXPOSED_USERS} users (a device each), no more offers are made or answered at all`, async () => {
    const w = world({ sender: 'talked-before' });
    // Bob's implementation shows no remote certificate (no reader): every link he checks is refused.
    const bob = await w.device('bob', { remoteFingerprint: () => undefined });
    const peers: Device[] = [];
    for (const name of ['carol', 'dave', 'erin', 'frank', 'grace']) peers.push(await w.device(name));
    for (const p of peers.slice(0, NOT_EXPOSED_USERS)) {
      expect(await within(bob.raw.preconnect(p.address), `the attempt with ${p.address.userId}`)).toBe(false);
      await w.changes.until(() => bob.pcs().every((pc) => pc.closed), 'bob’s end closed');
    }
    expect(bob.pcs()).toHaveLength(NOT_EXPOSED_USERS);
    // Not another attempt with a new peer, neither his own nor an answer.
    expect(await within(bob.raw.preconnect(peers[3]!.address), 'the attempt')).toBe(false);
    await bob.transport.send([{ to: peers[3]!.address, frame: utf8('hello'), contact: true }]);
    void peers[4]!.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(peers[4]!.address, bob.address) === 1, 'grace’s offer heard');
    expect(bob.pcs(), 'no new peer connection').toHaveLength(NOT_EXPOSED_USERS);
    expect(w.signals(bob.address, peers[4]!.address)).toEqual([]);
    await w.changes.until(() => viaRelay(peers[3]!).includes('hello'), 'the frame through the relay');
    expect(FINGERPRINT_NOT_EXPOSED).toContain('requireFingerprintCheck');
  });

  test('refusals with fewer users stop only those devices', async () => {
    const w = world({ sender: 'talked-before' });
    const bob = await w.device('bob', { remoteFingerprint: () => undefined });
    const peers: Device[] = [];
    for (const name of ['carol', 'dave', 'erin']) peers.push(await w.device(name));
    for (const p of peers.slice(0, NOT_EXPOSED_USERS - 1)) expect(await within(bob.raw.preconnect(p.address), 'the attempt')).toBe(false);
    const before = bob.pcs().length;
    void bob.raw.preconnect(peers[NOT_EXPOSED_USERS - 1]!.address);
    expect(bob.pcs(), 'another device is still tried').toHaveLength(before + 1);
  });
});

describe('the link lifetime (finding 8)', () => {
  test('a link is closed at MAX_LINK_LIFETIME_MS (2 minutes) and, still wanted, set up again through the relay’s signalling at once', async () => {
    expect(MAX_LINK_LIFETIME_MS).toBe(2 * 60_000);
    const w = world({ sender: 'talked-before' });
    let clock = 1_000_000;
    const now = (): number => clock;
    const alice = await w.device('alice', { now });
    const bob = await w.device('bob', { now });
    expect(await within(alice.raw.preconnect(bob.address), 'the link')).toBe(true);
    await w.linked(alice, bob);
    const offers = (): number => w.signals(alice.address, bob.address).filter((s) => s.type === 'offer').length;
    expect(offers()).toBe(1);
    clock += MAX_LINK_LIFETIME_MS;
    expect(alice.timers.fire(MAX_LINK_LIFETIME_MS), 'the lifetime').toBe(1);
    expect(alice.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'link lifetime reached' });
    await w.changes.until(() => bob.raw.path(alice.address) === 'relay', 'bob’s end closed');
    alice.timers.fire(0); // the retry after a link that worked: no backoff
    await w.linked(alice, bob);
    expect(offers(), 'signalled again').toBe(2);
    await alice.transport.send([{ to: bob.address, frame: utf8('on the new link') }]);
    expect(direct(bob)).toEqual(['on the new link']);
  });
});
