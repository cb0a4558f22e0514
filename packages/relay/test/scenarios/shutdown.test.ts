/**
 * Graceful shutdown and the HTTP carrier's edges: health 503 while draining, new work
 * refused with UNAVAILABLE, requests in flight finished (a SEND being committed still
 * answers OK and its message is kept), long polls answered, sockets closed with 1001,
 * then the store closed.
 */
import { describe, expect, it } from 'vitest';
import { encodeRelayFrame } from '@deadbolt/spec';
import { patternBytes } from '@deadbolt/test-kit';
import { createMemoryRelayStore, type RelayStore } from '../../src/index.js';
import { createDevice } from '../helpers/devices.js';
import { connectWs, expectError, expectOk, httpAuth, httpRpc, WsClient } from '../helpers/clients.js';
import { useScenario } from '../helpers/scenario.js';

// Closing a relay twice is harmless: the cases below close theirs, and the cleanup again.
const { relay } = useScenario();

/** A memory store whose `enqueue` waits for `release()` once armed. */
function gatedStore(): { store: RelayStore; arm(): Promise<void>; release(): void } {
  const inner = createMemoryRelayStore();
  let armed = false;
  let entered: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  return {
    store: {
      ...inner,
      async enqueue(batch, quota) {
        if (armed) {
          armed = false;
          entered();
          await gate;
        }
        return inner.enqueue(batch, quota);
      },
    },
    arm() {
      armed = true;
      gate = new Promise((r) => (open = r));
      return new Promise((r) => (entered = r));
    },
    release: () => open(),
  };
}

describe('graceful close', () => {
  it('drains: health 503, new requests UNAVAILABLE, the SEND in flight completes and is kept, then everything closes', async () => {
    const gated = gatedStore();
    const r = await relay({ store: gated.store });
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const { token: bobToken } = await httpAuth(r.relay.url, bob);
    const { client: a } = await connectWs(r.relay.wsUrl, alice);
    const { token: aliceToken } = await httpAuth(r.relay.url, alice);

    const inStore = gated.arm();
    const sending = a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(100, 1) }] });
    await inStore; // the SEND is inside the store now
    const poll = httpRpc(r.relay.url, { kind: 'fetch', waitMs: 30_000, max: 10 }, { token: bobToken });
    await r.untilLogged('fetch-waiting');
    const closing = r.relay.close();

    // Draining: still reachable, but unhealthy and refusing new work.
    const health = await fetch(`${r.relay.url}/v1/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'draining' });
    const refused = await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { token: aliceToken });
    expect(refused.status).toBe(503);
    expectError(refused.frame, 'UNAVAILABLE');
    expectError(await a.request({ kind: 'fetch', waitMs: 0, max: 1 }), 'UNAVAILABLE');
    await expect(WsClient.connect(r.relay.wsUrl)).rejects.toMatchObject({ status: 503 });
    // The long poll was answered at once (empty).
    expect((await poll).frame).toEqual({ kind: 'deliver', messages: [] });

    // The SEND in flight finishes and is answered OK.
    gated.release();
    expectOk(await sending);
    expect((await a.closed).code).toBe(1001);
    await closing;
    expect(r.logs.map((l) => l.event)).toContain('relay-stopped');
    await expect(fetch(`${r.relay.url}/v1/health`)).rejects.toThrow();
    await expect(gated.store.stats(bob.address)).rejects.toMatchObject({ code: 'CLOSED' });
    await r.relay.close(); // idempotent
  });

  it('the committed message is kept across a graceful close of a SQLite relay', async () => {
    const r = await relay({ sqlite: true });
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    await httpAuth(r.relay.url, bob);
    const { client: a } = await connectWs(r.relay.wsUrl, alice);
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(100, 1) }] }));
    await r.relay.close();
    const { createSqliteRelayStore } = await import('../../src/index.js');
    const reopened = createSqliteRelayStore({ path: r.dbPath! });
    expect(await reopened.stats(bob.address)).toEqual({ messages: 1, bytes: 100 });
    await reopened.close();
    await r.stop();
  });
});

describe('HTTP carrier', () => {
  it('health, hello, methods, paths and undecodable bodies', async () => {
    const r = await relay();
    const health = await fetch(`${r.relay.url}/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect((await fetch(`${r.relay.url}/v1/hello`)).headers.get('content-type')).toBe('application/octet-stream');
    expect((await fetch(`${r.relay.url}/v1/rpc`)).status).toBe(405);
    expect((await fetch(`${r.relay.url}/v1/hello`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${r.relay.url}/v1/ws`)).status).toBe(426);
    expect((await fetch(`${r.relay.url}/nope`)).status).toBe(404);
    const garbage = await httpRpc(r.relay.url, Uint8Array.of(1, 0x13, 0, 0, 0, 5, 0xff));
    expect(garbage.status).toBe(400);
    expect(garbage.requestId).toBe(5);
    expectError(garbage.frame, 'BAD_REQUEST');
    const answerFrame = await httpRpc(r.relay.url, encodeRelayFrame(6, { kind: 'ok' }));
    expect(answerFrame.status).toBe(400);
    const ws = await WsClient.connect(r.relay.wsUrl.replace('/v1/ws', '/v1/other')).catch((e: { status?: number }) => e);
    expect((ws as { status?: number }).status).toBe(404);
  });
});
