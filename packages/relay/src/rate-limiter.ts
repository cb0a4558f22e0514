/**
 * Token-bucket rate limiting with a bounded table (SECURITY.md F39, F42).
 *
 * A bucket holds up to `burst` tokens and refills continuously at `refill` tokens per
 * `intervalMs`; a request costs tokens. The table is bounded: when it is full, buckets
 * that have refilled completely are dropped first (a full bucket is the same as no
 * bucket), and if none has, a *new* key is refused rather than evicting an active bucket.
 * Evicting active buckets would let an attacker reset its own limits by flooding the
 * table with fresh keys.
 *
 * @module
 */
import type { RateLimit } from './limits.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** A bounded set of token buckets. Synchronous, so check-and-take is atomic. */
export interface RateLimiter {
  /**
   * Milliseconds until every bucket of `keys` holds `cost` tokens: 0 means it may go now.
   * Takes nothing.
   */
  check(keys: readonly string[], cost?: number): number;
  /** Takes `cost` tokens from each bucket of `keys` (call after `check` returned 0). */
  take(keys: readonly string[], cost?: number): void;
  /** `check` then, if allowed, `take`. Returns the wait in ms (0: allowed and taken). */
  attempt(keys: readonly string[], cost?: number): number;
  /** How many buckets are kept. */
  readonly size: number;
}

/** How many of the oldest buckets one insertion inspects for eviction. */
const SWEEP = 64;

/** A key made of parts, without string-join ambiguity. */
export function limiterKey(...parts: readonly string[]): string {
  return JSON.stringify(parts);
}

/**
 * Creates a rate limiter.
 *
 * @example
 * ```ts
 * const bundles = createRateLimiter({ burst: 6, refill: 1, intervalMs: 600_000 }, 100_000, Date.now);
 * const wait = bundles.attempt([limiterKey(requester, target)]);
 * if (wait > 0) return rateLimited(wait);
 * ```
 */
export function createRateLimiter(limit: RateLimit, maxEntries: number, now: () => number): RateLimiter {
  const buckets = new Map<string, Bucket>();
  const perMs = limit.refill / limit.intervalMs;
  const fullAfterMs = limit.burst / perMs;

  function level(b: Bucket | undefined, t: number): number {
    if (b === undefined) return limit.burst;
    return Math.min(limit.burst, b.tokens + Math.max(0, t - b.at) * perMs);
  }

  /** Makes room for one new key; false if every bucket is still active. */
  function makeRoom(t: number): boolean {
    if (buckets.size < maxEntries) return true;
    let inspected = 0;
    for (const [key, b] of buckets) {
      if (inspected++ >= SWEEP) break;
      if (level(b, t) >= limit.burst) buckets.delete(key);
    }
    return buckets.size < maxEntries;
  }

  function check(keys: readonly string[], cost = 1): number {
    const c = Math.min(cost, limit.burst);
    const t = now();
    let wait = 0;
    let newKeys = 0;
    for (const key of keys) {
      const b = buckets.get(key);
      if (b === undefined) newKeys++;
      const have = level(b, t);
      // (The epsilon keeps float noise from turning an exact 1000 ms into 1001.)
      if (have < c) wait = Math.max(wait, Math.ceil((c - have) / perMs - 1e-6));
    }
    if (wait === 0 && newKeys > 0 && buckets.size + newKeys > maxEntries) {
      makeRoom(t);
      if (buckets.size + newKeys > maxEntries) {
        // The table is full of active buckets: refuse until the oldest has refilled.
        const oldest = buckets.values().next().value as Bucket | undefined;
        wait = Math.max(1000, oldest ? Math.ceil(fullAfterMs - (t - oldest.at)) : 1000);
      }
    }
    return wait;
  }

  function take(keys: readonly string[], cost = 1): void {
    const c = Math.min(cost, limit.burst);
    const t = now();
    for (const key of keys) {
      const have = level(buckets.get(key), t);
      buckets.delete(key); // re-insert: the map's order is least recently used first
      if (buckets.size >= maxEntries) makeRoom(t);
      buckets.set(key, { tokens: Math.max(0, have - c), at: t });
    }
  }

  return {
    check,
    take,
    attempt(keys, cost = 1) {
      const wait = check(keys, cost);
      if (wait === 0) take(keys, cost);
      return wait;
    },
    get size() {
      return buckets.size;
    },
  };
}
