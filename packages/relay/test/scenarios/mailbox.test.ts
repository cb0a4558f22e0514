/**
 * Mailboxes: SEND, DELIVER, ACK and FETCH over both carriers (docs/relay-protocol.md §3),
 * and SECURITY.md F37: only a device proving its key reads, acknowledges or deletes its
 * mailbox; acknowledging someone else's message has no effect.
 */
import { describe, expect, it } from 'vitest';
import { patternBytes, expectBytesEqual } from '@deadbolt/test-kit';
import { createDevice, type TestDevice } from '../helpers/devices.js';
import { expectError, expectOk, httpAuth, httpRpc } from '../helpers/clients.js';
import { useScenario, type RelayStartOptions } from '../helpers/scenario.js';

const scenario = useScenario({ sqlite: true });

async function setup(options: RelayStartOptions = {}) {
  const r = await scenario.relay(options);
  const alice = await createDevice('alice', 'phone');
  const bob = await createDevice('bob', 'laptop');
  const eve = await createDevice('eve', 'laptop');
  const connect = (d: TestDevice) => scenario.connect(r, d);
  /** Registers a device (its first AUTH) without keeping a connection. */
  const register = async (d: TestDevice) => void (await httpAuth(r.relay.url, d));
  return { r, alice, bob, eve, connect, register };
}

