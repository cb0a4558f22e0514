/**
 * What core tells a transport that keeps its own connections to peer devices (the WebRTC
 * transport; the hooks are in the transport contract, packages/spec/src/transport.ts):
 *
 * - `SignallingChannel.onSignal` handlers get `{ firstContact }`: true while this device has
 *   never sent a message to the sender's user (so a transport need not answer a stranger's
 *   offer, which would reveal its network addresses), false once it has (WebRTC review
 *   finding 3), and it stays false after a restart (it is the stored record);
 * - no signal from a user whose identity changed is handed over until the change is
 *   accepted (the sender's account key is not the trusted one);
 * - `closeLinksTo(userId, keepDeviceIds)` is called whenever core applies a changed signed
 *   device list, with the devices it names, so links to a revoked device close at once
 *   (finding 2);
 * - a signal whose sender was revoked while its frame was handled (a list applied between
 *   the decrypt and the handlers) is not handed over: it could reopen the link that
 *   `closeLinksTo` just closed (WebRTC review 7, finding 3);
 * - `OutboundMessage.contact` is `true` only on what `client.send` hands the transport (the
 *   message to the recipient's devices and its copies to the sender's own), never on what
 *   core sends on its own: group control messages, sender keys, the key request a held
 *   group message makes, receipts, signals. A stranger who adds this device to a group
 *   makes core send to it, and must not get a direct link out of it (WebRTC review 2,
 *   finding 1).
 *
 * Real clients over the real relay; the transports are the WebSocket one with the two
 * optional hooks added, as a WebRTC transport would have them.
 */
import { expect, test } from 'vitest';
import { createClient, linkDevice, type Client } from '@deadbolt/core';
import type { Address, SignalSenderInfo, SignallingChannel, StorageAdapter, TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking } from '@deadbolt/storage-memory';
import { makeTransport, perTestRelay } from './stack.js';

const scope = perTestRelay();
const { open } = scope;

interface Hooked {
  readonly transport: TransportAdapter;
  /** Every message handed to `transport.send`, with whether it was marked `contact`. */
  readonly sent: { to: Address; contact: boolean | undefined }[];
  channel(): SignallingChannel;
  readonly closed: { userId: string; keep: string[] }[];
  readonly signals: { from: Address; text: string; sender: SignalSenderInfo }[];
  /** Resolves with the next signal heard. */
  nextSignal(): Promise<{ from: Address; text: string; sender: SignalSenderInfo }>;
}

function hooked(): Hooked {
  const transport = makeTransport('websocket', scope.relay());
  let channel: SignallingChannel | undefined;
  const closed: Hooked['closed'] = [];
  const signals: Hooked['signals'] = [];
  const waiting: ((s: Hooked['signals'][number]) => void)[] = [];
  transport.attachSignalling = (c) => {
    channel = c;
    c.onSignal((from, payload, sender) => {
      const s = { from, text: new TextDecoder().decode(payload), sender };
      signals.push(s);
      waiting.shift()?.(s);
    });
  };
  transport.closeLinksTo = (userId, keep) => void closed.push({ userId, keep: [...keep] });
  const sent: Hooked['sent'] = [];
  const send = transport.send.bind(transport);
  transport.send = (messages) => {
    for (const m of messages) sent.push({ to: m.to, contact: m.contact });
    return send(messages);
  };
  return {
    transport,
    sent,
    channel: () => channel!,
    closed,
    signals,
    nextSignal: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

async function client(userId: string, deviceId: string, h: Hooked): Promise<Client> {
  const c = await createClient({ userId, deviceId, storage: createMemoryStorage(), transport: h.transport });
  open.push(c);
  await c.start();
  return c;
}

test('signals carry firstContact: true until this device has sent a message to the sender\'s user', async () => {
  await scope.start();
  const a = hooked();
  const b = hooked();
  const alice = await client('alice', 'phone', a);
  const bob = await client('bob', 'laptop', b);
  const signal = (text: string): Promise<void> => b.channel().send(alice.address, new TextEncoder().encode(text), (m) => b.transport.send([m]));

  // Bob, a stranger to Alice, writes and signals: Alice has never written to him.
  const gotHello = new Promise<void>((resolve) => alice.on('message-received', () => resolve()));
  await bob.send('alice', 'hello');
  await gotHello;
  let heard = a.nextSignal();
  await signal('offer-1');
  expect(await heard).toMatchObject({ from: bob.address, text: 'offer-1', sender: { firstContact: true } });

  // Once Alice has written to Bob, his signals are no longer a first contact.
  await alice.send('bob', 'hi bob');
  heard = a.nextSignal();
  await signal('offer-2');
  expect(await heard).toMatchObject({ text: 'offer-2', sender: { firstContact: false } });
});

test('firstContact: false survives a restart (it is the stored record, not the run\'s memory)', async () => {
  await scope.start();
  const backing = createMemoryStorageBacking();
  const first = hooked();
  const alice = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage({ backing }), transport: first.transport });
  await alice.start();
  const b = hooked();
  const bob = await client('bob', 'laptop', b);
  await alice.send('bob', 'hi bob');
  await alice.close();
  // The same device, restarted over the same store, on a new transport.
  const again = hooked();
  const restarted = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage({ backing }), transport: again.transport });
  open.push(restarted);
  await restarted.start();
  const heard = again.nextSignal();
  await b.channel().send(restarted.address, new TextEncoder().encode('offer'), (m) => b.transport.send([m]));
  expect(await heard).toMatchObject({ from: bob.address, text: 'offer', sender: { firstContact: false } });
});

