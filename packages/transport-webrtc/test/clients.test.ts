/**
 * Real clients (`@deadbolt/core`) on the WebRTC transport in Node, over a real relay on
 * loopback: a first message from someone never written to gets no direct link, a
 * conversation both ways does; the direct path carrying messages without the relay,
 * falling back when a device goes offline and coming back when it returns, with every
 * message exactly once; signalling sealed end to end (the relay sees none of the
 * descriptions); the DTLS fingerprint check; werift talking to node-datachannel.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { descriptions, startClient, startRecordingProxy, startRelay, text, within, type TestClient, type TestRelay } from './helpers/stack.js';
import { sdpCandidates, sdpFingerprints } from '../src/index.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  descriptions.local.length = 0;
  descriptions.remote.length = 0;
});

async function relay(): Promise<TestRelay> {
  const r = await startRelay();
  cleanup.push(() => r.close());
  return r;
}

async function client(...args: Parameters<typeof startClient>): Promise<TestClient> {
  const c = await startClient(...args);
  cleanup.push(() => c.close());
  return c;
}

/** Sends `bodies` one after another and returns the stored (sent) messages. */
async function sendAll(from: TestClient, to: TestClient, bodies: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const b of bodies) ids.push((await from.client.send(to.address.userId, b)).id);
  return ids;
}

/** Every id in `ids` was received by `c` exactly once (events and history). */
async function expectExactlyOnce(c: TestClient, peer: TestClient, ids: string[]): Promise<void> {
  await c.until(() => ids.every((id) => c.received.some((m) => m.id === id)), `${ids.length} messages at ${c.address.userId}`);
  for (const id of ids) expect(c.received.filter((m) => m.id === id), `message ${id} events`).toHaveLength(1);
  const history = await c.client.history(peer.address.userId, { limit: 1000 });
  for (const id of ids) expect(history.filter((m) => m.id === id), `message ${id} in history`).toHaveLength(1);
}

