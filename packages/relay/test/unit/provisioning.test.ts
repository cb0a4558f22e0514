/**
 * The in-memory table of device-link answers (relay-protocol.md PROVISION_PUT /
 * PROVISION_TAKE): taken once, one blob per channel, bounded in channels and waiters,
 * expiring, and releasing every waiter on close.
 */
import { describe, expect, it } from 'vitest';
import { createProvisionTable } from '../../src/provisioning.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const channel = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const blob = (n: number, size = 100): Uint8Array => new Uint8Array(size).fill(n);
const never = new AbortController().signal;

describe('provisioning table', () => {
  it('a blob is taken once and returned as a copy; a retried identical PUT is a no-op, other bytes are refused, even after the take', async () => {
    const c = clock();
    const table = createProvisionTable({ maxBlobs: 10, maxWaiters: 10, lifetimeMs: 600_000, now: c.now });
    const sealed = blob(1);
    expect(table.put(channel(1), sealed)).toBe('stored');
    sealed.fill(9);
    expect(table.put(channel(1), blob(1))).toBe('unchanged');
    expect(table.put(channel(1), blob(2))).toBe('conflict');
    expect(await table.take(channel(2), 0, [never])).toBeUndefined();
    expect(await table.take(channel(1), 0, [never])).toEqual(blob(1));
    expect(await table.take(channel(1), 0, [never])).toBeUndefined();
    expect(table.put(channel(1), blob(1))).toBe('unchanged');
    expect(await table.take(channel(1), 0, [never])).toBeUndefined(); // never handed out twice
    expect(table.put(channel(1), blob(2))).toBe('conflict');
  });

  it('a waiting take gets the blob as soon as it is put; a second waiter on that channel gets nothing at its deadline', async () => {
    const c = clock();
    const table = createProvisionTable({ maxBlobs: 10, maxWaiters: 10, lifetimeMs: 600_000, now: c.now });
    const first = table.take(channel(3), 30_000, [never]);
    const second = table.take(channel(3), 50, [never]);
    expect(table.waiting).toBe(2);
    expect(table.put(channel(3), blob(3))).toBe('delivered');
    expect(await first).toEqual(blob(3));
    expect(await second).toBeUndefined(); // released by its own deadline (the table's timer)
    expect(table.waiting).toBe(0);
    expect(await table.take(channel(3), 0, [never])).toBeUndefined();
  });

  it('bounded: channels (RATE_LIMITED-worthy "full" with the time to wait) and waiters ("busy")', async () => {
    const c = clock();
    const table = createProvisionTable({ maxBlobs: 2, maxWaiters: 1, lifetimeMs: 600_000, now: c.now });
    expect(table.put(channel(1), blob(1))).toBe('stored');
    c.advance(1000);
    expect(table.put(channel(2), blob(2))).toBe('stored');
    expect(table.put(channel(3), blob(3))).toBe('full');
    expect(table.retryAfterMs()).toBe(599_000);
    const abort = new AbortController();
    const waiting = table.take(channel(4), 30_000, [abort.signal]);
    expect(await table.take(channel(5), 30_000, [never])).toBe('busy');
    abort.abort();
    expect(await waiting).toBeUndefined();
    expect(table.waiting).toBe(0);
    // A taken channel still counts until it expires.
    expect(await table.take(channel(1), 0, [never])).toEqual(blob(1));
    expect(table.put(channel(3), blob(3))).toBe('full');
  });

  it('channels expire after their lifetime, blobs and tombstones alike', async () => {
    const c = clock();
    const table = createProvisionTable({ maxBlobs: 2, maxWaiters: 1, lifetimeMs: 600_000, now: c.now });
    table.put(channel(1), blob(1));
    table.put(channel(2), blob(2));
    await table.take(channel(2), 0, [never]);
    c.advance(600_000);
    expect(await table.take(channel(1), 0, [never])).toBeUndefined();
    expect(table.size).toBe(0);
    expect(table.put(channel(2), blob(7))).toBe('stored'); // the old tombstone is gone
  });

  it('an already aborted signal, or close(), ends a take with nothing', async () => {
    const c = clock();
    const table = createProvisionTable({ maxBlobs: 2, maxWaiters: 5, lifetimeMs: 600_000, now: c.now });
    const aborted = new AbortController();
    aborted.abort();
    expect(await table.take(channel(1), 30_000, [never, aborted.signal])).toBeUndefined();
    const waits = [table.take(channel(1), 30_000, [never]), table.take(channel(2), 30_000, [never])];
    table.put(channel(9), blob(9));
    table.close();
    expect(await Promise.all(waits)).toEqual([undefined, undefined]);
    expect(table.size).toBe(0);
    expect(table.waiting).toBe(0);
  });
});
