import { describe, expect, it } from 'vitest';
import { address } from '@deadbolt/spec';
import { createChallengeTable } from '../../src/challenges.js';
import { authenticatedDevice } from '../../src/device.js';
import { createSessionTable } from '../../src/sessions.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('challenges', () => {
  it('single-use, expire, bounded (oldest forgotten first)', () => {
    const c = clock();
    const table = createChallengeTable({ max: 3, lifetimeMs: 60_000, now: c.now });
    const a = table.issue();
    expect(table.consume(a)).toBe(true);
    expect(table.consume(a)).toBe(false);
    const b = table.issue();
    c.advance(60_001);
    expect(table.consume(b)).toBe(false);
    const old = table.issue();
    const rest = [table.issue(), table.issue(), table.issue()];
    expect(table.size).toBe(3);
    expect(table.consume(old)).toBe(false);
    for (const x of rest) expect(table.consume(x)).toBe(true);
    expect(table.consume(new Uint8Array(31))).toBe(false);
  });
});

describe('sessions', () => {
  const alice = authenticatedDevice(address('alice', 'phone'), new Uint8Array(1));
  const bob = authenticatedDevice(address('bob', 'laptop'), new Uint8Array(1));

  it('resolve while used within the idle lifetime; revoke by user', () => {
    const c = clock();
    const t = createSessionTable({ maxSessions: 10, perDevice: 2, idleMs: 1000, now: c.now });
    const token = t.issue(alice);
    const other = t.issue(bob);
    expect(t.resolve(token)).toBe(alice);
    c.advance(900);
    expect(t.resolve(token)).toBe(alice);
    c.advance(900);
    expect(t.resolve(token)).toBe(alice);
    c.advance(1001);
    expect(t.resolve(token)).toBeUndefined();
    c.advance(-2000);
    t.revokeUser('bob');
    expect(t.resolve(other)).toBeUndefined();
    expect(t.resolve('')).toBeUndefined();
  });

  it('revoke one device: its sessions end, its sibling and other users keep theirs', () => {
    const c = clock();
    const t = createSessionTable({ maxSessions: 10, perDevice: 3, idleMs: 60_000, now: c.now });
    const laptop = authenticatedDevice(address('alice', 'laptop'), new Uint8Array(1));
    const a1 = t.issue(alice);
    const a2 = t.issue(alice);
    const l1 = t.issue(laptop);
    const b1 = t.issue(bob);
    t.revokeDevice(alice.key);
    expect([t.resolve(a1), t.resolve(a2)]).toEqual([undefined, undefined]);
    expect([t.resolve(l1), t.resolve(b1)]).toEqual([laptop, bob]);
    expect(t.size).toBe(2);
    t.revokeDevice(alice.key); // nothing left: a no-op
    expect(t.size).toBe(2);
  });

  it('bounded per device and in total, least recently used first', () => {
    const c = clock();
    const t = createSessionTable({ maxSessions: 3, perDevice: 2, idleMs: 60_000, now: c.now });
    const a1 = t.issue(alice);
    const a2 = t.issue(alice);
    const a3 = t.issue(alice);
    expect(t.resolve(a1)).toBeUndefined();
    expect(t.resolve(a2)).toBe(alice);
    expect(t.resolve(a3)).toBe(alice);
    const b1 = t.issue(bob);
    t.resolve(a2);
    const b2 = t.issue(bob); // table full: the least recently used (a3) goes
    expect(t.size).toBe(3);
    expect(t.resolve(a3)).toBeUndefined();
    expect([t.resolve(a2), t.resolve(b1), t.resolve(b2)]).toEqual([alice, bob, bob]);
  });
});
