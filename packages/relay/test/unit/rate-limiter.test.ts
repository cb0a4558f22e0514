import { describe, expect, it } from 'vitest';
import { createRateLimiter, limiterKey } from '../../src/rate-limiter.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('token buckets', () => {
  it('Signal-Server bundle limit: 6, then one per 10 minutes, with the wait reported', () => {
    const c = clock();
    const l = createRateLimiter({ burst: 6, refill: 1, intervalMs: 600_000 }, 100, c.now);
    for (let i = 0; i < 6; i++) expect(l.attempt(['k'])).toBe(0);
    expect(l.attempt(['k'])).toBe(600_000);
    c.advance(599_000);
    expect(l.attempt(['k'])).toBe(1000);
    c.advance(1000);
    expect(l.attempt(['k'])).toBe(0);
    expect(l.attempt(['k'])).toBe(600_000);
  });

  it('takes from several buckets all or none', () => {
    const c = clock();
    const l = createRateLimiter({ burst: 2, refill: 1, intervalMs: 1000 }, 100, c.now);
    expect(l.attempt(['a'], 2)).toBe(0);
    expect(l.attempt(['a', 'b'])).toBe(1000);
    expect(l.attempt(['b'], 2)).toBe(0); // b was not charged by the refused attempt
  });

  it('a cost above the burst is clamped to it (never unsatisfiable)', () => {
    const c = clock();
    const l = createRateLimiter({ burst: 100, refill: 10, intervalMs: 1000 }, 100, c.now);
    expect(l.attempt(['k'], 1000)).toBe(0);
    expect(l.attempt(['k'], 1000)).toBe(10_000);
  });

  it('the table is bounded; refilled buckets are evicted, active ones never (new keys are refused instead)', () => {
    const c = clock();
    const l = createRateLimiter({ burst: 3, refill: 1, intervalMs: 1000 }, 50, c.now);
    for (let i = 0; i < 50; i++) expect(l.attempt([`k${i}`])).toBe(0);
    expect(l.size).toBe(50);
    // Full of active buckets: a fresh key is refused, the old ones keep their state.
    expect(l.attempt(['fresh'])).toBeGreaterThan(0);
    expect(l.size).toBe(50);
    expect(l.attempt(['k0'], 3)).toBeGreaterThan(0); // k0 still has 2 tokens, not 3: not reset
    // Once buckets have refilled they are as good as absent and make room.
    c.advance(1000);
    for (let i = 0; i < 50; i++) expect(l.attempt([`new${i}`])).toBe(0);
    expect(l.size).toBe(50);
    // ...and the newcomers are active now: the next fresh key waits again.
    expect(l.attempt(['new50'])).toBeGreaterThan(0);
    expect(l.size).toBe(50);
    expect(limiterKey('a', 'b')).not.toBe(limiterKey('a,b'));
    expect(limiterKey('a"', 'b')).not.toBe(limiterKey('a', '"b'));
  });
});
