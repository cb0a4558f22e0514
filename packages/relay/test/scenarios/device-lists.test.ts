/**
 * Device lists at the relay (docs/relay-protocol.md "Device lists", PUBLISH_DEVICE_LIST;
 * docs/protocol.md §3.3), against a real relay over real SQLite: who may publish which
 * list, revocation (registration, mailbox and prekeys deleted; connections closed with
 * 4004; HTTP sessions ended; AUTH refused with REVOKED), FETCH_BUNDLES answering only
 * listed devices with the list, and the list version every SEND names (DEVICE_MISMATCH,
 * nothing stored).
 */
import { describe, expect, it } from 'vitest';
import { patternBytes } from '@deadbolt/test-kit';
import { createDevice, createSiblingDevice, deviceListOf, type TestDevice } from '../helpers/devices.js';
import { expectError, expectOk, httpAuth, httpHello, httpRpc } from '../helpers/clients.js';
import type { TestRelay } from '../helpers/relay.js';
import { useScenario } from '../helpers/scenario.js';

const { relay, connect: ws, socket } = useScenario({ sqlite: true });

async function authFrame(d: TestDevice, challenge: Uint8Array, relayId = 'deadbolt-relay') {
  return { kind: 'auth' as const, certificate: d.certificate, challenge, signature: await d.sign(relayId, challenge), token: '' };
}

/** AUTH over a fresh WebSocket and over HTTP; returns both answers. */
async function authBoth(r: TestRelay, d: TestDevice) {
  const c = await socket(r);
  const overWs = await c.request(await authFrame(d, c.hello.challenge));
  const hello = await httpHello(r.relay.url);
  const overHttp = await httpRpc(r.relay.url, await authFrame(d, hello.challenge));
  return { overWs, overHttp, wsClosed: c.closed };
}

/** Alice's phone (holding the account key) with a laptop and a tablet of the same account, all registered with prekeys. */
async function family(r: TestRelay) {
  const phone = await createDevice('alice', 'phone');
  const laptop = await createSiblingDevice(phone, 'laptop');
  const tablet = await createSiblingDevice(phone, 'tablet');
  for (const d of [phone, laptop, tablet]) {
    const { token } = await httpAuth(r.relay.url, d);
    expectOk((await httpRpc(r.relay.url, { kind: 'publish-prekeys', upload: d.upload() }, { token })).frame);
  }
  return { phone, laptop, tablet };
}

