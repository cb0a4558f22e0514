/**
 * The relay's shared state: what both carriers (WebSocket and HTTP) and the request
 * handler use. Every table here is bounded (SECURITY.md F42).
 *
 * @module
 */
import type { CryptoProvider } from '@deadbolt/core';
import type { RelayFrame } from '@deadbolt/spec';
import type { ChallengeTable } from './challenges.js';
import type { AuthenticatedDevice } from './device.js';
import type { RelayLimits } from './limits.js';
import type { RelayLogger } from './logger.js';
import type { MailboxHub } from './mailbox-hub.js';
import type { ProvisionTable } from './provisioning.js';
import type { RateLimiter } from './rate-limiter.js';
import type { SessionTable } from './sessions.js';
import type { PrekeyCounts, RelayStore } from './store.js';
import { addressKey } from './store-util.js';

/** The registration hook of `RelayOptions`. */
export type VerifyRegistration = (userId: string, accountKey: Uint8Array, token: string) => Promise<boolean>;

/** An authenticated WebSocket connection, as the rest of the relay sees it. */
export interface WebSocketPeer {
  readonly device: AuthenticatedDevice;
  readonly openedAt: number;
  /** Sends an unsolicited frame (requestId 0). */
  push(frame: RelayFrame): void;
  /** Delivers waiting mail if there is room in flight. */
  pump(): void;
  /** These ids were acknowledged (on any connection or carrier): no longer in flight here. */
  acked(ids: readonly string[]): void;
  /** Closes the connection. */
  close(code: number, reason: string): void;
}

export interface RelayLimiters {
  /** Per (requester user, target user). */
  readonly bundleFetches: RateLimiter;
  readonly directoryReads: RateLimiter;
  /** Per (sender user, recipient user). */
  readonly messages: RateLimiter;
  /** Per sender user, in bytes. */
  readonly sendBytes: RateLimiter;
  /** Per remote address: challenges, upgrades and AUTH attempts. */
  readonly authAttempts: RateLimiter;
  /** Per device: every request. */
  readonly requests: RateLimiter;
  /** Per device: PUBLISH_PREKEYS. */
  readonly prekeyUploads: RateLimiter;
  /** Per user: PUBLISH_DEVICE_LIST. */
  readonly deviceListPublishes: RateLimiter;
  /** Per device: PROVISION_PUT. */
  readonly provisionPuts: RateLimiter;
  /** Per WebSocket connection, or per remote address over HTTP: PROVISION_TAKE (no device to key it by). */
  readonly provisionTakes: RateLimiter;
}

export interface RelayCore {
  readonly relayId: string;
  readonly limits: RelayLimits;
  readonly store: RelayStore;
  readonly crypto: CryptoProvider;
  readonly log: RelayLogger;
  readonly now: () => number;
  readonly verifyRegistration: VerifyRegistration | undefined;
  readonly allowedOrigins: ReadonlySet<string>;
  readonly challenges: ChallengeTable;
  readonly sessions: SessionTable;
  readonly hub: MailboxHub;
  /** Device-link answers in transit (memory only). */
  readonly provisions: ProvisionTable;
  /** Authenticated WebSocket connections by device key. */
  readonly peers: Map<string, Set<WebSocketPeer>>;
  readonly limiters: RelayLimiters;
  /** PREKEYS_LOW not yet told to a device over HTTP, by device key (bounded). */
  readonly pendingLow: Map<string, PrekeyCounts>;
  /** Long-poll waiters. */
  readonly waiters: { total: number; readonly perDevice: Map<string, number> };
  /** Aborted when the relay starts draining: wakes every waiter. */
  readonly drainSignal: AbortSignal;
  readonly draining: boolean;
  /** Runs a request, counting it as in flight until it settles (graceful close waits). */
  track<T>(work: () => Promise<T>): Promise<T>;
}

/** Whether an Origin header value may connect: absent (non-browser clients) or listed. */
export function originAllowed(core: RelayCore, origin: string | undefined): boolean {
  return origin === undefined || core.allowedOrigins.has(origin);
}

/** Records a PREKEYS_LOW for a device: pushed on its WebSockets, kept for its next HTTP FETCH. */
export function tellPrekeysLow(core: RelayCore, deviceKey: string, counts: PrekeyCounts): void {
  const frame: RelayFrame = { kind: 'prekeys-low', oneTimePrekeys: counts.oneTime, pqPrekeys: counts.pq };
  const peers = core.peers.get(deviceKey);
  for (const p of peers ?? []) p.push(frame);
  core.pendingLow.delete(deviceKey);
  core.pendingLow.set(deviceKey, counts);
  while (core.pendingLow.size > core.limits.maxSessions) {
    core.pendingLow.delete(core.pendingLow.keys().next().value as string);
  }
}

/**
 * Cuts off devices a new device list left out (relay-protocol.md PUBLISH_DEVICE_LIST):
 * their WebSockets close with 4004, their HTTP sessions end, their waiting long polls
 * answer now (their mailbox is gone; the next request finds no session), and nothing is
 * kept for them. Their AUTH is refused from now on (REVOKED).
 */
export function revokeDevices(core: RelayCore, userId: string, deviceIds: readonly string[]): void {
  for (const deviceId of deviceIds) {
    const key = addressKey({ userId, deviceId });
    core.sessions.revokeDevice(key);
    core.pendingLow.delete(key);
    for (const p of [...(core.peers.get(key) ?? [])]) p.close(4004, 'device revoked');
    core.hub.notify(key);
  }
}

/** Closes every connection and session of a user (its account key changed). */
export function revokeUser(core: RelayCore, userId: string): void {
  core.sessions.revokeUser(userId);
  for (const set of core.peers.values()) {
    for (const p of [...set]) if (p.device.address.userId === userId) p.close(4003, 'account key changed');
  }
}
