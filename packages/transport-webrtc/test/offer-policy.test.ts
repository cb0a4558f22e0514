/**
 * Which offers a device answers, and when links end, on in-memory peer connections with
 * manual timers (hostile review, findings 3, 4 and 2): a stranger's offer is not answered
 * (nothing leaves the device: no description, no reply), a device that talked with the
 * offerer is, `acceptOffer` decides when given, offers waiting are bounded; a stale
 * offer never replaces a working link; idle links close; links to devices a user's list
 * no longer names close when core says so. Every wait is on an event, with a deadline.
 */
import { describe, expect, test } from 'vitest';
import { isDeadboltError, type Address } from '@deadbolt/spec';
import { createWebRtcTransport, decodeSignal, encodeSignal, type OfferContext } from '../src/index.js';
import { direct, utf8, viaRelay } from './helpers/fake-world.js';
import { MemoryHub } from './helpers/memory-hub.js';
import { within } from './helpers/stack.js';
import { CONNECT_MS, freshId, worldsClosedAfterEach } from './helpers/worlds.js';

const world = worldsClosedAfterEach();

/** A promise and its resolver, for decisions a test makes later. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('whose offers are answered (finding 3)', () => {
  test('an offer from a user this device never sent to, the channel saying nothing more (as core today): no answer, no description made, no reply at all', async () => {
    const w = world(); // the stand-in for core says nothing of the sender
    const stranger = await w.device('mallory');
    const bob = await w.device('bob');
    const attempt = stranger.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(stranger.address, bob.address) === 1, 'bob to hear the offer');
    expect(bob.pcs(), 'no peer connection, so no description with addresses').toEqual([]);
    expect(w.signals(bob.address, stranger.address), 'no answer, not even a BYE').toEqual([]);
    expect(stranger.timers.fire(CONNECT_MS), "the stranger's attempt times out").toBe(1);
    expect(await within(attempt, 'the attempt to end')).toBe(false);
    expect(bob.paths).toEqual([]);
    // Frames still reach bob, through the relay.
    await stranger.transport.send([{ to: bob.address, frame: utf8('hello') }]);
    await w.changes.until(() => bob.frames.length === 1, 'the frame');
    expect(viaRelay(bob)).toEqual(['hello']);
  });

  test('the signalling channel decides for users this device never sent to: flagged first contact, not answered; flagged not first contact, answered, so a device that never sends still gets a direct path', async () => {
    const w = world({ sender: (from) => ({ firstContact: from.userId !== 'carol' }) });
    const stranger = await w.device('mallory');
    const carol = await w.device('carol');
    const bob = await w.device('bob');
    void stranger.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(stranger.address, bob.address) === 1, "bob to hear the stranger's offer");
    expect(bob.pcs()).toEqual([]);
    expect(w.signals(bob.address, stranger.address)).toEqual([]);
    // Carol, whom bob's device talked with before (it says so), is answered though bob never sent here.
    expect(await within(carol.raw.preconnect(bob.address), 'the link to carol')).toBe(true);
    await w.linked(carol, bob);
    await carol.transport.send([{ to: bob.address, frame: utf8('direct') }]);
    expect(direct(bob)).toEqual(['direct']);
    expect(bob.pcs()).toHaveLength(1);
  });

  test('a user this device sent to is answered, from any of its devices; an offer refused before is ended with a BYE when this device offers itself, and the link opens', async () => {
    const w = world();
    const alice = await w.device('alice', {}, 'laptop');
    const bob = await w.device('bob');
    // Alice offers first: bob never sent to alice, so no answer.
    void alice.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(alice.address, bob.address) === 1, 'bob to hear the offer');
    expect(bob.pcs()).toEqual([]);
    const refused = w.signals(alice.address, bob.address)[0]!;
    // Bob replies (through the relay): a conversation both ways now. Bob's own attempt
    // first ends alice's refused one (which would otherwise win or lose against his by
    // connection id), then offers; alice answers and the link opens.
    await bob.transport.send([{ to: alice.address, frame: utf8('hi alice'), contact: true }]);
    await w.linked(alice, bob);
    expect(w.signals(bob.address, alice.address).map((s) => s.type)).toEqual(['bye', 'offer']);
    expect(w.signals(bob.address, alice.address)[0]!.connectionId).toEqual(refused.connectionId);
    expect(alice.pcs().map((p) => p.closed)).toEqual([true, false]);
    await alice.transport.send([{ to: bob.address, frame: utf8('over the link') }]);
    expect(direct(bob)).toEqual(['over the link']);
    // Another device of alice's, never seen before: bob sent to its user, so it is answered.
    const phone = await w.device('alice', {}, 'phone');
    expect(await within(phone.raw.preconnect(bob.address), "the link to alice's phone")).toBe(true);
  });

  test('acceptOffer decides, asynchronously, with what the transport knows; a refusal, an error or a rejection leaves the offer unanswered', async () => {
    const w = world({ sender: () => ({ firstContact: true }) });
    const calls: { peer: Address; context: OfferContext }[] = [];
    const verdicts: (() => boolean | Promise<boolean>)[] = [
      () => Promise.resolve(false),
      () => {
        throw new Error('the application failed');
      },
      () => Promise.reject(new Error('the application failed later')),
      () => Promise.resolve(true),
      () => true,
    ];
    const bob = await w.device('bob', {
      acceptOffer: (peer, context) => {
        calls.push({ peer, context });
        return verdicts[calls.length - 1]!();
      },
    });
    const alice = await w.device('alice');
    for (let i = 1; i <= 3; i++) {
      const attempt = alice.raw.preconnect(bob.address);
      await w.changes.until(() => calls.length === i, `decision ${i}`);
      await Promise.resolve(); // the verdict settles
      expect(bob.pcs(), `after decision ${i}`).toEqual([]);
      expect(alice.timers.fire(CONNECT_MS)).toBe(1);
      expect(await within(attempt, `attempt ${i} to end`)).toBe(false);
    }
    expect(w.signals(bob.address, alice.address), 'refusals say nothing').toEqual([]);
    expect(await within(alice.raw.preconnect(bob.address), 'the link once accepted')).toBe(true);
    expect(calls.map((c) => c.peer)).toEqual([alice.address, alice.address, alice.address, alice.address]);
    expect(calls[0]!.context).toEqual({ sentTo: false, initiated: false, firstContact: true });
    // Once bob sent to alice, the context says so (the link ends, and alice offers again).
    await bob.transport.send([{ to: alice.address, frame: utf8('to alice'), contact: true }]);
    expect(direct(alice)).toEqual(['to alice']);
    bob.raw.closeLinksTo('alice', []);
    await w.changes.until(() => alice.raw.path(bob.address) === 'relay', "alice's end to close");
    expect(await within(alice.raw.preconnect(bob.address), 'a link again')).toBe(true);
    expect(calls.at(-1)!.context).toEqual({ sentTo: true, initiated: false, firstContact: true });
  });

  test('offers waiting are bounded: one per device (a newer offer replaces the older one), maxPendingOffers in all, answered links not open yet included; more are ignored', async () => {
    // Not first contacts: strangers' offers have a single place of their own (review 5,
    // finding 5, test/review-5.test.ts); this is the contacts' pool.
    const w = world({ sender: 'talked-before' });
    const decisions: { peer: Address; decide: (ok: boolean) => void }[] = [];
    const bob = await w.device('bob', {
      maxPendingOffers: 2,
      acceptOffer: (peer) => {
        const d = deferred<boolean>();
        decisions.push({ peer, decide: d.resolve });
        return d.promise;
      },
    });
    const carol = await w.device('carol');
    const dave = await w.device('dave');
    const erin = await w.device('erin');
    /** `d` offers again once its previous attempt is ended by its connection bound. */
    const offerAgain = async (d: typeof carol, count: number): Promise<void> => {
      d.timers.fire(CONNECT_MS);
      void d.raw.preconnect(bob.address);
      await w.changes.until(() => w.offersHeard(d.address, bob.address) === count, `offer ${count} of ${d.address.userId}`);
    };
    for (const d of [carol, dave, erin]) void d.raw.preconnect(bob.address);
    await w.changes.until(() => [carol, dave, erin].every((d) => w.offersHeard(d.address, bob.address) === 1), 'three offers at bob');
    expect(decisions.map((d) => d.peer.userId), 'two decisions; the third offer ignored').toEqual(['carol', 'dave']);
    // Carol offers again: her newer offer replaces her pending one (no third place taken).
    await offerAgain(carol, 2);
    expect(decisions.map((d) => d.peer.userId)).toEqual(['carol', 'dave', 'carol']);
    decisions[0]!.decide(true); // the replaced offer: accepted too late, nothing happens
    await Promise.resolve();
    expect(bob.pcs()).toEqual([]);
    // Carol goes offline, and bob accepts her offer: his answer waits in her mailbox, and
    // his link to her, negotiating, still takes a place.
    await carol.transport.close();
    decisions[2]!.decide(true);
    await w.changes.until(() => bob.pcs().length === 1 && w.signals(bob.address, carol.address).length === 1, 'the answer to carol');
    await offerAgain(erin, 2);
    expect(decisions).toHaveLength(3);
    // Bob's attempt with carol ends (its bound), and dave's offer, undecided for as long,
    // counts as refused (review 3, finding 4): places are free again.
    expect(bob.timers.fire(CONNECT_MS)).toBe(2);
    await offerAgain(erin, 3);
    expect(decisions.map((d) => d.peer.userId)).toEqual(['carol', 'dave', 'carol', 'erin']);
  });
});

