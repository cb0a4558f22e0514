/**
 * The data channel's limits, on in-memory peer connections whose buffers a test can stop
 * draining, with manual timers (hostile review, findings 5 and 6): inbound frames bounded
 * by bytes as well as by count; every write, control messages included, held while the
 * channel's buffer is above its high-water mark, and the link given up (frames to the
 * relay) when the buffer does not drain; and no link where the implementation cannot show
 * the remote certificate, unless the application says so. Every wait is on an event.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { decodeDirect, REFUSAL_MS, type RTCPeerConnectionLike } from '../src/index.js';
import type { FakePeerConnection } from './helpers/fake-peer-connection.js';
import { direct, utf8, viaRelay, World } from './helpers/fake-world.js';
import { within } from './helpers/stack.js';

const RECEIPT_MS = 5000; // the default receiptTimeoutMs, as a manual timer

const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});

async function linked(options: Parameters<World['device']>[1] = {}, bOptions: Parameters<World['device']>[1] = {}): Promise<{ w: World; a: Awaited<ReturnType<World['device']>>; b: Awaited<ReturnType<World['device']>> }> {
  const w = new World({ sender: 'talked-before' });
  worlds.push(w);
  const a = await w.device('alice', options);
  const b = await w.device('bob', bOptions);
  expect(await within(a.raw.preconnect(b.address), 'the link')).toBe(true);
  await w.linked(a, b);
  return { w, a, b };
}

/** The direct-framing type names of what a channel end wrote. */
const written = (sent: Uint8Array[]): string[] => sent.map((m) => decodeDirect(m).type);