test('no signal is handed over from a user whose identity changed until the change is accepted', async () => {
  // Bob re-installs (a new account key, the same address); the relay lets him re-register.
  await scope.start({ verifyRegistration: async (_user, _key, token) => token === 'login-ok' });
  const a = hooked();
  const alice = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage(), transport: a.transport, registrationToken: 'login-ok' });
  open.push(alice);
  await alice.start();
  const oldBob = await createClient({ userId: 'bob', deviceId: 'laptop', storage: createMemoryStorage(), transport: hooked().transport, registrationToken: 'login-ok' });
  await oldBob.start();
  await alice.send('bob', 'before');
  await oldBob.close();
  const b = hooked();
  const bob = await createClient({ userId: 'bob', deviceId: 'laptop', storage: createMemoryStorage(), transport: b.transport, registrationToken: 'login-ok' });
  open.push(bob);
  await bob.start();
  const changes: Uint8Array[] = [];
  const changed = new Promise<void>((resolve) =>
    alice.on('identity-changed', (c) => {
      changes.push(c.accountKey);
      resolve();
    }),
  );
  const gotMessage = new Promise<void>((resolve) => alice.on('message-received', () => resolve()));
  await bob.send('alice', 'new install, same bob');
  await Promise.all([changed, gotMessage]);
  // While the change is pending, Bob's signals are dropped; frames are handled in order, so
  // once his next message is in, the signal before it was handled (and not handed over).
  await b.channel().send(alice.address, new TextEncoder().encode('offer while untrusted'), (m) => b.transport.send([m]));
  const next = new Promise<void>((resolve) => alice.on('message-received', () => resolve()));
  await bob.send('alice', 'after the signal');
  await next;
  expect(a.signals.map((s) => s.text)).toEqual([]);
  // Accepted: his signals are heard again.
  await alice.acceptIdentity('bob', changes[0]!);
  const heard = a.nextSignal();
  await b.channel().send(alice.address, new TextEncoder().encode('offer once trusted'), (m) => b.transport.send([m]));
  expect(await heard).toMatchObject({ from: bob.address, text: 'offer once trusted' });
});

test('closeLinksTo: called with the devices a changed device list names, so a revoked device is dropped at once', async () => {
  await scope.start();
  const a = hooked();
  const alice = await client('alice', 'phone', a);
  const bobPhone = await client('bob', 'phone', hooked());
  // Bob links a tablet (approved by his phone); Alice writes to both.
  const link = await linkDevice({ userId: 'bob', deviceId: 'tablet', storage: createMemoryStorage(), transport: makeTransport('websocket', scope.relay()) });
  await bobPhone.approveDevice(link.code);
  await link.completed;
  await link.transport.close();
  await alice.send('bob', 'to both');
  expect(a.closed.filter((c) => c.userId === 'bob').at(-1)?.keep.sort()).toEqual(['phone', 'tablet']);

  // Bob revokes the tablet; Alice's next send is refused as out of date (DEVICE_MISMATCH),
  // she applies the new list, and her transport is told to keep only the phone.
  await bobPhone.revokeDevice('tablet');
  await alice.send('bob', 'to the phone only');
  expect(a.closed.filter((c) => c.userId === 'bob').at(-1)?.keep).toEqual(['phone']);
});

