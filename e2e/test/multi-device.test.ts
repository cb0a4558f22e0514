/**
 * Multiple devices per user through the whole stack (docs/protocol.md §3.3, §3.4; relay
 * protocol device lists and provisioning): linking by code, every current device receiving,
 * own sent messages copied, a device revoked mid-conversation receiving nothing new, the
 * relay's DEVICE_MISMATCH bringing a sender in step, safety numbers unchanged, and a relay
 * that keeps serving a revoked device (or forges a list) getting nowhere.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { createClient, linkDevice, type Client, type StoredMessage } from '@deadbolt/core';
import type { Relay } from '@deadbolt/relay';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { TransportError, type Address, type FetchBundlesOptions, type TransportAdapter } from '@deadbolt/spec';
import { makeTransport, startClient, startRelay, text, type TestClient } from './stack.js';

let relay: Relay | undefined;
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await relay?.close();
  relay = undefined;
});

/** Resolves with the first event `event` of `client` that satisfies `match`. */
function nextEvent<T>(subscribe: (listener: (value: T) => void) => () => void, match: (value: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = subscribe((value) => {
      if (!match(value)) return;
      off();
      resolve(value);
    });
  });
}

/** Links a new device of `owner`'s user, approved by `owner`; returns the started client. */
async function linkNewDevice(owner: TestClient, deviceId: string): Promise<TestClient> {
  const storage = createMemoryStorage();
  const transport = makeTransport('websocket', relay!);
  const link = await linkDevice({ userId: owner.client.address.userId, deviceId, storage, transport });
  expect(link.code.startsWith('deadbolt-link:')).toBe(true);
  await owner.client.approveDevice(link.code);
  await link.completed;
  const client = await createClient({ userId: owner.client.address.userId, deviceId, storage: link.storage, transport: link.transport });
  const received: StoredMessage[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  client.on('message-received', (m) => {
    received.push(m);
    for (const w of waiters.splice(0)) (received.length >= w.count ? w.resolve() : waiters.push(w));
  });
  await client.start();
  clients.push(client);
  return {
    client,
    storage,
    received,
    waitForMessages: (count) => (received.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
}

const bodies = (c: TestClient) => c.received.map(text);

describe('multiple devices per user', () => {
  test('three devices linked by code; one revoked mid-conversation receives nothing new; the sender is brought in step by DEVICE_MISMATCH; safety numbers never change', async () => {
    relay = await startRelay();
    const phone = await startClient('websocket', relay, 'alice', 'phone');
    clients.push(phone.client);
    const bob = await startClient('websocket', relay, 'bob', 'laptop');
    clients.push(bob.client);
    const numberBefore = (await bob.client.sessions.safetyNumber('alice').catch(() => undefined))?.digits;

    const laptop = await linkNewDevice(phone, 'laptop');
    // The laptop learns of the tablet when the tablet introduces itself (DEVICE_HELLO): the
    // hello's sender is not in the laptop's list yet, so the laptop fetches the new one.
    const laptopSawTablet = nextEvent<{ userId: string; listVersion: number }>((l) => laptop.client.on('devices-changed', l), (e) => e.userId === 'alice' && e.listVersion >= 3);
    const tablet = await linkNewDevice(phone, 'tablet');
    expect((await phone.client.devices()).map((d) => d.deviceId)).toEqual(['laptop', 'phone', 'tablet']);
    await laptopSawTablet;
    expect((await laptop.client.devices()).map((d) => d.deviceId)).toEqual(['laptop', 'phone', 'tablet']);

    // Bob writes to Alice: every one of her devices receives it.
    await bob.client.send('alice', 'hello alice');
    await Promise.all([phone.waitForMessages(1), laptop.waitForMessages(1), tablet.waitForMessages(1)]);
    const number = (await bob.client.safetyNumber('alice')).digits;
    if (numberBefore !== undefined) expect(number).toBe(numberBefore);

    // Alice answers from the phone: her other devices get the copy, in Bob's conversation.
    await phone.client.send('bob', 'hi bob');
    await bob.waitForMessages(1);
    await Promise.all([laptop.waitForMessages(2), tablet.waitForMessages(2)]);
    expect(laptop.received[1]).toMatchObject({ conversation: 'bob', direction: 'outgoing' });

    // The phone revokes the tablet. Bob still holds the old list: the relay refuses his
    // next send (DEVICE_MISMATCH), he refreshes and sends to the current devices only.
    const bobSawChange = nextEvent<{ userId: string; removed: readonly Address[] }>((l) => bob.client.on('devices-changed', l), (e) => e.userId === 'alice' && e.removed.length > 0);
    await phone.client.revokeDevice('tablet');
    expect((await phone.client.devices()).map((d) => d.deviceId)).toEqual(['laptop', 'phone']);
    await bob.client.send('alice', 'after the revocation');
    const change = await bobSawChange;
    expect(change.removed.map((a) => a.deviceId)).toEqual(['tablet']);
    await Promise.all([phone.waitForMessages(2), laptop.waitForMessages(3)]);
    expect(bodies(phone)).toEqual(['hello alice', 'after the revocation']);
    expect(bodies(laptop)).toEqual(['hello alice', 'hi bob', 'after the revocation']);
    // The tablet got nothing new: its messages stop at the revocation, and the relay
    // refuses it from now on.
    expect(bodies(tablet)).toEqual(['hello alice', 'hi bob']);
    expect(await bob.client.sessions.hasSession({ userId: 'alice', deviceId: 'tablet' } as Address)).toBe(false);
    // Own copies also skip the tablet.
    await phone.client.send('bob', 'only two of us now');
    await Promise.all([bob.waitForMessages(2), laptop.waitForMessages(4)]);
    expect(bodies(tablet)).toEqual(['hello alice', 'hi bob']);
    // Adding and removing devices changed no safety number.
    expect((await bob.client.safetyNumber('alice')).digits).toBe(number);
    expect((await laptop.client.safetyNumber('bob')).digits).toBe((await phone.client.safetyNumber('bob')).digits);
  }, 60_000);

  /**
   * Bob's transport, recording the `skip` of each directory read of Alice's entry; reads
   * for which `failRead(n)` (1-based) is true are refused as the relay's rate limiter
   * would refuse them.
   */
  function recordingReads(failRead: (n: number) => boolean = () => false): { transport: () => TransportAdapter; skips: string[][] } {
    const skips: string[][] = [];
    const transport = (): TransportAdapter => new Proxy(makeTransport('websocket', relay!), {
      get(target, name, receiver) {
        if (name === 'fetchBundles') {
          return async (user: string, options?: FetchBundlesOptions) => {
            if (user === 'alice') {
              skips.push([...(options?.skip ?? [])].sort());
              if (failRead(skips.length)) throw new TransportError('RATE_LIMITED', { message: 'refused by the test', details: { retryAfterMs: 1000 } });
            }
            return target.fetchBundles(user, options);
          };
        }
        const value: unknown = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { transport, skips };
  }

  /** Alice (phone), Bob, a tablet Bob has written to, then revoked and linked again under the same id. */
  async function relinkedTablet(bobTransport: () => TransportAdapter) {
    relay = await startRelay();
    const phone = await startClient('websocket', relay, 'alice', 'phone');
    clients.push(phone.client);
    const bob = await startClient('websocket', relay, 'bob', 'laptop', createMemoryStorage(), undefined, bobTransport());
    clients.push(bob.client);
    const oldTablet = await linkNewDevice(phone, 'tablet');
    await bob.client.send('alice', 'one');
    await Promise.all([phone.waitForMessages(1), oldTablet.waitForMessages(1)]);
    expect(await bob.client.sessions.hasSession({ userId: 'alice', deviceId: 'tablet' } as Address)).toBe(true);
    // Alice loses the tablet: she revokes it and links a new one under the same id.
    await oldTablet.client.close();
    await phone.client.revokeDevice('tablet');
    const newTablet = await linkNewDevice(phone, 'tablet');
    return { phone, bob, newTablet };
  }

  test('a device revoked and linked again under the same id, with new keys, gets a contact\'s next message: the directory read that skipped it is made again once the list ended its old session', async () => {
    const reads = recordingReads();
    const { phone, bob, newTablet } = await relinkedTablet(reads.transport);
    // A desktop linked meanwhile too: the first read serves its bundle, the second skips it.
    const desktop = await linkNewDevice(phone, 'desktop');
    expect((await phone.client.devices()).map((d) => d.deviceId)).toEqual(['desktop', 'phone', 'tablet']);
    const before = reads.skips.length;

    // Bob still holds the old list: DEVICE_MISMATCH, a directory read that skips the
    // devices he has sessions with (the old tablet among them), the new list ends the old
    // tablet's session, so he reads again without skipping it and reaches the new one.
    await bob.client.send('alice', 'two');
    await Promise.all([phone.waitForMessages(2), newTablet.waitForMessages(1), desktop.waitForMessages(1)]);
    expect(reads.skips.slice(before)).toEqual([
      ['phone', 'tablet'],
      ['desktop', 'phone'],
    ]);
    expect(bodies(newTablet)).toEqual(['two']);
    expect(bodies(desktop)).toEqual(['two']);
    await bob.client.send('alice', 'three');
    await Promise.all([newTablet.waitForMessages(2), desktop.waitForMessages(2)]);
    expect(bodies(newTablet)).toEqual(['two', 'three']);
    expect((await bob.client.history('alice')).map((m) => m.status)).toEqual(['sent', 'sent', 'sent']);
    // Both are complete reads: no further read of Alice's entry was due.
    expect(reads.skips.length).toBe(before + 2);
  }, 60_000);

  test('when that second read fails, the error is reported and the next send reads the entry again and reaches the new device', async () => {
    let failing = 0;
    const reads = recordingReads((n) => n === failing);
    const { phone, bob, newTablet } = await relinkedTablet(reads.transport);
    failing = reads.skips.length + 2; // the second read of the next send
    const errors: unknown[] = [];
    bob.client.on('error', (e) => void errors.push(e));

    await bob.client.send('alice', 'two');
    await phone.waitForMessages(2);
    expect(errors.map((e) => (e as { code?: string }).code)).toContain('RATE_LIMITED');
    // `two` could not reach the new tablet (Bob had no bundle for it); the next send reads
    // Alice's entry again, because her list names a device Bob has no session with.
    await bob.client.send('alice', 'three');
    await Promise.all([phone.waitForMessages(3), newTablet.waitForMessages(1)]);
    expect(bodies(newTablet)).toEqual(['three']);
    expect(await bob.client.sessions.hasSession({ userId: 'alice', deviceId: 'tablet' } as Address)).toBe(true);
  }, 60_000);

  test('a relay that keeps serving a revoked device gets it no session: the sender is told (device-rejected)', async () => {
    relay = await startRelay();
    const phone = await startClient('websocket', relay, 'alice', 'phone');
    clients.push(phone.client);
    const tablet = await linkNewDevice(phone, 'tablet');

    // Carol's relay connection behaves like a relay that ignores revocations: it remembers
    // the bundles it served for Alice and keeps adding the tablet's to every later answer.
    const carolTransport = makeTransport('websocket', relay);
    let remembered: readonly Uint8Array[] = [];
    const lying: TransportAdapter = new Proxy(carolTransport, {
      get(target, prop, receiver) {
        if (prop === 'fetchBundles') {
          return async (userId: string) => {
            const real = await target.fetchBundles(userId);
            if (userId !== 'alice') return real;
            if (remembered.length === 0) remembered = real.bundles;
            return { bundles: [...real.bundles, ...remembered], deviceList: real.deviceList };
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const carol = await createClient({ userId: 'carol', deviceId: 'phone', storage: createMemoryStorage(), transport: lying });
    clients.push(carol);
    await carol.start();
    await carol.send('alice', 'before');
    await Promise.all([phone.waitForMessages(1), tablet.waitForMessages(1)]);

    await phone.client.revokeDevice('tablet');
    const rejected = nextEvent<{ userId: string; deviceId: string }>((l) => carol.on('device-rejected', l));
    await carol.send('alice', 'after');
    expect(await rejected).toMatchObject({ userId: 'alice', deviceId: 'tablet' });
    expect(await carol.sessions.hasSession({ userId: 'alice', deviceId: 'tablet' } as Address)).toBe(false);
    await phone.waitForMessages(2);
    expect(bodies(phone)).toEqual(['before', 'after']);
    expect(bodies(tablet)).toEqual(['before']);
  }, 60_000);

  test('a device list signed by another account key is never used: the directory cannot add a device', async () => {
    relay = await startRelay();
    const phone = await startClient('websocket', relay, 'alice', 'phone');
    clients.push(phone.client);
    // A forged Alice (another account key) whose list the relay would like Carol to use.
    const forger = await createClient({ userId: 'alice', deviceId: 'evil', storage: createMemoryStorage(), transport: makeTransport('websocket', relay) });
    await forger.sessions.createIdentity({ userId: 'alice', deviceId: 'evil' });
    const forgedList = (await forger.sessions.deviceList('alice'))!.encoded;
    await forger.close();
    let lie = false;
    const carolTransport = makeTransport('websocket', relay);
    const lying: TransportAdapter = new Proxy(carolTransport, {
      get(target, prop, receiver) {
        if (prop === 'fetchBundles') {
          return async (userId: string) => {
            const real = await target.fetchBundles(userId);
            return lie && userId === 'alice' ? { bundles: real.bundles, deviceList: forgedList } : real;
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const carol = await createClient({ userId: 'carol', deviceId: 'phone', storage: createMemoryStorage(), transport: lying });
    clients.push(carol);
    await carol.start();
    await carol.send('alice', 'hi'); // honest first contact: Alice's real key and list
    await phone.waitForMessages(1);
    const genuine = (await carol.sessions.deviceList('alice'))!;
    // Alice adds a device; Carol's next send is refused as out of date, and her refresh
    // now gets the forged list: it is refused, and Carol keeps the genuine one.
    lie = true;
    await linkNewDevice(phone, 'laptop');
    await expect(carol.send('alice', 'again')).rejects.toThrow();
    const kept = (await carol.sessions.deviceList('alice'))!;
    expect(kept.encoded).toEqual(genuine.encoded);
    expect(await carol.sessions.hasSession({ userId: 'alice', deviceId: 'evil' } as Address)).toBe(false);
    expect((await carol.sessions.trust('alice'))?.accountKey).toEqual(genuine.accountKey);
  }, 60_000);
});
