/**
 * The `skip` list core names in a directory read (relay-protocol.md FETCH_BUNDLES,
 * client/devices.ts `skippableDevices`): never longer than the protocol allows, and, once
 * the user has a signed list, only devices that list names. A longer list would make every
 * read of that user refused by the transport (INVALID_ARGUMENT) before it reaches the
 * relay: the user's list would never be applied again.
 *
 * The session manager here is a stand-in holding many sessions (a contact that never
 * published a list can register that many devices); the transport checks `skip` with the
 * same function every relay transport uses (`prepareFetchSkip`).
 */
import { expect, test } from 'vitest';
import { prepareFetchSkip, RELAY_LIMITS, TransportError, type Address, type DeviceDirectoryEntry, type FetchBundlesOptions, type TransportAdapter } from '@deadbolt/spec';
import { discoveryDue, ensureOwnDeviceList, forgetReread, refreshDevices, rereadState, type DeviceContext } from '../../src/client/devices.js';
import type { SessionManager } from '../../src/session/session-manager.js';

function context(sessionCount: number, listed: readonly string[] | undefined): { ctx: DeviceContext; skips: string[][] } {
  const skips: string[][] = [];
  const devices = Array.from({ length: sessionCount }, (_, i): Address => ({ userId: 'mallory', deviceId: `d${i}` }) as Address);
  const sessions = {
    devices: async () => devices,
    deviceList: async () => (listed === undefined ? undefined : { listVersion: 1, devices: listed.map((deviceId) => ({ deviceId })) }),
  } as unknown as SessionManager;
  const transport = {
    fetchBundles: async (_user: string, options?: FetchBundlesOptions): Promise<DeviceDirectoryEntry> => {
      skips.push(prepareFetchSkip(options)); // throws INVALID_ARGUMENT over the limit, as the transports do
      return { bundles: [], deviceList: undefined };
    },
  } as unknown as TransportAdapter;
  const ctx: DeviceContext = {
    self: { userId: 'alice', deviceId: 'phone' } as Address,
    sessions,
    transport,
    rejected: () => undefined,
    changed: () => undefined,
    error: () => undefined,
    rereads: new Map(),
    now: () => 0,
  };
  return { ctx, skips };
}

test('a user this device holds more sessions with than a read may skip is still read: the skip list is cut to the protocol limit', async () => {
  const { ctx, skips } = context(RELAY_LIMITS.maxBundles + 50, undefined);
  const devices = await refreshDevices(ctx, 'mallory' as never);
  expect(devices).toHaveLength(RELAY_LIMITS.maxBundles + 50);
  expect(skips).toHaveLength(1);
  expect(skips[0]).toHaveLength(RELAY_LIMITS.maxBundles);
});

test('once the user has a signed list, only the devices it names are skipped', async () => {
  const { ctx, skips } = context(5, ['d1', 'd3', 'd7']);
  await refreshDevices(ctx, 'mallory' as never);
  expect(skips).toEqual([['d1', 'd3']]);
});

test('start-up: when the second read (for a sibling linked again under its id) fails, the first answer stands, never the older stored list', async () => {
  const self = { userId: 'alice', deviceId: 'phone' } as Address;
  const listed = { listVersion: 2, devices: [{ deviceId: 'phone' }, { deviceId: 'tablet' }], encoded: Uint8Array.of(2) };
  let applied = false;
  const sessions = {
    // Before the new list: a session with the old tablet; the list ends it (other keys).
    devices: async () => (applied ? [] : [{ userId: 'alice', deviceId: 'tablet' }]),
    deviceList: async () => (applied ? listed : { ...listed, listVersion: 1, encoded: Uint8Array.of(1) }),
    applyDeviceList: async () => {
      applied = true;
      return { changed: true, list: listed, removed: [{ userId: 'alice', deviceId: 'tablet' }] };
    },
  } as unknown as SessionManager;
  const first: DeviceDirectoryEntry = { bundles: [Uint8Array.of(9, 9)], deviceList: listed.encoded };
  const reads: string[][] = [];
  const errors: unknown[] = [];
  const transport = {
    fetchBundles: async (_user: string, options?: FetchBundlesOptions): Promise<DeviceDirectoryEntry> => {
      reads.push(prepareFetchSkip(options));
      if (reads.length === 1) return first;
      throw new TransportError('RATE_LIMITED', { message: 'too many reads', details: { retryAfterMs: 1000 } });
    },
  } as unknown as TransportAdapter;
  const ctx: DeviceContext = { self, sessions, transport, rejected: () => undefined, changed: () => undefined, error: (e) => void errors.push(e), rereads: new Map(), now: () => 0 };
  const entry = await ensureOwnDeviceList(ctx);
  expect(reads).toEqual([['tablet'], []]);
  expect(entry).toBe(first);
  expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['RATE_LIMITED']);
});

test('a send reads a user again for a listed device it has no session with at most every 10 minutes, backing off while nothing changes (the relay\'s per-pair read budget is kept for DEVICE_MISMATCH)', async () => {
  let clock = 0;
  let list = { listVersion: 3, devices: [{ deviceId: 'phone' }, { deviceId: 'tablet' }] };
  const sessions = {
    devices: async () => [{ userId: 'bob', deviceId: 'phone' }],
    deviceList: async () => list,
  } as unknown as SessionManager;
  const ctx: DeviceContext = {
    self: { userId: 'alice', deviceId: 'laptop' } as Address,
    sessions,
    transport: {} as TransportAdapter,
    rejected: () => undefined,
    changed: () => undefined,
    error: () => undefined,
    rereads: new Map(),
    now: () => clock,
  };
  const due = (): Promise<boolean> => discoveryDue(ctx, 'bob' as never);
  const minutes = (m: number): void => void (clock = m * 60_000);
  expect(await due()).toBe(true); // tablet has no session: read
  minutes(9);
  expect(await due()).toBe(false);
  minutes(10);
  expect(await due()).toBe(true); // still out of reach: the wait doubles to 20 minutes
  minutes(29);
  expect(await due()).toBe(false);
  minutes(30);
  expect(await due()).toBe(true); // then 40
  minutes(69);
  expect(await due()).toBe(false);
  // The contact republishing the same devices (a new version) changes nothing.
  list = { listVersion: 4, devices: list.devices };
  expect(await due()).toBe(false);
  // A device newly out of reach (one linked since) is worth a read at once, and restarts the wait.
  list = { listVersion: 5, devices: [...list.devices, { deviceId: 'desktop' }] };
  expect(await due()).toBe(true);
  minutes(78);
  expect(await due()).toBe(false);
  minutes(79);
  expect(await due()).toBe(true);
  // A clock that went back makes the read due rather than silent for as long (the wait,
  // 20 minutes before, is now 40).
  minutes(20);
  expect(await due()).toBe(true);
  minutes(59);
  expect(await due()).toBe(false);
  // A read that never reached the relay (offline) is undone: no wait, and no longer wait.
  minutes(60);
  const tried = rereadState(ctx, 'bob' as never);
  expect(await due()).toBe(true);
  expect(rereadState(ctx, 'bob' as never)?.interval).toBe(80 * 60_000);
  forgetReread(ctx, 'bob' as never, tried);
  expect(rereadState(ctx, 'bob' as never)).toEqual(tried);
  expect(await due()).toBe(true);
  // Every listed device reached: nothing to read.
  list = { listVersion: 6, devices: [{ deviceId: 'phone' }] };
  expect(await due()).toBe(false);
});
