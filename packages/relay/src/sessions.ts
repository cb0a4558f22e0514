/**
 * HTTP bearer sessions (docs/relay-protocol.md §1, §2): a random token issued at AUTH_OK,
 * valid while used at least once per idle lifetime. Tokens are kept only as SHA-256
 * digests, in memory; a restart logs every HTTP client out (they authenticate again).
 * Bounded in total and per device; the least recently used go first.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AuthenticatedDevice } from './device.js';

interface Session {
  readonly device: AuthenticatedDevice;
  lastUsed: number;
}

export interface SessionTable {
  /** Issues a token for `device`. */
  issue(device: AuthenticatedDevice): string;
  /** The device of a live token (refreshing its idle timer), or `undefined`. */
  resolve(token: string): AuthenticatedDevice | undefined;
  /** Ends every session of a user. */
  revokeUser(userId: string): void;
  /** Ends every session of one device (by `AuthenticatedDevice.key`). */
  revokeDevice(key: string): void;
  readonly size: number;
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function createSessionTable(options: { maxSessions: number; perDevice: number; idleMs: number; now: () => number }): SessionTable {
  const sessions = new Map<string, Session>(); // least recently used first
  const byDevice = new Map<string, Set<string>>();

  function remove(id: string): void {
    const s = sessions.get(id);
    if (s === undefined) return;
    sessions.delete(id);
    const set = byDevice.get(s.device.key);
    set?.delete(id);
    if (set?.size === 0) byDevice.delete(s.device.key);
  }

  return {
    issue(device) {
      const t = options.now();
      const mine = byDevice.get(device.key);
      if (mine && mine.size >= options.perDevice) remove(mine.values().next().value as string);
      // Drop expired sessions from the old end, then the least recently used if still full.
      for (const [id, s] of sessions) {
        if (sessions.size < options.maxSessions && t - s.lastUsed <= options.idleMs) break;
        remove(id);
      }
      const token = randomBytes(32).toString('base64url');
      const id = digest(token);
      sessions.set(id, { device, lastUsed: t });
      let set = byDevice.get(device.key);
      if (set === undefined) byDevice.set(device.key, (set = new Set()));
      set.add(id);
      return token;
    },
    resolve(token) {
      if (token.length === 0 || token.length > 128) return undefined;
      const id = digest(token);
      const s = sessions.get(id);
      if (s === undefined) return undefined;
      const t = options.now();
      if (t - s.lastUsed > options.idleMs) {
        remove(id);
        return undefined;
      }
      s.lastUsed = t;
      sessions.delete(id);
      sessions.set(id, s);
      return s.device;
    },
    revokeUser(userId) {
      for (const [id, s] of sessions) if (s.device.address.userId === userId) remove(id);
    },
    revokeDevice(key) {
      for (const id of [...(byDevice.get(key) ?? [])]) remove(id);
    },
    get size() {
      return sessions.size;
    },
  };
}