describe('automatic sends (review 2, finding 1)', () => {
  test('a send core makes on its own (no contact) neither offers a link nor gets the user’s offers answered; a contact send does both', async () => {
    const w = world(); // the stand-in for core says nothing of senders: only what bob sent decides
    const bob = await w.device('bob');
    const mallory = await w.device('mallory');
    // Core sends to mallory on its own (a group key request to the sender of a held
    // message, in a group she added bob to): through the relay, and nothing else.
    await bob.transport.send([{ to: mallory.address, frame: utf8('key request') }]);
    await w.changes.until(() => viaRelay(mallory).includes('key request'), 'the frame');
    bob.timers.fire(0); // any retry would be due now
    expect(bob.pcs(), 'no offer: no description with addresses made').toEqual([]);
    expect(w.signals(bob.address, mallory.address), 'nothing signalled to her').toEqual([]);
    // Her offer is not answered: bob never chose to talk to her.
    const attempt = mallory.raw.preconnect(bob.address);
    await w.changes.until(() => w.offersHeard(mallory.address, bob.address) === 1, 'bob to hear her offer');
    expect(bob.pcs()).toEqual([]);
    expect(w.signals(bob.address, mallory.address)).toEqual([]);
    expect(mallory.timers.fire(CONNECT_MS)).toBe(1);
    expect(await within(attempt, 'her attempt to end')).toBe(false);
    // `contact` is only an explicit true.
    await bob.transport.send([{ to: mallory.address, frame: utf8('not a contact either'), contact: 'yes' as unknown as boolean }]);
    expect(bob.pcs()).toEqual([]);

    // The user writes to her (client.send marks it): bob offers, and answers her offers.
    await bob.transport.send([{ to: mallory.address, frame: utf8('hello'), contact: true }]);
    expect(bob.pcs(), 'an offer').toHaveLength(1);
    await w.linked(bob, mallory);
    bob.raw.closeLinksTo('mallory', []);
    await w.changes.until(() => mallory.raw.path(bob.address) === 'relay', 'her end to close');
    expect(await within(mallory.raw.preconnect(bob.address), 'her offer answered')).toBe(true);
  });
});

