/**
 * PROVISION_PUT / PROVISION_TAKE (docs/relay-protocol.md §3, docs/protocol.md §3.4): an
 * authenticated device leaves a sealed device-link answer under a channel; a new device
 * without a certificate takes it, over a WebSocket after HELLO (instead of AUTH) or over
 * HTTP without a session token. Taken once, one blob per channel, 10-minute lifetime,
 * bounded and rate limited, and a waiting take is released when the relay closes.
 */
import { describe, expect, it } from 'vitest';
import { PROVISION_CHANNEL_BYTES, type RelayFrame } from '@deadbolt/spec';
import { patternBytes } from '@deadbolt/test-kit';
import { createDevice } from '../helpers/devices.js';
import { expectError, expectOk, httpAuth, httpRpc, type WsClient } from '../helpers/clients.js';
import { useScenario, type RelayStartOptions } from '../helpers/scenario.js';

const scenario = useScenario();

const channel = (n: number): Uint8Array => new Uint8Array(PROVISION_CHANNEL_BYTES).fill(n);
const take = (c: Uint8Array, waitMs: number): RelayFrame => ({ kind: 'provision-take', channel: c, waitMs });
const put = (c: Uint8Array, sealed: Uint8Array): RelayFrame => ({ kind: 'provision-put', channel: c, sealed });

async function setup(options: RelayStartOptions = {}) {
  const r = await scenario.relay(options);
  const alice = await createDevice('alice', 'phone');
  const approver = await scenario.connect(r, alice);
  /** A socket that never authenticates: a new device. */
  const newDevice = (): Promise<WsClient> => scenario.socket(r);
  return { r, alice, approver, newDevice };
}