test('a signal from a device revoked while its frame was being handled is not handed to the transport', async () => {
  await scope.start();
  const a = hooked();
  // Alice's store runs `beforeContactedRead` when the signal path looks up whether she wrote
  // to the sender: the moment between the signal's decrypt and its handlers.
  const inner = createMemoryStorage();
  let beforeContactedRead: (() => Promise<void>) | undefined;
  const storage: StorageAdapter = {
    specificationVersion: inner.specificationVersion,
    get: async (key) => {
      if (key[0] === 'client' && key[1] === 'contacted' && beforeContactedRead) {
        const hook = beforeContactedRead;
        beforeContactedRead = undefined;
        await hook();
      }
      return inner.get(key);
    },
    range: (p, o) => inner.range(p, o),
    batch: (ops) => inner.batch(ops),
    close: () => inner.close(),
    exclusive: (fn) => inner.exclusive!(fn),
  };
  const alice = await createClient({ userId: 'alice', deviceId: 'phone', storage, transport: a.transport });
  open.push(alice);
  await alice.start();
  const p = hooked();
  const bobPhone = await client('bob', 'phone', p);
  const link = await linkDevice({ userId: 'bob', deviceId: 'tablet', storage: createMemoryStorage(), transport: makeTransport('websocket', scope.relay()) });
  await bobPhone.approveDevice(link.code);
  await link.completed;
  await link.transport.close();
  const t = hooked();
  const tablet = await createClient({ userId: 'bob', deviceId: 'tablet', storage: link.storage, transport: t.transport });
  open.push(tablet);
  const tabletGot = new Promise<void>((resolve) => tablet.on('message-received', () => resolve()));
  await tablet.start();
  await alice.send('bob', 'to both'); // sessions both ways between alice and the tablet
  await tabletGot;

  // The tablet signals; while Alice handles it (between its decrypt and its handlers), Bob
  // revokes the tablet and Alice applies his new signed list, which drops the tablet.
  beforeContactedRead = async () => {
    await bobPhone.revokeDevice('tablet');
    const list = await bobPhone.sessions.deviceList('bob');
    await alice.sessions.applyDeviceList('bob', list!.encoded);
  };
  await t.channel().send(alice.address, new TextEncoder().encode('offer'), (m) => t.transport.send([m]));
  // Frames are handled one at a time: once Bob's phone's later signal is heard, the
  // tablet's frame is done.
  const later = a.nextSignal();
  await p.channel().send(alice.address, new TextEncoder().encode('later'), (m) => p.transport.send([m]));
  expect(await later).toMatchObject({ from: bobPhone.address, text: 'later' });
  expect(beforeContactedRead).toBeUndefined(); // the hook ran
  expect(a.signals.map((s) => s.text)).toEqual(['later']);
});

test('contact is set on what client.send hands the transport, and on nothing core sends on its own (a stranger’s group: control messages, sender keys)', async () => {
  await scope.start();
  const a = hooked();
  const m = hooked();
  const alice = await client('alice', 'phone', a);
  const mallory = await client('mallory', 'laptop', m);
  // A stranger adds Alice to a group and writes in it; Alice's core does what it does on
  // its own (answers control messages, asks for the key of a held message, ...).
  const got = new Promise<void>((resolve) => alice.on('group-message-received', () => resolve()));
  const group = await mallory.createGroup({ name: 'not asked for', members: ['alice'] });
  await (await mallory.group(group.id))!.send('join us');
  await got;
  // Alice answers in the group: core distributes her sender key to the members pairwise
  // on its own (the user wrote to the group, not to Mallory).
  const gotReply = new Promise<void>((resolve) => mallory.on('group-message-received', () => resolve()));
  await (await alice.group(group.id))!.send('who is this?');
  await gotReply;
  const toMallory = a.sent.filter((s) => s.to.userId === 'mallory');
  expect(toMallory.length, 'core sent to the stranger on its own').toBeGreaterThan(0);
  expect(toMallory.map((s) => s.contact), 'none marked contact').toEqual(toMallory.map(() => undefined));
  expect(a.sent.filter((s) => s.contact !== undefined)).toEqual([]);

  // Alice writes to Mallory herself: that message is marked, and it is the only one.
  const before = a.sent.length;
  await alice.send('mallory', 'who are you?');
  const after = a.sent.slice(before);
  expect(after.filter((s) => s.contact === true).map((s) => `${s.to.userId}/${s.to.deviceId}`)).toEqual(['mallory/laptop']);
  expect(after.filter((s) => s.contact !== true)).toEqual([]);
});