describe('inbound bounds (finding 5)', () => {
  test('frames waiting for the handler are bounded by bytes too: beyond maxInboundBytes they are refused on the link (a too large one without being kept) and come through the relay', async () => {
    const { w, a, b } = await linked({}, { maxInboundBytes: 100_000 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    b.handler = async (frame) => {
      if (frame.bytes.length === 40_000 && frame.bytes[0] === 0) await gate;
      b.frames.push(frame);
      w.changes.poke();
    };
    const frame = (tag: number, size: number): Uint8Array => new Uint8Array(size).fill(tag);
    // f0 (40 kB) waits for the handler; f1 (40 kB) fits beside it; f2 (40 kB) would make
    // 120 kB waiting; f3 (150 kB) is over the bound on its own.
    const sending = a.transport.send([frame(0, 40_000), frame(1, 40_000), frame(2, 40_000), frame(3, 150_000)].map((f) => ({ to: b.address, frame: f })));
    await w.changes.until(() => w.hub.stored.filter((m) => m.to.userId === 'bob' && (m.bytes[0] === 2 || m.bytes[0] === 3)).length === 2, 'f2 and f3 through the relay path');
    release();
    await within(sending, 'the sends');
    await w.changes.until(() => b.frames.length === 4, 'four frames');
    const tags = (ids: 'rtc' | 'relay'): number[] => b.frames.filter((f) => f.id.startsWith('rtc:') === (ids === 'rtc')).map((f) => f.bytes[0]!).sort();
    expect(tags('rtc')).toEqual([0, 1]);
    expect(tags('relay')).toEqual([2, 3]);
    expect(written(b.pcs()[0]!.channel!.sent).filter((t) => t === 'nack')).toHaveLength(2);
  });
});

describe('writes and the channel buffer (finding 5)', () => {
  test('RECEIVED, ACK and NACK wait while the buffer is above the high-water mark, and are written once bufferedamountlow fires', async () => {
    const { w, a, b } = await linked({}, { maxBufferedBytes: 64 * 1024 });
    const channel = b.pcs()[0]!.channel!;
    channel.stall(64 * 1024 + 1); // bob's buffer is full: nothing he writes may go now
    const before = channel.sent.length;
    const sending = a.transport.send([{ to: b.address, frame: utf8('while full') }]);
    await w.changes.until(() => b.frames.length === 1, "bob's handler to get the frame");
    await Promise.resolve();
    expect(written(channel.sent.slice(before)), 'no control written while the buffer is full').toEqual([]);
    channel.drain();
    await within(sending, 'the send, acknowledged once the buffer drained');
    expect(written(channel.sent.slice(before))).toEqual(['received', 'ack']);
    expect(direct(b)).toEqual(['while full']);
    expect(viaRelay(b)).toEqual([]);
  });

  test('a buffer that does not drain: the write waits, and after receiptTimeoutMs without room the link closes and the frame goes through the relay', async () => {
    const { w, a, b } = await linked({ maxBufferedBytes: 64 * 1024 });
    const channel = a.pcs()[0]!.channel!;
    channel.stall(64 * 1024 + 1);
    const before = channel.sent.length;
    const sending = a.transport.send([{ to: b.address, frame: utf8('stuck') }]);
    await Promise.resolve();
    expect(channel.sent.length, 'nothing written over the high-water mark').toBe(before);
    expect(a.timers.fire(RECEIPT_MS), 'the bound on waiting for room').toBe(1);
    await within(sending, 'the send, through the relay');
    expect(a.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'the channel buffer did not drain in time' });
    await w.changes.until(() => b.frames.length === 1, 'the frame');
    expect(viaRelay(b)).toEqual(['stuck']);
  });

  test('a peer that keeps writing but does not read: more controls waiting than the inbound bounds explain close the link', async () => {
    const { w, a, b } = await linked({}, { maxInbound: 1 });
    const channel = b.pcs()[0]!.channel!;
    channel.stall(2 * 1024 * 1024); // bob cannot write: his RECEIVED, ACK and NACK pile up
    // Alice's frames keep coming (each answered with a control bob cannot write).
    const sending = a.transport.send(Array.from({ length: 80 }, (_, i) => ({ to: b.address, frame: utf8(`f${i}`) })));
    await w.changes.until(() => b.raw.path(a.address) === 'relay', "bob's end to give the link up");
    expect(b.paths.at(-1)).toMatchObject({ path: 'relay', reason: 'the peer does not read what it is sent' });
    await within(sending, 'the sends');
    await w.changes.until(() => b.frames.length >= 80, 'every frame, one way or the other');
    expect(new Set(b.frames.map((f) => new TextDecoder().decode(f.bytes))).size).toBe(80);
  });
});

describe('the DTLS fingerprint check never fails open (finding 6)', () => {
  test('an implementation that does not expose the remote certificate: no link by default, and no more attempts; frames keep going through the relay', async () => {
    const w = new World({ sender: 'talked-before' });
    worlds.push(w);
    // Without the reader the fake peer connection exposes no certificate, like some stacks.
    const a = await w.device('alice', { remoteFingerprint: () => undefined });
    const b = await w.device('bob', { remoteFingerprint: () => undefined });
    expect(await within(a.raw.preconnect(b.address), 'the attempt')).toBe(false);
    await w.changes.until(() => [...a.pcs(), ...b.pcs()].every((p) => p.closed), 'both connections closed');
    expect([...a.paths, ...b.paths].filter((p) => p.path === 'direct')).toEqual([]);
    await a.transport.send([{ to: b.address, frame: utf8('through the relay'), contact: true }]);
    await w.changes.until(() => b.frames.length === 1, 'the frame');
    expect(viaRelay(b)).toEqual(['through the relay']);
    a.timers.fire(0); // retries would be due now
    expect(a.pcs(), 'no further attempt from a device that cannot check').toHaveLength(1);
  });

  test('a refusal is per device and ends (review 2, finding 4): one peer whose certificate cannot be read here does not turn direct delivery off for others, and is tried again after REFUSAL_MS', async () => {
    const w = new World({ sender: 'talked-before' });
    worlds.push(w);
    let clock = 1_000_000;
    // Alice cannot read the certificate of bob's connections only (his stack is the odd one).
    const reader = (pc: RTCPeerConnectionLike, algorithm: string) => ((pc as FakePeerConnection).remote?.owner === 'bob/d1' ? undefined : w.network.remoteFingerprint(pc, algorithm));
    const alice = await w.device('alice', { remoteFingerprint: reader, now: () => clock });
    const bob = await w.device('bob');
    const carol = await w.device('carol');
    expect(await within(alice.raw.preconnect(bob.address), 'the attempt with bob')).toBe(false);
    // Carol still gets a link, both ways: alice offers, and answers her offers.
    expect(await within(alice.raw.preconnect(carol.address), 'the link to carol')).toBe(true);
    alice.raw.closeLinksTo('carol', []);
    await w.changes.until(() => carol.raw.path(alice.address) === 'relay', "carol's end to close");
    expect(await within(carol.raw.preconnect(alice.address), "carol's offer answered")).toBe(true);
    // Bob: neither offered to nor answered while the refusal lasts.
    const pcs = alice.pcs().length;
    await alice.transport.send([{ to: bob.address, frame: utf8('via the relay'), contact: true }]);
    const attempt = bob.raw.preconnect(alice.address);
    await w.changes.until(() => w.offersHeard(bob.address, alice.address) === 1, "bob's offer heard");
    expect(alice.pcs(), 'no connection with bob').toHaveLength(pcs);
    bob.timers.fire(10_000);
    expect(await within(attempt, "bob's attempt to end")).toBe(false);
    // After REFUSAL_MS alice tries him again (and fails again, his stack being what it is).
    clock += REFUSAL_MS;
    await alice.transport.send([{ to: bob.address, frame: utf8('an hour later'), contact: true }]);
    expect(alice.pcs(), 'a new attempt with bob').toHaveLength(pcs + 1);
  });

  test('with requireFingerprintCheck: false the application relies on the stack alone: the link opens, marked not-exposed', async () => {
    const w = new World({ sender: 'talked-before' });
    worlds.push(w);
    const a = await w.device('alice', { remoteFingerprint: () => undefined, requireFingerprintCheck: false });
    const b = await w.device('bob', { remoteFingerprint: () => undefined, requireFingerprintCheck: false });
    expect(await within(a.raw.preconnect(b.address), 'the link')).toBe(true);
    await w.linked(a, b);
    expect(a.paths.find((p) => p.path === 'direct')).toMatchObject({ fingerprintCheck: 'not-exposed' });
    await a.transport.send([{ to: b.address, frame: utf8('direct') }]);
    expect(direct(b)).toEqual(['direct']);
  });
});