describe('PROVISION_PUT / PROVISION_TAKE', () => {
  it('a new device waits on a WebSocket without AUTH; the answer PUT over HTTP reaches it at once, once', async () => {
    const { r, alice, newDevice } = await setup();
    const fresh = await newDevice();
    const sealed = patternBytes(4000, 5);
    const taking = fresh.request(take(channel(1), 30_000), 40_000);
    await r.untilLogged('provision-take');
    expect(r.logs.find((l) => l.event === 'provision-take')?.fields).toEqual({ carrier: 'websocket', waiting: 1 });
    const { token } = await httpAuth(r.relay.url, alice);
    expectOk((await httpRpc(r.relay.url, put(channel(1), sealed), { token })).frame);
    expect(await taking).toEqual({ kind: 'provision', sealed });
    // Taken: gone for everybody, this socket included.
    expect(await fresh.request(take(channel(1), 0))).toEqual({ kind: 'provision', sealed: undefined });
    expect(await (await newDevice()).request(take(channel(1), 0))).toEqual({ kind: 'provision', sealed: undefined });
    // The socket is still unauthenticated: nothing else is answered.
    expectError(await fresh.request({ kind: 'fetch', waitMs: 0, max: 1 }), 'UNAUTHENTICATED');
    // Nothing about the channel or blob is logged.
    for (const l of r.logs) expect(JSON.stringify(l)).not.toContain(Buffer.from(channel(1)).toString('hex'));
  });

  it('over HTTP a TAKE needs no session token; an answer left earlier is returned at once', async () => {
    const { approver, r } = await setup();
    const sealed = patternBytes(100, 6);
    expectOk(await approver.request(put(channel(2), sealed)));
    const answer = await httpRpc(r.relay.url, take(channel(2), 0));
    expect([answer.status, answer.frame]).toEqual([200, { kind: 'provision', sealed }]);
    expect((await httpRpc(r.relay.url, take(channel(2), 0))).frame).toEqual({ kind: 'provision', sealed: undefined });
  });

  it('nothing arrives within the wait: an empty PROVISION', async () => {
    const { newDevice, r } = await setup();
    expect(await (await newDevice()).request(take(channel(3), 50))).toEqual({ kind: 'provision', sealed: undefined });
    expect((await httpRpc(r.relay.url, take(channel(3), 50))).frame).toEqual({ kind: 'provision', sealed: undefined });
  });

  it('PUT: needs an authenticated device; one answer per channel (the same bytes again are OK, other bytes FORBIDDEN, before and after the take); at most maxProvisionBlob bytes', async () => {
    const { approver, newDevice, r } = await setup({ limits: { maxProvisionBlob: 1000 } });
    const anonymous = await newDevice();
    expectError(await anonymous.request(put(channel(4), patternBytes(10, 1))), 'UNAUTHENTICATED');
    expect((await httpRpc(r.relay.url, put(channel(4), patternBytes(10, 1)))).status).toBe(401);
    expectOk(await approver.request(put(channel(4), patternBytes(10, 1))));
    expectOk(await approver.request(put(channel(4), patternBytes(10, 1))));
    expectError(await approver.request(put(channel(4), patternBytes(10, 2))), 'FORBIDDEN');
    expect(await anonymous.request(take(channel(4), 0))).toEqual({ kind: 'provision', sealed: patternBytes(10, 1) });
    expectOk(await approver.request(put(channel(4), patternBytes(10, 1))));
    expectError(await approver.request(put(channel(4), patternBytes(10, 2))), 'FORBIDDEN');
    expect(await anonymous.request(take(channel(4), 0))).toEqual({ kind: 'provision', sealed: undefined });
    expectError(await approver.request(put(channel(5), patternBytes(1001, 1))), 'TOO_LARGE');
  });

  it('an answer lives 10 minutes', async () => {
    const { approver, newDevice, r } = await setup();
    expectOk(await approver.request(put(channel(6), patternBytes(10, 1))));
    r.clock.advance(10 * 60_000);
    expect(await (await newDevice()).request(take(channel(6), 0))).toEqual({ kind: 'provision', sealed: undefined });
  });

  it('bounded: answers held and takes waiting are capped (RATE_LIMITED); TAKE is rate limited per connection', async () => {
    const { approver, newDevice, r } = await setup({ limits: { maxProvisionBlobs: 1, maxProvisionWaiters: 1, provisionTakes: { burst: 2, refill: 1, intervalMs: 60_000 } } });
    expectOk(await approver.request(put(channel(7), patternBytes(10, 1))));
    const full = expectError(await approver.request(put(channel(8), patternBytes(10, 1))), 'RATE_LIMITED');
    expect(full.retryAfterMs).toBeGreaterThan(0);
    const first = await newDevice();
    const waiting = first.request(take(channel(9), 30_000), 40_000);
    await r.untilLogged('provision-take');
    const second = await newDevice();
    expectError(await second.request(take(channel(10), 30_000)), 'RATE_LIMITED');
    // Per connection: the first socket has one TAKE left, then it is refused; a new socket is not.
    expect(await first.request(take(channel(7), 0))).toEqual({ kind: 'provision', sealed: patternBytes(10, 1) });
    expectError(await first.request(take(channel(7), 0)), 'RATE_LIMITED');
    await first.close(); // the caller going away ends its wait
    await expect(waiting).rejects.toThrow(/socket closed/);
    expect(await (await newDevice()).request(take(channel(11), 0))).toEqual({ kind: 'provision', sealed: undefined });
  });

  it('a TAKE waiting when the relay closes is answered (empty) before the socket closes', async () => {
    const { r, newDevice } = await setup();
    const fresh = await newDevice();
    const waiting = fresh.request(take(channel(12), 30_000), 40_000);
    const overHttp = httpRpc(r.relay.url, take(channel(13), 30_000));
    await r.untilLogged('provision-take', 2);
    const started = Date.now();
    await scenario.stop(r);
    expect(await waiting).toEqual({ kind: 'provision', sealed: undefined });
    expect((await overHttp).frame).toEqual({ kind: 'provision', sealed: undefined });
    expect((await fresh.closed).code).toBe(1001);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