describe('stale offers (finding 4)', () => {
  test('an offer not newer than the one that set up the working link (replayed, or delivered late) is ignored; a newer one replaces the link', async () => {
    const w = world({ sender: 'talked-before' });
    const alice = await w.device('alice');
    const bob = await w.device('bob');
    expect(await within(alice.raw.preconnect(bob.address), 'the link')).toBe(true);
    await w.linked(alice, bob);
    const offer = w.signals(alice.address, bob.address).find((s) => s.type === 'offer');
    const answer = w.signals(bob.address, alice.address).find((s) => s.type === 'answer');
    if (offer?.type !== 'offer' || answer?.type !== 'answer') throw new Error('no offer and answer');
    const signalled = w.bus.sealed.length;

    // The very offer that set the link up, again (a replay): not a word.
    w.bus.inject(bob.address, alice.address, encodeSignal(offer));
    expect(w.bus.sealed.length, 'nothing signalled for a replay').toBe(signalled);
    // To bob (who answered): alice's offers from before the one bob answered, or as old.
    const late = [freshId(), freshId(), freshId()];
    [offer.sequence - 1, offer.sequence, 1].forEach((sequence, i) => {
      w.bus.inject(bob.address, alice.address, encodeSignal({ type: 'offer', connectionId: late[i]!, sequence, sdp: offer.sdp }));
    });
    // To alice (who offered): bob's offers from before his answer.
    const lateFromBob = freshId();
    w.bus.inject(alice.address, bob.address, encodeSignal({ type: 'offer', connectionId: lateFromBob, sequence: answer.sequence - 1, sdp: answer.sdp }));
    expect(bob.pcs(), 'no new connection at bob').toHaveLength(1);
    expect(alice.pcs(), 'no new connection at alice').toHaveLength(1);
    // Each side ends the first stale offer with a BYE saying which sequence it holds (review
    // 2, finding 3: a restarted sender learns it), once per link in FLOOR_BYE_INTERVAL_MS.
    // The senders' current attempts are not these: they ignore the BYEs, the link stays.
    await w.changes.until(() => w.bus.sealed.length === signalled + 2, 'two BYEs');
    expect(w.signals(bob.address, alice.address).slice(-1)).toEqual([{ type: 'bye', connectionId: late[0], sequence: expect.any(Number), floor: offer.sequence }]);
    expect(w.signals(alice.address, bob.address).slice(-1)).toEqual([{ type: 'bye', connectionId: lateFromBob, sequence: expect.any(Number), floor: answer.sequence }]);
    await w.changes.until(() => w.bus.heard.filter((h) => decodeSignal(h.payload).type === 'bye').length === 2, 'the BYEs heard');
    expect([alice.raw.path(bob.address), bob.raw.path(alice.address)]).toEqual(['direct', 'direct']);
    await alice.transport.send([{ to: bob.address, frame: utf8('still direct') }]);
    expect(direct(bob)).toEqual(['still direct']);
    expect(bob.paths.filter((p) => p.path === 'relay')).toEqual([]);

    // A newer offer (alice's device set up a new attempt): it replaces the link.
    w.bus.inject(bob.address, alice.address, encodeSignal({ type: 'offer', connectionId: freshId(), sequence: offer.sequence + 1, sdp: offer.sdp }));
    expect(bob.pcs()).toHaveLength(2);
    expect(bob.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'replaced by the other side' });
  });
});