describe('SEND and DELIVER', () => {
  it('a message reaches only its addressee, pushed live, with the authenticated sender; ACK deletes it', async () => {
    const { r, alice, bob, eve, connect } = await setup();
    const a = await connect(alice);
    const b = await connect(bob);
    const e = await connect(eve);
    const frame = patternBytes(1000, 1);
    const before = Date.now();
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame }] }));
    const [m] = await b.delivered(1);
    expect(m!.from).toEqual(alice.address);
    expect(m!.receivedAt).toBeGreaterThanOrEqual(before - 1000);
    expectBytesEqual(m!.frame, frame, 'delivered frame');
    expect(e.pushes.filter((f) => f.kind === 'deliver')).toEqual([]);
    expectOk(await b.request({ kind: 'ack', ids: [m!.id] }));
    expect(await r.store.stats(bob.address)).toEqual({ messages: 0, bytes: 0 });
  });

  it('one SEND to several mailboxes stores all or none; an unknown device is UNKNOWN_USER', async () => {
    const { r, alice, bob, eve, connect } = await setup();
    const a = await connect(alice);
    await connect(bob);
    await connect(eve);
    expectError(
      await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(10, 1) }, { to: { ...eve.address, deviceId: 'ghost' } as typeof eve.address, frame: patternBytes(10, 2) }] }),
      'UNKNOWN_USER',
    );
    expect((await r.store.stats(bob.address)).messages).toBe(0);
    expectError(await a.request({ kind: 'send', messages: [] }), 'BAD_REQUEST');
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(10, 1) }, { to: eve.address, frame: patternBytes(10, 2) }] }));
    expect((await r.store.stats(bob.address)).messages).toBe(1);
    expect((await r.store.stats(eve.address)).messages).toBe(1);
  });

  it('at most 100 unacknowledged messages are in flight per connection; ACKs release more', async () => {
    const { alice, bob, connect } = await setup({ limits: { messages: { burst: 1000, refill: 1, intervalMs: 1000 } } });
    const a = await connect(alice);
    const b = await connect(bob);
    for (let i = 0; i < 150; i += 50) {
      expectOk(await a.request({ kind: 'send', messages: Array.from({ length: 50 }, (_, j) => ({ to: bob.address, frame: patternBytes(16, i + j) })) }));
    }
    const first = await b.delivered(100);
    expect(new Set(first.map((m) => m.id)).size).toBe(100);
    // Nothing more arrives until something is acknowledged: prove it with a request
    // round trip, which the relay answers after any push it had already queued.
    expect(await b.request({ kind: 'fetch', waitMs: 0, max: 100 })).toEqual({ kind: 'deliver', messages: [] });
    expect(b.pushes.filter((f) => f.kind === 'deliver')).toEqual([]);
    first.forEach((m, i) => expectBytesEqual(m.frame, patternBytes(16, i), `message ${i} in arrival order`));
    expectOk(await b.request({ kind: 'ack', ids: first.slice(0, 30).map((m) => m.id) }));
    const next = await b.delivered(30);
    next.forEach((m, i) => expectBytesEqual(m.frame, patternBytes(16, 100 + i), `message ${100 + i}`));
    expectOk(await b.request({ kind: 'ack', ids: [...first.slice(30), ...next].map((m) => m.id) }));
    const last = await b.delivered(20);
    expect(last.map((m) => m.id).some((id) => first.some((f) => f.id === id))).toBe(false);
  });

  it('unacknowledged messages are delivered again on the next connection', async () => {
    const { alice, bob, connect } = await setup();
    const a = await connect(alice);
    const b1 = await connect(bob);
    expectOk(await a.request({ kind: 'send', messages: [1, 2, 3].map((i) => ({ to: bob.address, frame: patternBytes(8, i) })) }));
    const got = await b1.delivered(3);
    expectOk(await b1.request({ kind: 'ack', ids: [got[1]!.id] }));
    await b1.close();
    const b2 = await connect(bob);
    const again = await b2.delivered(2);
    expect(again.map((m) => m.id)).toEqual([got[0]!.id, got[2]!.id]);
  });

  it('an ACK on one connection (or over HTTP) releases the id on the device’s other connections', async () => {
    const { r, alice, bob, connect } = await setup({ limits: { messages: { burst: 1000, refill: 1, intervalMs: 1000 } } });
    const a = await connect(alice);
    const b1 = await connect(bob);
    const b2 = await connect(bob);
    expectOk(await a.request({ kind: 'send', messages: Array.from({ length: 100 }, (_, i) => ({ to: bob.address, frame: patternBytes(8, i) })) }));
    const [on1, on2] = await Promise.all([b1.delivered(100), b2.delivered(100)]);
    expect(on2.map((m) => m.id)).toEqual(on1.map((m) => m.id));
    // b1 and HTTP acknowledge everything; b2 (full in flight until now) gets the next ones.
    expectOk(await b1.request({ kind: 'ack', ids: on1.slice(0, 50).map((m) => m.id) }));
    const { token } = await httpAuth(r.relay.url, bob);
    expectOk((await httpRpc(r.relay.url, { kind: 'ack', ids: on1.slice(50).map((m) => m.id) }, { token })).frame);
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(8, 500) }] }));
    const [next] = await b2.delivered(1);
    expectBytesEqual(next!.frame, patternBytes(8, 500), 'the new message on the other connection');
  });

  it('pushes pause while the receiver does not read, and resume when its socket drains', { timeout: 30_000 }, async () => {
    const { r, alice, bob, connect } = await setup({ limits: { messages: { burst: 1000, refill: 1, intervalMs: 1000 } } });
    const a = await connect(alice);
    const b = await connect(bob);
    b.pauseReading();
    for (let i = 0; i < 60; i++) expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(256 * 1024, i) }] }));
    await r.untilLogged('push-paused');
    b.resumeReading();
    const got = await b.delivered(60, 20_000);
    got.forEach((m, i) => expectBytesEqual(m.frame, patternBytes(256 * 1024, i), `message ${i}`));
  });

  it('a DELIVER stays within the frame limit: large messages are split over several pushes', async () => {
    const { alice, bob, connect, register } = await setup({ limits: { messages: { burst: 1000, refill: 1, intervalMs: 1000 } } });
    const a = await connect(alice);
    await register(bob);
    for (let i = 0; i < 10; i++) expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(280 * 1024, i) }] }));
    const b = await connect(bob);
    const got = await b.delivered(10);
    got.forEach((m, i) => expectBytesEqual(m.frame, patternBytes(280 * 1024, i), `big message ${i}`));
  });
});