describe('PUBLISH_DEVICE_LIST', () => {
  it('a newer version replaces the list; the same bytes again are OK and change nothing; other bytes at that version, or a lower version, are FORBIDDEN', async () => {
    const r = await relay();
    const { phone, laptop } = await family(r);
    const p = await ws(r, phone);
    const v2 = await deviceListOf(phone, 2, [phone, laptop]);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: v2 }));
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: v2 }));
    expect(r.logs.filter((l) => l.event === 'device-list-published')).toHaveLength(1);
    expectError(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 2, [phone, laptop], 1_800_000_000_000) }), 'FORBIDDEN');
    expectError(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 2, [phone]) }), 'FORBIDDEN');
    expectError(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone, laptop]) }), 'FORBIDDEN');
    expect((await r.store.getDeviceList('alice'))?.list).toEqual(v2);
    const v5 = await deviceListOf(phone, 5, [phone, laptop]);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: v5 }));
    expect((await r.store.getDeviceList('alice'))?.version).toBe(5);
    // The tablet, never listed, went with the first list.
    expect((await r.store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['laptop', 'phone']);
  });

  it("only a list of the caller's own user, under its pinned account key, with a good signature; anything else stores nothing", async () => {
    const r = await relay();
    const { phone, laptop } = await family(r);
    const bob = await createDevice('bob', 'pc');
    const b = await ws(r, bob);
    const p = await ws(r, phone);
    // Another user's (valid) list, published by Alice: FORBIDDEN.
    expectError(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(bob, 1, [bob]) }), 'FORBIDDEN');
    // A list naming Alice but signed by another account key (Mallory's "alice"): FORBIDDEN.
    const mallory = await createDevice('alice', 'phone');
    expectError(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(mallory, 1, [mallory]) }), 'FORBIDDEN');
    // The right key, a broken signature: BAD_SIGNATURE. Garbage: BAD_REQUEST.
    const forged = (await deviceListOf(phone, 1, [phone])).slice();
    forged[forged.length - 1]! ^= 1;
    expectError(await p.request({ kind: 'publish-device-list', deviceList: forged }), 'BAD_SIGNATURE');
    expectError(await p.request({ kind: 'publish-device-list', deviceList: patternBytes(200, 1) }), 'BAD_REQUEST');
    // Bob cannot publish Alice's own genuine list either: it is not his user.
    expectError(await b.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone]) }), 'FORBIDDEN');
    // Without a session: 401.
    const anonymous = await httpRpc(r.relay.url, { kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone]) });
    expect(anonymous.status).toBe(401);
    expect(await r.store.getDeviceList('alice')).toBeUndefined();
    expect(await r.store.getDeviceList('bob')).toBeUndefined();
    expect((await r.store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['laptop', 'phone', 'tablet']);
    // Any current device of the user may publish (here the laptop, over HTTP).
    const { token } = await httpAuth(r.relay.url, laptop);
    expectOk((await httpRpc(r.relay.url, { kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone, laptop]) }, { token })).frame);
  });

  it('revokes what it leaves out: registration, mailbox and prekeys deleted; WebSockets closed with 4004; HTTP sessions ended and long polls answered; AUTH refused with REVOKED', async () => {
    const r = await relay();
    const { phone, laptop, tablet } = await family(r);
    const bob = await createDevice('bob', 'pc');
    const b = await ws(r, bob);
    // The laptop has mail, prekeys and a live WebSocket; the tablet an HTTP session with a long poll waiting.
    expectOk(await b.request({ kind: 'send', messages: [{ to: laptop.address, frame: patternBytes(100, 1) }] }));
    const l = await ws(r, laptop);
    await l.delivered(1);
    const { token: tabletToken } = await httpAuth(r.relay.url, tablet);
    const poll = httpRpc(r.relay.url, { kind: 'fetch', waitMs: 30_000, max: 10 }, { token: tabletToken });
    await r.untilLogged('fetch-waiting');
    const p = await ws(r, phone);

    const started = Date.now();
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone]) }));
    expect((await l.closed).code).toBe(4004);
    const polled = await poll;
    expect(polled.frame).toEqual({ kind: 'deliver', messages: [] });
    expect(Date.now() - started).toBeLessThan(20_000); // answered at once, not at the end of its wait
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 10 }, { token: tabletToken })).status).toBe(401);
    expect(r.logs.find((e) => e.event === 'device-list-published')?.fields).toEqual({ listVersion: 1, devices: 1, removed: 2 });

    for (const gone of [laptop, tablet]) {
      expect(await r.store.getDevice(gone.address)).toBeUndefined();
      expect(await r.store.stats(gone.address)).toEqual({ messages: 0, bytes: 0 });
      expect(await r.store.prekeyCounts(gone.address)).toEqual({ oneTime: 0, pq: 0 });
      const { overWs, overHttp, wsClosed } = await authBoth(r, gone);
      expectError(overWs, 'REVOKED');
      expectError(overHttp.frame, 'REVOKED');
      expect(overHttp.status).toBe(200);
      expect((await wsClosed).code).toBe(1008);
    }
    expect(r.logs.filter((e) => e.event === 'auth-failed' && e.fields.reason === 'revoked')).toHaveLength(4);
    // Sends to a revoked device find nobody; the phone carries on.
    expectError(await b.request({ kind: 'send', messages: [{ to: laptop.address, listVersion: 1, frame: patternBytes(10, 2) }] }), 'UNKNOWN_USER');
    expectOk(await b.request({ kind: 'send', messages: [{ to: phone.address, listVersion: 1, frame: patternBytes(10, 3) }] }));
    expect(p.isOpen).toBe(true);
    expect(await r.store.getDevice(phone.address)).toBeDefined();
  });

  it('a device may remove itself: it gets its OK, then its connection closes with 4004', async () => {
    const r = await relay();
    const { phone, laptop } = await family(r);
    const l = await ws(r, laptop);
    const answer = await l.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone]) });
    expectOk(answer);
    expect((await l.closed).code).toBe(4004);
    expect(await r.store.getDevice(laptop.address)).toBeUndefined();
  });

  it('PUBLISH_DEVICE_LIST is rate limited per user', async () => {
    const r = await relay({ limits: { deviceListPublishes: { burst: 2, refill: 1, intervalMs: 60_000 } } });
    const { phone, laptop } = await family(r);
    const p = await ws(r, phone);
    const l = await ws(r, laptop);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone, laptop]) }));
    expectOk(await l.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 2, [phone, laptop]) }));
    const limited = expectError(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 3, [phone, laptop]) }), 'RATE_LIMITED');
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect((await r.store.getDeviceList('alice'))?.version).toBe(2);
  });

  it("an accepted account-key change (registration hook) drops the old account's list with its devices", async () => {
    const r = await relay({ verifyRegistration: async () => true });
    const { phone } = await family(r);
    const p = await ws(r, phone);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 4, [phone]) }));
    const reinstalled = await createDevice('alice', 'phone'); // a new account key for the user id
    await httpAuth(r.relay.url, reinstalled, 'login-token');
    expect(await r.store.getDeviceList('alice')).toBeUndefined();
    expect((await r.store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['phone']);
  });
});

