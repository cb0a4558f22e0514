/**
 * More of the client over the real stack: rate limiting surfaced as a typed error,
 * prekey replenishment when the relay says keys run low, copies to one's own other
 * devices, and undecryptable frames handled exactly like good ones on the wire (E36).
 */
import { afterEach, expect, test } from 'vitest';
import { createClient, decodeDeviceList, encodeDeviceCertificate, fromHex, linkDevice } from '@deadbolt/core';
import { encodeContent } from '../../packages/core/src/client/content.js';
import type { Relay } from '@deadbolt/relay';
import { conformanceDevice } from '@deadbolt/relay/testing';
import { decodeRelayFrame, isDeadboltError, type StorageAdapter, type TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { startFaultProxy } from './fault-proxy.js';
import { makeTransport, startClient, startRelay, text, type TestClient } from './stack.js';

let relay: Relay | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.client.close();
  await relay?.close();
  relay = undefined;
});

test('the relay\'s rate limit reaches the caller as a typed RATE_LIMITED error', async () => {
  relay = await startRelay({ limits: { messages: { burst: 5, refill: 1, intervalMs: 60_000 } } });
  const alice = await startClient('websocket', relay, 'alice', 'phone');
  const bob = await startClient('http-polling', relay, 'bob', 'laptop');
  clients.push(alice, bob);
  for (let i = 0; i < 5; i++) await alice.client.send('bob', `m${i}`);
  let caught: unknown;
  await alice.client.send('bob', 'one too many').catch((e: unknown) => (caught = e));
  expect(isDeadboltError(caught, 'RATE_LIMITED')).toBe(true);
  expect(isDeadboltError(caught, 'RATE_LIMITED') && caught.details.retryAfterMs).toBeGreaterThan(0);
  const last = (await alice.client.history('bob')).at(-1)!;
  expect([text(last), last.status]).toEqual(['one too many', 'failed']);
});

test('when the relay says prekeys run low, the client publishes more', async () => {
  relay = await startRelay({ limits: { prekeysLowThreshold: 3 } });
  const bob = await createClient({ userId: 'bob', deviceId: 'laptop', storage: createMemoryStorage(), transport: makeTransport('websocket', relay), prekeyBatch: { oneTime: 4, pqOneTime: 4 } });
  const published = new Promise<void>((resolve) => {
    let count = 0;
    bob.on('prekeys-published', () => {
      if (++count === 2) resolve(); // the first batch at start, the second on PREKEYS_LOW
    });
  });
  await bob.start();
  // Two other users start sessions with Bob, consuming his one-time keys.
  for (const user of ['alice', 'carol']) {
    const c = await startClient('http-polling', relay, user, 'd');
    clients.push(c);
    await c.client.send('bob', `hi from ${user}`);
  }
  await published;
  await bob.close();
});

/**
 * A second device of `owner`'s user, linked by code (docs/protocol.md §3.4): the relay
 * accepts only devices in the user's signed list. Returns the new device's store.
 */
async function linkedStorage(owner: TestClient, deviceId: string): Promise<StorageAdapter> {
  const transport = makeTransport('http-polling', relay!);
  const link = await linkDevice({ userId: owner.client.address.userId, deviceId, storage: createMemoryStorage(), transport });
  await owner.client.approveDevice(link.code);
  await link.completed;
  await link.transport.close();
  return link.storage;
}

/** The version of `userId`'s device list at the relay, which a raw SEND must name (relay-protocol.md "Device lists"). */
async function listVersionAt(transport: TransportAdapter, userId: string): Promise<number> {
  const { deviceList } = await transport.fetchBundles(userId);
  return deviceList === undefined ? 0 : decodeDeviceList(deviceList).listVersion;
}

test('a user\'s own other device receives a copy of each message it sends, in the right conversation', async () => {
  relay = await startRelay();
  const phone = await startClient('websocket', relay, 'alice', 'phone');
  clients.push(phone);
  const laptop = await startClient('http-polling', relay, 'alice', 'laptop', await linkedStorage(phone, 'laptop'));
  const bob = await startClient('websocket', relay, 'bob', 'desk');
  clients.push(laptop, bob);
  await phone.client.send('bob', 'sent from my phone');
  await bob.waitForMessages(1);
  await laptop.waitForMessages(1);
  const copy = laptop.received[0]!;
  expect([copy.direction, copy.conversation, text(copy)]).toEqual(['outgoing', 'bob', 'sent from my phone']);
  expect(copy.id).toBe(bob.received[0]!.id); // the same message
  // The laptop's own sends are copied to the phone too.
  await laptop.client.send('bob', 'sent from my laptop');
  await phone.waitForMessages(1);
  expect([phone.received[0]!.direction, text(phone.received[0]!)]).toEqual(['outgoing', 'sent from my laptop']);
  // (Bob reaching a device of Alice he has never heard of needs signed device lists: the
  // multi-device issue.)
});