describe('direct path between two online clients', () => {
  test('a first message gets no direct link: the recipient answers no offer from a user it never wrote to; once it replies, the path turns direct and messages no longer reach the relay', async () => {
    const r = await relay();
    const alice = await client(r, 'alice', 'laptop');
    const bob = await client(r, 'bob', 'phone');
    // The first message sets up the session and goes through the relay; it also starts an attempt.
    const first = await sendAll(alice, bob, ['hello bob']);
    await expectExactlyOnce(bob, alice, first);
    // Alice's offer reached bob sealed; bob's device, which never wrote to alice (a
    // stranger, as far as it knows), answered nothing: no description, not even a BYE.
    expect(await within(alice.transport.preconnect(bob.address), "alice's attempt to end")).toBe(false);
    expect(r.count(alice.address, bob.address), 'the message and at least one offer').toBeGreaterThanOrEqual(2);
    expect(r.count(bob.address, alice.address), 'anything from bob').toBe(0);
    expect(descriptions.remote, 'descriptions applied anywhere').toEqual([]);
    expect(bob.paths).toEqual([]);
    // Bob replies: the conversation goes both ways, and the link opens.
    const reply = await sendAll(bob, alice, ['hello alice']);
    await expectExactlyOnce(alice, bob, reply);
    await alice.waitPath(bob.address, 'direct');
    await bob.waitPath(alice.address, 'direct');
    expect(alice.paths.find((p) => p.path === 'direct')?.fingerprintCheck).toBe('matched');

    const storedBefore = r.enqueued.length;
    const toBob = await sendAll(alice, bob, Array.from({ length: 20 }, (_, i) => `a→b ${i}`));
    const toAlice = await sendAll(bob, alice, Array.from({ length: 20 }, (_, i) => `b→a ${i}`));
    await expectExactlyOnce(bob, alice, toBob);
    await expectExactlyOnce(alice, bob, toAlice);
    // Not one of the 40 messages was stored by the relay: they went over the data channel.
    expect(r.enqueued.length - storedBefore, 'messages the relay stored while the path was direct').toBe(0);
    expect(bob.received.filter((m) => m.id !== first[0]).map(text)).toEqual(toBob.map((_, i) => `a→b ${i}`));
    // Each side's copy is marked sent only after the peer processed it.
    const history = await alice.client.history('bob', { limit: 100 });
    expect(history.filter((m) => m.direction === 'outgoing').every((m) => m.status === 'sent')).toBe(true);
  });

  test('a stranger who adds this device to a group (so core sends to her on its own) gets no direct link: no offer, no answer, the path stays relay (review 2, finding 1)', async () => {
    const r = await relay();
    const bob = await client(r, 'bob', 'phone');
    const mallory = await client(r, 'mallory', 'laptop');
    const got = new Promise<void>((resolve) => bob.client.on('group-message-received', () => resolve()));
    const group = await mallory.client.createGroup({ name: 'not asked for', members: ['bob'] });
    await (await mallory.client.group(group.id))!.send('join us');
    await within(got, 'the group message at bob');
    // Bob answers in the group: his core sends his sender key to her on its own.
    const gotReply = new Promise<void>((resolve) => mallory.client.on('group-message-received', () => resolve()));
    const before = r.count(bob.address, mallory.address);
    await (await bob.client.group(group.id))!.send('who is this?');
    await within(gotReply, 'the reply at mallory');
    expect(r.count(bob.address, mallory.address) - before, 'bob’s core sent to her pairwise on its own').toBeGreaterThan(0);
    // She tries to get a link: bob neither offered one nor answers hers.
    expect(await within(mallory.transport.preconnect(bob.address), 'her attempt to end')).toBe(false);
    expect(bob.signalsSent.filter((s) => s.to.userId === 'mallory'), 'no offer, answer or BYE to her').toEqual([]);
    expect(bob.transport.path(mallory.address)).toBe('relay');
    expect(bob.paths).toEqual([]);
    expect(descriptions.remote, 'no description applied anywhere').toEqual([]);
  });

  test('a device that only receives, whose application accepts its contacts: messages fall back to the relay while it is offline; when it returns they arrive, and the path turns direct again; none lost or duplicated', async () => {
    const r = await relay();
    const alice = await client(r, 'alice', 'laptop');
    // Bob never writes to alice; his application answers offers from its contacts (acceptOffer).
    const contacts = { transport: { acceptOffer: (peer: { userId: string }) => peer.userId === 'alice' } };
    let bob = await client(r, 'bob', 'phone', contacts);
    const sent: string[] = [...(await sendAll(alice, bob, ['hello']))];
    await alice.waitPath(bob.address, 'direct');
    sent.push(...(await sendAll(alice, bob, ['direct 1', 'direct 2'])));
    await expectExactlyOnce(bob, alice, sent);

    // Bob goes offline (his client closes; his storage stays).
    const backing = bob.backing;
    await bob.close();
    await alice.waitPath(bob.address, 'relay');
    const storedBefore = r.count(alice.address, bob.address);
    const whileAway = await sendAll(alice, bob, Array.from({ length: 5 }, (_, i) => `while away ${i}`));
    sent.push(...whileAway);
    // Each send resolved only once the relay stored it.
    expect(r.count(alice.address, bob.address) - storedBefore).toBeGreaterThanOrEqual(5);

    // Bob returns with the same device and storage: the relay delivers what waited.
    bob = await client(r, 'bob', 'phone', { backing, ...contacts });
    await expectExactlyOnce(bob, alice, whileAway);

    // Direct delivery resumes: the next message starts a link (or one is already coming).
    const back = await sendAll(alice, bob, ['back']);
    sent.push(...back);
    await alice.waitPath(bob.address, 'direct');
    await bob.waitPath(alice.address, 'direct');
    const storedDirect = r.count(alice.address, bob.address);
    const resumed = await sendAll(alice, bob, Array.from({ length: 5 }, (_, i) => `resumed ${i}`));
    sent.push(...resumed);
    expect(r.count(alice.address, bob.address), 'nothing stored once direct again').toBe(storedDirect);
    await expectExactlyOnce(bob, alice, [...whileAway, ...back, ...resumed]);
    // Across every switch: every message Bob's device holds, once each.
    const history = await bob.client.history('alice', { limit: 1000 });
    expect(new Set(history.map((m) => m.id)).size).toBe(history.length);
    expect(history.map((m) => m.id).sort()).toEqual([...sent].sort());
  });
});