describe('AUTH once a user has a list', () => {
  it('only listed devices authenticate (id, signing key and identity key); a later list admits a new device; users without a list are unaffected', async () => {
    const r = await relay();
    const phone = await createDevice('alice', 'phone');
    const p = await ws(r, phone);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone]) }));
    const laptop = await createSiblingDevice(phone, 'laptop');
    const refused = await authBoth(r, laptop);
    expectError(refused.overWs, 'REVOKED');
    expectError(refused.overHttp.frame, 'REVOKED');
    expect(await r.store.getDevice(laptop.address)).toBeUndefined();

    expectOk(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 2, [phone, laptop]) }));
    const admitted = await authBoth(r, laptop);
    expect(admitted.overWs.kind).toBe('auth-ok');
    expect(admitted.overHttp.frame?.kind).toBe('auth-ok');
    // The same device id with other keys (a reinstall nobody listed) is refused, and the listed one stays registered.
    const impostor = await createSiblingDevice(phone, 'laptop');
    expectError((await authBoth(r, impostor)).overWs, 'REVOKED');
    expect(await r.store.getDevice(laptop.address)).toEqual(laptop.certificate);
    // Bob has no list: served as before.
    const bob = await createDevice('bob', 'pc');
    expect((await authBoth(r, bob)).overWs.kind).toBe('auth-ok');
  });
});

describe('FETCH_BUNDLES with device lists', () => {
  it('answers only listed devices, and the list; with a list but no bundle, an empty BUNDLES with the list; without either, UNKNOWN_USER', async () => {
    const r = await relay();
    const { phone, laptop, tablet } = await family(r);
    const bob = await createDevice('bob', 'pc');
    const b = await ws(r, bob);
    // No list yet: every registered device.
    const before = await b.request({ kind: 'fetch-bundles', userId: 'alice' });
    expect(before.kind === 'bundles' && [before.bundles.length, before.deviceList]).toEqual([3, undefined]);

    const p = await ws(r, phone);
    const list = await deviceListOf(phone, 1, [phone, laptop]);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: list }));
    const after = await b.request({ kind: 'fetch-bundles', userId: 'alice' });
    if (after.kind !== 'bundles') throw new Error(`expected BUNDLES, got ${after.kind}`);
    expect(after.deviceList).toEqual(list);
    expect(after.bundles).toHaveLength(2);
    // Each bundle starts with its device certificate: they are the phone's and the laptop's.
    const certs = after.bundles.map((bundle) => [phone, laptop, tablet].find((d) => Buffer.from(bundle).indexOf(Buffer.from(d.certificate)) >= 0)?.address.deviceId);
    expect(certs.sort()).toEqual(['laptop', 'phone']);
    // The phone asking for its own user gets the laptop (never itself) and the list.
    const own = await p.request({ kind: 'fetch-bundles', userId: 'alice' });
    expect(own.kind === 'bundles' && [own.bundles.length, own.deviceList]).toEqual([1, list]);

    // A user with a list whose only device has no prekeys: BUNDLES, empty, with the list.
    const carol = await createDevice('carol', 'desk');
    const c = await ws(r, carol);
    const carolList = await deviceListOf(carol, 1, [carol]);
    expectOk(await c.request({ kind: 'publish-device-list', deviceList: carolList }));
    expect(await b.request({ kind: 'fetch-bundles', userId: 'carol' })).toEqual({ kind: 'bundles', bundles: [], deviceList: carolList });
    // No list and no bundle: UNKNOWN_USER, as before.
    const dave = await createDevice('dave', 'pc');
    await ws(r, dave);
    expectError(await b.request({ kind: 'fetch-bundles', userId: 'dave' }), 'UNKNOWN_USER');
    expectError(await b.request({ kind: 'fetch-bundles', userId: 'nobody' }), 'UNKNOWN_USER');
  });
});

