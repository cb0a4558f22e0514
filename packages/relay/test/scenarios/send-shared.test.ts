/**
 * SEND_SHARED (docs/relay-protocol.md §3): one frame into many mailboxes, all or none,
 * with the rules of SEND: each mailbox charged its full size, the per-(sender,
 * recipient user) message limit per recipient user, the sender's byte budget per stored
 * copy, list versions checked (DEVICE_MISMATCH, nothing stored). Real relay, real SQLite.
 */
import { describe, expect, it } from 'vitest';
import { RELAY_LIMITS } from '@deadbolt/spec';
import { expectBytesEqual, patternBytes } from '@deadbolt/test-kit';
import { createDevice, createSiblingDevice, deviceListOf, type TestDevice } from '../helpers/devices.js';
import { expectError, expectOk, httpAuth, httpRpc } from '../helpers/clients.js';
import { useScenario, type RelayStartOptions } from '../helpers/scenario.js';

const scenario = useScenario({ sqlite: true });

async function setup(options: RelayStartOptions = {}) {
  const r = await scenario.relay(options);
  const alice = await createDevice('alice', 'phone');
  const bob = await createDevice('bob', 'laptop');
  const bobPhone = await createSiblingDevice(bob, 'phone');
  const carol = await createDevice('carol', 'desk');
  const connect = (d: TestDevice) => scenario.connect(r, d);
  return { r, alice, bob, bobPhone, carol, connect };
}