describe('a peer whose clock went back (review 2, finding 3)', () => {
  test('a restarted device whose sequences went backwards gets a new link promptly: its stale offer is ended with a BYE carrying the sequence held, and its next offer (above it) replaces the dead link', async () => {
    const w = world({ sender: 'talked-before' });
    let aliceClock = 5_000_000_000_000;
    const alice = await w.device('alice', { now: () => aliceClock });
    const bob = await w.device('bob');
    expect(await within(alice.raw.preconnect(bob.address), 'the link')).toBe(true);
    await w.linked(alice, bob);
    const first = w.signals(alice.address, bob.address).find((s) => s.type === 'offer')!;
    // Alice's device dies without a word (her end never tells bob's), and comes back with its
    // clock an hour behind: a new transport, nothing remembered.
    alice.pcs()[0]!.channel!.peer = undefined;
    alice.pcs()[0]!.remote = undefined;
    await alice.transport.close();
    expect(bob.raw.path(alice.address), "bob's end of the dead link is still up").toBe('direct');
    aliceClock -= 3_600_000;
    const again = await w.device('alice', { now: () => aliceClock });
    const attempt = again.raw.preconnect(bob.address);
    // Her offer is older by sequence than the one bob holds: it does not replace his link,
    // but he says so at once, with the sequence he holds.
    await w.changes.until(() => w.signals(bob.address, alice.address).some((s) => s.type === 'bye' && s.floor !== undefined), 'the BYE with a floor');
    const stale = w.signals(again.address, bob.address).filter((s) => s.type === 'offer').at(-1)!;
    expect(stale.sequence).toBeLessThan(first.sequence);
    expect(w.signals(bob.address, alice.address).at(-1)).toEqual({ type: 'bye', connectionId: stale.connectionId, sequence: expect.any(Number), floor: first.sequence });
    expect(await within(attempt, 'the stale attempt to end')).toBe(false);
    // Her retry (after its backoff, 0 here) offers above the floor: bob's dead link is replaced.
    again.timers.fire(0);
    await w.linked(again, bob);
    const next = w.signals(again.address, bob.address).filter((s) => s.type === 'offer').at(-1)!;
    expect(next.sequence).toBe(first.sequence + 1);
    expect(bob.paths.filter((p) => p.path === 'relay').map((p) => p.reason)).toEqual(['replaced by the other side']);
    await again.transport.send([{ to: bob.address, frame: utf8('after the restart') }]);
    expect(direct(bob)).toEqual(['after the restart']);
    // Her sequences to bob keep increasing from there; a BYE naming another attempt than
    // hers (a late old offer's) would not have moved them (see the stale offers test).
    expect(again.raw.path(bob.address)).toBe('direct');
  });
});