describe('SECURITY.md F37: only the owner reads, acknowledges or deletes a mailbox', () => {
  it("another device's ACK of a message id has no effect; its FETCH sees only its own mailbox", async () => {
    const { r, alice, bob, eve, connect, register } = await setup();
    const a = await connect(alice);
    await register(bob);
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(32, 9) }] }));
    const [stored] = await r.store.fetch(bob.address, { limit: 1 });
    const id = stored!.id;

    // Eve learned the id (ids are opaque, but assume the worst) and acknowledges it.
    const e = await connect(eve);
    expectOk(await e.request({ kind: 'ack', ids: [id] }));
    const { token: eveToken } = await httpAuth(r.relay.url, eve);
    expectOk((await httpRpc(r.relay.url, { kind: 'ack', ids: [id] }, { token: eveToken })).frame);
    expect(await e.request({ kind: 'fetch', waitMs: 0, max: 100 })).toEqual({ kind: 'deliver', messages: [] });
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 100 }, { token: eveToken })).frame).toEqual({ kind: 'deliver', messages: [] });
    // Alice, the sender, cannot delete it either.
    expectOk(await a.request({ kind: 'ack', ids: [id] }));
    expect((await r.store.stats(bob.address)).messages).toBe(1);

    // Only Bob, after proving his key, gets it and can delete it.
    const b = await connect(bob);
    const [m] = await b.delivered(1);
    expect(m!.id).toBe(id);
    expectOk(await b.request({ kind: 'ack', ids: [id] }));
    expect((await r.store.stats(bob.address)).messages).toBe(0);
  });

  it('without a valid signature nothing of the mailbox is readable (the certificate alone is not enough)', async () => {
    const { r, alice, bob, eve, connect, register } = await setup();
    const a = await connect(alice);
    await register(bob);
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(32, 9) }] }));
    // Eve replays Bob's public certificate with her own signature.
    const c = await scenario.socket(r);
    const answer = await c.request({ kind: 'auth', certificate: bob.certificate, challenge: c.hello.challenge, signature: await eve.sign(c.hello.relayId, c.hello.challenge), token: '' });
    expectError(answer, 'UNAUTHENTICATED');
    expect(c.pushes.filter((f) => f.kind === 'deliver')).toEqual([]);
    expect((await c.closed).code).toBe(1008);
    expect((await r.store.stats(bob.address)).messages).toBe(1);
  });
});

describe('HTTP carrier: long-poll FETCH', () => {
  it('SEND, FETCH and ACK over HTTP; a waiting FETCH wakes as soon as mail arrives', async () => {
    const { r, alice, bob } = await setup();
    const { token: at } = await httpAuth(r.relay.url, alice);
    const { token: bt } = await httpAuth(r.relay.url, bob);
    const started = Date.now();
    const poll = httpRpc(r.relay.url, { kind: 'fetch', waitMs: 30_000, max: 10 }, { token: bt });
    await r.untilLogged('fetch-waiting');
    expectOk((await httpRpc(r.relay.url, { kind: 'send', messages: [{ to: bob.address, frame: patternBytes(64, 3) }] }, { token: at })).frame);
    const answer = await poll;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.status).toBe(200);
    if (answer.frame?.kind !== 'deliver') throw new Error('expected DELIVER');
    expect(answer.frame.messages).toHaveLength(1);
    expect(answer.frame.messages[0]!.from).toEqual(alice.address);
    // Unacknowledged: the next FETCH returns it again; after ACK it is gone.
    const again = await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 10 }, { token: bt });
    expect(again.frame?.kind === 'deliver' && again.frame.messages[0]!.id).toBe(answer.frame.messages[0]!.id);
    expectOk((await httpRpc(r.relay.url, { kind: 'ack', ids: [answer.frame.messages[0]!.id] }, { token: bt })).frame);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 10 }, { token: bt })).frame).toEqual({ kind: 'deliver', messages: [] });
  });

  it('a FETCH with nothing waiting answers an empty DELIVER after waitMs', async () => {
    const { r, bob } = await setup();
    const { token } = await httpAuth(r.relay.url, bob);
    const started = Date.now();
    const res = await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 200, max: 10 }, { token });
    expect(res.frame).toEqual({ kind: 'deliver', messages: [] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('waiters are bounded per device: an extra long poll is RATE_LIMITED (429 with Retry-After)', async () => {
    const { r, alice, bob } = await setup({ limits: { waitersPerDevice: 2 } });
    const { token } = await httpAuth(r.relay.url, bob);
    const { token: at } = await httpAuth(r.relay.url, alice);
    const polls = [1, 2].map(() => httpRpc(r.relay.url, { kind: 'fetch', waitMs: 30_000, max: 10 }, { token }));
    await r.untilLogged('fetch-waiting', 2);
    const third = await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 30_000, max: 10 }, { token });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('1');
    expectError(third.frame, 'RATE_LIMITED');
    expectOk((await httpRpc(r.relay.url, { kind: 'send', messages: [{ to: bob.address, frame: patternBytes(8, 1) }] }, { token: at })).frame);
    const answers = await Promise.all(polls);
    for (const a of answers) expect(a.frame?.kind === 'deliver' && a.frame.messages.length).toBe(1);
  });
});