test('undecryptable frames look the same on the wire as good ones: one acknowledgement each, nothing else (E36)', async () => {
  relay = await startRelay();
  // Bob talks to the relay through a pass-through proxy that records his side of the wire.
  const wire: { direction: 'up' | 'down'; kind: string; ids: string[] }[] = [];
  let onAck = (): void => undefined;
  const proxy = await startFaultProxy(relay.url, { drop: 0, duplicate: 0, reorder: 0 }, 1, (direction, data) => {
    const { frame } = decodeRelayFrame(data);
    const ids = frame.kind === 'deliver' ? frame.messages.map((m) => m.id) : frame.kind === 'ack' ? [...frame.ids] : [];
    wire.push({ direction, kind: frame.kind, ids });
    if (frame.kind === 'ack') onAck();
  });
  const ackedIds = (): string[] => wire.filter((w) => w.direction === 'up' && w.kind === 'ack').flatMap((w) => w.ids);
  try {
    const bob = await startClient('websocket', proxy, 'bob', 'laptop');
    const alice = await startClient('websocket', relay, 'alice', 'phone');
    clients.push(bob, alice);
    const rejected: string[] = [];
    bob.client.on('message-rejected', (r) => rejected.push(r.code));
    await alice.client.send('bob', 'genuine');
    await bob.waitForMessages(1);

    // Mallory, a registered device, sends Bob garbage and a well-formed but forged message.
    const mallory = await conformanceDevice('mallory', 'x');
    const mt = makeTransport('websocket', relay);
    await mt.connect(mallory.auth);
    const forged = new Uint8Array(42 + 4 + 400);
    forged.set([1, 2]); // version 1, RatchetMessage
    new DataView(forged.buffer).setUint32(42, 400);
    const allRejected = new Promise<void>((resolve) => bob.client.on('message-rejected', () => rejected.length === 2 && resolve()));
    const listVersion = await listVersionAt(mt, 'bob');
    await mt.send([{ to: bob.client.address, listVersion, frame: new Uint8Array([9, 9, 9]) }]);
    await mt.send([{ to: bob.client.address, listVersion, frame: forged }]);
    await allRejected;
    await alice.client.send('bob', 'genuine again');
    await bob.waitForMessages(2);
    // The acknowledgement follows the event: wait for the fourth one on the wire.
    await new Promise<void>((resolve) => {
      onAck = () => ackedIds().length >= 4 && resolve();
      onAck();
    });
    await mt.close();

    expect(rejected.sort()).toEqual(['DECODE_FAILED', 'UNKNOWN_KEY'].sort());
    // Every delivered id was acknowledged exactly once, and after the handshake Bob sent
    // nothing but acknowledgements: good and bad frames are answered alike.
    const delivered = wire.filter((w) => w.direction === 'down' && w.kind === 'deliver').flatMap((w) => w.ids);
    const acked = ackedIds();
    expect(delivered).toHaveLength(4);
    expect(acked.sort()).toEqual([...delivered].sort());
    const upKinds = new Set(wire.filter((w) => w.direction === 'up').map((w) => w.kind));
    // (Start-up also publishes Bob's device list, protocol §3.3.)
    expect([...upKinds].sort()).toEqual(['ack', 'auth', 'fetch-bundles', 'publish-device-list', 'publish-prekeys'].filter((k) => upKinds.has(k)).sort());
    expect(upKinds.has('send')).toBe(false);
  } finally {
    await proxy.close();
  }
}, 60_000);

test('a contact cannot overwrite history records, even reusing a message id and time (review H3); a second copy of one message is dropped', async () => {
  relay = await startRelay();
  const alice = await startClient('websocket', relay, 'alice', 'phone');
  const bob = await startClient('websocket', relay, 'bob', 'laptop');
  clients.push(alice, bob);
  const sent = await alice.client.send('bob', 'I will pay you 10');
  await bob.waitForMessages(1);
  // Bob forges content with Alice's message id and time, through a second connection of his device.
  const forged = encodeContent({ kind: 'direct', messageId: fromHex(sent.id), sentAt: sent.sentAt, body: new TextEncoder().encode('(replaced by bob)') });
  const wire = await bob.client.sessions.encrypt(alice.client.address, forged);
  const t = makeTransport('websocket', relay);
  await t.connect({ certificate: encodeDeviceCertificate(await bob.client.sessions.certificate()), sign: (r, c) => bob.client.sessions.signRelayChallenge(r, c) });
  const listVersion = await listVersionAt(t, 'alice');
  await t.send([{ to: alice.client.address, listVersion, frame: wire }]);
  // The same content encrypted again (a new ratchet message, same message id): what a
  // sender does when it retries a send part of which already arrived (protocol §11.2).
  await t.send([{ to: alice.client.address, listVersion, frame: await bob.client.sessions.encrypt(alice.client.address, forged) }]);
  await t.close();
  await bob.client.send('alice', 'marker'); // stored after both copies: delivered after them
  await alice.waitForMessages(2);
  const history = await alice.client.history('bob');
  expect(history.map((m) => [m.direction, text(m)])).toEqual([
    ['outgoing', 'I will pay you 10'],
    ['incoming', '(replaced by bob)'],
    ['incoming', 'marker'],
  ]);
  expect(alice.received.map(text)).toEqual(['(replaced by bob)', 'marker']);
  expect(history.every((m) => !m.untrusted)).toBe(true);
});
