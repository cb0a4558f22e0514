/**
 * Restarting a client is cheap for the relay and for the user's other devices
 * (docs/relay-protocol.md FETCH_BUNDLES `skip`): every `start()` reads its own user's
 * directory entry (the device list, and bundles of devices it has no session with), and
 * a page reload or a crash loop starts again and again. With the relay's default limits,
 * ten starts in a row succeed, and they take none of a sibling device's one-time prekeys.
 */
import { afterEach, expect, test } from 'vitest';
import { createClient, linkDevice, type Client } from '@deadbolt/core';
import { DEFAULT_RELAY_LIMITS, createMemoryRelayStore, type Relay } from '@deadbolt/relay';
import { createMemoryStorage, createMemoryStorageBacking } from '@deadbolt/storage-memory';
import { TEST_LIMITS, makeTransport, startRelay } from './stack.js';

let relay: Relay | undefined;
const open: Client[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close().catch(() => undefined);
  await relay?.close();
  relay = undefined;
});

test('ten restarts in a row under the default directory limits succeed and take no prekey of a sibling device', async () => {
  // The relay's own limits for directory reads; everything else loose (the test sends little).
  const store = createMemoryRelayStore();
  relay = await startRelay({ store, limits: { ...TEST_LIMITS, bundleFetches: DEFAULT_RELAY_LIMITS.bundleFetches, directoryReads: DEFAULT_RELAY_LIMITS.directoryReads } });
  const r = relay;
  const phone = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage(), transport: makeTransport('websocket', r) });
  open.push(phone);
  await phone.start();
  // A second device of Alice's, linked by code (docs/protocol.md §3.4).
  const laptopBacking = createMemoryStorageBacking();
  const link = await linkDevice({ userId: 'alice', deviceId: 'laptop', storage: createMemoryStorage({ backing: laptopBacking }), transport: makeTransport('websocket', r) });
  await phone.approveDevice(link.code);
  await link.completed;
  await link.transport.close();
  const laptop = await createClient({ userId: 'alice', deviceId: 'laptop', storage: createMemoryStorage({ backing: laptopBacking }), transport: makeTransport('websocket', r) });
  await laptop.start(); // its first start: a session with the phone (one of the phone's prekeys)
  await laptop.close();

  const before = await store.prekeyCounts({ userId: 'alice', deviceId: 'phone' });
  for (let i = 0; i < 10; i++) {
    const again = await createClient({ userId: 'alice', deviceId: 'laptop', storage: createMemoryStorage({ backing: laptopBacking }), transport: makeTransport('websocket', r) });
    await again.start(); // the 7th used to fail with RATE_LIMITED (6 bundle fetches per 10 minutes)
    expect((await again.devices()).map((d) => d.deviceId).sort()).toEqual(['laptop', 'phone']);
    await again.close();
  }
  expect(await store.prekeyCounts({ userId: 'alice', deviceId: 'phone' })).toEqual(before);
});

test('a start whose directory read is rate limited goes on with the stored signed list, and reports the limit', async () => {
  relay = await startRelay({ limits: { ...TEST_LIMITS, directoryReads: { burst: 2, refill: 1, intervalMs: 600_000 } } });
  const backing = createMemoryStorageBacking();
  const starts: string[][] = [];
  for (let i = 0; i < 4; i++) {
    const client = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage({ backing }), transport: makeTransport('websocket', relay) });
    const errors: string[] = [];
    client.on('error', (e) => errors.push((e as { code?: string }).code ?? 'unknown'));
    await client.start();
    starts.push(errors);
    await client.close();
  }
  // Two reads allowed: the first start (which publishes the list) and the second; then limited.
  expect(starts).toEqual([[], [], ['RATE_LIMITED'], ['RATE_LIMITED']]);
});