describe('when links end', () => {
  test('a link that carried nothing for idleTimeoutMs closes (busy is not idle), and no attempt follows until the next send', async () => {
    const IDLE_MS = 90_000; // not MAX_LINK_LIFETIME_MS: the manual timers fire by delay
    const w = world({ sender: 'talked-before' });
    const alice = await w.device('alice', { idleTimeoutMs: IDLE_MS });
    const bob = await w.device('bob', { idleTimeoutMs: IDLE_MS });
    expect(await within(alice.raw.preconnect(bob.address), 'the link')).toBe(true);
    await w.linked(alice, bob);
    // Busy: a frame waiting for bob's handler keeps the link, at both ends.
    const gate = deferred<void>();
    bob.handler = async (frame) => {
      await gate.promise;
      bob.frames.push(frame);
      w.changes.poke();
    };
    const sending = alice.transport.send([{ to: bob.address, frame: utf8('slow') }]);
    await w.changes.until(() => bob.pcs()[0]!.channel!.sent.length === 1, 'RECEIVED from bob');
    expect(alice.timers.fire(IDLE_MS) + bob.timers.fire(IDLE_MS)).toBe(2);
    expect([alice.raw.path(bob.address), bob.raw.path(alice.address)]).toEqual(['direct', 'direct']);
    gate.resolve();
    await within(sending, 'the send');
    expect(direct(bob)).toEqual(['slow']);
    // Idle now.
    expect(alice.timers.fire(IDLE_MS)).toBe(1);
    expect(alice.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'idle' });
    await w.changes.until(() => bob.raw.path(alice.address) === 'relay', "bob's end to close");
    alice.timers.fire(0); // any retry would be due now
    expect(alice.pcs()).toHaveLength(1);
    // The next send goes through the relay and sets up a link again.
    await alice.transport.send([{ to: bob.address, frame: utf8('later'), contact: true }]);
    expect(alice.pcs()).toHaveLength(2);
    await w.changes.until(() => viaRelay(bob).includes('later'), 'the frame through the relay');
  });

  test('closeLinksTo: links to devices the user’s list no longer names close at once, their pending offers are dropped, nothing is retried with them; listed devices keep theirs', async () => {
    const w = world({ sender: 'talked-before' });
    const decide: ((ok: boolean) => void)[] = [];
    const alice = await w.device('alice', {
      acceptOffer: (peer) => {
        if (peer.deviceId !== 'tablet') return true;
        const d = deferred<boolean>();
        decide.push(d.resolve);
        return d.promise;
      },
    });
    const phone = await w.device('bob', {}, 'phone');
    const laptop = await w.device('bob', {}, 'laptop');
    const tablet = await w.device('bob', {}, 'tablet');
    expect(await within(alice.raw.preconnect(phone.address), 'the link to the phone')).toBe(true);
    expect(await within(laptop.raw.preconnect(alice.address), 'the link to the laptop')).toBe(true);
    void tablet.raw.preconnect(alice.address);
    await w.changes.until(() => decide.length === 1, "the tablet's offer being decided");
    const pcsBefore = alice.pcs().length;

    // Bob's list now names the laptop only (the phone and the tablet were revoked).
    expect(alice.raw.closeLinksTo('bob', ['laptop'])).toBe(1);
    expect(alice.raw.path(phone.address)).toBe('relay');
    expect(alice.paths.at(-1)).toMatchObject({ peer: phone.address, path: 'relay', reason: 'device removed from its user’s list' });
    expect(alice.raw.path(laptop.address)).toBe('direct');
    decide[0]!(true); // too late: the tablet is no longer bob's
    await Promise.resolve();
    alice.timers.fire(0); // any retry would be due now
    expect(alice.pcs()).toHaveLength(pcsBefore);
    expect(alice.pcs().filter((p) => !p.closed)).toHaveLength(1);
    await alice.transport.send([{ to: laptop.address, frame: utf8('to the laptop') }]);
    expect(direct(laptop)).toEqual(['to the laptop']);
    expect(alice.raw.closeLinksTo('carol', [])).toBe(0);
    let error: unknown;
    try {
      alice.raw.closeLinksTo('bob', 'laptop' as unknown as string[]);
    } catch (e) {
      error = e;
    }
    expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field).toBe('keepDeviceIds');
  });

  test('options: acceptOffer must be a function, requireFingerprintCheck a boolean, the new bounds positive', () => {
    for (const [field, value] of [
      ['acceptOffer', true],
      ['requireFingerprintCheck', 'yes'],
      ['maxPendingOffers', 0],
      ['maxInboundBytes', -1],
      ['idleTimeoutMs', Number.NaN],
    ] as const) {
      let error: unknown;
      try {
        createWebRtcTransport({ fallback: new MemoryHub().transport(), RTCPeerConnection: class {} as never, ...({ [field]: value } as object) });
      } catch (e) {
        error = e;
      }
      expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field, field).toBe(field);
    }
  });
});
