/**
 * Authentication challenges (docs/relay-protocol.md §2): 32 random bytes, valid for the
 * challenge lifetime, single-use. HTTP challenges live in a bounded table (the oldest
 * are forgotten first); a WebSocket's challenge belongs to its connection alone.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';

export interface ChallengeTable {
  /** A fresh challenge, remembered until used or expired. */
  issue(): Uint8Array;
  /** True exactly once for a challenge issued within the lifetime; it is forgotten either way. */
  consume(challenge: Uint8Array): boolean;
  readonly size: number;
}

export function newChallenge(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function createChallengeTable(options: { max: number; lifetimeMs: number; now: () => number }): ChallengeTable {
  const issued = new Map<string, number>(); // oldest first
  return {
    issue() {
      const t = options.now();
      for (const [k, at] of issued) {
        if (issued.size < options.max && t - at <= options.lifetimeMs) break;
        issued.delete(k);
      }
      const c = newChallenge();
      issued.set(hex(c), t);
      return c;
    },
    consume(challenge) {
      if (challenge.length !== 32) return false;
      const k = hex(challenge);
      const at = issued.get(k);
      if (at === undefined) return false;
      issued.delete(k);
      return options.now() - at <= options.lifetimeMs;
    },
    get size() {
      return issued.size;
    },
  };
}
