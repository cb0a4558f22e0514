/**
 * WebSocket-specific behaviour against the real relay on loopback: configuration by
 * name, the relay's own limits reaching the caller as typed errors, and the `ws` class
 * accepted as it is.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, test } from 'vitest';
import { rejectionOf } from '@deadbolt/test-kit';
import { isDeadboltError, RELAY_LIMITS, type TransportAdapter } from '@deadbolt/spec';
import { conformanceDevice, conformanceRelay, LOOSE_TEST_LIMITS } from '@deadbolt/relay/testing';
import type { Relay } from '@deadbolt/relay';
import { createTransportAdapter, createWebSocketTransport } from '../src/index.js';

let relay: Relay | undefined;
const open: TransportAdapter[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
  await relay?.close();
  relay = undefined;
});

function transport(url: string, relayId?: string): TransportAdapter {
  // The `ws` class is accepted without a cast.
  const t = createWebSocketTransport({ url, WebSocket, ...(relayId ? { relayId } : {}) });
  open.push(t);
  return t;
}


describe('websocket transport against the relay', () => {
  test('configuration by name: createTransportAdapter loads `ws` where there is no global WebSocket', async () => {
    relay = await conformanceRelay();
    const alice = await conformanceDevice('alice', 'phone');
    expect((globalThis as { WebSocket?: unknown }).WebSocket).toBeUndefined(); // Node 20
    const t = await createTransportAdapter({ url: relay.wsUrl });
    open.push(t);
    await t.connect(alice.auth);
    expect(t.state).toBe('connected');
    expect(isDeadboltError(await rejectionOf(createTransportAdapter({})), 'INVALID_ARGUMENT')).toBe(true);
    expect(() => createWebSocketTransport({ url: 'http://not-a-websocket', WebSocket })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test("the relay's rate limit reaches the caller as RATE_LIMITED with retryAfterMs", async () => {
    relay = await conformanceRelay({ limits: { ...LOOSE_TEST_LIMITS, messages: { burst: 2, refill: 1, intervalMs: 60_000 } } });
    const [alice, bob] = await Promise.all([conformanceDevice('alice', 'phone'), conformanceDevice('bob', 'laptop')]);
    const ta = transport(relay.wsUrl);
    await ta.connect(alice.auth);
    await transport(relay.wsUrl).connect(bob.auth);
    const to = [{ to: bob.address, frame: new Uint8Array([1]) }];
    await ta.send(to);
    await ta.send(to);
    const e = await rejectionOf(ta.send(to));
    expect(isDeadboltError(e, 'RATE_LIMITED') && e.details.retryAfterMs).toBeGreaterThan(0);
  });

  test("maxFrameSize follows the relay's HELLO: a smaller limit is enforced before sending", async () => {
    relay = await conformanceRelay({ limits: { ...LOOSE_TEST_LIMITS, maxMessage: 1000 } });
    const [alice, bob] = await Promise.all([conformanceDevice('alice', 'phone'), conformanceDevice('bob', 'laptop')]);
    const ta = transport(relay.wsUrl);
    expect(ta.maxFrameSize).toBe(RELAY_LIMITS.maxMessage);
    await ta.connect(alice.auth);
    await transport(relay.wsUrl).connect(bob.auth);
    expect(ta.maxFrameSize).toBe(1000);
    const e = await rejectionOf(ta.send([{ to: bob.address, frame: new Uint8Array(1001) }]));
    expect(isDeadboltError(e, 'FRAME_TOO_LARGE') && e.details).toEqual({ size: 1001, max: 1000 });
    await ta.send([{ to: bob.address, frame: new Uint8Array(1000) }]);
  });

  test('relayId: the expected relay connects, another is refused', async () => {
    relay = await conformanceRelay({ relayId: 'relay.example' });
    const alice = await conformanceDevice('alice', 'phone');
    await transport(relay.wsUrl, 'relay.example').connect(alice.auth);
    const e = await rejectionOf(transport(relay.wsUrl, 'other.example').connect(alice.auth));
    expect(isDeadboltError(e, 'TRANSPORT_FAILED')).toBe(true);
  });
});