describe('SEND names the list version it encrypted for', () => {
  it('a version other than the relay holds (0: none) is DEVICE_MISMATCH naming every such user with its version, and stores nothing; the right ones store', async () => {
    const r = await relay();
    const { phone, laptop } = await family(r);
    const bob = await createDevice('bob', 'pc');
    const carol = await createDevice('carol', 'desk');
    const b = await ws(r, bob);
    await ws(r, carol);
    const p = await ws(r, phone);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 3, [phone, laptop]) }));
    const frame = patternBytes(64, 9);

    // Bob encrypted for Alice's version 2 and Carol's version 1 (she has none).
    const mismatch = await b.request({
      kind: 'send',
      messages: [
        { to: phone.address, listVersion: 2, frame },
        { to: laptop.address, listVersion: 2, frame },
        { to: carol.address, listVersion: 1, frame },
      ],
    });
    expect(mismatch).toEqual({
      kind: 'device-mismatch',
      users: [
        { userId: 'alice', listVersion: 3 },
        { userId: 'carol', listVersion: 0 },
      ],
    });
    // One user wrong is enough to store nothing for anybody.
    expect(await b.request({ kind: 'send', messages: [{ to: carol.address, listVersion: 0, frame }, { to: phone.address, frame }] })).toEqual({
      kind: 'device-mismatch',
      users: [{ userId: 'alice', listVersion: 3 }],
    });
    for (const d of [phone, laptop, carol]) expect(await r.store.stats(d.address)).toEqual({ messages: 0, bytes: 0 });
    // Over HTTP the answer is the same frame, status 200.
    const { token } = await httpAuth(r.relay.url, bob);
    const overHttp = await httpRpc(r.relay.url, { kind: 'send', messages: [{ to: phone.address, listVersion: 1, frame }] }, { token });
    expect([overHttp.status, overHttp.frame]).toEqual([200, { kind: 'device-mismatch', users: [{ userId: 'alice', listVersion: 3 }] }]);
    // Two versions for one user in one send: BAD_REQUEST.
    expectError(await b.request({ kind: 'send', messages: [{ to: phone.address, listVersion: 3, frame }, { to: laptop.address, listVersion: 2, frame }] }), 'BAD_REQUEST');

    expectOk(
      await b.request({
        kind: 'send',
        messages: [
          { to: phone.address, listVersion: 3, frame },
          { to: laptop.address, listVersion: 3, frame },
          { to: carol.address, listVersion: 0, frame },
        ],
      }),
    );
    for (const d of [phone, laptop, carol]) expect((await r.store.stats(d.address)).messages).toBe(1);
  });

  it("a device addressing its own user's other devices names its own user's list version the same way", async () => {
    const r = await relay();
    const { phone, laptop } = await family(r);
    const p = await ws(r, phone);
    expectOk(await p.request({ kind: 'publish-device-list', deviceList: await deviceListOf(phone, 1, [phone, laptop]) }));
    expect(await p.request({ kind: 'send', messages: [{ to: laptop.address, frame: patternBytes(8, 1) }] })).toEqual({
      kind: 'device-mismatch',
      users: [{ userId: 'alice', listVersion: 1 }],
    });
    expectOk(await p.request({ kind: 'send', messages: [{ to: laptop.address, listVersion: 1, frame: patternBytes(8, 1) }] }));
    expect((await r.store.stats(laptop.address)).messages).toBe(1);
  });
});