describe('SEND_SHARED', () => {
  it('one upload reaches every named mailbox, pushed live, from the authenticated sender; each mailbox holds and acknowledges its own copy', async () => {
    const { r, alice, bob, bobPhone, carol, connect } = await setup();
    const a = await connect(alice);
    const [b, bp, c] = [await connect(bob), await connect(bobPhone), await connect(carol)];
    const frame = patternBytes(5000, 3);
    expectOk(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address }, { to: bobPhone.address }, { to: carol.address }], frame }));
    for (const [client, d] of [[b, bob], [bp, bobPhone], [c, carol]] as const) {
      const [m] = await client.delivered(1);
      expect(m!.from).toEqual(alice.address);
      expectBytesEqual(m!.frame, frame, `the copy for ${d.address.deviceId}`);
      expect(await r.store.stats(d.address)).toEqual({ messages: 1, bytes: 5000 });
    }
    const [mine] = await r.store.fetch(bob.address, { limit: 1 });
    expectOk(await b.request({ kind: 'ack', ids: [mine!.id] }));
    expect(await r.store.stats(bob.address)).toEqual({ messages: 0, bytes: 0 });
    expect(await r.store.stats(carol.address)).toEqual({ messages: 1, bytes: 5000 });
  });

  it('all or none: a full mailbox, an unknown device or a device-list mismatch stores nothing anywhere', async () => {
    const { r, alice, bob, bobPhone, carol, connect } = await setup({ limits: { mailboxMessages: 1 } });
    const a = await connect(alice);
    await connect(bobPhone);
    await connect(carol);
    const b = await connect(bob);
    expectOk(await a.request({ kind: 'send', messages: [{ to: carol.address, frame: patternBytes(10, 1) }] }));
    const to = [{ to: bob.address }, { to: bobPhone.address }, { to: carol.address }];
    expectError(await a.request({ kind: 'send-shared', recipients: to, frame: patternBytes(10, 2) }), 'MAILBOX_FULL');
    expectError(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address }, { to: { ...carol.address, deviceId: 'ghost' } as typeof carol.address }], frame: patternBytes(10, 2) }), 'UNKNOWN_USER');
    expectOk(await b.request({ kind: 'publish-device-list', deviceList: await deviceListOf(bob, 2, [bob, bobPhone]) }));
    expect(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address, listVersion: 1 }, { to: bobPhone.address, listVersion: 1 }], frame: patternBytes(10, 3) })).toEqual({
      kind: 'device-mismatch',
      users: [{ userId: 'bob', listVersion: 2 }],
    });
    for (const d of [bob, bobPhone]) expect(await r.store.stats(d.address)).toEqual({ messages: 0, bytes: 0 });
    expect((await r.store.stats(carol.address)).messages).toBe(1);
    expectOk(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address, listVersion: 2 }, { to: bobPhone.address, listVersion: 2 }], frame: patternBytes(10, 3) }));
    for (const d of [bob, bobPhone]) expect((await r.store.stats(d.address)).messages).toBe(1);
  });

  it('refuses nothing to do, a mailbox named twice, two list versions for one user, and a frame over the message limit', async () => {
    const { r, alice, bob, bobPhone, connect } = await setup({ limits: { maxMessage: 1000 } });
    const a = await connect(alice);
    await connect(bob);
    await connect(bobPhone);
    expectError(await a.request({ kind: 'send-shared', recipients: [], frame: patternBytes(10, 1) }), 'BAD_REQUEST');
    expectError(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address }, { to: bob.address }], frame: patternBytes(10, 1) }), 'BAD_REQUEST');
    expectError(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address, listVersion: 1 }, { to: bobPhone.address, listVersion: 2 }], frame: patternBytes(10, 1) }), 'BAD_REQUEST');
    expectError(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address }], frame: patternBytes(1001, 1) }), 'TOO_LARGE');
    expect(await r.store.stats(bob.address)).toEqual({ messages: 0, bytes: 0 });
    // Over HTTP, the same request is answered the same way.
    const { token } = await httpAuth(r.relay.url, alice);
    expectOk((await httpRpc(r.relay.url, { kind: 'send-shared', recipients: [{ to: bob.address }, { to: bobPhone.address }], frame: patternBytes(1000, 1) }, { token })).frame);
  });

  it('rate limits: one message token per recipient user (as SEND), and every stored copy against the sender byte budget', async () => {
    const { alice, bob, bobPhone, carol, connect } = await setup({
      limits: { messages: { burst: 2, refill: 1, intervalMs: 60_000 }, sendBytes: { burst: 10_000, refill: 1, intervalMs: 60_000 } },
    });
    const a = await connect(alice);
    for (const d of [bob, bobPhone, carol]) await connect(d);
    // Bob's two devices are one recipient user: one token each for Bob and Carol, twice.
    expectOk(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address }, { to: bobPhone.address }, { to: carol.address }], frame: patternBytes(1000, 1) }));
    expectOk(await a.request({ kind: 'send-shared', recipients: [{ to: bob.address }, { to: bobPhone.address }, { to: carol.address }], frame: patternBytes(1000, 2) }));
    expect(expectError(await a.request({ kind: 'send-shared', recipients: [{ to: carol.address }], frame: patternBytes(10, 3) }), 'RATE_LIMITED').retryAfterMs).toBeGreaterThan(0);
    // The byte budget counts every stored copy: 3 x 3,000 fit 10,000; 3 x 500 more do not
    // (500 counted once would).
    const other = await setup({ limits: { sendBytes: { burst: 10_000, refill: 1, intervalMs: 60_000 } } });
    const a2 = await other.connect(other.alice);
    for (const d of [other.bob, other.bobPhone, other.carol]) await other.connect(d);
    const all = [{ to: other.bob.address }, { to: other.bobPhone.address }, { to: other.carol.address }];
    expectOk(await a2.request({ kind: 'send-shared', recipients: all, frame: patternBytes(3000, 1) }));
    expectError(await a2.request({ kind: 'send-shared', recipients: all, frame: patternBytes(500, 2) }), 'RATE_LIMITED');
    expect(await other.r.store.stats(other.carol.address)).toEqual({ messages: 1, bytes: 3000 });
  });

  it('1,000 recipients with the longest ids and a maximal frame fit one request', async () => {
    const { r, alice, connect } = await setup();
    const a = await connect(alice);
    // One maximal frame, the largest ids: still one relay frame.
    const recipients = Array.from({ length: RELAY_LIMITS.maxRecipients }, (_, i) => ({ to: { userId: 'u'.repeat(64), deviceId: `${'d'.repeat(60)}${String(i).padStart(4, '0')}` } as TestDevice['address'] }));
    const answer = await a.request({ kind: 'send-shared', recipients, frame: patternBytes(RELAY_LIMITS.maxMessage, 1) });
    expectError(answer, 'UNKNOWN_USER'); // decoded and checked, then refused: nobody is registered
    expect(r.logs.some((l) => l.event === 'request-failed')).toBe(false);
  });
});