describe('signalling through the relay', () => {
  test('the relay only ever saw sealed signalling: no description, credential, fingerprint or address in anything it carried', async () => {
    const r = await relay();
    // HTTP long polling: the relay's traffic is unmasked both ways, so a plain search of the
    // bytes finds anything that was there (WebSocket client frames are masked).
    const proxy = await startRecordingProxy(r);
    cleanup.push(() => proxy.close());
    const alice = await client(proxy, 'alice', 'laptop', { fallback: 'http-polling' });
    const bob = await client(proxy, 'bob', 'phone', { fallback: 'http-polling' });
    await sendAll(alice, bob, ['first message, through the relay']);
    await sendAll(bob, alice, ['a reply, through the relay']); // a conversation both ways: links are answered
    await alice.waitPath(bob.address, 'direct');
    await bob.waitPath(alice.address, 'direct');
    const ids = await sendAll(bob, alice, ['over the data channel']);
    await expectExactlyOnce(alice, bob, ids);

    // What the peer connections produced and applied: both ends' descriptions went through.
    expect(descriptions.local.length).toBeGreaterThanOrEqual(2);
    expect(descriptions.remote.length).toBeGreaterThanOrEqual(2);
    const secrets = new Set<string>();
    for (const sdp of [...descriptions.local, ...descriptions.remote]) {
      for (const m of sdp.matchAll(/^a=ice-(?:ufrag|pwd):(\S+)/gm)) secrets.add(m[1]!);
      for (const m of sdp.matchAll(/^a=fingerprint:\S+ (\S+)/gm)) secrets.add(m[1]!);
      for (const c of sdpCandidates(sdp)) {
        const [, , , , address, port] = c.split(' ');
        secrets.add(`${address} ${port}`);
      }
    }
    const needles: [string, Buffer][] = [...secrets].map((s) => [s, Buffer.from(s)]);
    for (const sdp of descriptions.local) {
      for (const fp of sdpFingerprints(sdp)) needles.push([`raw fingerprint ${Buffer.from(fp.value).toString('hex').slice(0, 8)}…`, Buffer.from(fp.value)]);
    }
    for (const marker of ['v=0\r\n', 'a=candidate', 'webrtc-datachannel', 'a=fingerprint', 'ice-pwd', 'over the data channel', 'first message', 'a reply']) needles.push([marker, Buffer.from(marker)]);
    const seen = Buffer.concat([...proxy.upstream, ...proxy.downstream]);
    const stored = Buffer.concat(r.enqueued.map((e) => Buffer.from(e.frame)));
    expect(seen.length).toBeGreaterThan(10_000); // the relay traffic, polls and all
    for (const [what, bytes] of needles) {
      expect(seen.includes(bytes), `the relay's traffic contains ${what}`).toBe(false);
      expect(stored.includes(bytes), `the relay's store contains ${what}`).toBe(false);
    }
    // And the signalling did go through it: sealed, as pairwise messages of the sessions.
    const signals = r.enqueued.length - 2; // all but the first message and the reply
    expect(signals).toBeGreaterThanOrEqual(2);
    expect(r.enqueued.every((e) => e.frame[0] === 1 && (e.frame[1] === 0x01 || e.frame[1] === 0x02))).toBe(true); // version 1, PrekeyMessage or RatchetMessage (protocol §2.2)
  });
});

describe('implementations and configuration', () => {
  test('werift (pure TypeScript) and node-datachannel (libdatachannel) set up a direct link with each other', async () => {
    const r = await relay();
    const alice = await client(r, 'alice', 'laptop', { implementation: 'werift' });
    const bob = await client(r, 'bob', 'phone', { implementation: 'node-datachannel' });
    await sendAll(alice, bob, ['hello']);
    await sendAll(bob, alice, ['hello back']);
    await alice.waitPath(bob.address, 'direct');
    await bob.waitPath(alice.address, 'direct');
    // werift's DTLS socket exposes the peer's certificate, libdatachannel its fingerprint: both checked.
    expect(alice.paths.find((p) => p.path === 'direct')?.fingerprintCheck).toBe('matched');
    expect(bob.paths.find((p) => p.path === 'direct')?.fingerprintCheck).toBe('matched');
    const before = r.enqueued.length;
    const big = 'x'.repeat(100_000); // several chunks on the channel
    const ids = [...(await sendAll(alice, bob, ['a', big])), ...(await sendAll(bob, alice, ['b']))];
    await expectExactlyOnce(bob, alice, ids.slice(0, 2));
    await expectExactlyOnce(alice, bob, ids.slice(2));
    expect(r.enqueued.length - before).toBe(0);
    expect(bob.received.map(text)).toContain(big);
  });

  test('configured by name through core: { adapter: "webrtc", options: { fallback: { adapter: "websocket" } } }', async () => {
    const r = await relay();
    const { createClient } = await import('@deadbolt/core');
    const { createMemoryStorage } = await import('@deadbolt/storage-memory');
    const make = (userId: string) =>
      createClient({
        userId,
        deviceId: 'd1',
        storage: createMemoryStorage(),
        transport: { adapter: 'webrtc', options: { fallback: { adapter: 'websocket', options: { url: r.wsUrl } }, implementation: 'node-datachannel', backoff: { initialMs: 50, maxMs: 1000 } } },
        loadModule: (name) => import(name),
      });
    const alice = await make('alice');
    const bob = await make('bob');
    cleanup.push(() => alice.close(), () => bob.close());
    const got: string[] = [];
    let wake: (() => void) | undefined;
    bob.on('message-received', (m) => {
      got.push(new TextDecoder().decode(m.body));
      wake?.();
    });
    await alice.start();
    await bob.start();
    await alice.send('bob', 'by configuration');
    await within(new Promise<void>((resolve) => (got.length > 0 ? resolve() : (wake = resolve))), 'the message');
    expect(got).toEqual(['by configuration']);
  });

  test('a relay transport cannot be replaced by itself: webrtc as its own fallback is refused', async () => {
    const { createTransportAdapter } = await import('../src/index.js');
    let error: unknown;
    try {
      await createTransportAdapter({ fallback: { adapter: 'webrtc', options: {} }, implementation: 'node-datachannel' });
    } catch (e) {
      error = e;
    }
    expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field).toBe('fallback.adapter');
  });
});
